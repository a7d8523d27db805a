"""Phrase banks and the note builder behind the synthetic clinical notes.

The banks are small pipe-separated tables (parsed once at import) so that the variety a note-NLP
pipeline has to cope with (synonyms, assertion cues, date formats, dosing styles) is easy to read
and extend. Every frame that places a concept in the text goes through :class:`NoteBuilder`,
which records the exact surface string and its assertion flags, so the ground truth can never drift
from what the file says.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from mmlake.generate.cohort import PatientRecord


def _table(block: str) -> list[list[str]]:
    """Rows of an ``a | b | c`` block; a line opening with ``|`` continues the row above."""
    rows: list[list[str]] = []
    for line in _lines(block):
        cells = [cell.strip() for cell in line.split("|")]
        if line.startswith("|"):  # a continuation of the row above
            rows[-1].extend(cells[1:])
        elif not line.startswith("#"):
            rows.append(cells)
    return rows


def _lines(block: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in block.strip().splitlines() if line.strip())


def _bank(block: str) -> dict[str, tuple[str, ...]]:
    """Named lists of alternatives: ``[name]``, then options separated by ``|`` over lines."""
    bank: dict[str, str] = {}
    name = ""
    for line in _lines(block):
        if line.startswith("["):
            name, _, line = line[1:].partition("]")
            bank[name] = ""
        if not line.startswith("#"):
            bank[name] += " " + line
    return {k: tuple(o.strip() for o in v.split("|") if o.strip()) for k, v in bank.items()}


def split_list(items: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in items.split(","))


class Symptom(NamedTuple):
    concept: str
    favoured_by: frozenset[str]  # cancer keys in which it is a typical presenting complaint
    surfaces: tuple[str, ...]


# The symptom lexicon: the planted signal (affirmed symptoms) and the distractors are all drawn
# from it, so an extractor that ignores assertion status over-counts.
SYMPTOMS: tuple[Symptom, ...] = tuple(
    Symptom(c, frozenset(f.split()), tuple(s.strip() for s in syn.split(";")))
    for c, f, syn in _table("""
