"""Which Patient a resource belongs to, and whether its Patient references resolve.

A reader sees one file at a time, but a bulk export spreads a chart over one file per type, so
``Observation.subject -> Patient/x`` can only be checked against the export as a whole.
``EhrReader.discover`` therefore indexes the Patient ids of each folder (an export) and ships
that index to the workers with the reader. It holds Patient ids only, as sorted 64-bit hashes
(8 bytes a patient; a dangling id passes by chance with probability n/2^64), so it stays small
enough to pickle with every task even for millions of patients. Every other reference
(Encounter, Condition, Practitioner ...) is checked in silver, where all tables are visible.

Rules, from FHIR R4 "Resolving references" (http://hl7.org/fhir/R4/references.html):

* ``#id`` points into the resource's own ``contained``: nothing to check here.
* inside a Bundle, a reference equal to an entry's ``fullUrl`` resolves to that entry
  (Synthea's ``urn:uuid:`` references); a relative ``Patient/x`` resolves to a Patient entry
  with id x, or to a Patient elsewhere in the export.
* a relative ``Patient/x`` anywhere else must name a Patient of the export or one landed by an
  earlier run (an incremental ``_since`` export carries only the Patients that changed), or the
  resource is quarantined; absolute URLs name another server and are left to silver.
* an export with no Patient resource at all (a ``_type=Observation`` bulk export) claims nothing
  about patients, so its references are not checked here: its resources land with the reference
  as written, and silver links them once their Patients land (or accounts them as unlinked).
* a ``subject``/``patient`` given as ``urn:uuid:``/``urn:oid:`` only means something inside the
  Bundle that defines it; outside one, or missing from it, the link to the patient is lost.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

# Reference.reference values in a serialized resource (JSON keys cannot hide in strings: a
# quote inside a string is escaped, so '"reference"' only matches a real key).
_REFERENCE = re.compile(rb'"reference"\s*:\s*"([^"\\]*)"')
_PATIENT_TYPE = re.compile(rb'"resourceType"\s*:\s*"Patient"')
_ID = r"[A-Za-z0-9\-.]{1,64}"  # FHIR id: 1-64 characters from this set
_TYPED_REF = re.compile(
    rf"^(?:(?P<base>.*)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>{_ID})(?:/_history/[^/]+)?$"
)
_URN = ("urn:uuid:", "urn:oid:")
_ABSOLUTE = ("http://", "https://")


def _hash(resource_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(resource_id.encode(), digest_size=8).digest(), "little")


class PatientIndex:
    """The Patient ids of one export, as sorted 64-bit hashes (membership only)."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._hashes = np.unique(np.fromiter((_hash(i) for i in ids), dtype=np.uint64))

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, resource_id: object) -> bool:
        if not isinstance(resource_id, str):
            return False
        h = np.uint64(_hash(resource_id))
        i = int(np.searchsorted(self._hashes, h))
        return i < len(self._hashes) and self._hashes[i] == h


def patient_ids_in_ndjson(data: bytes) -> list[str]:
    """Ids of the top-level Patients in NDJSON bytes; only lines naming Patient are parsed."""
    ids, seen_lines = [], set()
    for match in _PATIENT_TYPE.finditer(data):
        start = data.rfind(b"\n", 0, match.start()) + 1
        if start in seen_lines:
            continue
        seen_lines.add(start)
        end = data.find(b"\n", match.end())
        try:
            resource = orjson.loads(data[start : end if end >= 0 else len(data)])
        except orjson.JSONDecodeError:  # a broken line is quarantined by read(); not a Patient
            continue
        if (
            isinstance(resource, dict)
            and resource.get("resourceType") == "Patient"
            and isinstance(resource.get("id"), str)
        ):
            ids.append(resource["id"])
    return ids


def patient_ids_in_json(doc: Any) -> list[str]:
    """Ids of the Patients in a parsed JSON file: the resource itself or a Bundle's entries."""
    if not isinstance(doc, dict):
        return []
    if doc.get("resourceType") == "Patient" and isinstance(doc.get("id"), str):
        return [doc["id"]]
    if doc.get("resourceType") != "Bundle" or not isinstance(doc.get("entry"), list):
        return []
    return [
        r["id"]
        for e in doc["entry"]
        if isinstance(e, dict)
        and isinstance(r := e.get("resource"), dict)
        and r.get("resourceType") == "Patient"
        and isinstance(r.get("id"), str)
    ]


