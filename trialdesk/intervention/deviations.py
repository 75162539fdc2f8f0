"""The MSC dose given (cells/kg) and the protocol deviations an infusion record shows.

Dose given
----------
Viable cells infused ÷ dosing weight (kg), by
:func:`trialdesk.clinical.dosing.delivered_dose_cells_per_kg`. The cells come from the
infusion form's ``cells_infused`` or, when only the volume is known, ``volume_infused_ml``
× the product's ``concentration_cells_per_ml``. Whether it lies in the protocol range is
:func:`trialdesk.clinical.dosing.check_dose_in_range` (inclusive at both ends, so
exactly 1.0 and 2.0 × 10^6 cells/kg are within 1–2 × 10^6).

Deviations (detected automatically, one per code)
-------------------------------------------------
===============================  =======  =============================================
code                             sev.     when
===============================  =======  =============================================
``MSC_IN_NON_MSC_ARM``           major    an infusion recorded for a subject of an arm
                                          without the MSC intervention
``INFUSION_LATE``                major    infusion start > onset + ``deadline_hours``
                                          (exactly at the deadline is on time)
``DOSE_BELOW_RANGE``             major    dose < ``min_cells_per_kg``
``DOSE_ABOVE_RANGE``             major    dose > ``max_cells_per_kg``
``PRODUCT_NOT_RELEASED``         major    infused while a release item other than
                                          viability/expiry failed or was pending
``PRODUCT_EXPIRED``              major    infusion start after the product's expiry
``VIABILITY_BELOW_MINIMUM``      major    viability < ``viability_min_percent``
``WEIGHT_BASIS_DIFFERENT``       minor    dosed on another weight basis than the protocol
``MSC_NOT_GIVEN``                major    an MSC-arm subject's dose recorded as not
                                          given (``msc_not_given``), with its reason
===============================  =======  =============================================

Product deviations are only raised once an infusion is recorded: a product that is
never given is not a deviation (the dose not given is: ``MSC_NOT_GIVEN``, whose reason
may be the failed release).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trialdesk.clinical.dosing import (
    DoseCheck,
    check_dose_in_range,
    delivered_dose_cells_per_kg,
    format_cells,
)
from trialdesk.clinical.timeutil import ensure_aware, format_duration
from trialdesk.crf.forms import MSC_NOT_GIVEN_REASONS
from trialdesk.intervention.release import ItemStatus, check_release, time_value
from trialdesk.protocol.schema import Protocol


class DeviationSeverity(StrEnum):
    MAJOR = "major"
    MINOR = "minor"


@dataclass(frozen=True)
class ProtocolDeviation:
    """One deviation: stable code, readable message, severity, the form that shows it."""

    code: str
    message: str
    severity: DeviationSeverity
    form: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "severity": self.severity.value,
                "form": self.form}


@dataclass(frozen=True)
class DoseGiven:
    cells_infused: float
    weight_kg: float
    dose_cells_per_kg: float
    cells_source: str
    check: DoseCheck

    def to_dict(self) -> dict[str, Any]:
        return {"cells_infused": self.cells_infused, "weight_kg": self.weight_kg,
                "dose_cells_per_kg": self.dose_cells_per_kg,
                "cells_source": self.cells_source, "in_range": self.check.in_range,
                "message": self.check.message}


def _number(values: Mapping[str, Any], key: str) -> float | None:
    value = values.get(key)
    if isinstance(value, Mapping):  # as entered with a unit: only canonical numbers here
        return None
    return None if value is None else float(value)


def dose_given(protocol: Protocol, infusion: Mapping[str, Any],
               product: Mapping[str, Any] | None) -> DoseGiven | None:
    """The dose in cells/kg from infusion (and product) values; None if it cannot be known.

    ``infusion`` holds canonical values (``weight_kg`` in kg).
    """
    weight = _number(infusion, "weight_kg")
    cells = _number(infusion, "cells_infused")
    source = "cells infused"
    if cells is None:
        volume = _number(infusion, "volume_infused_ml")
        concentration = _number(product or {}, "concentration_cells_per_ml")
        if volume is None or concentration is None:
            return None
        cells = volume * concentration
        source = (f"{volume:g} mL × {format_cells(concentration)} cells/mL of the product")
    if weight is None:
        return None
    dose = delivered_dose_cells_per_kg(cells, weight)
    spec = protocol.intervention.dose
    return DoseGiven(cells, weight, dose, source,
                     check_dose_in_range(dose, spec.min_cells_per_kg, spec.max_cells_per_kg))


def infusion_hours_after_onset(start: dt.datetime, onset: dt.datetime) -> float:
    return (ensure_aware(start, field="infusion_start_at")
            - ensure_aware(onset, field="onset_at")).total_seconds() / 3600


def not_given_deviation(protocol: Protocol, *, arm: str,
                        not_given: Mapping[str, Any]) -> ProtocolDeviation | None:
    """``MSC_NOT_GIVEN`` for an MSC-arm subject whose dose is recorded as not given."""
    if arm != protocol.intervention.arm:
        return None
    reason = dict(MSC_NOT_GIVEN_REASONS).get(not_given.get("reason"), "reason not given")
    detail = str(not_given.get("reason_detail") or "").strip()
    return ProtocolDeviation(
        "MSC_NOT_GIVEN", f"The allocated MSC dose was not given: {reason}"
        + (f" ({detail})" if detail else "") + ".", DeviationSeverity.MAJOR, "msc_not_given")


def detect_deviations(protocol: Protocol, *, arm: str, onset_at: dt.datetime | None,
                      infusion: Mapping[str, Any] | None,
                      product: Mapping[str, Any] | None,
                      not_given: Mapping[str, Any] | None = None,
                      ) -> tuple[ProtocolDeviation, ...]:
    """Every deviation the subject's MSC records show: ``MSC_NOT_GIVEN`` for a dose
    recorded as not given; the others only from an infusion record."""
    if not infusion:
        withheld = not_given_deviation(protocol, arm=arm, not_given=not_given) \
            if not_given else None
        return (withheld,) if withheld else ()
    spec = protocol.intervention
    major, minor = DeviationSeverity.MAJOR, DeviationSeverity.MINOR
    found: list[ProtocolDeviation] = []
    if arm != spec.arm:
        found.append(ProtocolDeviation(
            "MSC_IN_NON_MSC_ARM", f"An MSC infusion is recorded for a subject of the {arm} "
            f"arm, which does not receive MSC ({spec.arm} arm only).", major, "msc_infusion"))
    start = time_value(infusion, "infusion_start_at")
    if start is not None and onset_at is not None:
        deadline = ensure_aware(onset_at, field="onset_at") + dt.timedelta(
            hours=spec.deadline_hours_after_onset)
        if start > deadline:
            found.append(ProtocolDeviation(
                "INFUSION_LATE", f"Infusion started {format_duration(start - onset_at)} after "
                f"septic-shock onset, {format_duration(start - deadline)} after the "
                f"{spec.deadline_hours_after_onset:g}-h deadline.", major, "msc_infusion"))
    dose = dose_given(protocol, infusion, product)
    if dose is not None and not dose.check.in_range:
        code = ("DOSE_BELOW_RANGE" if dose.dose_cells_per_kg < spec.dose.min_cells_per_kg
                else "DOSE_ABOVE_RANGE")
        found.append(ProtocolDeviation(code, f"Dose given: {dose.check.message}.", major,
                                       "msc_infusion"))
    basis = infusion.get("weight_basis")
    if basis is not None and basis != spec.weight_basis:
        found.append(ProtocolDeviation(
            "WEIGHT_BASIS_DIFFERENT", f"Dosed by {basis} body weight; the protocol doses by "
            f"{spec.weight_basis} body weight.", minor, "msc_infusion"))
    if product:
        release = check_release(product, spec.release_criteria, at=start)
        others = [i for i in release.failing() if i.id not in ("viability", "expiry")]
        if others:
            found.append(ProtocolDeviation(
                "PRODUCT_NOT_RELEASED", "The product was infused without a complete release: "
                + "; ".join(f"{i.label.lower()} {i.detail}" for i in others) + ".",
                major, "msc_product"))
        for item_id, code in (("viability", "VIABILITY_BELOW_MINIMUM"),
                              ("expiry", "PRODUCT_EXPIRED")):
            item = next((i for i in release.items if i.id == item_id), None)
            if item is not None and item.status is ItemStatus.FAIL:
                found.append(ProtocolDeviation(code, f"{item.label}: {item.detail}.", major,
                                               "msc_product"))
    return tuple(found)
