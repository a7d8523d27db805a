"""The ``imaging_instances`` bronze schema, the header fields behind its typed columns, and the
cheap construction of its one-row tables.

Types are those a Spark or Databricks reader accepts as they are: strings, int32/int64, double,
boolean, date32, list<double>. DICOM times stay strings (Spark has no time-of-day type), and
empty DICOM values (a Type 2 element present but blank) become null.
"""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

import pyarrow as pa

from python_ingest.imaging_values import date, doubles, integer, number, text, time_of_day
from python_ingest.model import READER_LINEAGE, RECORD_HASH, SOURCE_LOCATOR

TABLE = "imaging_instances"
_LIST = pa.list_(pa.float64())
SCHEMA = pa.schema(
    [
        pa.field("file_path", pa.string(), nullable=False),  # relative to the source folder
        pa.field("sop_class_uid", pa.string()),
        pa.field("sop_class_name", pa.string()),
        pa.field("sop_instance_uid", pa.string(), nullable=False),
        pa.field("series_instance_uid", pa.string()),
        pa.field("study_instance_uid", pa.string()),
        pa.field("patient_id", pa.string()),
        pa.field("accession_number", pa.string()),
        pa.field("modality", pa.string()),
        pa.field("body_part_examined", pa.string()),
        pa.field("study_date", pa.date32()),
        pa.field("series_date", pa.date32()),
        pa.field("study_time", pa.string()),  # ISO HH:MM:SS[.ffffff], local time
        pa.field("rows", pa.int32()),
        pa.field("columns", pa.int32()),
        pa.field("number_of_frames", pa.int32()),
        pa.field("samples_per_pixel", pa.int32()),
        pa.field("bits_allocated", pa.int32()),
        pa.field("bits_stored", pa.int32()),
        pa.field("pixel_representation", pa.int32()),
        pa.field("photometric_interpretation", pa.string()),
        pa.field("transfer_syntax_uid", pa.string()),
        pa.field("transfer_syntax_name", pa.string()),
        pa.field("has_file_meta", pa.bool_(), nullable=False),
        pa.field("has_pixel_data", pa.bool_(), nullable=False),
        pa.field("pixel_data_bytes", pa.int64()),
        pa.field("pixel_data_offset", pa.int64()),  # null when inside a deflated stream
        pa.field("pixel_spacing", _LIST),
        pa.field("slice_thickness", pa.float64()),
        pa.field("spacing_between_slices", pa.float64()),
        pa.field("image_position_patient", _LIST),
        pa.field("image_orientation_patient", _LIST),
        pa.field("rescale_intercept", pa.float64()),
        pa.field("rescale_slope", pa.float64()),
        pa.field("instance_number", pa.int32()),
        pa.field("series_number", pa.int32()),
        pa.field("manufacturer", pa.string()),
        pa.field("institution_name", pa.string()),
        pa.field("header_json", pa.string(), nullable=False),
        *READER_LINEAGE,
    ]
)
FIELD_TYPES = tuple((field.name, field.type) for field in SCHEMA)
# Columns whose value is new in every row: never worth memoizing as Arrow arrays.
_UNIQUE_COLUMNS = {"file_path", "sop_instance_uid", "header_json", SOURCE_LOCATOR, RECORD_HASH}
# ... and those that vary within a series but repeat across series (slice numbers, positions).
_PER_SLICE_COLUMNS = {"image_position_patient", "instance_number"}
# Built for every row, so outside the ``series`` key of ``one_row_table``.
ROW_COLUMNS = _UNIQUE_COLUMNS | _PER_SLICE_COLUMNS
_ARRAY_MEMO_LIMIT = 20_000
_array_memo: dict[tuple[str, Any], pa.Array] = {}
_SERIES_ARRAYS_LIMIT = 2_000
_series_arrays: dict[tuple[Any, ...], list[pa.Array | None]] = {}
_EXACT_KEY_TYPES = (str, int, bool, type(None), dt.date)

