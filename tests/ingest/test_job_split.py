"""A large NDJSON file parsed in line ranges by both workers lands exactly as read whole.

Line ranges are cut at arbitrary bytes, so the ranges must cover every line once whatever the
cut points (mid-line, on a newline, inside a CRLF, past a trailing line with no newline), and
the merged outcome must equal ``read``: same rows in the same order, same quarantined records
with the same line-number locators, same ledger accounting.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import python_ingest.job_split as job_split
from python_ingest.ehr import EhrReader
from python_ingest.job import IngestJob
from python_ingest.job_split import line_range
from python_ingest.ledger import SourceFile
from python_ingest.model import FileOutcome
from tests.ingest.support import bronze_state, generate

TEXT = b'\xef\xbb\xbf{"a": 1}\r\n\n{"b": 22}\n{"c": 333}\r\n\r\n{"d"\n{"e": 5}'


def _lines_by_number(data: bytes, first: int) -> list[tuple[int, bytes]]:
    return list(enumerate(data.split(b"\n"), start=first))[: data.count(b"\n") + 1]


def test_line_ranges_cover_every_line_once_at_any_cut(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(TEXT)
    whole = [(n, line) for n, line in _lines_by_number(TEXT, 1) if line]
    size = len(TEXT)
    for cuts in itertools.chain(
        ([c] for c in range(1, size)), itertools.combinations(range(1, size), 2)
    ):
        bounds = [0, *cuts, size]
        got = []
        for start, stop in itertools.pairwise(bounds):
            first, data = line_range(path, start, stop)
            got += [(n, line) for n, line in _lines_by_number(data, first) if line]
        assert got == whole, bounds


EHR_TABLES = ("ehr_resources", "ehr_observations", "ehr_patients", "_quarantine")


class FailingRangeReader(EhrReader):
    """An EHR reader whose later ranges fail, as a reader bug or a vanished file would."""

    def read_range(self, path: Path, start: int, stop: int) -> FileOutcome:
        if start > 0:
            raise RuntimeError("simulated failure of a range")
        return super().read_range(path, start, stop)


@pytest.fixture(scope="module")
def ehr_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cohort = generate(tmp_path_factory, seed=11, modalities=("ehr",), patients=40, dirty_rate=0.1)
    return (cohort / "ehr").resolve()


@pytest.mark.parametrize("reader_class", [EhrReader, FailingRangeReader])
def test_split_ingest_equals_whole_file_ingest(
    ehr_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reader_class: type[EhrReader],
) -> None:
    whole = IngestJob(EhrReader(), tmp_path / "whole", workers=1).run(ehr_folder)

    observations = next(ehr_folder.glob("Observation*.ndjson"))
    size = observations.stat().st_size
    # Cut every file of more than a tenth of the Observation file, in ranges of ~1/7 of it.
    monkeypatch.setattr(job_split, "SPLIT_BYTES", size // 10)
    monkeypatch.setattr(job_split, "PART_BYTES", size // 7)
    ranges = job_split.split_ranges(reader_class(), _source(observations), 2)
    assert ranges is not None and len(ranges) == 4
    split = IngestJob(reader_class(), tmp_path / "split", workers=2).run(ehr_folder)

    assert whole.records_quarantined > 0  # dirty records are part of what must match
    assert (split.records_read, split.records_landed, split.records_quarantined) == (
        whole.records_read,
        whole.records_landed,
        whole.records_quarantined,
    )
    assert bronze_state(tmp_path / "split" / "bronze", EHR_TABLES) == bronze_state(
        tmp_path / "whole" / "bronze", EHR_TABLES
    )


def _source(path: Path) -> SourceFile:
    return SourceFile(path, path.stat().st_size, None)