dyspnea | nsclc breast | shortness of breath; dyspnea; breathlessness; dyspnea on exertion
fatigue | - | fatigue; tiredness; low energy; generalized fatigue
cough | nsclc | cough; persistent cough; nonproductive cough; productive cough
hemoptysis | nsclc | hemoptysis; blood-streaked sputum; coughing up blood
weight loss | colorectal nsclc | weight loss; unintentional weight loss; unintended weight loss
anorexia | colorectal | anorexia; decreased appetite; poor appetite; loss of appetite
nausea | glioblastoma | nausea; intermittent nausea; queasiness
vomiting | glioblastoma | vomiting; emesis
headache | glioblastoma | headache; headaches; morning headaches
seizure | glioblastoma | seizure; seizures; focal seizure; generalized tonic-clonic seizure
bone pain | breast nsclc | bone pain; aching bone pain; diffuse bone pain
abdominal pain | colorectal | abdominal pain; abdominal cramping; lower abdominal pain
night sweats | melanoma | night sweats; drenching night sweats
chest pain | nsclc | chest pain; chest discomfort; pleuritic chest pain
dizziness | - | dizziness; lightheadedness
blurred vision | glioblastoma | blurred vision; blurry vision; visual blurring
fever | - | fever; fevers; low-grade fevers
chills | - | chills; rigors
confusion | glioblastoma | confusion; intermittent confusion; disorientation
constipation | colorectal | constipation
diarrhea | colorectal | diarrhea; loose stools
rectal bleeding | colorectal | rectal bleeding; blood in the stool; hematochezia
neuropathy | - | neuropathy; peripheral neuropathy; numbness and tingling in the fingertips
insomnia | - | insomnia; difficulty sleeping
pruritus | melanoma | pruritus; itching
hoarseness | nsclc | hoarseness
weakness | glioblastoma | weakness; generalized weakness; left-sided weakness
""")
)
SYMPTOM_BY_CONCEPT = {s.concept: s for s in SYMPTOMS}
# Lexicon symptoms that consent discussions list as treatment side effects.
SIDE_EFFECTS = frozenset(
    split_list("nausea, vomiting, diarrhea, constipation, fatigue, neuropathy, pruritus, anorexia")
)

# Phrase bank: ``[name]`` then alternatives separated by ``|``, over as many lines as needed.
# {0} and {1} are concept slots (their surfaces are logged); other slots: {P} subject, {p} pronoun,
# {dur} duration, {year}, {name}, {age}, {sexword}, {stage}, {date}, {dose}, {scan}, {site}, {mm}.
PHRASES: dict[str, tuple[str, ...]] = _bank("""
[affirmed_new]
{P} reports {0} for the past {dur}. | {P} endorses {0}. | {P} has noticed {0} over the last {dur}.
| Notable for {0}, which began about {dur} ago. | {P} complains of progressive {0}.
| Describes {0} that has been worsening over {dur}. | {P} has been experiencing {0}.
| Also reports {0}. | {0} has been a significant problem over the past {dur}.
| {P} first developed {0} roughly {dur} ago.
[affirmed_followup]
Continues to have {0}. | Ongoing {0}, overall unchanged. | {P} endorses {0} this week.
| Reports mild {0}. | {0} persists, although tolerable. | Still bothered by {0}.
[negated_one]
Denies {0}. | Negative for {0}. | {P} has not had any {0}. | No {0}. | Does not report {0}.
| No recent {0}.
[negated_two] {P} denies {0} or {1}. | No {0} or {1}. | Negative for {0} and {1}. | No {0}, no {1}.
# Mixed frames put a negated and an affirmed concept in one sentence, split by a ConText terminator.
[mixed] Denies {0} but does endorse {1}. | No {0}; however, {p} does report {1}.
[uncertain] Possible early {0}; will monitor. | Cannot rule out {0}.
| Episode last week of ? {0}; details unclear. | Questionable {0} reported by family.
| {P} describes what may be {0}, although this is not clear. | Unclear whether {0} is present.
| Suspected {0}, to be reassessed at the next visit. | Concern for possible {0}.
[hypothetical] Return to the ED for any {0}. | Should {p} develop {0}, {p} will call the clinic.
| Instructed to call for any {0}. | If {0} occurs, hold the next dose and call the triage line.
| Precautions reviewed: call for {0} or {1}.
[side_effects] We discussed potential side effects, including {0} and {1}.
| Reviewed expected toxicities such as {0} and {1}.
[historical_symptom]
Remote history of {0} in {year}, resolved. | Had {0} in {year} that resolved without treatment.
[family]
{R} had {0}. | {R} with {0}, diagnosed at age {age}. | {R} was diagnosed with {0} in {h} {decade}s.
[family_none] No family history of {0}. | Negative for {0} in first-degree relatives.
[ecog] ECOG {v} | ECOG performance status of {v} | ECOG PS: {v} | ECOG PS {v}
| ECOG performance status is {v}
[ecog_sentence] {0}. | Performance status: {0}. | {0}, {meaning}.
[consult_cc] New diagnosis of {0}. | Evaluation of newly diagnosed {0}. | {0}, new diagnosis.
[asymptomatic] {P} has been largely asymptomatic. | {P} feels generally well.
| The lesion was found on imaging obtained for another reason.
[biopsy] {P} underwent {0} of the {site} on {date}, which showed {1}.
| {0} of the {site} performed on {date} revealed {1}.
| Pathology from the {0} on {date} confirmed {1}.
[staging] Staging {scan} on {date} showed the primary lesion measuring {mm} mm.
| {scan} obtained on {date} for staging demonstrated a {mm} mm primary lesion.
[driver_found] Molecular profiling identified {0}. | Next-generation sequencing revealed {0}.
| Tumor genotyping is notable for {0}.
[driver_none] Next-generation sequencing showed no {0}. | Molecular testing was negative for {0}.
[driver_pending] Molecular testing has been sent.
| Tissue was sent for next-generation sequencing; results are pending.
[allergies] No known {0}. | Allergies reviewed; no known {0}.
[ros_positive] Positive for {0}. | Endorses {0}. | ROS is notable for {0}.
[ros_close]
All other systems reviewed and negative. | A complete review of systems is otherwise negative.
| Remainder of the 12-point review of systems is negative.
[consult_ap] {age}-year-old {sexword} with {stage} {0}. | Newly diagnosed {stage} {0}.
[plan_start] Plan to start {regimen} on {date}. | We recommend {regimen}, to begin on {date}.
| Will start {regimen} on {date} pending insurance authorization.
[targeted_rationale] Given {0}, {1} is the preferred first-line option.
| With {0} detected, we recommend first-line {1}.
[follow_up] Return to clinic in {n} weeks. | Follow up in {n} weeks with labs. | RTC {n} weeks.
[contact] Best contact number confirmed as {phone}. | {P} can be reached at {phone}.
[progress_cc]
Follow-up of {0} on treatment. | Scheduled follow-up for {0}. | {0}, routine follow-up.
[progress_open] {name} returns for follow-up of {stage} {0}.
| {name} is seen today for continued management of {0}.
[started]
Started {0} {dose} on {date}. | {0} {dose} was started on {date}. | Began {0} {dose} on {date}.
[continuing]
Continues {0} {dose}. | Currently on {0}, tolerating it reasonably well. | Remains on {0}.
[feels_well] {P} feels well overall. | Doing well since the last visit. | No new complaints today.
[progressive disease] Restaging {scan} on {date} shows {0}, with the target lesion now {mm} mm.
| Unfortunately, {scan} from {date} demonstrates {0}.
| Imaging on {date} is consistent with {0}; the target lesion has grown to {mm} mm.
[stable disease]
Restaging {scan} on {date} shows {0}. | {scan} from {date} is consistent with {0} per {criteria}.
| {0} on the most recent imaging ({date}).
[partial response]
Restaging {scan} on {date} demonstrates a {0}, with the target lesion down to {mm} mm.
| Imaging from {date} shows a {0} per {criteria}.
[continue] Continue current therapy. | Proceed with treatment as planned.
[stopped] {0} discontinued on {date} given progression. | Stopped {0} on {date}.
[next_line] Plan to start {regimen} as second-line therapy. | Will transition to {regimen}.
[no_next_line] Discussed second-line options, including referral for clinical trial evaluation.
| Goals of care discussed; will review second-line options at the next visit.
[dose_reduced]
{0} dose reduced to {dose} on {date} for {1}. | Due to {1}, {0} was reduced to {dose} on {date}.
[held] {0} held for {1}; will resume once it resolves.
| {0} was held on {date} because of {1}; plan to resume at the next cycle.
[general] General: Well-appearing, in no acute distress. | General: Alert, cooperative, no distress.
| General: Thin, chronically ill-appearing.
[lungs]
Lungs: Clear to auscultation bilaterally. | Lungs: Diminished breath sounds at the right base.
[lymph] Lymph: No cervical or supraclavicular {0}. | Lymph: No palpable {0}.
[occupation] Retired teacher. | Works as an accountant. | Retired electrician. | Works in retail.
| Retired nurse. | Self-employed contractor.
[home] Lives with spouse. | Lives alone. | Lives with daughter and her family.
[alcohol] Drinks socially. | One or two glasses of wine per week.
[breast_switch] Completed {0} on {d1}; started {1} {dose} on {d2}.
[gbm_switch] Completed {0} to 60 Gy on {d1}; {1} changed to 150 mg/m2 on days 1-5 of each 28-day
cycle.
[gbm_plan] {1} to 60 Gy in 30 fractions with concurrent {0} 75 mg/m2 daily
[gbm_started] {1} with concurrent {0} 75 mg/m2 daily started on {date}; adjuvant dosing will be
{dose}.
[path_history] {age}-year-old {sexword} with a {site} lesion; {0} performed on {date}.
[path_gross] Received in formalin, labeled with the patient's name and medical record number
({mrn}), are {pieces}, measuring {size} cm in aggregate.
[squamous] Tumor cells are positive for p40 and negative for TTF-1.
[molecular_found] {0} detected ({hgvs}), variant allele fraction {vaf}%.
[molecular_none] Not performed on this specimen. | Pending; an addendum will follow.
[rad_history] Staging of newly diagnosed {0}. | Initial staging, {0}.
[technique_ct] Helical CT images were obtained after administration of {n} mL of iodinated
intravenous contrast. Multiplanar reformats were reviewed.
[technique_mr] Multiplanar multisequence MR images of the brain were obtained before and after
administration of {n} mL of gadolinium-based contrast.
[comparison] None. | None available. | Outside imaging is not available for comparison.
[rad_lesion] There is a {a} x {s} mm {0}. | The {0} measures {a} x {s} mm.
[rad_edema] Surrounding T2/FLAIR hyperintensity is consistent with {0}.
[rad_nodes] Enlarged regional lymph nodes, the largest {n} mm in short axis, consistent with {0}.
[rad_no_nodes] No {0} by size criteria. | No pathologically enlarged {0}.
[rad_distant] Multiple {mets}, the largest {n} mm, consistent with {0}.
[rad_indeterminate] A {n} mm indeterminate nodule; {0} cannot be excluded.
| {n} mm nonspecific nodule, possibly representing {0}.
[rad_impression] 1. {a} mm {0}, compatible with the known {1}.
""")
DURATIONS = split_list("2 weeks, 3 weeks, several weeks, 1 month, 6 weeks, 2 months, 3 months")

# Chronic comorbidities (current, so affirmed) with the home medication that goes with them.
COMORBIDITIES = _table("""
hypertension | hypertension | lisinopril | 10 mg orally once daily
type 2 diabetes mellitus | type 2 diabetes | metformin | 500 mg orally twice daily
hyperlipidemia | hyperlipidemia | atorvastatin | 20 mg orally at bedtime
hypothyroidism | hypothyroidism | levothyroxine | 75 mcg orally once daily
gastroesophageal reflux disease | GERD | omeprazole | 20 mg orally once daily
chronic obstructive pulmonary disease | COPD | tiotropium | 18 mcg inhaled once daily
atrial fibrillation | atrial fibrillation | apixaban | 5 mg orally twice daily
osteoarthritis | osteoarthritis | acetaminophen | 500 mg orally twice daily
""")
# Resolved past events: concept | category | surface | frame ({0} = surface).
HISTORICAL_EVENTS = _table("""
pneumonia | diagnosis | pneumonia | History of {0} in {year}.
deep vein thrombosis | diagnosis | DVT | Prior {0} in {year}, completed anticoagulation.
appendectomy | procedure | appendectomy | Status post {0} in {year}.
kidney stones | diagnosis | kidney stones | Remote history of {0}.
cholecystectomy | procedure | cholecystectomy | Laparoscopic {0} in {year}.
hepatitis a | diagnosis | hepatitis A | History of {0} as a young adult.
knee replacement | procedure | right knee replacement | Prior {0} in {year}.
""")
FAMILY_CONDITIONS = split_list(
    "breast cancer, colon cancer, lung cancer, prostate cancer, ovarian cancer, melanoma, "
    "type 2 diabetes, coronary artery disease, stroke"
)
RELATIVES = split_list(
    "Mother, Father, Sister, Brother, Maternal aunt, Paternal uncle, Maternal grandmother, "
    "Paternal grandfather"
)

ECOG_MEANING = (
    "fully active without restriction",
    "restricted in strenuous activity but ambulatory and able to do light work",
    "ambulatory and capable of self-care but unable to work",
    "capable of only limited self-care, in bed or chair more than half of waking hours",
    "completely disabled and confined to bed or chair",
)

# name | kind | dose as started | reduced dose (- = none) | dose-limiting toxicities.
# Toxicities are deliberately diagnoses, not lexicon symptoms, so they never blur the signal.
DRUGS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    r[0]: (r[1], r[2], r[3], tuple(t.strip() for t in r[4].split(";")))
    for r in _table("""