# (field, DICOM JSON key, converter): the typed columns, and the identity fields (leading "_").
_TEXT = text
_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("_media_sop_class_uid", "00020002", _TEXT),
    ("_media_sop_instance_uid", "00020003", _TEXT),
    ("transfer_syntax_uid", "00020010", _TEXT),
    ("_sop_class_uid", "00080016", _TEXT),
    ("_sop_instance_uid", "00080018", _TEXT),
    ("_number_of_frames", "00280008", integer),
    ("series_instance_uid", "0020000E", _TEXT),
    ("study_instance_uid", "0020000D", _TEXT),
    ("patient_id", "00100020", _TEXT),
    ("accession_number", "00080050", _TEXT),
    ("modality", "00080060", _TEXT),
    ("body_part_examined", "00180015", _TEXT),
    ("study_date", "00080020", date),
    ("series_date", "00080021", date),
    ("study_time", "00080030", time_of_day),
    ("rows", "00280010", integer),
    ("columns", "00280011", integer),
    ("samples_per_pixel", "00280002", integer),
    ("bits_allocated", "00280100", integer),
    ("bits_stored", "00280101", integer),
    ("pixel_representation", "00280103", integer),
    ("photometric_interpretation", "00280004", _TEXT),
    ("pixel_spacing", "00280030", doubles),
    ("slice_thickness", "00180050", number),
    ("spacing_between_slices", "00180088", number),
    ("image_position_patient", "00200032", doubles),
    ("image_orientation_patient", "00200037", doubles),
    ("rescale_intercept", "00281052", number),
    ("rescale_slope", "00281053", number),
    ("instance_number", "00200013", integer),
    ("series_number", "00200011", integer),
    ("manufacturer", "00080070", _TEXT),
    ("institution_name", "00080080", _TEXT),
)
COLUMNS = tuple(name for name, _, _ in _FIELDS if not name.startswith("_"))


_FIELDS_BY_KEY = {key: (name, convert) for name, key, convert in _FIELDS}


def fields(document: dict[str, Any]) -> dict[str, Any]:
    """Typed values of the fields whose elements ``document`` holds (pure: it is memoized)."""
    found = {}
    for key in document.keys() & _FIELDS_BY_KEY.keys():
        name, convert = _FIELDS_BY_KEY[key]
        found[name] = convert(document, key)
    return found


def one_row_table(row: dict[str, Any], series: tuple[Any, ...] | None = None) -> pa.Table:
    """The row as a one-row table, reusing the one-value arrays of values seen before.

    A table per file is the framework's unit, and building 40 one-value arrays costs a third
    of the header parse. The slices of a series share most values, so the arrays (immutable)
    are memoized: all non-unique columns at once under ``series``, a key that must determine
    every one of their values, else one column at a time under the value itself (floats and
    lists key on their ``repr``, so that -0.0 and 0.0 stay apart).
    """
    arrays = _series_arrays.get(series) if series is not None else None
    if arrays is None:
        arrays = [
            None if name in ROW_COLUMNS else _value_array(name, type_, row.get(name))
            for name, type_ in FIELD_TYPES
        ]
        if series is not None:
            if len(_series_arrays) >= _SERIES_ARRAYS_LIMIT:
                _series_arrays.clear()
            _series_arrays[series] = arrays
    columns = [
        array if array is not None else _unique_array(name, type_, row.get(name))
        for (name, type_), array in zip(FIELD_TYPES, arrays, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def row_tables(rows: list[dict[str, Any]]) -> list[pa.Table]:
    """``one_row_table`` of each row (same types, same values), converted as one table.

    For a pool task's files at once: one conversion of many rows costs about a quarter of
    as many one-row tables, however well memoized; each file gets its zero-copy slice.
    """
    if not rows:
        return []
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    return [table.slice(i, 1) for i in range(len(rows))]


_OFFSETS = struct.Struct("<ii")


def _unique_array(name: str, type_: pa.DataType, value: Any) -> pa.Array:
    if name in _PER_SLICE_COLUMNS:
        return _value_array(name, type_, value)
    if type(value) is str:  # straight from buffers: a third of ``pa.array``'s cost
        data = value.encode()
        offsets = pa.py_buffer(_OFFSETS.pack(0, len(data)))
        return pa.StringArray.from_buffers(1, offsets, pa.py_buffer(data))
    return pa.array([value], type_)


def _value_array(name: str, type_: pa.DataType, value: Any) -> pa.Array:
    key = (name, value if isinstance(value, _EXACT_KEY_TYPES) else repr(value))
    array = _array_memo.get(key)
    if array is None:
        if len(_array_memo) >= _ARRAY_MEMO_LIMIT:
            _array_memo.clear()
        array = _array_memo[key] = pa.array([value], type_)
    return array
