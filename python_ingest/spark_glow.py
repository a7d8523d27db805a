"""Genomics on the spark engine: Glow's VCF data source when the session has it.

``genomics_variants`` already has exactly the columns of Glow's ``vcf`` data source (see
``python_ingest.genomics``), so where Glow is registered (``io.projectglow:glow-spark*`` on the
classpath, ``spark.read.format("vcf")`` resolves) the VCFs of a chunk are read by Glow, in the
JVM, and only their headers by Python (for the ``genomics_samples`` rows of their sample
columns). Otherwise the project's VCF reader runs on the executors like any reader. The job
says which, once per session:

* ``genomics: reading VCF with Glow``
* ``genomics: Glow not registered on this Spark session (no io.projectglow jar): using the
  project's VCF reader``

Glow's branch keeps the ledger's accounting honest by reading with
``validationStringency=STRICT``: Glow then either parses every data line or fails, so a file it
reads has records read = records landed. If any VCF of the chunk fails, the whole chunk's VCFs
go through the project's reader instead (it quarantines line by line), and the job says so.
What Glow cannot give is the raw line: its rows are located by ``CHROM:POS`` rather than
``line N CHROM:POS``, and their ``_record_hash`` is the sha256 of the parsed record as JSON, not
of the line's bytes, so the two branches land the same rows but not the same hashes. BCF files
(which Glow does not read) and manifests always use the project's reader. Transformations such
as ``glow.transform("split_multiallelics", ...)`` or normalisation change records, so they
belong to silver, not to bronze.

This branch cannot run where the Glow jar is absent (here, offline); its detection is tested,
and its mapping from a Glow-shaped DataFrame to bronze rows is tested with a stand-in loader.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from python_ingest.genomics import VARIANTS_TABLE, header_end
from python_ingest.genomics_manifest import SAMPLES_TABLE, vcf_samples
from python_ingest.genomics_schema import parse_header
from python_ingest.ledger import SourceFile
from python_ingest.model import (
    BATCH_ID,
    INGESTED_AT,
    RECORD_HASH,
    SOURCE_FILE,
    SOURCE_LOCATOR,
    FileOutcome,
    Quarantined,
    Reader,
)
from python_ingest.spark_parse import Parsed, Stager, stage
from python_ingest.spark_store import has_data_source, local_path, notify_once

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

GLOW_ON = "genomics: reading VCF with Glow"
GLOW_OFF = (
    "genomics: Glow not registered on this Spark session (no io.projectglow jar): "
    "using the project's VCF reader"
)
GLOW_FILE = "_glow_file"  # the loader's column naming each row's file (a path or a URI)
GLOW_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".vcf.bgzf", ".gvcf", ".gvcf.gz")
HEADER_LIMIT = 64 * 1024 * 1024  # a header larger than this is not a header

Loader = Callable[[list[str]], "DataFrame"]


def glow_registered(spark: SparkSession) -> bool:
    """Whether Glow's ``vcf`` data source resolves on this session (probed once)."""
    known = spark.__dict__.get("_mmlake_glow")
    if known is None:
        known = spark.__dict__["_mmlake_glow"] = has_data_source(spark, "vcf")
    return known


def load_with_glow(spark: SparkSession, keys: list[str]) -> DataFrame:
    """Glow's strict read of ``keys``, each row naming its file in ``_glow_file``."""
    from pyspark.sql import functions as sf

    return (
        spark.read.format("vcf")
        .option("includeSampleIds", "true")
        .option("flattenInfoFields", "true")
        .option("validationStringency", "STRICT")
        .load(keys)
        .withColumn(GLOW_FILE, sf.input_file_name())
    )