osimertinib | targeted | 80 mg orally once daily | 40 mg daily | QTc prolongation; neutropenia
sotorasib | targeted | 960 mg orally once daily | 480 mg daily | elevated transaminases
dabrafenib | targeted | 150 mg orally twice daily | 100 mg twice daily | elevated transaminases
encorafenib | targeted | 300 mg orally once daily | 225 mg daily | elevated transaminases
alpelisib | targeted | 300 mg orally once daily | 250 mg daily | hyperglycemia
carboplatin | chemo | AUC 5 IV every 21 days | AUC 4 | neutropenia; thrombocytopenia
pemetrexed | chemo | 500 mg/m2 IV every 21 days | 375 mg/m2 | neutropenia; acute kidney injury
pembrolizumab | immunotherapy | 200 mg IV every 21 days | - | pneumonitis; immune-related hepatitis
nivolumab | immunotherapy | 480 mg IV every 28 days | - | colitis; immune-related hepatitis
paclitaxel | chemo | 80 mg/m2 IV weekly | 65 mg/m2 weekly | neutropenia
letrozole | endocrine | 2.5 mg orally once daily | - | osteopenia
oxaliplatin | chemo | 85 mg/m2 IV every 14 days | 65 mg/m2 | thrombocytopenia
fluorouracil | chemo | 2400 mg/m2 over 46 hours every 14 days | 1920 mg/m2 | neutropenia; mucositis
temozolomide | chemo | 150 mg/m2 on days 1-5 of each 28-day cycle | 100 mg/m2 | thrombocytopenia
""")
}

# Fictional clinicians (no overlap with the patient name pools, so PHI scrubbing is testable).
CLINICIAN_FIRST = split_list(
    "Alan, Beatrice, Conrad, Delphine, Edmund, Felicity, Gideon, Harriet, Isidore, Josephine, "
    "Leopold, Marguerite, Nikolai, Ophelia, Percival, Rosalind"
)
CLINICIAN_LAST = split_list(
    "Abernathy, Blackwood, Castellanos, Drummond, Everly, Fairbanks, Hollister, Iversen, Kendrick, "
    "Lindqvist, Marchetti, Northcott, Pemberton, Quintero, Radcliffe, Whitaker"
)


class CancerText(NamedTuple):
    """How a cancer type is written about, from the biopsy to the staging scan."""

    names: tuple[str, ...]  # the first is the normalized concept
    sites: tuple[str, ...]
    biopsy: tuple[str, ...]  # (normalized concept, surface)
    histology: tuple[str, ...]  # (normalized concept, surface)
    exam: str  # staging study as the radiology report titles it
    scan: str  # the same study in running text
    lesion: str  # primary lesion as radiology describes it ({site} slot)
    genes: tuple[str, ...]  # genes the hotspot panel reports for this tumour type
    pieces: str  # what the pathology lab receives ({n} slot)
    microscopy: str  # morphology and immunohistochemistry
    markers: str  # the tumour-type specific line ({pct}, {grade}, {depth} slots)
    negatives: tuple[str, ...]  # pertinent negatives of the staging study
    metastases: str  # how distant disease shows on that study


_LISTS = {0, 1, 2, 3, 7, 11}  # CancerText fields written as "; "-separated lists
CANCER_TEXT: dict[str, CancerText] = {
    row[0]: CancerText(*(tuple(c.split("; ")) if i in _LISTS else c for i, c in enumerate(row[1:])))
    for row in _table("""
