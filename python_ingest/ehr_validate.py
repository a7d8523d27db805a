"""Is a parsed JSON object a FHIR R4 resource we may land? Rules from the ``fhir.resources`` models.

Two levels, because full model validation costs ~150 µs a resource, ~40x an orjson parse
(measured on the generated export: ~6k resources/s against ~240k/s):

* every resource, whatever its type: ``resourceType`` names a FHIR resource, the elements the
  spec makes 1..1 / 1..* are present at the top level (a primitive may be present as ``_x``, its
  extension-only form; a required choice ``x[x]`` by any of its types), and top-level codes
  with a required binding hold one of the bound codes (``status``, ``intent``, ``gender``...).
  These rules are read from the R4B models' own field metadata, so they cover all ~145 types
  without a hand-kept table, at the cost of a few dict lookups.
* by default for the types we flatten (``TYPED_RESOURCES``; ``MMLAKE_EHR_VALIDATION=all`` for
  every type, ``rules`` for none): the full R4B pydantic model as well (nested required
  elements, primitive formats such as dateTime, unknown elements), and FHIR JSON's own types
  for primitives, which the models coerce (``python_ingest.ehr_json_types``). It makes the
  whole EHR ingest ~3x slower; without it a malformed nested value lands in ``ehr_resources``
  verbatim and flattens to a silent null in its typed column, which is why it stays on by
  default.
  The models type codes as plain strings, which is why the binding check above exists.

R4B is used for R4 data: the two versions differ in medication-definition resources and
Subscription only, none of which is typed here. The R4 types R4B withdrew (``R4_ONLY_TYPES``)
land unchecked beyond their resourceType; R4B's new types are accepted too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

try:
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource as _ModelResource
    from pydantic import ValidationError

    from python_ingest.ehr_json_types import json_type_problem
except ImportError as exc:  # a dev dependency in pyproject.toml; EHR ingestion needs it
    raise ImportError(
        "EHR ingestion validates FHIR with fhir.resources; install 'fhir.resources>=8.3,<8.4'"
    ) from exc

# The resource types flattened into typed bronze tables (full model validation in ``typed``).
TYPED_RESOURCES = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "Procedure",
    "DocumentReference",
)
MAX_ERRORS_IN_REASON = 3
# Required bindings the models abbreviate with "+", completed from the R4 spec for typed types
# (EncounterStatus, ObservationStatus).
FULL_CODE_LISTS: dict[tuple[str, str], frozenset[str]] = {
    ("Encounter", "status"): frozenset(
        {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled"}
        | {"entered-in-error", "unknown"}
    ),
    ("Observation", "status"): frozenset(
        {"registered", "preliminary", "final", "amended", "corrected", "cancelled"}
        | {"entered-in-error", "unknown"}
    ),
}


# FHIR R4 (4.0.1) resource types that R4B withdrew (the medicinal-product family, the
# substance-definition family, the evidence syntheses): they are real R4 data, so they land,
# with only the checks every resource gets (there is no R4B model to hold them to).
R4_ONLY_TYPES = frozenset(
    {
        "EffectEvidenceSynthesis",
        "RiskEvidenceSynthesis",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "SubstanceSpecification",
    }
)


@dataclass(frozen=True)
class TypeRules:
    """What the spec requires at the top level of one resource type."""

    model: type
    required: tuple[str, ...]  # complex elements with min cardinality >= 1
    required_primitives: tuple[str, ...]  # primitives with min 1: ``x`` or ``_x`` must be there
    required_choices: tuple[tuple[str, tuple[str, ...]], ...]  # (``x[x]``, its element names)
    codes: tuple[tuple[str, frozenset[str]], ...]  # (element, codes of its required binding)


@functools.cache
def rules_for(resource_type: str) -> TypeRules | None:
    """The rules of ``resource_type``, or None when it is not a FHIR resource type."""
    if not resource_type.isalpha():
        return None
    try:
        model = get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError, ImportError):
        return None
    if not issubclass(model, _ModelResource):  # a data type such as HumanName
        return None
    required, primitives, codes = [], [], []
    choices: dict[str, list[str]] = {}
    for field in model.model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        alias = field.alias
        if alias is None or alias.startswith("fhir_"):
            continue
        if extra.get("one_of_many_required"):
            choices.setdefault(str(extra["one_of_many"]), []).append(alias)
        elif field.is_required():
            required.append(alias)
        elif extra.get("element_required"):
            primitives.append(alias)
        enum = extra.get("enum_values")
        full = FULL_CODE_LISTS.get((resource_type, alias))
        if full is not None:
            codes.append((alias, full))
        # "+" marks a list the model abbreviates: without the full list, no check.
        elif isinstance(enum, list) and enum and "+" not in enum:
            codes.append((alias, frozenset(str(c) for c in enum)))
    return TypeRules(
        model=model,
        required=tuple(required),
        required_primitives=tuple(primitives),
        required_choices=tuple((k, tuple(v)) for k, v in sorted(choices.items())),
        codes=tuple(codes),
    )


def check_resource(resource: Any, full: bool) -> str | None:
    """A reason why ``resource`` may not land, or None. ``full`` adds R4B model validation."""
    if not isinstance(resource, dict):
        kind = type(resource).__name__
        return f"the JSON value is a {kind}, not an object, so it is not a FHIR resource"
    resource_type = resource.get("resourceType")
    if resource_type is None:
        return (
            "the JSON object has no resourceType, so it is not a FHIR resource "
            "(a bulk-export log line or some other JSON?)"
        )
    if isinstance(resource_type, str) and resource_type in R4_ONLY_TYPES:
        return None
    if not isinstance(resource_type, str) or (rules := rules_for(resource_type)) is None:
        return f"resourceType {resource_type!r} is not a FHIR R4 (or R4B) resource type"
    problem = _check_rules(resource, resource_type, rules)
    if problem is None and full:
        problem = _check_model(resource, resource_type, rules)
    return problem


def _check_rules(resource: dict[str, Any], resource_type: str, rules: TypeRules) -> str | None:
    missing = [e for e in rules.required if resource.get(e) in (None, [], {})]
    missing += [
        e for e in rules.required_primitives if e not in resource and f"_{e}" not in resource
    ]
    missing += [
        f"{name}[x]"
        for name, elements in rules.required_choices
        if not any(e in resource for e in elements)
    ]
    if missing:
        listed = ", ".join(f"{resource_type}.{e}" for e in missing)
        verb = "is" if len(missing) == 1 else "are"
        return f"{listed} {verb} required by FHIR R4 (min cardinality 1) but absent"
    for element, allowed in rules.codes:
        value = resource.get(element)
        if isinstance(value, str) and value not in allowed:
            shown = ", ".join(sorted(allowed))
            return (
                f"{resource_type}.{element} is {value!r}, which is not a code of its required "
                f"value set ({shown})"
            )
    return None


def _check_model(resource: dict[str, Any], resource_type: str, rules: TypeRules) -> str | None:
    try:
        rules.model.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors()
        shown = "; ".join(
            f"{resource_type}.{'.'.join(str(p) for p in e['loc']) or '(resource)'}: {e['msg']}"
            for e in errors[:MAX_ERRORS_IN_REASON]
        )
        more = len(errors) - MAX_ERRORS_IN_REASON
        tail = f" (and {more} more)" if more > 0 else ""
        return f"the {resource_type} does not conform to the FHIR R4B model: {shown}{tail}"
    except (TypeError, ValueError) as exc:  # a model-level check that raised plainly
        return f"the {resource_type} does not conform to the FHIR R4B model: {exc}"
    return json_type_problem(resource, rules.model, resource_type)
