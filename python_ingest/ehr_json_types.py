"""FHIR JSON's own types for primitives: booleans, integers and decimals are JSON literals.

The R4B models coerce what they are given (``"false"`` becomes False, ``"6.3"`` a Decimal, even
in pydantic's strict mode), so a resource that writes ``"deceasedBoolean": "false"`` or
``"value": "6.3"`` passes model validation, lands in ``ehr_resources`` as sent, and flattens to
a silent null in its typed column. The FHIR JSON format says these are JSON ``true``/``false``
and numbers (https://hl7.org/fhir/R4/json.html#primitive); this check holds a resource to it,
element by element, reading each element's type from the models.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import typing
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

# JSON kinds: what Python type orjson gives each FHIR primitive.
_KINDS: dict[type, tuple[str, tuple[type, ...]]] = {
    bool: ("a boolean (true or false)", (bool,)),
    int: ("an integer", (int,)),
    decimal.Decimal: ("a number", (int, float)),
}
_TEXT = ("a string", (str,))  # strings, codes, dates, times, ids, uris, base64...
_TEXT_TYPES = (str, dt.date, dt.datetime, dt.time, bytes)


@functools.cache
def _elements(model: type) -> dict[str, tuple[tuple[str, tuple[type, ...]] | None, str | None]]:
    """alias -> (JSON kind of a primitive, or None; name of a complex element's model, or None)."""
    out: dict[str, tuple[tuple[str, tuple[type, ...]] | None, str | None]] = {}
    for field in model.model_fields.values():
        if field.alias is None or field.alias.startswith("fhir_"):
            continue
        base = field.annotation
        while typing.get_origin(base) in (typing.Union, list, typing.Annotated) or (
            type(base).__name__ == "UnionType"
        ):
            args = [a for a in typing.get_args(base) if a is not type(None)]
            base = args[0]
        if base in _KINDS:
            out[field.alias] = (_KINDS[base], None)
        elif isinstance(base, type) and issubclass(base, _TEXT_TYPES):
            out[field.alias] = (_TEXT, None)
        elif getattr(base, "__name__", "").endswith("Type") and base.__name__ != "ResourceType":
            out[field.alias] = (None, base.__name__[: -len("Type")])
    return out


@functools.cache
def _model(name: str) -> type | None:
    try:
        return get_fhir_model_class(name)
    except (ValueError, KeyError, AttributeError, ImportError):
        return None


def json_type_problem(value: dict[str, Any], model: type, path: str) -> str | None:
    """The first element of ``value`` (an instance of ``model`` at ``path``) whose JSON type is
    not the one FHIR JSON gives its primitive, as a reason; None when all are."""
    elements = _elements(model)
    for key, item in value.items():
        spec = elements.get(key)
        if spec is None:
            continue
        kind, complex_name = spec
        for i, one in enumerate(item if isinstance(item, list) else [item]):
            where = f"{path}.{key}" + (f"[{i}]" if isinstance(item, list) else "")
            if kind is not None:
                words, types = kind
                if one is None:
                    continue
                # Python's True is an int: a boolean is a number only where booleans belong.
                if not isinstance(one, types) or (type(one) is bool and bool not in types):
                    shown = repr(one) if isinstance(one, str) else f"a JSON {_json_name(one)}"
                    return f"{where} is {shown}, but FHIR JSON writes it as {words}"
            elif isinstance(one, dict) and (inner := _model(complex_name)) is not None:
                found = json_type_problem(one, inner, where)
                if found:
                    return found
    return None


def _json_name(value: object) -> str:
    return {bool: "boolean", int: "number", float: "number", dict: "object", list: "array"}.get(
        type(value), type(value).__name__
    )
