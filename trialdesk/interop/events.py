"""The normalized clinical event stream that every ICU data source is turned into.

A FHIR Observation, a MIMIC-IV ``labevents`` row and a bulk NDJSON line all end up as
one :class:`ClinicalEvent`: patient id, time (aware, UTC), kind, value in the kind's
canonical unit, and a source reference (``Observation/abc``, ``labevents/123``) so
every number shown on the candidate board can be traced back to the message it came
from. Conversion and range checks are done here, once, with the clinical core's
:func:`~trialdesk.clinical.units.to_canonical` and
:func:`~trialdesk.clinical.units.check_range`.

Nothing unusable is silently dropped or silently used: an unknown code, an unknown
unit, an implausible value (500 neutrophils "×10^9/L") or a time without a UTC offset
is counted in the :class:`IngestReport` with an example message, and the value is not
used by the detector.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trialdesk.clinical.timeutil import format_utc
from trialdesk.clinical.units import check_range, normalize_unit, to_canonical
from trialdesk.eligibility.age import completed_years
from trialdesk.errors import InputRejected, UnknownUnit


class EventKind(StrEnum):
    """What a :class:`ClinicalEvent` measures; its canonical unit is in :data:`KIND_UNITS`."""

    MAP = "map"
    SBP = "sbp"
    LACTATE = "lactate"
    ANC = "anc"
    WBC = "wbc"
    NEUTROPHIL_PCT = "neutrophil_pct"
    GCS = "gcs"
    PAO2 = "pao2"
    FIO2 = "fio2"
    VASOPRESSOR = "vasopressor"


#: canonical unit of each kind's value (vasopressor: per drug, see :data:`DRUG_RATES`)
KIND_UNITS: dict[EventKind, str] = {
    EventKind.MAP: "mmHg", EventKind.SBP: "mmHg", EventKind.LACTATE: "mmol/L",
    EventKind.ANC: "10^9/L", EventKind.WBC: "10^9/L", EventKind.NEUTROPHIL_PCT: "%",
    EventKind.GCS: "points", EventKind.PAO2: "mmHg", EventKind.FIO2: "fraction",
}

#: kinds range-checked by :func:`to_canonical` (lab measures of the clinical core)
_LAB_MEASURES = {EventKind.LACTATE: "lactate", EventKind.ANC: "neutrophils",
                 EventKind.WBC: "wbc", EventKind.PAO2: "pao2"}

#: bedside kinds: (accepted unit keys → factor to canonical, low, high) in canonical units.
#: MAP 10–250 as in SOFA; SBP 20–300; a MAP of 0 or 801 mmHg is a flushed or
#: disconnected arterial line, not a patient, and is reported as implausible.
VITAL_RANGES: dict[EventKind, tuple[dict[str, float], float, float]] = {
    EventKind.MAP: ({"mmHg": 1.0}, 10.0, 250.0),
    EventKind.SBP: ({"mmHg": 1.0}, 20.0, 300.0),
    EventKind.NEUTROPHIL_PCT: ({"%": 1.0}, 0.0, 100.0),
    EventKind.GCS: ({"points": 1.0}, 3.0, 15.0),
    EventKind.FIO2: ({"fraction": 1.0, "%": 0.01}, 0.21, 1.0),
}

#: vasopressor drugs: canonical rate unit and plausible range (SOFA's µg/kg/min tops;
#: phenylephrine ≤ 20 µg/kg/min; vasopressin ≤ 10 units/h). Dobutamine is an inotrope:
#: it is ingested (SOFA uses it) but never starts a septic-shock onset.
DRUG_RATES: dict[str, tuple[str, float]] = {
    "norepinephrine": ("ug/kg/min", 5.0),
    "epinephrine": ("ug/kg/min", 5.0),
    "dopamine": ("ug/kg/min", 50.0),
    "phenylephrine": ("ug/kg/min", 20.0),
    "dobutamine": ("ug/kg/min", 40.0),
    "vasopressin": ("units/h", 10.0),
}
VASOPRESSORS: frozenset[str] = frozenset(DRUG_RATES) - {"dobutamine"}

#: UCUM and EHR spellings not known to :func:`normalize_unit`
_EXTRA_UNITS: dict[str, str] = {
    "mm[hg]": "mmHg", "mmhg": "mmHg", "mm hg": "mmHg", "{score}": "points", "1": "points",
    "score": "points", "points": "points", "%": "%", "percent": "%",
    "mcg/kg/min": "ug/kg/min", "ug/kg/min": "ug/kg/min", "µg/kg/min": "ug/kg/min",
    "ug/kg/min{}": "ug/kg/min", "ug/(kg.min)": "ug/kg/min", "units/hour": "units/h",
    "u/h": "units/h", "[iu]/h": "units/h", "units/h": "units/h", "u/hr": "units/h",
    "[u]/h": "units/h",
}


def unit_key(unit: str | None) -> str:
    """Our key for a unit spelling (UCUM ``mm[Hg]`` → ``mmHg``, ``K/uL`` → ``10^3/uL``)."""
    if unit is None:
        return ""
    text = unit.strip()
    return _EXTRA_UNITS.get(text.lower(), normalize_unit(text))


@dataclass(frozen=True)
class ClinicalEvent:
    """One charted value, normalized: what, when (UTC), how much (canonical unit), from where.

    ``recorded_utc`` is when the value became available (a lab's result time); it
    defaults to ``at_utc``. A vasopressor event carries the ``drug`` and the infusion's
    ``end_utc`` when known; its ``value`` is the rate. ``version`` orders re-sent
    messages with the same ``source`` (a corrected result replaces the earlier one).
    """

    patient_id: str
    at_utc: dt.datetime
    kind: EventKind
    value: float
    unit: str
    source: str
    recorded_utc: dt.datetime | None = None
    drug: str | None = None
    end_utc: dt.datetime | None = None
    version: str = ""

    @property
    def available_utc(self) -> dt.datetime:
        return self.recorded_utc or self.at_utc

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity for de-duplication: one value per source, kind (and patient)."""
        return (self.patient_id, self.source, self.kind.value)

    def describe(self) -> str:
        what = f"{self.drug} {self.value:g} {self.unit}" if self.drug else \
            f"{self.kind.value} {self.value:g} {self.unit}"
        return f"{what} at {format_utc(self.at_utc)} ({self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "at_utc": self.at_utc.isoformat(),
                "kind": self.kind.value, "value": self.value, "unit": self.unit,
                "source": self.source, "drug": self.drug,
                "recorded_utc": self.recorded_utc.isoformat() if self.recorded_utc else None,
                "end_utc": self.end_utc.isoformat() if self.end_utc else None}


