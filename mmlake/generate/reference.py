"""Clinical reference facts the synthetic cohort is built from.

Codes are real: ICD-10-CM and SNOMED CT for diagnoses, LOINC for observations, RxNorm for drugs,
GRCh38 coordinates (1-based, as in VCF) for the hotspot variants. Keeping them real means the
downstream models, seeds and trial criteria can be written exactly as they would be for real data.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from mmlake.paths import project_root


@dataclass(frozen=True)
class Therapy:
    name: str
    rxnorm: str


@dataclass(frozen=True)
class Driver:
    """A somatic hotspot variant and what it means clinically."""

    gene: str
    protein_change: str  # HGVS p. short form, e.g. L858R
    hgvs_c: str
    chrom: str
    pos: int  # 1-based GRCh38 position, as written in VCF POS
    ref: str
    alt: str
    frequency: float  # share of the cancer type carrying it
    prognostic_logit: float  # effect on progression without matched therapy
    therapy: Therapy | None  # matched targeted therapy, when one is approved

    @property
    def label(self) -> str:
        return f"{self.gene} {self.protein_change}"


@dataclass(frozen=True)
class CancerType:
    key: str
    display: str
    icd10cm: str
    icd10cm_display: str
    snomed: str
    prevalence: float
    stage_distribution: tuple[float, float, float, float]
    baseline_logit: float
    mean_age: float
    fixed_sex: str | None
    imaging_modality: str  # DICOM Modality of the staging study
    body_part: str  # DICOM BodyPartExamined
    drivers: tuple[Driver, ...]
    standard_therapy: tuple[Therapy, ...]
    tumor_marker_loinc: str | None = None
    tp53_frequency: float = 0.35  # share with a TP53 hotspot co-mutation (poor prognosis)


# RxNorm ingredient concepts.
OSIMERTINIB = Therapy("osimertinib", "1721560")
SOTORASIB = Therapy("sotorasib", "2550714")
DABRAFENIB = Therapy("dabrafenib", "1424911")
TRAMETINIB = Therapy("trametinib", "1425098")
ALPELISIB = Therapy("alpelisib", "2169302")
ENCORAFENIB = Therapy("encorafenib", "2049106")
CARBOPLATIN = Therapy("carboplatin", "40048")
PEMETREXED = Therapy("pemetrexed", "68446")
PEMBROLIZUMAB = Therapy("pembrolizumab", "1547545")
NIVOLUMAB = Therapy("nivolumab", "1597876")
PACLITAXEL = Therapy("paclitaxel", "56946")
LETROZOLE = Therapy("letrozole", "72965")
OXALIPLATIN = Therapy("oxaliplatin", "32592")
FLUOROURACIL = Therapy("fluorouracil", "4492")
TEMOZOLOMIDE = Therapy("temozolomide", "37776")
ONDANSETRON = Therapy("ondansetron", "26225")
DEXAMETHASONE = Therapy("dexamethasone", "3264")

EGFR_L858R = Driver(
    "EGFR", "L858R", "c.2573T>G", "chr7", 55191822, "T", "G", 0.14, 0.0, OSIMERTINIB
)
KRAS_G12C = Driver("KRAS", "G12C", "c.34G>T", "chr12", 25245351, "C", "A", 0.12, 0.2, SOTORASIB)
KRAS_G12D = Driver("KRAS", "G12D", "c.35G>A", "chr12", 25245350, "C", "T", 0.14, 0.35, None)
BRAF_V600E = Driver(
    "BRAF", "V600E", "c.1799T>A", "chr7", 140753336, "A", "T", 0.45, 0.2, DABRAFENIB
)
BRAF_V600E_CRC = Driver(
    "BRAF", "V600E", "c.1799T>A", "chr7", 140753336, "A", "T", 0.08, 0.6, ENCORAFENIB
)
BRAF_V600E_LUNG = Driver(
    "BRAF", "V600E", "c.1799T>A", "chr7", 140753336, "A", "T", 0.03, 0.1, DABRAFENIB
)
PIK3CA_H1047R = Driver(
    "PIK3CA", "H1047R", "c.3140A>G", "chr3", 179234297, "A", "G", 0.18, 0.1, ALPELISIB
)
IDH1_R132H = Driver("IDH1", "R132H", "c.395G>A", "chr2", 208248388, "C", "T", 0.10, -1.0, None)
NRAS_Q61R = Driver("NRAS", "Q61R", "c.182A>G", "chr1", 114713908, "T", "C", 0.15, 0.3, None)

# TP53 hotspots: not drivers one can target, but a co-mutation that worsens prognosis across
# tumour types; the genomic signal that needs no treatment context to be read.
TP53_HOTSPOTS: tuple[Driver, ...] = (
    Driver("TP53", "R175H", "c.524G>A", "chr17", 7675088, "C", "T", 0.0, 0.7, None),
    Driver("TP53", "R248Q", "c.743G>A", "chr17", 7674220, "C", "T", 0.0, 0.7, None),
    Driver("TP53", "R273H", "c.818G>A", "chr17", 7673802, "C", "T", 0.0, 0.7, None),
)

ALL_DRIVERS: tuple[Driver, ...] = (
    EGFR_L858R,
    KRAS_G12C,
    KRAS_G12D,
    BRAF_V600E,
    PIK3CA_H1047R,
    IDH1_R132H,
    NRAS_Q61R,
)

CANCER_TYPES: tuple[CancerType, ...] = (
    CancerType(
        "nsclc",
        "Non-small cell lung cancer",
        "C34.90",
        "Malignant neoplasm of unspecified part of unspecified bronchus or lung",
        "254637007",
        0.30,
        (0.20, 0.15, 0.25, 0.40),
        -0.3,
        67,
        None,
        "CT",
        "CHEST",
        (EGFR_L858R, KRAS_G12C, BRAF_V600E_LUNG),
        (CARBOPLATIN, PEMETREXED, PEMBROLIZUMAB),
        "2039-6",
        tp53_frequency=0.45,
    ),
    CancerType(
        "breast",
        "Malignant neoplasm of breast",
        "C50.919",
        "Malignant neoplasm of unspecified site of unspecified female breast",
        "254837009",
        0.22,
        (0.35, 0.30, 0.20, 0.15),
        -1.0,
        60,
        "female",
        "CT",
        "CHEST",
        (PIK3CA_H1047R,),
        (PACLITAXEL, LETROZOLE),
        None,
        tp53_frequency=0.3,
    ),
    CancerType(
        "colorectal",
        "Malignant neoplasm of colon",
        "C18.9",
        "Malignant neoplasm of colon, unspecified",
        "363406005",
        0.20,
        (0.20, 0.25, 0.30, 0.25),
        -0.5,
        65,
        None,
        "CT",
        "ABDOMEN",
        (KRAS_G12D, BRAF_V600E_CRC),
        (OXALIPLATIN, FLUOROURACIL),
        "2039-6",
        tp53_frequency=0.5,
    ),
    CancerType(
        "melanoma",
        "Malignant melanoma",
        "C43.9",
        "Malignant melanoma of skin, unspecified",
        "372244006",
        0.13,
        (0.30, 0.25, 0.25, 0.20),
        -0.6,
        62,
        None,
        "CT",
        "CHEST",
        (BRAF_V600E, NRAS_Q61R),
        (NIVOLUMAB, PEMBROLIZUMAB),
        None,
        tp53_frequency=0.15,
    ),
    CancerType(
        "glioblastoma",
        "Glioblastoma multiforme",
        "C71.9",
        "Malignant neoplasm of brain, unspecified",
        "393563007",
        0.15,
        (0.0, 0.0, 0.0, 1.0),
        -0.2,
        64,
        None,
        "MR",
        "BRAIN",
        (IDH1_R132H,),
        (TEMOZOLOMIDE,),
        None,
        tp53_frequency=0.3,
    ),
)


@dataclass(frozen=True)
class GeneRegion:
    symbol: str
    chrom: str
    start: int  # 1-based inclusive, GRCh38 (Ensembl gene span)
    end: int
    strand: str


def _load_gene_panel() -> tuple[GeneRegion, ...]:
    """The sequencing panel, read from the dbt seed so generator and models share one copy."""
    seed = project_root() / "seeds" / "gene_panel_regions.csv"
    with seed.open(newline="", encoding="utf-8") as handle:
        return tuple(
            GeneRegion(
                row["gene_symbol"],
                row["chrom"],
                int(row["start_pos"]),
                int(row["end_pos"]),
                row["strand"],
            )
            for row in csv.DictReader(handle)
        )


# GRCh38 gene spans (Ensembl) of the panel; passenger variants are drawn inside them.
GENE_PANEL: tuple[GeneRegion, ...] = _load_gene_panel()

# GRCh38 primary contig lengths, for the VCF header (##contig).
CONTIG_LENGTHS: dict[str, int] = {
    "chr1": 248956422,
    "chr2": 242193529,
    "chr3": 198295559,
    "chr5": 181538259,
    "chr7": 159345973,
    "chr9": 138394717,
    "chr10": 133797422,
    "chr12": 133275309,
    "chr13": 114364328,
    "chr17": 83257441,
    "chr18": 80373285,
}


@dataclass(frozen=True)
class Loinc:
    code: str
    display: str
    unit: str  # UCUM


LDH = Loinc("2532-0", "Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma", "U/L")
ALBUMIN = Loinc("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL")
CEA = Loinc("2039-6", "Carcinoembryonic Ag [Mass/volume] in Serum or Plasma", "ng/mL")
HEMOGLOBIN = Loinc("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL")
ECOG = Loinc("89247-1", "ECOG Performance Status score", "{score}")
BODY_WEIGHT = Loinc("29463-7", "Body weight", "kg")
HEART_RATE = Loinc("8867-4", "Heart rate", "/min")
SYSTOLIC_BP = Loinc("8480-6", "Systolic blood pressure", "mm[Hg]")
DIASTOLIC_BP = Loinc("8462-4", "Diastolic blood pressure", "mm[Hg]")
BP_PANEL = Loinc("85354-9", "Blood pressure panel with all children optional", "")
STAGE_GROUP = Loinc("21908-9", "Stage group.clinical Cancer", "")
# mCODE CancerDiseaseStatus: the outcome (progression) is recorded as this observation.
DISEASE_STATUS = Loinc("97509-4", "Cancer disease progression", "")

# SNOMED CT answers for the mCODE disease-status value set.
STATUS_IMPROVED = ("268910001", "Patient's condition improved")
STATUS_STABLE = ("359746009", "Patient's condition stable")
STATUS_WORSENED = ("271299001", "Patient's condition worsened")

GIVEN_NAMES_FEMALE = (
    "Maria",
    "Linda",
    "Susan",
    "Aisha",
    "Mei",
    "Olga",
    "Fatima",
    "Grace",
    "Elena",
    "Priya",
    "Hannah",
    "Sofia",
    "Chloe",
    "Ingrid",
    "Yuki",
    "Amara",
    "Rosa",
    "Naomi",
)
GIVEN_NAMES_MALE = (
    "James",
    "Robert",
    "Ahmed",
    "Wei",
    "Carlos",
    "Dmitri",
    "Kwame",
    "Lucas",
    "Rahul",
    "Thomas",
    "Jonas",
    "Omar",
    "Hiro",
    "Samuel",
    "Mateo",
    "Ivan",
    "Daniel",
    "Kofi",
)
FAMILY_NAMES = (
    "Smith",
    "Garcia",
    "Nguyen",
    "Okafor",
    "Kowalski",
    "Haddad",
    "Tanaka",
    "Müller",
    "Rossi",
    "Johnson",
    "Patel",
    "Kim",
    "Silva",
    "Cohen",
    "Ivanova",
    "Mensah",
    "O'Brien",
    "Larsen",
)
INSTITUTIONS = (
    "Riverside Cancer Center",
    "St. Mary's University Hospital",
    "Lakeshore Oncology Institute",
)

# Race and ethnicity as the US Core Patient extensions carry them: codes of the CDC Race &
# Ethnicity code system. The five OMB race categories plus "Other Race" (a detailed code, not an
# OMB category), with shares roughly those of US cancer registries; the share left over is a
# patient with no race (or ethnicity) recorded, as many charts have.
RACE_ETHNICITY_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"
RACES: tuple[tuple[str, str, float], ...] = (
    ("2106-3", "White", 0.72),
    ("2054-5", "Black or African American", 0.12),
    ("2028-9", "Asian", 0.06),
    ("1002-5", "American Indian or Alaska Native", 0.01),
    ("2076-8", "Native Hawaiian or Other Pacific Islander", 0.005),
    ("2131-1", "Other Race", 0.035),
)
ETHNICITIES: tuple[tuple[str, str, float], ...] = (
    ("2135-2", "Hispanic or Latino", 0.10),
    ("2186-5", "Not Hispanic or Latino", 0.85),
)
OMB_CATEGORIES = frozenset(code for code, _, _ in RACES + ETHNICITIES) - {"2131-1"}
RACE_ETHNICITY_DISPLAY = {code: display for code, display, _ in RACES + ETHNICITIES}
