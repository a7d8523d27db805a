"""The VCF header, and the Arrow schema Glow's VCF data source infers from it.

Glow (projectglow, ``VariantSchemas`` and ``VCFSchemaInferrer``) gives every VCF the same nine
leading columns, one ``INFO_<ID>`` column per header INFO line (``flattenInfoFields``, its
default) and a ``genotypes`` array of structs with ``sampleId`` then one field per header
FORMAT line. A header line maps to a type by its ``Type`` (Integer -> int, Float -> double,
Flag -> boolean, String and Character -> string) and its ``Number``: a fixed count of 0 or 1 is a
scalar, anything else (2, A, R, G, .) an array. Two INFO keys are special: ``CSQ`` (VEP) and
``ANN`` (SnpEff) become arrays of structs whose fields are named by the header description.

FORMAT keys Glow knows are renamed (``GT`` becomes two fields, ``phased`` then ``calls``).
Glow takes even their types from the header; we pin the types of the renamed fields to those
of Glow's own ``GenotypeFields`` (``GQ`` int, ``AD`` array<int>, ``GP`` array<double>...), so
that a lab whose header declares ``AD`` Number=1 or ``GQ`` Float still merges into the same
Delta column as everybody else (a Delta column cannot change type between files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

INFO_PREFIX = "INFO_"

# VCF FORMAT key -> Glow genotype field, with the type of Glow's GenotypeFields.
GENOTYPE_ALIASES: dict[str, tuple[str, pa.DataType]] = {
    "DP": ("depth", pa.int32()),
    "FT": ("filters", pa.list_(pa.string())),
    "GL": ("genotypeLikelihoods", pa.list_(pa.float64())),
    "PL": ("phredLikelihoods", pa.list_(pa.int32())),
    "GP": ("posteriorProbabilities", pa.list_(pa.float64())),
    "GQ": ("conditionalQuality", pa.int32()),
    "HQ": ("haplotypeQualities", pa.list_(pa.int32())),
    "EC": ("expectedAlleleCounts", pa.list_(pa.int32())),
    "MQ": ("mappingQuality", pa.int32()),
    "AD": ("alleleDepths", pa.list_(pa.int32())),
}

BASE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("contigName", pa.string()),
    pa.field("start", pa.int64()),
    pa.field("end", pa.int64()),
    pa.field("names", pa.list_(pa.string())),
    pa.field("referenceAllele", pa.string()),
    pa.field("alternateAlleles", pa.list_(pa.string())),
    pa.field("qual", pa.float64()),
    pa.field("filters", pa.list_(pa.string())),
    pa.field("splitFromMultiAllelic", pa.bool_()),
)

_PRIMITIVES: dict[str, pa.DataType] = {
    "Integer": pa.int32(),
    "Float": pa.float64(),
    "Flag": pa.bool_(),
    "Character": pa.string(),
    "String": pa.string(),
}

# Annotation sub-fields Glow types (AnnotationUtils); every other sub-field is a string.
_RANK_TOTAL = pa.struct([("rank", pa.int32()), ("total", pa.int32())])
_POS_LENGTH = pa.struct([("pos", pa.int32()), ("length", pa.int32())])
_REF_VARIANT = pa.struct([("reference", pa.string()), ("variant", pa.string())])
_STRINGS = pa.list_(pa.string())
ANNOTATION_SUBFIELDS: dict[str, pa.DataType] = {
    # SnpEff ANN
    "Annotation": _STRINGS,
    "Rank": _RANK_TOTAL,
    "cDNA.pos / cDNA.length": _POS_LENGTH,
    "CDS.pos / CDS.length": _POS_LENGTH,
    "AA.pos / AA.length": _POS_LENGTH,
    "Distance": pa.int32(),
    # VEP CSQ
    "Consequence": _STRINGS,
    "EXON": _RANK_TOTAL,
    "INTRON": _RANK_TOTAL,
    "cDNA_position": pa.int32(),
    "CDS_position": pa.int32(),
    "Protein_position": pa.int32(),
    "Amino_acids": _REF_VARIANT,
    "Codons": _REF_VARIANT,
    "Existing_variation": _STRINGS,
    "DISTANCE": pa.int32(),
    "STRAND": pa.int32(),
    "FLAGS": _STRINGS,
    # LOFTEE (a VEP plugin)
    "LoF_filter": _STRINGS,
    "LoF_flags": _STRINGS,
    "LoF_info": _STRINGS,
}
ANNOTATION_KEYS = ("CSQ", "ANN")


@dataclass(frozen=True)
class Definition:
    """One ``##INFO`` or ``##FORMAT`` header line."""

    key: str
    number: str  # "0", "1", "2"..., "A", "R", "G" or "."
    type: str  # Integer, Float, Flag, Character or String
    description: str = ""

    @property
    def scalar(self) -> bool:
        return self.number.isdigit() and int(self.number) <= 1

    @property
    def primitive(self) -> pa.DataType:
        return _PRIMITIVES.get(self.type, pa.string())

    def glow_type(self) -> pa.DataType:
        if self.key in ANNOTATION_KEYS:
            return annotation_type(self.description)
        return self.primitive if self.scalar else pa.list_(self.primitive)