@dataclass(frozen=True)
class PatientInfo:
    """Demographics needed for the age criteria, with their source.

    FHIR gives a birth date. MIMIC-IV gives only ``anchor_age`` in ``anchor_year``
    (dates are shifted for de-identification), so age at a time ``t`` is
    ``anchor_age + year(t) - anchor_year``: exact to within one year, and flagged so.
    """

    patient_id: str
    source: str
    birth_date: dt.date | None = None
    sex: str | None = None
    anchor_age_years: int | None = None
    anchor_year: int | None = None
    #: the managing organization (FHIR ``Patient.managingOrganization``), if sent
    organization: str | None = None

    def age_years_at(self, at: dt.datetime) -> tuple[int | None, str]:
        """Completed years at ``at`` and how they were obtained."""
        if self.birth_date is not None:
            return completed_years(self.birth_date, at.date()), (
                f"born {self.birth_date.isoformat()} ({self.source})")
        if self.anchor_age_years is not None and self.anchor_year is not None:
            years = self.anchor_age_years + at.year - self.anchor_year
            return years, (f"anchor age {self.anchor_age_years} in {self.anchor_year}, "
                           f"±1 year ({self.source})")
        return None, "no date of birth received"

    def to_dict(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "source": self.source,
                "birth_date": self.birth_date.isoformat() if self.birth_date else None,
                "sex": self.sex, "anchor_age_years": self.anchor_age_years,
                "anchor_year": self.anchor_year}


_EXAMPLES_PER_PROBLEM = 5


