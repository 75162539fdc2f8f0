"""SSC 2012 3-hour and 6-hour bundle compliance, timed from septic-shock onset.

The Surviving Sepsis Campaign 2012 bundles (``domain.md`` §3.1) from the
``standard_therapy`` form. Time zero is the protocol's septic-shock onset (the start of
vasopressors, SSC 2012), the time the enrolment window runs from. A deadline is
inclusive: an element done exactly 3 h after onset is met. Something done *before*
onset (antibiotics started on the ward) meets its element.

Each element is ``met`` / ``not_met`` / ``not_applicable`` / ``unknown`` (a time or a
value the decision needs is not recorded), always with the reason:

=====  ====================================  ==========================================
 h     element                               applies when
=====  ====================================  ==========================================
≤3     lactate measured                      always
≤3     blood cultures before antibiotics     always (both times needed)
≤3     broad-spectrum antibiotics            always
≤3     30 mL/kg crystalloid                  hypotension, or lactate ≥ 4 mmol/L
≤6     vasopressors                          hypotension not responding to fluids
≤6     CVP and ScvO2 measured                hypotension after volume, or lactate ≥ 4
≤6     lactate re-measured                   initial lactate > 2 mmol/L ("elevated")
=====  ====================================  ==========================================

Every RUMCESS patient is in septic shock, i.e. hypotensive despite fluids, so
``hypotension`` defaults to True. The CVP (≥ 8 mmHg) and ScvO2 (≥ 70 %) targets are
reported in the reason; the element is about measuring them (as the bundle is).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trialdesk.clinical.timeutil import ensure_aware, format_duration, parse_aware

LACTATE_HIGH_MMOL_L = 4.0
LACTATE_ELEVATED_MMOL_L = 2.0
CRYSTALLOID_ML_PER_KG = 30.0
CVP_TARGET_MMHG = 8.0
SCVO2_TARGET_PERCENT = 70.0


class ElementStatus(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    NOT_APPLICABLE = "not_applicable"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BundleElement:
    id: str
    bundle_hours: int
    label: str
    status: ElementStatus
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "bundle_hours": self.bundle_hours, "label": self.label,
                "status": self.status.value, "reason": self.reason}


@dataclass(frozen=True)
class BundleCompliance:
    onset_at: dt.datetime
    elements: tuple[BundleElement, ...]

    def bundle(self, hours: int) -> tuple[BundleElement, ...]:
        return tuple(e for e in self.elements if e.bundle_hours == hours)

    def complete(self, hours: int) -> bool | None:
        """True when every applicable element of the bundle is met; None if any is unknown
        (and none is missed); False when one is not met."""
        statuses = {e.status for e in self.bundle(hours)}
        if ElementStatus.NOT_MET in statuses:
            return False
        if ElementStatus.UNKNOWN in statuses:
            return None
        return True

    def element(self, element_id: str) -> BundleElement:
        return next(e for e in self.elements if e.id == element_id)

    def to_dict(self) -> dict[str, Any]:
        return {"onset_at": self.onset_at.isoformat(),
                "complete_3h": self.complete(3), "complete_6h": self.complete(6),
                "elements": [e.to_dict() for e in self.elements]}


def _time(values: Mapping[str, Any], key: str) -> dt.datetime | None:
    value = values.get(key)
    if value is None:
        return None
    return parse_aware(value, field=key) if isinstance(value, str) else ensure_aware(value,
                                                                                    field=key)


def _number(values: Mapping[str, Any], key: str) -> float | None:
    value = values.get(key)
    if isinstance(value, Mapping):  # {"value", "unit"} as entered: only mmol/L numbers here
        return None
    return None if value is None else float(value)


def _rel(t: dt.datetime, onset: dt.datetime) -> str:
    d = t - onset
    return (f"{format_duration(d)} after onset" if d >= dt.timedelta(0)
            else f"{format_duration(-d)} before onset")


def _timed(element_id: str, hours: int, label: str, t: dt.datetime | None,
           onset: dt.datetime, what: str) -> BundleElement:
    if t is None:
        return BundleElement(element_id, hours, label, ElementStatus.UNKNOWN,
                             f"time of {what} not recorded")
    met = t <= onset + dt.timedelta(hours=hours)
    return BundleElement(element_id, hours, label,
                         ElementStatus.MET if met else ElementStatus.NOT_MET,
                         f"{what} {_rel(t, onset)} (deadline {hours} h)")


def bundle_compliance(values: Mapping[str, Any], onset_at: dt.datetime, *,
                      hypotension: bool = True) -> BundleCompliance:
    """Bundle elements from ``standard_therapy`` values (times aware or ISO strings;
    lactate in mmol/L, crystalloid in mL/kg) relative to ``onset_at``."""
    onset = ensure_aware(onset_at, field="onset_at")
    lactate = _number(values, "lactate_mmol_l")
    abx, cultures = _time(values, "antibiotics_first_dose_at"), _time(values,
                                                                      "blood_cultures_at")
    deadline3 = onset + dt.timedelta(hours=3)
    elements = [_timed("lactate_measured", 3, "Lactate measured",
                       _time(values, "lactate_measured_at"), onset, "lactate measured")]

    label = "Blood cultures before antibiotics"
    if cultures is None or abx is None:
        missing = " and ".join(w for w, t in (("blood cultures", cultures),
                                             ("first antibiotic", abx)) if t is None)
        elements.append(BundleElement("cultures_before_antibiotics", 3, label,
                                      ElementStatus.UNKNOWN, f"time of {missing} not recorded"))
    elif cultures > abx:
        elements.append(BundleElement("cultures_before_antibiotics", 3, label,
                                      ElementStatus.NOT_MET, "cultures drawn "
                                      f"{format_duration(cultures - abx)} after the first "
                                      "antibiotic dose"))
    elif cultures > deadline3:
        elements.append(BundleElement("cultures_before_antibiotics", 3, label,
                                      ElementStatus.NOT_MET, f"cultures {_rel(cultures, onset)}"
                                      " (deadline 3 h)"))
    else:
        elements.append(BundleElement("cultures_before_antibiotics", 3, label,
                                      ElementStatus.MET, f"cultures {_rel(cultures, onset)}, "
                                      "before the first antibiotic dose"))
    elements.append(_timed("antibiotics", 3, "Broad-spectrum antibiotics", abx, onset,
                           "first antibiotic dose"))

    label = f"{CRYSTALLOID_ML_PER_KG:g} mL/kg crystalloid"
    high_lactate = lactate is not None and lactate >= LACTATE_HIGH_MMOL_L
    fluids = _number(values, "crystalloid_ml_per_kg_3h")
    if not hypotension and lactate is None:
        elements.append(BundleElement("crystalloid", 3, label, ElementStatus.UNKNOWN,
                                      "no hypotension; initial lactate not recorded"))
    elif not hypotension and not high_lactate:
        elements.append(BundleElement("crystalloid", 3, label, ElementStatus.NOT_APPLICABLE,
                                      f"no hypotension and lactate {lactate:g} < "
                                      f"{LACTATE_HIGH_MMOL_L:g} mmol/L"))
    elif fluids is None:
        elements.append(BundleElement("crystalloid", 3, label, ElementStatus.UNKNOWN,
                                      "crystalloid volume in the first 3 h not recorded"))
    else:
        met = fluids >= CRYSTALLOID_ML_PER_KG
        elements.append(BundleElement("crystalloid", 3, label,
                                      ElementStatus.MET if met else ElementStatus.NOT_MET,
                                      f"{fluids:g} mL/kg in the first 3 h"))

    if hypotension:
        elements.append(_timed("vasopressors", 6, "Vasopressors for persistent hypotension",
                               _time(values, "vasopressor_start_at"), onset,
                               "vasopressor start"))
    else:
        elements.append(BundleElement("vasopressors", 6, "Vasopressors for persistent "
                                      "hypotension", ElementStatus.NOT_APPLICABLE,
                                      "no hypotension"))

    elements.append(_cvp_scvo2(values, onset, hypotension, lactate))
    elements.append(_repeat_lactate(values, onset, lactate))
    return BundleCompliance(onset, tuple(elements))


def _cvp_scvo2(values: Mapping[str, Any], onset: dt.datetime, hypotension: bool,
               lactate: float | None) -> BundleElement:
    label = "CVP and ScvO2 measured"
    if not hypotension and (lactate is None or lactate < LACTATE_HIGH_MMOL_L):
        status = ElementStatus.UNKNOWN if lactate is None else ElementStatus.NOT_APPLICABLE
        why = ("initial lactate not recorded" if lactate is None
               else f"no hypotension and lactate {lactate:g} < {LACTATE_HIGH_MMOL_L:g} mmol/L")
        return BundleElement("cvp_scvo2", 6, label, status, why)
    cvp, scvo2 = _number(values, "cvp_mmhg"), _number(values, "scvo2_percent")
    t_cvp, t_scvo2 = _time(values, "cvp_measured_at"), _time(values, "scvo2_measured_at")
    deadline = onset + dt.timedelta(hours=6)
    missing = [w for w, v, t in (("CVP", cvp, t_cvp), ("ScvO2", scvo2, t_scvo2))
               if v is None or t is None]
    late = [w for w, t in (("CVP", t_cvp), ("ScvO2", t_scvo2)) if t is not None and t > deadline]
    if late:
        return BundleElement("cvp_scvo2", 6, label, ElementStatus.NOT_MET,
                             f"{' and '.join(late)} measured after 6 h")
    if missing:
        return BundleElement("cvp_scvo2", 6, label, ElementStatus.UNKNOWN,
                             f"{' and '.join(missing)} value or time not recorded")
    cvp_sign = "≥" if cvp >= CVP_TARGET_MMHG else "<"
    scvo2_sign = "≥" if scvo2 >= SCVO2_TARGET_PERCENT else "<"
    targets = (f"CVP {cvp:g} mmHg ({cvp_sign} target {CVP_TARGET_MMHG:g}), "
               f"ScvO2 {scvo2:g} % ({scvo2_sign} target {SCVO2_TARGET_PERCENT:g})")
    return BundleElement("cvp_scvo2", 6, label, ElementStatus.MET,
                         f"measured within 6 h: {targets}")


def _repeat_lactate(values: Mapping[str, Any], onset: dt.datetime,
                    lactate: float | None) -> BundleElement:
    label = "Lactate re-measured if elevated"
    if lactate is None:
        return BundleElement("repeat_lactate", 6, label, ElementStatus.UNKNOWN,
                             "initial lactate not recorded")
    if lactate <= LACTATE_ELEVATED_MMOL_L:
        return BundleElement("repeat_lactate", 6, label, ElementStatus.NOT_APPLICABLE,
                             f"initial lactate {lactate:g} ≤ {LACTATE_ELEVATED_MMOL_L:g} "
                             "mmol/L (not elevated)")
    return _timed("repeat_lactate", 6, label, _time(values, "repeat_lactate_at"), onset,
                  "repeat lactate")