def vcf_head(path: Path) -> bytes:
    """The header lines of a plain, gzip or BGZF VCF, through ``#CHROM`` (not the body)."""
    with path.open("rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        handle = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
        head = bytearray()
        for line in handle:
            if not line.startswith(b"#"):
                break
            head += line
            if line.startswith(b"#CHROM") or len(head) > HEADER_LIMIT:
                break
    return bytes(head)


def parse_headers(
    staging: str, batch_id: str, at: dt.datetime, items: Iterable[tuple[int, str]]
) -> Iterator[tuple[int, Parsed]]:
    """Executor side: the ``genomics_samples`` rows of each VCF's sample columns."""
    stager, done = Stager(staging), []
    try:
        for index, key in items:
            outcome = FileOutcome()
            try:
                found = header_end(vcf_head(Path(key)))
            except (OSError, EOFError) as exc:
                found = None
                outcome.quarantined = [Quarantined("file", f"unreadable header: {exc}")]
            if found is not None:
                header = parse_header(found[0])
                outcome.tables[SAMPLES_TABLE] = vcf_samples(header.samples, header.meta)
            done.append((index, stage(outcome, key, stager, batch_id, at)))
    finally:
        stager.close()
    yield from done


class GlowVariants:
    """Reads the VCFs of each chunk with Glow (see the module docstring)."""

    def __init__(self, spark: SparkSession, load: Loader | None = None) -> None:
        self.spark = spark
        self.load = load or functools.partial(load_with_glow, spark)
        self._cached: DataFrame | None = None

    @classmethod
    def for_reader(cls, reader: Reader, spark: SparkSession) -> GlowVariants | None:
        """A Glow branch for the genomics reader if Glow is registered; says which either way."""
        if reader.modality != "genomics":
            return None
        if not glow_registered(spark):
            notify_once(spark, GLOW_OFF)
            return None
        notify_once(spark, GLOW_ON)
        return cls(spark)

    def parse_chunk(
        self,
        chunk: list[SourceFile],
        parse: Callable[[list[int]], dict[int, Parsed]],
        staging: str,
        batch_id: str,
        at: dt.datetime,
    ) -> tuple[list[Parsed], dict[str, DataFrame]]:
        """Per-file ``Parsed`` for the chunk, and the Glow rows of ``genomics_variants``.

        ``parse(indices)`` parses those files of the chunk with the project's reader.
        """
        from pyspark.sql import functions as sf
        from pyspark.sql.pandas.types import to_arrow_schema

        self.release()
        glow = [i for i, f in enumerate(chunk) if f.path.name.lower().endswith(GLOW_SUFFIXES)]
        if not glow:
            parsed = parse(list(range(len(chunk))))
            return [parsed[i] for i in range(len(chunk))], {}
        try:
            frame = self.load([chunk[i].key for i in glow]).persist()
            counts = dict(frame.groupBy(GLOW_FILE).count().collect())
        except Exception as exc:  # a malformed line anywhere: the reader quarantines precisely
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(
                f"genomics: Glow could not read {len(glow)} VCF file(s) strictly ({first[:300]});"
                " using the project's VCF reader for them",
                file=sys.stderr,
                flush=True,
            )
            self.release()
            parsed = parse(list(range(len(chunk))))
            return [parsed[i] for i in range(len(chunk))], {}
        self._cached = frame
        work = functools.partial(parse_headers, staging, batch_id, at)
        items = [(i, chunk[i].key) for i in glow]
        parsed = dict(self.spark.sparkContext.parallelize(items).mapPartitions(work).collect())
        parsed |= parse([i for i in range(len(chunk)) if i not in set(glow)])
        content = [c for c in frame.columns if c != GLOW_FILE]
        schema = to_arrow_schema(frame.select(*content).schema, timezone="UTC")
        paths = {uri: str(local_path(uri)) for uri in counts}  # a URI per file, as Spark says
        landed = {paths[uri]: n for uri, n in counts.items()}
        for i in glow:
            count = landed.get(chunk[i].key, 0)
            parsed[i].records_read = len(parsed[i].quarantined) + count
            parsed[i].records_landed = count
            parsed[i].schemas[VARIANTS_TABLE] = schema
        files = sf.create_map(*[sf.lit(x) for item in paths.items() for x in item])
        rows = frame.select(
            *content,
            sf.element_at(files, sf.col(GLOW_FILE)).alias(SOURCE_FILE),
            sf.concat_ws(":", "contigName", (sf.col("start") + 1).cast("string")).alias(
                SOURCE_LOCATOR
            ),
            sf.lit(batch_id).alias(BATCH_ID),
            sf.lit(at).alias(INGESTED_AT),
            sf.sha2(sf.to_json(sf.struct(*content)), 256).alias(RECORD_HASH),
        )
        return [parsed[i] for i in range(len(chunk))], {VARIANTS_TABLE: rows}

    def release(self) -> None:
        """Drop the cached Glow rows of the previous chunk."""
        if self._cached is not None:
            self._cached.unpersist()
            self._cached = None
