"""Imaging bronze ingestion: a generated PACS export and pydicom's real test files.

The generated cohort says which DICOM files it cut (``_truth/dirty_records.csv``); the reader
must quarantine exactly those, with expected and actual byte counts, and land every other
instance once, across re-runs and a rewritten file. The real files (every transfer syntax,
files without meta or pixels, DICOMDIRs, a truncated MR) are checked against
``expected_metadata.pydicom.json`` and the assertions quoted in ``EXPECTED_FACTS.md``.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file

from python_ingest import imaging_header
from python_ingest.imaging import SCHEMA, TABLE, ImagingReader
from python_ingest.imaging_parse import looks_like_dicom
from python_ingest.job import IngestJob
from tests.ingest.support import (
    Duck,
    Landed,
    check_reruns,
    dirty_records,
    generate,
    land,
    land_copy,
    scan,
)
from tests.realdata import REALDATA as REALDATA_ROOT

REALDATA = REALDATA_ROOT / "dicom"
needs_realdata = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real DICOM files not found at {REALDATA} (CI has them)"
)
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
DIRTY_REASON = re.compile(r"file ends after (\d+) of the (\d+) bytes of Pixel Data")
QUARANTINE_REASON = re.compile(r"declares (\d+) bytes but the file ends after (\d+) of them")


def _quarantine(duck: Duck, bronze: Path) -> list[tuple[str, str, str, str | None]]:
    if not (bronze / "_quarantine").is_dir():
        return []
    return duck.query(
        f"select _source_file, _source_locator, reason, payload from {scan(bronze, '_quarantine')}"
        " where modality = 'imaging'"
    )


def _header(row_json: str) -> dict[str, Any]:
    return json.loads(row_json)


def _first(header: dict[str, Any], key: str) -> Any:
    values = header.get(key, {}).get("Value") or [None]
    return values[0]


def _find(node: Any, key: str) -> list[Any]:
    """Every value of element ``key`` anywhere in a DICOM JSON document (sequences included)."""
    found = []
    if isinstance(node, dict):
        for name, element in node.items():
            if name == key and isinstance(element, dict):
                found.append(element.get("Value"))
            found.extend(_find(element, key))
    elif isinstance(node, list):
        for item in node:
            found.extend(_find(item, key))
    return found


# -- the generated cohort ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = generate(tmp_path_factory, seed=23, modalities=("ehr", "imaging"))
    # What else a PACS export folder holds: never DICOM, never landed, never quarantined.
    (out / "imaging" / "README.txt").write_text("Export of 2024-03-01, 3 studies.\n")
    (out / "imaging" / "manifest.json").write_text('{"studies": 3}\n')
    return out


def _dirty(cohort: Path) -> dict[str, dict[str, str]]:
    """Dirty imaging records by absolute file path."""
    rows = dirty_records(cohort, "imaging")
    return {str((cohort / r["file"]).resolve()): r for r in rows}


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(p.resolve() for p in folder.rglob("*.dcm"))


@pytest.fixture(scope="module")
def landed(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Landed:
    return land(ImagingReader(), cohort / "imaging", tmp_path_factory.mktemp("lakehouse"))


def test_discovery_takes_dicom_files_without_extension_and_skips_other_files(
    cohort: Path, tmp_path: Path
) -> None:
    found = ImagingReader().discover(cohort / "imaging")
    assert found == _dicom_files(cohort / "imaging")  # README.txt and manifest.json skipped
    renamed = tmp_path / "1.2.3.4"  # a PACS export file: no extension at all
    shutil.copy(found[0], renamed)
    (tmp_path / "notes.txt").write_text("\x08\x00 but plain text after all")
    assert ImagingReader().discover(tmp_path) == [renamed]
    # Named as DICOM but not: a transfer that failed, a renamed picture. Quarantined, not lost.
    (tmp_path / "IM0001.DCM").write_bytes(b"")
    (tmp_path / "photo.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert [p.name for p in ImagingReader().discover(tmp_path)] == [
        "1.2.3.4",
        "IM0001.DCM",
        "photo.dcm",
    ]
    for name in ("IM0001.DCM", "photo.dcm"):
        row, reason = _outcome(tmp_path / name)
        assert row is None and reason.startswith("not a DICOM instance"), reason
    assert not looks_like_dicom(b'{"resourceType": "Patient"}', 27)


def test_every_valid_instance_lands_once_and_every_cut_file_is_quarantined(
    duck: Duck, cohort: Path, landed: Landed
) -> None:
    bronze, summary = landed
    dirty = _dirty(cohort)
    files = _dicom_files(cohort / "imaging")
    valid = {str(p) for p in files} - set(dirty)
    assert len(dirty) > 5 and summary.files_seen == len(files)
    rows = duck.query(
        f"select _source_file, file_path, sop_instance_uid, _source_locator, _record_hash "
        f"from {scan(bronze, TABLE)}"
    )
    assert sorted(r[0] for r in rows) == sorted(valid)  # each valid file exactly once
    assert len({r[2] for r in rows}) == len(rows)
    for source, file_path, uid, locator, digest in rows:
        assert source.endswith("/" + file_path) and file_path.count("/") == 2  # <acc>/<series>/
        assert locator == f"SOPInstanceUID={uid}"
        assert len(digest) == 64
    quarantined = _quarantine(duck, bronze)
    assert {(q[0], q[1]) for q in quarantined} == {
        (path, r["locator"]) for path, r in dirty.items()
    }
    assert len(quarantined) == len(dirty)
    for source, _, reason, payload in quarantined:
        expected = DIRTY_REASON.search(dirty[source]["reason"])
        got = QUARANTINE_REASON.search(reason)
        assert expected and got, reason
        kept, total = int(expected[1]), int(expected[2])
        assert (int(got[1]), int(got[2])) == (total, kept)  # declared vs present bytes
        assert json.loads(payload)["modality"] in {"CT", "MR"}


def test_ingest_log_accounts_for_every_file(duck: Duck, cohort: Path, landed: Landed) -> None:
    bronze, _ = landed
    dirty = _dirty(cohort)
    log = duck.query(
        "select path, records_read, records_landed, records_quarantined "
        f"from {scan(bronze, '_ingest_log')} where modality = 'imaging' and status = 'landed'"
    )
    assert len(log) == len(_dicom_files(cohort / "imaging"))
    for path, read, landed_count, quarantined in log:
        assert read == 1 == landed_count + quarantined
        assert quarantined == (path in dirty)


def test_instances_match_the_cohort_truth(duck: Duck, cohort: Path, landed: Landed) -> None:
    """Every imaged patient's MRN is there, and each staging series has all its slices: the
    landed ones plus the ones quarantined from its folder."""
    bronze, _ = landed
    truth = cohort / "_truth"
    with (truth / "patients.csv").open(encoding="utf-8") as handle:
        mrns = {
            r["mrn"]: r["patient_id"] for r in csv.DictReader(handle) if r["has_imaging"] == "1"
        }
    with (truth / "features.csv").open(encoding="utf-8") as handle:
        slices = {
            r["patient_id"]: int(r["value"])
            for r in csv.DictReader(handle)
            if r["feature"] == "n_slices"
        }
    cut = Counter(Path(r["file"]).parent.as_posix() for r in _dirty(cohort).values())
    series = duck.query(
        "select patient_id, accession_number, series_number, count(*) "
        f"from {scan(bronze, TABLE)} group by patient_id, accession_number, series_number "
        "qualify row_number() over (partition by patient_id order by min(study_date)) = 1"
    )
    assert {r[0] for r in series} == set(mrns)
    for mrn, accession, number, count in series:
        assert count + cut[f"imaging/{accession}/{number}"] == slices[mrns[mrn]], mrn


def test_typed_columns_match_the_generator(duck: Duck, landed: Landed) -> None:
    bronze, _ = landed
    rows = duck.query(
        f"select modality, transfer_syntax_uid, has_file_meta, has_pixel_data, rows, columns, "
        f"number_of_frames, bits_allocated, pixel_data_bytes, pixel_data_offset, study_date, "
        f"study_time, series_number, instance_number, file_path, pixel_spacing, "
        f"image_position_patient, spacing_between_slices, header_json, _source_file "
        f"from {scan(bronze, TABLE)}"
    )
    for row in rows:
        (modality, syntax, meta, pixels, n_rows, n_cols, frames, bits, n_bytes, offset) = row[:10]
        assert modality in {"CT", "MR"} and syntax == "1.2.840.10008.1.2.1"
        assert meta and pixels and (n_rows, n_cols, frames, bits) == (32, 32, 1, 16)
        assert n_bytes == 32 * 32 * 2 and offset + n_bytes == Path(row[19]).stat().st_size
        date, time, series, instance, file_path = row[10:15]
        header = _header(row[18])
        assert date.strftime("%Y%m%d") == _first(header, "00080020")
        assert time.replace(":", "") == _first(header, "00080030")
        assert series == int(file_path.split("/")[1])
        assert file_path.endswith(f"IM{instance:06d}.dcm")
        assert row[15] == header["00280030"]["Value"] and row[16] == header["00200032"]["Value"]
        assert header["7FE00010"]["BulkDataURI"].endswith("bytes=2048")
        assert _first(header, "00100010")["Alphabetic"]  # PHI stays in restricted bronze


def test_header_json_is_exactly_pydicoms_to_json_dict(duck: Duck, landed: Landed) -> None:
    """The memos and fast paths change nothing: same JSON as converting every element afresh."""
    bronze, _ = landed
    rows = duck.query(f"select _source_file, header_json from {scan(bronze, TABLE)}")
    for source, header_json in rows:
        mine = {k: v for k, v in _header(header_json).items() if not k.startswith("7FE0")}
        assert mine == _reference_json(Path(source))


def _reference_json(path: Path) -> dict[str, Any]:
    """pydicom's own JSON of the whole file (meta first), without the pixel-carrying elements."""
    handler = imaging_header._bulk_handler
    threshold = imaging_header.BULK_THRESHOLD
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd values in pydicom's test files
        ds = pydicom.dcmread(path, force=True)
        document = ds.file_meta.to_json_dict(threshold, handler) if len(ds.file_meta) else {}
        document |= ds.to_json_dict(threshold, handler)
    return {k: v for k, v in document.items() if not k.startswith("7FE0")}


