"""HL7 FHIR R4 ingest: single resources, Bundles (transaction, batch, collection) and bulk NDJSON.

Which FHIR release module: ``fhir.resources`` 8.x models FHIR R5 by default; its
``fhir.resources.R4B`` subpackage models R4B (4.3.0), which for the resources used here
(Patient, Encounter, Observation, MedicationAdministration, Medication, Bundle) has the
same elements and cardinalities as R4 (4.0.1). We validate every resource with the
R4B model (the official R4 examples in ``../shared/data/fhir_r4_examples`` validate
with it) and read the values from the JSON itself, so nothing R5-specific (e.g. R5's
``MedicationAdministration.occurence[x]``) can creep in. A resource that does not
validate is counted as ``invalid_resource`` and not used.

Mapped codes (everything else is counted in ``unknown_codes``):

=====================  ===============================================================
kind                   LOINC (Observation.code, or a component code)
=====================  ===============================================================
map                    8478-0 mean blood pressure
sbp                    8480-6 systolic blood pressure (also as a component of the
                       85354-9 / 55284-4 blood pressure panels)
lactate                2524-7 (serum/plasma), 32693-4 (blood), 2518-9 (arterial),
                       2519-7 (venous)
anc                    751-8, 753-4, 26499-4 neutrophils [#/volume] in blood
wbc                    6690-2, 26464-8, 804-5 leukocytes [#/volume] in blood
neutrophil_pct         770-8, 26511-6, 23761-0 neutrophils/100 leukocytes
gcs                    9269-2 Glasgow coma score total
pao2                   2703-7 (arterial), 11556-8 (blood) oxygen partial pressure
fio2                   3150-0 inhaled oxygen concentration, 19994-3 (ventilator setting)
=====================  ===============================================================

MedicationAdministration: the drug from RxNorm (norepinephrine 7512, epinephrine 3992,
dopamine 3628, phenylephrine 8163, vasopressin 11149, dobutamine 3616) or, failing a
code, from the text/display (noradrenaline and adrenaline accepted); the rate from
``dosage.rateQuantity`` (or a ``rateRatio`` with a denominator of 1), in µg/kg/min
(vasopressin: units/h); the start from ``effectiveDateTime`` or
``effectivePeriod.start``. ``not-done`` / ``entered-in-error`` administrations are not
used; an Observation or administration re-sent as ``entered-in-error`` retracts the
earlier value from the same source.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialdesk.clinical.timeutil import parse_aware
from trialdesk.errors import InputRejected
from trialdesk.interop.events import (
    ClinicalEvent,
    EventKind,
    IngestReport,
    PatientInfo,
    make_event,
)

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

LOINC_KINDS: dict[str, EventKind] = {
    "8478-0": EventKind.MAP,
    "8480-6": EventKind.SBP,
    **dict.fromkeys(("2524-7", "32693-4", "2518-9", "2519-7"), EventKind.LACTATE),
    **dict.fromkeys(("751-8", "753-4", "26499-4"), EventKind.ANC),
    **dict.fromkeys(("6690-2", "26464-8", "804-5"), EventKind.WBC),
    **dict.fromkeys(("770-8", "26511-6", "23761-0"), EventKind.NEUTROPHIL_PCT),
    "9269-2": EventKind.GCS,
    **dict.fromkeys(("2703-7", "11556-8"), EventKind.PAO2),
    **dict.fromkeys(("3150-0", "19994-3"), EventKind.FIO2),
}
#: panels whose components carry the values (the panel code itself is not a value)
PANEL_CODES = frozenset({"85354-9", "55284-4"})

RXNORM_DRUGS: dict[str, str] = {
    "7512": "norepinephrine", "3992": "epinephrine", "3628": "dopamine",
    "8163": "phenylephrine", "11149": "vasopressin", "3616": "dobutamine",
}
_DRUG_WORDS: dict[str, str] = {
    "norepinephrine": "norepinephrine", "noradrenaline": "norepinephrine",
    "epinephrine": "epinephrine", "adrenaline": "epinephrine", "dopamine": "dopamine",
    "phenylephrine": "phenylephrine", "vasopressin": "vasopressin",
    "dobutamine": "dobutamine",
}

_USABLE_OBSERVATION = {"registered", "preliminary", "final", "amended", "corrected"}
_USABLE_ADMINISTRATION = {"in-progress", "completed", "on-hold", "stopped", "unknown"}
_RETRACTING = {"entered-in-error"}
SUPPORTED_TYPES = ("Patient", "Encounter", "Observation", "MedicationAdministration",
                   "Medication", "Bundle")


@dataclass
class IngestResult:
    """Events, patients, retracted sources and the report of one ingest call."""

    events: list[ClinicalEvent] = field(default_factory=list)
    patients: dict[str, PatientInfo] = field(default_factory=dict)
    encounters: list[dict[str, Any]] = field(default_factory=list)
    #: sources (``Observation/abc``) whose earlier values are withdrawn
    retracted: list[str] = field(default_factory=list)
    report: IngestReport = field(default_factory=IngestReport)

    def extend(self, other: IngestResult) -> None:
        self.events += other.events
        self.patients.update(other.patients)
        self.encounters += other.encounters
        self.retracted += other.retracted
        self.report.merge(other.report)


def _validate(resource: dict[str, Any], report: IngestReport) -> bool:
    """Validate against the FHIR R4B model (see module docstring); count failures."""
    from fhir.resources.R4B import get_fhir_model_class

    rtype = resource.get("resourceType")
    try:
        get_fhir_model_class(rtype).model_validate(resource)
    except Exception as exc:  # pydantic ValidationError and friends: report, not crash
        first = str(exc).splitlines()
        report.note("unusable", f"invalid_resource:{rtype}",
                    f"{rtype}/{resource.get('id', '?')}: {' '.join(first[:3])[:300]}")
        return False
    return True


def _codings(concept: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    out = []
    for coding in (concept or {}).get("coding", []) or []:
        out.append((coding.get("system", ""), str(coding.get("code", "")),
                    coding.get("display", "")))
    return out


def _subject_id(reference: dict[str, Any] | None, aliases: dict[str, str]) -> str | None:
    ref = (reference or {}).get("reference")
    if not ref:
        return None
    if ref in aliases:
        return aliases[ref]
    if ref.startswith("Patient/"):
        return ref.split("/")[1]
    return ref


def _time(value: str | None, what: str, report: IngestReport) -> dt.datetime | None:
    if not value:
        report.note("unusable", "no_time", f"{what}: no effective time")
        return None
    if len(value) <= 10:
        report.note("unusable", "date_without_time",
                    f"{what}: '{value}' is a date without a time; it cannot time a "
                    "septic-shock onset")
        return None
    try:
        return parse_aware(value, field=what)
    except InputRejected as exc:
        report.note("unusable", exc.code.lower(), f"{what}: {exc.message}")
        return None


def organization_of(reference: dict[str, Any] | None) -> str | None:
    """The organization a Reference names: the id of ``Organization/<id>``, else the
    identifier's value, else the display text (used to map a patient to a trial site)."""
    if not reference:
        return None
    ref = reference.get("reference") or ""
    if ref.startswith("Organization/"):
        return ref.split("/", 1)[1] or None
    value = (reference.get("identifier") or {}).get("value")
    return value or reference.get("display") or None