nsclc | non-small cell lung cancer; NSCLC
| right upper lobe; left upper lobe; right lower lobe; left lower lobe
| ct-guided lung biopsy; CT-guided core needle biopsy | adenocarcinoma; adenocarcinoma
| CT CHEST WITH IV CONTRAST | CT of the chest | spiculated mass in the {site}
| EGFR; KRAS; BRAF; ALK | {n} core biopsies
| Tumor cells are positive for TTF-1 and napsin A and negative for p40.
| PD-L1 (22C3) tumor proportion score: {pct}%.
| pleural effusion; pericardial effusion; pneumothorax | bilateral pulmonary nodules
breast | breast cancer; carcinoma of the breast | left breast; right breast
| breast core needle biopsy; ultrasound-guided core needle biopsy
| invasive ductal carcinoma; invasive ductal carcinoma
| CT CHEST WITH IV CONTRAST | CT of the chest | irregular enhancing mass in the {site}
| PIK3CA; ERBB2; ESR1 | {n} core biopsies
| Infiltrating nests and cords of malignant epithelial cells with desmoplastic stroma.
| Nottingham grade {grade}; ER positive ({pct}%), PR positive, HER2 negative (IHC 1+).
| pleural effusion; pericardial effusion; pneumothorax | sclerotic osseous lesions
colorectal | colon cancer; adenocarcinoma of the colon
| sigmoid colon; ascending colon; descending colon; transverse colon; cecum
| colonoscopy with biopsy; colonoscopic biopsy | adenocarcinoma; invasive adenocarcinoma
| CT ABDOMEN AND PELVIS WITH IV CONTRAST | CT of the abdomen and pelvis
| circumferential mass of the {site} | KRAS; NRAS; BRAF | {n} tan-pink mucosal fragments
| Malignant glands with cribriform architecture and dirty necrosis invade the submucosa.
| Moderately differentiated; mismatch repair proteins MLH1, PMS2, MSH2 and MSH6 are intact.
| ascites; bowel obstruction; hydronephrosis | hypoattenuating hepatic lesions
melanoma | melanoma; cutaneous melanoma
| left upper back; right forearm; scalp; left calf; right shoulder
| excisional skin biopsy; excisional biopsy | melanoma; invasive melanoma
| CT CHEST WITH IV CONTRAST | CT of the chest
| enlarged regional nodal mass draining the {site} primary | BRAF; NRAS; KIT
| an ellipse of skin with {n} pigmented lesion(s)
| Atypical melanocytes in nests and single cells, with pagetoid spread and dermal invasion.
| Breslow thickness {depth} mm; mitotic rate {grade}/mm2.
| pleural effusion; pericardial effusion; pneumothorax | bilateral pulmonary nodules
glioblastoma | glioblastoma; GBM
| right temporal lobe; left frontal lobe; right parietal lobe; left temporal lobe
| craniotomy with tumor resection; craniotomy with subtotal resection
| glioblastoma; glioblastoma, CNS WHO grade 4
| MRI BRAIN WITH AND WITHOUT CONTRAST | MRI of the brain
| heterogeneously enhancing mass in the {site} with central necrosis | IDH1; IDH2
| {n} fragments of soft gray-tan tissue
| Hypercellular astrocytic neoplasm with microvascular proliferation and palisading necrosis.
| MGMT promoter methylation status to follow.
| hydrocephalus; acute intracranial hemorrhage; midline shift | additional enhancing foci
""")
}

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
SUBSTAGE = {1: ("A", "B"), 2: ("A", "B"), 3: ("A", "B", "C"), 4: ("A", "B")}


def pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    """One option drawn from ``rng`` (keeps every choice on the patient's stream)."""
    return options[int(rng.random() * len(options))]  # several times faster than integers()


def fmt_date(rng: np.random.Generator, day: dt.date) -> str:
    """A date as clinicians type it: the mix of styles is what date-shifting must handle."""
    style = int(rng.integers(4))
    if style == 0:
        return day.strftime("%m/%d/%Y")
    if style == 1:
        return day.isoformat()
    if style == 2:
        return f"{day.strftime('%B')} {day.day}, {day.year}"
    return f"{day.month}/{day.day}/{day.strftime('%y')}"


def clinician(rng: np.random.Generator) -> tuple[str, str]:
    """A fictional clinician as (first, last)."""
    return pick(rng, CLINICIAN_FIRST), pick(rng, CLINICIAN_LAST)


class Concept(NamedTuple):
    """One concept placed in a note, with its assertion status."""

    surface: str
    concept: str
    category: str  # symptom | family_history | diagnosis | medication | procedure | ecog
    negated: bool = False
    uncertain: bool = False
    historical: bool = False
    hypothetical: bool = False
    family: bool = False


@dataclass
class NoteBuilder:
    """Assembles a note section by section and records every concept it places.

    Sentences of one section form one paragraph (no hard wrapping, so a surface string never
    straddles a line break); ``line`` writes a line of its own (header blocks, lists).
    """

    lines: list[str] = field(default_factory=list)
    mentions: list[tuple[Concept, str]] = field(default_factory=list)
    section: str = ""
    _paragraph: list[str] = field(default_factory=list)

    def _flush(self) -> None:
        if self._paragraph:
            self.lines.append(" ".join(self._paragraph))
            self._paragraph = []

    def start(self, header: str) -> None:
        """Open a section; ``header`` is written as ``HEADER:`` on its own line."""
        self._flush()
        if self.lines:
            self.lines.append("")
        self.lines.append(f"{header}:")
        self.section = header

    def say(self, frame: str, *concepts: Concept, **slots: str) -> None:
        """Append a sentence built from ``frame``; ``{0}``, ``{1}`` take the concepts' surfaces."""
        self._paragraph.append(self._render(frame, concepts, slots))

    def line(self, frame: str = "", *concepts: Concept, **slots: str) -> None:
        """Write a line of its own (an empty frame writes a blank line)."""
        self._flush()
        self.lines.append(self._render(frame, concepts, slots) if frame else "")

    def _render(self, frame: str, concepts: tuple[Concept, ...], slots: dict[str, str]) -> str:
        surfaces = [c.surface for c in concepts]
        if surfaces and frame.startswith("{0}"):
            surfaces[0] = surfaces[0][0].upper() + surfaces[0][1:]
        for concept, surface in zip(concepts, surfaces, strict=True):
            self.mentions.append((concept._replace(surface=surface), self.section))
        return frame.format(*surfaces, **slots)

    def text(self) -> str:
        self._flush()
        return "\n".join(self.lines).rstrip() + "\n"


def banner(
    b: NoteBuilder, rng: np.random.Generator, p: PatientRecord, lines: list[tuple[str, str]]
) -> None:
    """The identification block EHR notes open with: PHI in its usual places and label styles."""
    name = pick(rng, (f"{p.family_name}, {p.given_name}", f"{p.given_name} {p.family_name}"))
    b.line(f"{pick(rng, ('Patient', 'Patient Name', 'Name'))}: {name}")
    b.line(f"{pick(rng, ('MRN', 'Medical Record Number', 'MRN #'))}: {p.mrn}")
    b.line(f"{pick(rng, ('DOB', 'Date of Birth'))}: {fmt_date(rng, p.birth_date)}")
    for label, value in lines:
        b.line(f"{label}: {value}")


def signature(
    b: NoteBuilder, rng: np.random.Generator, verb: str, when: dt.datetime, who: tuple[str, str]
) -> None:
    b.line()
    stamp = f"{fmt_date(rng, when.date())} {when.strftime('%H:%M')}"
    b.line(f"{verb} by {who[0]} {who[1]}, MD on {stamp}")


def neg(surface: str, concept: str, category: str = "diagnosis", **flags: bool) -> Concept:
    """A negated concept (the most common assertion after affirmed, so it gets a shorthand)."""
    return Concept(surface, concept, category, negated=True, **flags)


def dx(surface: str, concept: str | None = None, **flags: bool) -> Concept:
    """A diagnosis or finding; the normalized concept defaults to the lower-cased surface."""
    return Concept(surface, concept or surface.lower(), "diagnosis", **flags)


def med(name: str, **flags: bool) -> Concept:
    """A medication, normalized to its RxNorm ingredient name (the surface is that name)."""
    return Concept(name, name, "medication", **flags)


def family_history(b: NoteBuilder, rng: np.random.Generator) -> None:
    n = int(rng.integers(0, 3))
    if n == 0:
        cancer = neg(pick(rng, ("malignancy", "cancer")), "cancer", "family_history", family=True)
        b.say(pick(rng, PHRASES["family_none"]), cancer)
    for i in rng.choice(len(FAMILY_CONDITIONS), size=n, replace=False):
        condition = FAMILY_CONDITIONS[int(i)]
        relative = pick(rng, RELATIVES)
        male = relative.split()[-1].lower() in ("father", "brother", "uncle", "grandfather")
        b.say(
            pick(rng, PHRASES["family"]),
            Concept(
                condition,
                condition.replace("diabetes", "diabetes mellitus"),
                "family_history",
                family=True,
            ),
            R=relative,
            age=str(int(rng.integers(45, 85))),
            h="his" if male else "her",
            decade=str(int(rng.integers(4, 9)) * 10),
        )


def social_history(b: NoteBuilder, rng: np.random.Generator, p: PatientRecord) -> None:
    smoker = rng.random()
    current, former = (0.25, 0.55) if p.cancer.key == "nsclc" else (0.1, 0.3)
    packs = str(int(rng.integers(10, 60)))
    quit_year = str(p.diagnosis_date.year - int(rng.integers(1, 25)))
    if smoker < current:
        b.say(
            "Current {0}, {n} pack-years.", Concept("smoker", "tobacco use", "diagnosis"), n=packs
        )
    elif smoker < current + former:
        former_smoker = Concept("smoker", "tobacco use", "diagnosis", historical=True)
        b.say("Former {0}, {n} pack-years, quit in {y}.", former_smoker, n=packs, y=quit_year)
    else:
        b.say(pick(rng, ("Denies {0}.", "No history of {0}.")), neg("tobacco use", "tobacco use"))
    if rng.random() < 0.5:
        b.say("Denies {0}.", neg("alcohol use", "alcohol use"))
    else:
        b.say(pick(rng, PHRASES["alcohol"]))
    b.say(pick(rng, PHRASES["occupation"]))
    b.say(pick(rng, PHRASES["home"]))


def exam(b: NoteBuilder, rng: np.random.Generator, ecog: int | None, weight: float) -> None:
    """Vitals and a focused exam; negative findings are logged like any other negation."""
    b.line(
        f"Vitals: BP {int(rng.integers(105, 160))}/{int(rng.integers(60, 95))}, "
        f"HR {int(rng.integers(58, 105))}, Temp {rng.normal(36.8, 0.25):.1f} C, "
        f"SpO2 {int(rng.integers(92, 100))}% on room air, Weight {rng.normal(weight, 0.8):.1f} kg"
    )
    b.say(pick(rng, PHRASES["general"]))
    if ecog is not None:
        # The ECOG concept is ``ecog:<score>`` so the score is recoverable from the truth log.
        mention = Concept(pick(rng, PHRASES["ecog"]).format(v=ecog), f"ecog:{ecog}", "ecog")
        b.say(pick(rng, PHRASES["ecog_sentence"]), mention, meaning=ECOG_MEANING[ecog])
    b.say("HEENT: Anicteric sclerae, oropharynx clear.")
    b.say(pick(rng, PHRASES["lymph"]), neg("lymphadenopathy", "lymphadenopathy"))
    b.say(pick(rng, PHRASES["lungs"]))
    b.say("Heart: Regular rate and rhythm, no {0}.", neg("murmurs", "heart murmur"))
    edema = neg(pick(rng, ("edema", "lower extremity edema")), "peripheral edema")
    b.say("Extremities: No {0}.", edema)
    b.say("Neuro: Alert and oriented, strength 5/5 throughout.")