def test_reruns_change_nothing(duck: Duck, cohort: Path, landed: Landed) -> None:
    check_reruns(ImagingReader(), cohort / "imaging", landed, lambda b: _snapshot(duck, b))


def _snapshot(duck: Duck, bronze: Path) -> tuple[Counter[str], int]:
    hashes = Counter(r[0] for r in duck.query(f"select _record_hash from {scan(bronze, TABLE)}"))
    return hashes, len(_quarantine(duck, bronze))


def test_a_rewritten_file_is_relanded_without_duplicates(
    duck: Duck, cohort: Path, tmp_path: Path
) -> None:
    source, bronze, _ = land_copy(ImagingReader(), cohort / "imaging", tmp_path)
    before = _snapshot(duck, bronze)
    dirty = {Path(p).relative_to(cohort.resolve()).as_posix() for p in _dirty(cohort)}
    target = next(p for p in _dicom_files(source) if f"imaging/{_rel(p, source)}" not in dirty)
    ds = pydicom.dcmread(target)
    ds.SeriesDescription = "Re-exported after QA"
    ds.save_as(target)
    summary = IngestJob(ImagingReader(), bronze.parent).run(source)
    assert summary.files_landed == 1 and summary.files_skipped == summary.files_seen - 1
    after = _snapshot(duck, bronze)
    assert sum(after[0].values()) == sum(before[0].values()) and after[1] == before[1]
    rows = duck.query(
        f"select header_json from {scan(bronze, TABLE)} where _source_file = ?", str(target)
    )
    assert len(rows) == 1 and _first(_header(rows[0][0]), "0008103E") == "Re-exported after QA"
    # The same file cut short now: its row goes, its quarantine record comes.
    target.write_bytes(target.read_bytes()[:-100])
    IngestJob(ImagingReader(), bronze.parent).run(source)
    assert sum(_snapshot(duck, bronze)[0].values()) == sum(before[0].values()) - 1
    assert len(_quarantine(duck, bronze)) == before[1] + 1


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# -- damaged and odd files, built from real ones -------------------------------------------------