def _effective_start(resource: dict[str, Any]) -> str | None:
    for key in ("effectiveDateTime", "effectiveInstant"):
        if resource.get(key):
            return resource[key]
    period = resource.get("effectivePeriod") or {}
    return period.get("start")


class FhirIngestor:
    """Turn FHIR R4 JSON into :class:`ClinicalEvent` s (one instance per ingest call)."""

    def __init__(self) -> None:
        self.result = IngestResult()
        self._aliases: dict[str, str] = {}
        self._medications: dict[str, dict[str, Any]] = {}

    @property
    def report(self) -> IngestReport:
        return self.result.report

    # --- entry points -------------------------------------------------------------

    def add(self, resource: Any) -> None:
        """Ingest one resource or Bundle given as parsed JSON."""
        if not isinstance(resource, dict) or "resourceType" not in resource:
            self.report.note("unusable", "not_a_resource",
                             f"expected a FHIR resource object, got {str(resource)[:80]}")
            return
        rtype = resource["resourceType"]
        self.report.resources[rtype] += 1
        if rtype not in SUPPORTED_TYPES:
            self.report.note("unusable", f"unsupported_resource:{rtype}",
                             f"{rtype}/{resource.get('id', '?')}: not used for pre-screening")
            return
        if not _validate(resource, self.report):
            return
        if rtype == "Bundle":
            self._bundle(resource)
        else:
            getattr(self, f"_{rtype.lower()}")(resource)

    def _bundle(self, bundle: dict[str, Any]) -> None:
        entries = bundle.get("entry", []) or []
        for entry in entries:  # first pass: aliases for urn:uuid references
            res = entry.get("resource") or {}
            if res.get("resourceType") == "Patient" and entry.get("fullUrl"):
                self._aliases[entry["fullUrl"]] = res.get("id") or entry["fullUrl"]
            if res.get("resourceType") == "Medication":
                for key in (entry.get("fullUrl"), f"Medication/{res.get('id')}"):
                    if key:
                        self._medications[key] = res
        for entry in entries:
            method = (entry.get("request") or {}).get("method", "").upper()
            if method == "DELETE":
                self.report.note("unusable", "delete_request",
                                 f"DELETE {entry['request'].get('url')}: deletions are not "
                                 "applied; send the resource with status entered-in-error")
                continue
            if "resource" in entry:
                self.add(entry["resource"])

    # --- resources ----------------------------------------------------------------

    def _patient(self, res: dict[str, Any]) -> None:
        pid = res.get("id")
        if not pid:
            self.report.note("unusable", "patient_without_id", "Patient without id")
            return
        birth = None
        text = res.get("birthDate")
        if text:
            try:
                birth = dt.date.fromisoformat(text) if len(text) == 10 else None
            except ValueError:
                birth = None
            if birth is None:
                self.report.note("unusable", "partial_birth_date",
                                 f"Patient/{pid}: birthDate '{text}' is not a full date")
        self.result.patients[pid] = PatientInfo(
            pid, f"Patient/{pid}", birth_date=birth, sex=res.get("gender"),
            organization=organization_of(res.get("managingOrganization")))
        self.report.accepted["patient"] += 1

    def _encounter(self, res: dict[str, Any]) -> None:
        pid = _subject_id(res.get("subject"), self._aliases)
        period = res.get("period") or {}
        self.result.encounters.append({"source": f"Encounter/{res.get('id')}",
                                       "patient_id": pid, "status": res.get("status"),
                                       "start": period.get("start"), "end": period.get("end"),
                                       "service_provider":
                                           organization_of(res.get("serviceProvider"))})
        self.report.accepted["encounter"] += 1

    def _medication(self, res: dict[str, Any]) -> None:
        self._medications[f"Medication/{res.get('id')}"] = res
        self.report.accepted["medication"] += 1

    def _observation(self, res: dict[str, Any]) -> None:
        source = f"Observation/{res.get('id', '?')}"
        status = res.get("status", "")
        if status in _RETRACTING:
            self.result.retracted.append(source)
            self.report.note("unusable", f"status:{status}", f"{source}: retracted")
            return
        if status not in _USABLE_OBSERVATION:
            self.report.note("unusable", f"status:{status}", f"{source}: status {status}")
            return
        pid = _subject_id(res.get("subject"), self._aliases)
        if pid is None:
            self.report.note("unusable", "no_subject", f"{source}: no subject")
            return
        values: list[tuple[EventKind, dict[str, Any], str]] = []
        code = self._loinc_kind(res.get("code"), source, allow_panel=True)
        if code is not None and "valueQuantity" in res:
            values.append((code, res["valueQuantity"], source))
        elif code is not None:
            self.report.note("unusable", f"{code.value}:no_value", f"{source}: no valueQuantity")
        for i, comp in enumerate(res.get("component", []) or []):
            kind = self._loinc_kind(comp.get("code"), f"{source} component {i}")
            if kind is not None and "valueQuantity" in comp:
                values.append((kind, comp["valueQuantity"], f"{source}#component[{i}]"))
        if not values:
            return
        at = _time(_effective_start(res), source, self.report)
        if at is None:
            return
        issued = res.get("issued")
        recorded = None
        if issued:
            try:
                recorded = parse_aware(issued, field="issued")
            except InputRejected:
                recorded = None
        version = str((res.get("meta") or {}).get("lastUpdated")
                      or (res.get("meta") or {}).get("versionId") or "")
        for kind, quantity, src in values:
            event = make_event(self.report, patient_id=pid, at_utc=at, kind=kind,
                               value=quantity.get("value"),
                               unit=quantity.get("code") or quantity.get("unit"),
                               source=src, recorded_utc=recorded, version=version)
            if event is not None:
                self.result.events.append(event)

    def _loinc_kind(self, concept: dict[str, Any] | None, where: str,
                    allow_panel: bool = False) -> EventKind | None:
        codings = _codings(concept)
        for system, code, _ in codings:
            if system == LOINC and code in LOINC_KINDS:
                return LOINC_KINDS[code]
        if allow_panel and any(s == LOINC and c in PANEL_CODES for s, c, _ in codings):
            return None
        shown = next(((s, c, d) for s, c, d in codings if s == LOINC), None) or \
            (codings[0] if codings else ("", "(no code)", ""))
        system, code, display = shown
        prefix = "loinc" if system == LOINC else (system or "nosystem")
        if allow_panel or code != "(no code)":
            self.report.note("unknown_codes", f"{prefix}:{code}",
                             f"{where}: {prefix} {code} {display}".strip())
        return None

    def _drug(self, res: dict[str, Any]) -> tuple[str | None, str]:
        concept = res.get("medicationCodeableConcept")
        if concept is None and res.get("medicationReference"):
            ref = res["medicationReference"].get("reference", "")
            contained = {f"#{c.get('id')}": c for c in res.get("contained", []) or []}
            medication = contained.get(ref) or self._medications.get(ref)
            concept = (medication or {}).get("code")
            if concept is None:
                return None, f"unresolved medicationReference {ref}"
        for system, code, _ in _codings(concept):
            if system == RXNORM and code in RXNORM_DRUGS:
                return RXNORM_DRUGS[code], ""
        words = " ".join([(concept or {}).get("text", "")]
                         + [d for _, _, d in _codings(concept)]).lower()
        for word, drug in _DRUG_WORDS.items():
            if word in words:
                return drug, ""
        codes = ", ".join(f"{s.rsplit('/', 1)[-1]} {c}" for s, c, _ in _codings(concept))
        return None, (codes or words or "no medication code")

    def _medicationadministration(self, res: dict[str, Any]) -> None:
        source = f"MedicationAdministration/{res.get('id', '?')}"
        status = res.get("status", "")
        if status in _RETRACTING:
            self.result.retracted.append(source)
            self.report.note("unusable", f"status:{status}", f"{source}: retracted")
            return
        if status not in _USABLE_ADMINISTRATION:
            self.report.note("unusable", f"status:{status}", f"{source}: status {status}")
            return
        drug, problem = self._drug(res)
        if drug is None:
            self.report.note("unknown_codes", f"medication:{problem[:60]}",
                             f"{source}: medication not a vasopressor we know ({problem})")
            return
        pid = _subject_id(res.get("subject"), self._aliases)
        if pid is None:
            self.report.note("unusable", "no_subject", f"{source}: no subject")
            return
        at = _time(_effective_start(res), source, self.report)
        if at is None:
            return
        end = None
        end_text = (res.get("effectivePeriod") or {}).get("end")
        if end_text:
            try:
                end = parse_aware(end_text, field="effectivePeriod.end")
            except InputRejected:
                end = None
        dosage = res.get("dosage") or {}
        rate, unit = None, None
        if "rateQuantity" in dosage:
            rate = dosage["rateQuantity"].get("value")
            unit = dosage["rateQuantity"].get("code") or dosage["rateQuantity"].get("unit")
        elif "rateRatio" in dosage:
            num = dosage["rateRatio"].get("numerator") or {}
            den = dosage["rateRatio"].get("denominator") or {}
            if den.get("value") in (1, 1.0, None):
                rate = num.get("value")
                unit = f"{num.get('code') or num.get('unit')}/{den.get('code') or den.get('unit')}"
        if rate is None:
            self.report.note("unusable", "vasopressor:no_rate",
                             f"{source}: {drug} without dosage.rateQuantity")
            return
        version = str((res.get("meta") or {}).get("lastUpdated") or "")
        event = make_event(self.report, patient_id=pid, at_utc=at,
                           kind=EventKind.VASOPRESSOR, value=rate, unit=unit, source=source,
                           drug=drug, end_utc=end, version=version)
        if event is not None:
            self.result.events.append(event)



def ingest_resources(resources: Iterable[Any]) -> IngestResult:
    """Ingest parsed FHIR JSON objects (resources or Bundles)."""
    ingestor = FhirIngestor()
    for resource in resources:
        ingestor.add(resource)
    return ingestor.result


def ingest_json(text: str | bytes) -> IngestResult:
    """Ingest one JSON document: a resource or a Bundle."""
    ingestor = FhirIngestor()
    try:
        data = json.loads(text)
    except ValueError as exc:
        ingestor.report.note("unusable", "invalid_json", f"not JSON: {exc}")
        return ingestor.result
    ingestor.add(data)
    return ingestor.result


def iter_ndjson(lines: Iterable[str], report: IngestReport) -> Iterator[Any]:
    """Parse bulk-data NDJSON (one resource per line); bad lines are counted by line number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as exc:
            report.note("unusable", "invalid_json", f"line {number}: {exc}")


def ingest_ndjson(path: str | Path) -> IngestResult:
    """Ingest a FHIR bulk-data NDJSON file (``.ndjson``), streaming line by line."""
    ingestor = FhirIngestor()
    with open(path, encoding="utf-8") as handle:
        for resource in iter_ndjson(handle, ingestor.report):
            ingestor.add(resource)
    return ingestor.result