@dataclass
class IngestReport:
    """What came in and what could not be used, by reason (the never-silent record).

    ``accepted`` counts events by kind; ``unknown_codes`` the codes with no mapping
    (``loinc:8867-4``, ``itemid:220045``); ``unknown_units``, ``implausible``
    (values impossible in their unit, with ``LIKELY_WRONG_UNIT`` when another unit fits)
    and ``unusable`` (no time, no UTC offset, no subject, invalid resource, status
    entered-in-error) count by kind or reason; ``examples`` keeps a few messages each.
    """

    resources: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    unknown_codes: Counter[str] = field(default_factory=Counter)
    unknown_units: Counter[str] = field(default_factory=Counter)
    implausible: Counter[str] = field(default_factory=Counter)
    unusable: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, bucket: str, key: str, message: str | None = None, count: int = 1) -> None:
        getattr(self, bucket)[key] += count
        if message:
            shown = self.examples.setdefault(f"{bucket}:{key}", [])
            if len(shown) < _EXAMPLES_PER_PROBLEM:
                shown.append(message)

    @property
    def problems(self) -> int:
        return (sum(self.unknown_codes.values()) + sum(self.unknown_units.values())
                + sum(self.implausible.values()) + sum(self.unusable.values()))

    def merge(self, other: IngestReport) -> None:
        for name in ("resources", "accepted", "unknown_codes", "unknown_units",
                     "implausible", "unusable"):
            getattr(self, name).update(getattr(other, name))
        for key, messages in other.examples.items():
            shown = self.examples.setdefault(key, [])
            shown.extend(messages[:_EXAMPLES_PER_PROBLEM - len(shown)])

    def to_dict(self) -> dict[str, Any]:
        return {name: dict(sorted(getattr(self, name).items()))
                for name in ("resources", "accepted", "unknown_codes", "unknown_units",
                             "implausible", "unusable")} | {"examples": self.examples}

    def __str__(self) -> str:
        lines = [f"accepted {sum(self.accepted.values())} values "
                 f"({', '.join(f'{k} {v}' for k, v in sorted(self.accepted.items()))})"]
        for name in ("unknown_codes", "unknown_units", "implausible", "unusable"):
            counter = getattr(self, name)
            if counter:
                items = ", ".join(f"{k} {v}" for k, v in counter.most_common(8))
                lines.append(f"{name.replace('_', ' ')}: {sum(counter.values())} ({items})")
        return "\n".join(lines)


def canonical_value(kind: EventKind, value: float, unit: str | None,
                    drug: str | None = None) -> tuple[float, str]:
    """``value`` in ``unit`` converted to the kind's canonical unit and range-checked.

    Raises :class:`~trialdesk.errors.UnknownUnit`, :class:`ImplausibleValue` or
    :class:`LikelyWrongUnit` (all :class:`InputRejected`).
    """
    key = unit_key(unit)
    if kind in _LAB_MEASURES:
        return to_canonical(_LAB_MEASURES[kind], value, key, field=kind.value), KIND_UNITS[kind]
    if kind is EventKind.VASOPRESSOR:
        canonical_unit, top = DRUG_RATES[drug or ""]
        if key != canonical_unit:
            raise UnknownUnit(f"{drug} rate: unit '{unit}' is not accepted; use "
                              f"{canonical_unit}.", field="rate")
        return check_range(value, low=0, high=top, label=f"{drug} rate", unit=canonical_unit,
                           field="rate"), canonical_unit
    factors, low, high = VITAL_RANGES[kind]
    if kind is EventKind.GCS and key == "":
        key = "points"
    if kind is EventKind.FIO2 and key in ("", "points"):
        key = "%" if isinstance(value, int | float) and value > 1.0 else "fraction"
    if key not in factors:
        raise UnknownUnit(f"{kind.value}: unit '{unit}' is not accepted; use "
                          f"{', '.join(factors)}.", field=kind.value)
    checked = check_range(value * factors[key], low=low, high=high, label=kind.value,
                          unit=KIND_UNITS[kind], field=kind.value)
    if kind is EventKind.GCS and checked != int(checked):
        raise InputRejected(f"GCS {value:g} is not a whole number (3–15).", field="gcs")
    return checked, KIND_UNITS[kind]


def make_event(report: IngestReport, *, patient_id: str, at_utc: dt.datetime,
               kind: EventKind, value: Any, unit: str | None, source: str,
               recorded_utc: dt.datetime | None = None, drug: str | None = None,
               end_utc: dt.datetime | None = None, version: str = "") -> ClinicalEvent | None:
    """Build a normalized event, or count why it cannot be used and return None."""
    where = f"{source} ({kind.value}{' ' + drug if drug else ''})"
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            report.note("unusable", f"{kind.value}:no_number", f"{where}: value {value!r}")
            return None
    try:
        canonical, canonical_unit = canonical_value(kind, float(value), unit, drug)
    except UnknownUnit as exc:
        report.note("unknown_units", f"{kind.value}:{unit}", f"{where}: {exc.message}")
        return None
    except InputRejected as exc:
        report.note("implausible", f"{kind.value}:{exc.code}", f"{where}: {exc.message}")
        return None
    report.accepted[kind.value] += 1
    return ClinicalEvent(patient_id, at_utc, kind, canonical, canonical_unit, source,
                         recorded_utc, drug, end_utc, version)
