"""From a pre-screening assessment to a screening record, with where each value came from.

When a coordinator opens a screening from the candidate board, the record is pre-filled
with the data the detector used, in the ``screen`` record format (docs/formats.md):
the onset field (a time with the site's UTC offset), the field that ``negated_by`` names
on the onset's ``event_recorded`` criterion (RUMCESS ``septic_shock``: true), the
neutrophil field (``{"value", "unit": "10^9/L"}``, or ``wbc_10e9_per_l`` and
``neutrophil_percent`` when the count came from a differential), the age criteria's
birth-date field and ``sex`` when the protocol has it. Field ids are read from the
protocol, never assumed.

Each pre-filled field gets a :class:`Provenance`: the value shown, its unit, the source
message (``Observation/abc``), the clinical time and a note. Nothing is filled that the
detector did not use (no consent, no exclusion flags: the coordinator records those).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from trialdesk.interop.events import PatientInfo
from trialdesk.prescreen.results import PatientAssessment
from trialdesk.protocol.schema import (
    AgeCriterion,
    EventRecordedCriterion,
    FieldType,
    MeasurementCriterion,
    Protocol,
)


@dataclass(frozen=True)
class Provenance:
    """Where one pre-filled value came from."""

    field: str
    value: Any
    unit: str
    source: str
    at_utc: dt.datetime | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "unit": self.unit,
                "source": self.source,
                "at_utc": self.at_utc.isoformat() if self.at_utc else None,
                "note": self.note}


@dataclass(frozen=True)
class Referral:
    """The pre-filled record and the provenance of each of its fields."""

    record: dict[str, Any]
    provenance: tuple[Provenance, ...]


def _fields(protocol: Protocol) -> tuple[str | None, str | None, str | None]:
    """(negated_by field of the onset criterion, neutrophil field, birth-date field)."""
    shock_flag = neutro = birth = None
    for _, crit in protocol.criteria:
        if isinstance(crit, EventRecordedCriterion) and crit.field == protocol.onset.field:
            shock_flag = shock_flag or crit.negated_by
        if isinstance(crit, MeasurementCriterion) and neutro is None:
            measures = {f.id: f.measure for f in protocol.screening_fields}
            if measures.get(crit.field) == "neutrophils":
                neutro = crit.field
        if isinstance(crit, AgeCriterion):
            birth = birth or crit.field
    return shock_flag, neutro, birth


def screening_referral(assessment: PatientAssessment, info: PatientInfo | None,
                       protocol: Protocol, timezone: str) -> Referral:
    """The record and provenance for a screening opened from ``assessment``.

    ``timezone`` is the site's IANA zone: the onset is written with the site's offset.
    """
    shock_flag, neutro_field, birth_field = _fields(protocol)
    fields = {f.id: f for f in protocol.screening_fields}
    record: dict[str, Any] = {}
    prov: list[Provenance] = []
    if assessment.onset_utc is not None:
        shock = assessment.check("shock_onset")
        start = next((d for d in shock.data_used if d.label.endswith(" start")), None)
        local = assessment.onset_utc.astimezone(ZoneInfo(timezone))
        record[protocol.onset.field] = local.isoformat()
        prov.append(Provenance(protocol.onset.field, local.isoformat(), "",
                               start.source if start else "", assessment.onset_utc,
                               shock.reason_in(timezone)))
        if shock_flag:
            record[shock_flag] = True
            prov.append(Provenance(shock_flag, True, "", start.source if start else "",
                                   assessment.onset_utc, shock.reason_in(timezone)))
        neutro = next((c for c in assessment.checks if c.id == "neutropenia"), None)
        if neutro_field and neutro is not None and neutro.data_used:
            points = {d.label: d for d in neutro.data_used}
            if "ANC" in points:
                anc = points["ANC"]
                record[neutro_field] = {"value": anc.value, "unit": anc.unit}
                prov.append(Provenance(neutro_field, anc.value, anc.unit, anc.source,
                                       anc.at_utc, neutro.reason_in(timezone)))
            elif "WBC" in points and "neutrophils %" in points:
                wbc, pct = points["WBC"], points["neutrophils %"]
                record["wbc_10e9_per_l"] = wbc.value
                record["neutrophil_percent"] = pct.value
                prov += [Provenance("wbc_10e9_per_l", wbc.value, wbc.unit, wbc.source,
                                    wbc.at_utc, neutro.reason_in(timezone)),
                         Provenance("neutrophil_percent", pct.value, pct.unit, pct.source,
                                    pct.at_utc, neutro.reason_in(timezone))]
    if info is not None:
        if birth_field and info.birth_date is not None:
            record[birth_field] = info.birth_date.isoformat()
            age = next((d for c in assessment.checks if c.id.startswith("age:")
                        for d in c.data_used), None)
            note = f"age {age.value:g} years at onset" if age is not None else ""
            prov.append(Provenance(birth_field, info.birth_date.isoformat(), "", info.source,
                                   None, note))
        sex = fields.get("sex")
        if sex is not None and sex.type is FieldType.CHOICE and info.sex:
            allowed = {c.id for c in sex.choices or ()}
            if info.sex in allowed:
                record["sex"] = info.sex
                prov.append(Provenance("sex", info.sex, "", info.source, None))
    return Referral(record, tuple(prov))