def _outcome(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(landed row, or the quarantine reason) of one file read on its own."""
    reader = ImagingReader()
    reader.discover(path.parent)
    outcome = reader.read(path)
    assert outcome.records_read == 1 == outcome.records_landed + len(outcome.quarantined)
    if outcome.quarantined:
        return None, outcome.quarantined[0].reason
    table = outcome.tables[TABLE]
    assert table.schema.equals(SCHEMA)  # one stable schema, whatever the file
    return table.to_pylist()[0], None


@needs_realdata
@pytest.mark.parametrize(
    ("name", "cut", "expected"),
    [
        ("JPEG2000.dcm", -8, "without its Sequence Delimitation Item"),  # delimiter lost
        ("JPEG2000.dcm", -100, "cut inside fragment item"),
        ("MR_small_RLE.dcm", -3000, "cut inside fragment item"),
        ("MR_small_bigendian.dcm", -500, "declares 8192 bytes but the file ends after"),
        ("MR_small_implicit.dcm", -1, "declares 8192 bytes but the file ends after 8191"),
        ("rtplan.dcm", -7, "declares"),  # no pixels: the last element is cut
        ("CT_small.dcm", 700, "header"),  # cut inside the header
        ("image_dfl.dcm", -200, "deflated"),
    ],
)
def test_cut_files_are_quarantined_with_byte_counts(
    tmp_path: Path, name: str, cut: int, expected: str
) -> None:
    data = (REALDATA / "pydicom" / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[:cut])
    row, reason = _outcome(path)
    assert row is None and expected in reason, reason


@needs_realdata
def test_an_image_cut_just_before_its_pixel_data_is_quarantined(tmp_path: Path) -> None:
    data = (REALDATA / "pydicom" / "CT_small.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: data.index(b"\xe0\x7f\x10\x00OW")])  # the header is whole
    row, reason = _outcome(path)
    assert row is None and "128 x 128 image" in reason and "32768 bytes" in reason


@needs_realdata
def test_pixel_data_shorter_than_its_geometry_is_quarantined(tmp_path: Path) -> None:
    data = bytearray((REALDATA / "pydicom" / "MR_small.dcm").read_bytes())
    at = data.index(b"\xe0\x7f\x10\x00OW")  # Pixel Data, Explicit VR: length at +8
    data[at + 8 : at + 12] = (8000).to_bytes(4, "little")
    path = tmp_path / "short.dcm"
    path.write_bytes(bytes(data[: at + 12 + 8000]))
    row, reason = _outcome(path)
    assert row is None and "holds 8000 bytes where" in reason and "needs 8192" in reason


def test_pixel_data_encoded_against_its_transfer_syntax_is_quarantined(tmp_path: Path) -> None:
    """Native pixels under a compressed syntax, fragments under a native one, and fewer
    fragments than frames: each header looks healthy, and each file fails every decoder."""
    explicit, rle = b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.5\x00"
    native = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    encapsulated = Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes()
    assert native.count(explicit) == encapsulated.count(rle) == 1  # the File Meta's, alone
    (tmp_path / "native_as_rle.dcm").write_bytes(native.replace(explicit, rle))
    (tmp_path / "rle_as_native.dcm").write_bytes(encapsulated.replace(rle, explicit))
    dose = pydicom.dcmread(get_testdata_file("rtdose_rle.dcm"))
    assert dose.NumberOfFrames == 15
    dose.NumberOfFrames = 20
    dose.save_as(tmp_path / "dose_20_frames.dcm")
    reasons = {name: _outcome(tmp_path / name) for name in (
        "native_as_rle.dcm", "rle_as_native.dcm", "dose_20_frames.dcm"
    )}  # fmt: skip
    assert all(row is None for row, _ in reasons.values())
    assert reasons["native_as_rle.dcm"][1] == (
        "malformed DICOM file: Pixel Data has a defined length (32768 bytes) under RLE "
        "Lossless, which requires encapsulated fragments"
    )
    assert reasons["rle_as_native.dcm"][1] == (
        "malformed DICOM file: Pixel Data is encapsulated under Explicit VR Little Endian, a "
        "native transfer syntax"
    )
    assert reasons["dose_20_frames.dcm"][1] == (
        "malformed DICOM file: NumberOfFrames is 20 but the encapsulated Pixel Data holds 15 "
        "fragment(s); every frame takes at least one"
    )


def test_a_binary_that_only_starts_like_dicom_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100" + bytes(range(256)) * 4)
    assert ImagingReader().discover(tmp_path) == [path]  # passes the cheap check...
    row, reason = _outcome(path)
    assert row is None and "not a" in reason  # ...but is never landed as garbage


# -- the real files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real DICOM files not found at {REALDATA} (CI has them)")
    bronze, summary = land(ImagingReader(), REALDATA, tmp_path_factory.mktemp("real"))
    expected = json.loads((REALDATA / "expected_metadata.pydicom.json").read_text())
    assert summary.files_seen == len(expected)  # the .md, .json and README.txt are skipped
    assert summary.records_landed == len(expected) - 1 and summary.records_quarantined == 1
    return bronze


def _real_rows(duck: Duck, bronze: Path) -> dict[str, dict[str, Any]]:
    return {r["file_path"]: r for r in duck.records(f"select * from {scan(bronze, TABLE)}")}


def test_real_files_match_pydicoms_metadata(duck: Duck, real: Path) -> None:
    rows = _real_rows(duck, real)
    expected = json.loads((REALDATA / "expected_metadata.pydicom.json").read_text())
    for facts in expected:
        if facts["file"] == "pydicom/MR_truncated.dcm":
            assert facts["file"] not in rows
            continue
        row = rows[facts["file"]]
        header = _header(row["header_json"])
        name = _first(header, "00100010")
        got = {
            "has_file_meta": row["has_file_meta"],
            "TransferSyntaxUID": row["transfer_syntax_uid"],
            "TransferSyntaxName": row["transfer_syntax_name"],
            "SOPClassUID": _first(header, "00080016"),
            "SOPClassName": row["sop_class_name"] if "00080016" in header else None,
            "Modality": row["modality"],
            "PatientName": name["Alphabetic"] if name else None,
            "PatientID": row["patient_id"],
            "StudyInstanceUID": row["study_instance_uid"],
            "SeriesInstanceUID": row["series_instance_uid"],
            "SOPInstanceUID": _first(header, "00080018"),
            "StudyDate": _first(header, "00080020"),
            "Rows": row["rows"],
            "Columns": row["columns"],
            "NumberOfFrames": _first(header, "00280008"),
            "SamplesPerPixel": row["samples_per_pixel"],
            "PhotometricInterpretation": row["photometric_interpretation"],
            "BitsAllocated": row["bits_allocated"],
            "BitsStored": row["bits_stored"],
            "PixelRepresentation": row["pixel_representation"],
            "has_PixelData": row["has_pixel_data"],
            "PixelData_bytes": row["pixel_data_bytes"],
            "n_top_level_elements": sum(not k.startswith("0002") for k in header),
            "WaveformSequence_items": len(header.get("54000100", {}).get("Value", [])) or None,
        }
        for field, value in got.items():
            want = facts.get(field)
            if want == "":  # a Type 2 element present but empty lands as null
                want = None
            assert value == want, (facts["file"], field)
        # The typed columns agree with the header they come from.
        if facts.get("StudyDate"):
            assert re.sub(r"\D", "", facts["StudyDate"]) == row["study_date"].strftime("%Y%m%d")
        if facts.get("has_PixelData"):
            assert row["number_of_frames"] == (facts.get("NumberOfFrames") or 1)
        assert row["sop_instance_uid"] == (
            facts.get("SOPInstanceUID") or _first(header, "00020003")
        )


def test_real_files_without_meta_dicomdirs_and_the_truncated_mr(duck: Duck, real: Path) -> None:
    rows = _real_rows(duck, real)
    for name in ("pydicom/rtstruct.dcm", "pydicom/ExplVR_LitEndNoMeta.dcm"):
        assert not rows[name]["has_file_meta"] and rows[name]["transfer_syntax_uid"] is None
    dicomdirs = [r for path, r in rows.items() if "/DICOMDIR" in path]
    assert len(dicomdirs) == 7
    assert all(r["sop_class_uid"] == MEDIA_STORAGE_DIRECTORY for r in dicomdirs)
    # The DICOMDIR's records name exactly the 31 image files that landed beside it.
    directory = _header(rows["pydicom/dicomdirtests/DICOMDIR"]["header_json"])
    referenced = {"/".join(v) for v in _find(directory, "00041500") if v}
    prefix = "pydicom/dicomdirtests/"
    images = {p.removeprefix(prefix) for p in rows if p.startswith(prefix) and "DICOMDIR" not in p}
    assert len(referenced) == 31 and referenced == images
    ((source, locator, reason, payload),) = _quarantine(duck, real)
    assert source.endswith("pydicom/MR_truncated.dcm")
    assert locator == "SOPInstanceUID=1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"
    assert "declares 8192 bytes but the file ends after 8130" in reason  # EXPECTED_FACTS
    assert json.loads(payload)["rows"] == 64


def test_real_files_match_pydicoms_own_test_assertions(duck: Duck, real: Path) -> None:
    rows = _real_rows(duck, real)
    ct = rows["pydicom/CT_small.dcm"]
    ct_header = _header(ct["header_json"])
    assert _first(ct_header, "00020012") == "1.3.6.1.4.1.5962.2"
    assert ct["image_position_patient"] == [-158.135803, -179.035797, -75.699997]
    assert (ct["rows"], ct["columns"], ct["bits_stored"], ct["pixel_data_bytes"]) == (
        128,
        128,
        16,
        32768,
    )
    assert "0043104E" in ct_header  # the private tag survives
    plan = _header(rows["pydicom/rtplan.dcm"]["header_json"])
    assert ["unit001"] in _find(plan, "300A00B2")
    assert [0.9990268] in _find(plan, "300A010C")
    assert [-100.0, 100.0] in _find(plan, "300A011C")
    dose = rows["pydicom/rtdose.dcm"]
    assert _first(_header(dose["header_json"]), "00280009") == "3004000C"
    assert (dose["number_of_frames"], dose["bits_allocated"]) == (15, 32)
    struct = _header(rows["pydicom/rtstruct.dcm"]["header_json"])
    assert ["1.2.826.0.1.3680043.8.498.2010020400001.2.1.1"] in _find(struct, "0020000E")
    assert ["REL_ELEC_DENSITY"] in _find(struct, "300600B2")
    contours = _header(rows["pydicom/rtstruct.dcm"]["header_json"])["30060039"]["Value"]
    assert contours[0]["30060040"]["Value"][2]["30060048"]["Value"] == [3]
    ecg = _header(rows["pydicom/waveform_ecg.dcm"]["header_json"])["54000100"]["Value"]
    assert [g["003A0010"]["Value"][0] for g in ecg] == [10000, 1200]
    assert [g["003A0005"]["Value"][0] for g in ecg] == [12, 12]
    assert ecg[0]["54001010"]["BulkDataURI"].endswith("bytes=240000")  # bulk left out


@needs_realdata
@pytest.mark.parametrize(
    "syntax", [pydicom.uid.ImplicitVRLittleEndian, pydicom.uid.DeflatedExplicitVRLittleEndian]
)
def test_private_elements_in_other_syntaxes_convert_as_pydicom_does(
    tmp_path: Path, syntax: pydicom.uid.UID
) -> None:
    """CT_small re-encoded: in Implicit VR its GE private elements take their VR from the private
    dictionary through their private creator, which the element memo must key on; deflated, its
    data set is a zlib stream."""
    ds = pydicom.dcmread(REALDATA / "pydicom" / "CT_small.dcm")
    ds.file_meta.TransferSyntaxUID = syntax
    paths = []
    for name in ("a.dcm", "b.dcm"):  # twice: the second read is served by the memos
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        paths.append(tmp_path / name)
        ds.save_as(paths[-1], enforce_file_format=True)
    for path in paths:
        row, reason = _outcome(path)
        assert reason is None and row["transfer_syntax_uid"] == syntax
        header = {k: v for k, v in _header(row["header_json"]).items() if not k.startswith("7FE0")}
        assert header == _reference_json(path)
        assert header["0043104E"]["vr"] == "FL" and row["pixel_data_bytes"] == 32768
        deflated = syntax == pydicom.uid.DeflatedExplicitVRLittleEndian
        assert (row["pixel_data_offset"] is None) == deflated  # no file offset inside a stream


@needs_realdata
def test_real_header_json_is_exactly_pydicoms_to_json_dict() -> None:
    reader = ImagingReader()
    for path in reader.discover(REALDATA):
        outcome = reader.read(path)
        if outcome.records_landed:
            header = _header(outcome.tables[TABLE]["header_json"][0].as_py())
            mine = {k: v for k, v in header.items() if not k.startswith("7FE0")}
            assert mine == _reference_json(path), path


def _outcome_facts(outcome: Any) -> tuple[Any, ...]:
    tables = {name: (t.schema, t.to_pylist()) for name, t in outcome.tables.items()}
    bad = [(q.locator, q.reason, q.payload) for q in outcome.quarantined]
    return outcome.records_read, outcome.records_landed, bad, tables


def test_read_many_gives_what_read_gives_file_by_file(cohort: Path) -> None:
    """The job reads a pool task's files with ``read_many`` (the rows of all of them converted
    as one table); each file's outcome must be exactly ``read``'s, cut files included."""
    reader = ImagingReader()
    paths = reader.discover(cohort / "imaging")
    cut = set(_dirty(cohort))
    group = [p for p in paths if str(p) in cut][:5] + paths[:200]
    assert cut and any(str(p) in cut for p in group)
    for path, grouped in zip(group, reader.read_many(group), strict=True):
        assert _outcome_facts(grouped) == _outcome_facts(reader.read(path)), path
    if REALDATA.is_dir():  # other syntaxes, DICOMDIRs, files without meta, a truncated MR
        real = reader.discover(REALDATA)
        for path, grouped in zip(real, reader.read_many(real), strict=True):
            assert _outcome_facts(grouped) == _outcome_facts(reader.read(path)), path