def annotation_type(description: str) -> pa.DataType:
    """Glow's struct for VEP/SnpEff annotations: fields named after the description's format.

    "Consequence annotations from Ensembl VEP. Format: Allele|Consequence|..." -> the part after
    the last ':', quotes dropped, split on '|' and trimmed.
    """
    names = description.split(":")[-1].replace("'", "").split("|")
    fields, seen = [], set()
    for raw in names:
        name = raw.strip()
        if name in seen:  # a struct cannot hold one name twice (Arrow would, Spark would not)
            continue
        seen.add(name)
        fields.append(pa.field(name, ANNOTATION_SUBFIELDS.get(name, pa.string())))
    return pa.list_(pa.struct(fields))


@dataclass
class Header:
    """What the meta-information lines and the ``#CHROM`` line say about the records."""

    fileformat: str | None = None
    meta: dict[str, str] = field(default_factory=dict)  # simple ##key=value lines (first wins)
    info: dict[str, Definition] = field(default_factory=dict)
    formats: dict[str, Definition] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    has_format_column: bool = False
    lines: int = 0  # physical lines up to and including #CHROM

    @property
    def n_columns(self) -> int:
        return 8 + (1 if self.has_format_column or self.samples else 0) + len(self.samples)


_STRUCTURED = re.compile(r"^##([A-Za-z0-9_.\-]+)=<(.*)>\s*$")


def parse_structured(body: str) -> dict[str, str]:
    """``ID=DP,Number=1,Type=Integer,Description="a, \\"quoted\\" text"`` -> dict."""
    out: dict[str, str] = {}
    i, n = 0, len(body)
    while i < n:
        eq = body.find("=", i)
        if eq < 0:
            break
        key = body[i:eq].strip()
        j = eq + 1
        if j < n and body[j] == '"':
            chars, j = [], j + 1
            while j < n and body[j] != '"':
                if body[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(body[j])
                j += 1
            value = "".join(chars)
            j = body.find(",", j)
            j = n if j < 0 else j
        else:
            end = body.find(",", j)
            end = n if end < 0 else end
            value, j = body[j:end].strip(), end
        out.setdefault(key, value)
        i = j + 1
    return out


def parse_header(lines: list[str]) -> Header:
    """Parse the ``##`` lines and the ``#CHROM`` line (the last element of ``lines``)."""
    header = Header(lines=len(lines))
    for line in lines[:-1]:
        match = _STRUCTURED.match(line)
        if match and match.group(1) in ("INFO", "FORMAT"):
            attrs = parse_structured(match.group(2))
            key = attrs.get("ID", "")
            if not key:
                continue  # a definition without an ID defines nothing a record can use
            target = header.info if match.group(1) == "INFO" else header.formats
            number = attrs.get("Number", ".") or "."
            kind = attrs.get("Type", "String")
            kind = kind if kind in _PRIMITIVES else "String"
            target.setdefault(key, Definition(key, number, kind, attrs.get("Description", "")))
        elif not match and "=" in line:
            key, _, value = line[2:].partition("=")
            header.meta.setdefault(key.strip(), value.strip())
    header.fileformat = header.meta.get("fileformat")
    columns = lines[-1].rstrip("\r\n").split("\t")
    # A trailing tab after the last sample name (seen in the wild) is no empty-named sample.
    while len(columns) > 9 and columns[-1] == "":
        columns.pop()
    header.has_format_column = len(columns) > 8
    header.samples = columns[9:]
    return header


def genotype_fields(header: Header, uses_gt: bool) -> list[tuple[str, pa.Field, Definition]]:
    """(VCF key, Glow field, definition) of every genotype struct field after ``sampleId``.

    GT is added even when the header forgot its ``##FORMAT`` line but records use it: the spec
    reserves GT, and dropping the calls of such a file would lose its very point.
    """
    out: list[tuple[str, pa.Field, Definition]] = []
    formats = dict(header.formats)
    if uses_gt and "GT" not in formats:
        formats = {"GT": Definition("GT", "1", "String", "Genotype"), **formats}
    for key, definition in formats.items():
        if key == "GT":
            out.append((key, pa.field("phased", pa.bool_()), definition))
            out.append((key, pa.field("calls", pa.list_(pa.int32())), definition))
        elif key in GENOTYPE_ALIASES:
            name, kind = GENOTYPE_ALIASES[key]
            out.append((key, pa.field(name, kind), definition))
        else:
            out.append((key, pa.field(key, definition.glow_type()), definition))
    return out


def variants_schema(header: Header, uses_gt: bool) -> pa.Schema:
    """The Glow schema of one file (before the lineage columns)."""
    fields = list(BASE_FIELDS)
    fields += [pa.field(INFO_PREFIX + k, d.glow_type()) for k, d in header.info.items()]
    genotype = [pa.field("sampleId", pa.string())]
    genotype += [f for _, f, _ in genotype_fields(header, uses_gt)]
    fields.append(pa.field("genotypes", pa.list_(pa.struct(genotype))))
    return pa.schema(fields)