def with_stand_in_id(entry: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` as it lands: a transaction's POSTed entry has no id yet (the server would
    assign one), so its ``urn:uuid``/``urn:oid`` fullUrl stands in, the id its references in the
    Bundle already resolve to (``BundleScope``). The raw JSON that lands is unchanged."""
    full_url = entry.get("fullUrl")
    if "id" in resource or not isinstance(full_url, str) or not full_url.startswith(_URN):
        return resource
    return {**resource, "id": full_url.rsplit(":", 1)[-1]}


@dataclass
class BundleScope:
    """The entries of one Bundle that references may resolve to."""

    full_urls: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    patient_ids: set[str] = field(default_factory=set)

    def add(self, full_url: Any, resource: dict[str, Any]) -> None:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        rid = rid if isinstance(rid, str) else None
        if isinstance(full_url, str) and isinstance(rtype, str):
            # A POSTed entry may have no id yet: its urn:uuid stands in for it.
            stand_in = full_url.rsplit(":", 1)[-1] if full_url.startswith(_URN) else None
            self.full_urls[full_url] = (rtype, rid or stand_in)
        if rtype == "Patient" and rid:
            self.patient_ids.add(rid)


class Resolver:
    """Resolves the references of the resources of one file (and of its Bundle, if any)."""

    def __init__(
        self,
        patients: PatientIndex,
        bundle: BundleScope | None = None,
        landed: PatientIndex | None = None,
    ) -> None:
        self.patients = patients  # of the export (the file's folder)
        self.bundle = bundle
        self.landed = landed if landed is not None else PatientIndex()  # by earlier runs
        # Only an export that carries Patients is checked against them (module docstring).
        self.checks = len(patients) > 0 or (bundle is not None and bool(bundle.patient_ids))
        self._known: dict[str, bool] = {}

    def target(self, reference: Any) -> tuple[str, str | None] | None:
        """(type, id) a literal reference string points to, when that can be told."""
        if not isinstance(reference, str) or reference.startswith("#"):
            return None
        if self.bundle is not None and reference in self.bundle.full_urls:
            return self.bundle.full_urls[reference]
        match = _TYPED_REF.match(reference)
        return (match["type"], match["id"]) if match else None

    def ref_id(self, element: Any, resource_type: str) -> str | None:
        """The id a Reference element points to when it is a ``resource_type``."""
        if isinstance(element, list):
            element = element[0] if element else None
        if not isinstance(element, dict):
            return None
        found = self.target(element.get("reference"))
        return found[1] if found and found[0] == resource_type else None

    def _has_patient(self, patient_id: str) -> bool:
        if self.bundle is not None and patient_id in self.bundle.patient_ids:
            return True
        known = self._known.get(patient_id)
        if known is None:
            known = patient_id in self.patients or patient_id in self.landed
            self._known[patient_id] = known
        return known

    def patient_of(self, resource: dict[str, Any]) -> tuple[str | None, str | None]:
        """(Patient id the resource belongs to, problem with its patient link or None)."""
        rtype = resource.get("resourceType")
        if rtype == "Patient":
            rid = resource.get("id")
            return (rid if isinstance(rid, str) else None), None
        # Coverage names its patient the beneficiary (the subscriber may be someone else).
        for element in ("subject", "patient", "individual", "beneficiary"):
            value = resource.get(element)
            for ref in value if isinstance(value, list) else [value]:
                reference = ref.get("reference") if isinstance(ref, dict) else None
                if not isinstance(reference, str):
                    continue
                found = self.target(reference)
                if found is None and reference.startswith(_URN):
                    where = "its Bundle has no entry" if self.bundle else "it is not in a Bundle"
                    return None, (
                        f"{rtype}.{element} -> {reference} cannot be resolved: {where} with "
                        "that fullUrl, so the resource cannot be linked to a patient"
                    )
                if found is not None and found[0] == "Patient":
                    return found[1], None
        return None, None

    def unresolved_patients(self, raw: bytes) -> list[str]:
        """Relative ``Patient/x`` references in ``raw`` to Patients neither in the export nor
        landed before (none when the export carries no Patient to check against)."""
        if not self.checks:
            return []
        bad = []
        for value in _REFERENCE.findall(raw):
            reference = value.decode("utf-8", errors="replace")
            if self.bundle is not None and reference in self.bundle.full_urls:
                continue
            match = _TYPED_REF.match(reference)
            if match is None or match["type"] != "Patient":
                continue
            if match["base"] and match["base"].startswith(_ABSOLUTE):
                continue  # another server's Patient: silver decides
            if not self._has_patient(match["id"]) and reference not in bad:
                bad.append(reference)
        return bad
