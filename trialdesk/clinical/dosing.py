"""MSC dose from body weight: cells, protocol range and infusion volume.

RUMCESS gives 1 × 10^6 viable MSCs per kg (registry range 1–2 × 10^6 cells/kg/day,
``domain.md`` §1.1, §6.1). Doses are in **viable cells** and **cells/kg**; weights in
**kg**; concentrations in **cells/mL**; volumes in **mL**; heights in **cm**.

Which weight is a protocol decision (§6.1): most trials use actual body weight, START
used predicted body weight, and septic-shock patients gain weight with resuscitation.
So the weight basis travels with every dose (:class:`DosingWeight`) and is printed in
every message. A weight typed in the wrong unit (grams, pounds) changes the dose by a
factor of 1000 or 2.2, so values outside the plausible adult range are refused with a
hint naming the likely unit rather than dosed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trialdesk.clinical.units import check_range, to_canonical
from trialdesk.errors import ImplausibleValue, LikelyWrongUnit, MissingValue

LB_TO_KG = 0.45359237
#: Plausible adult height for the ARDSnet formula, cm.
HEIGHT_RANGE_CM = (120.0, 230.0)
#: Plausible per-kg MSC doses (clinical trials span 0.3–10 × 10^6 cells/kg), cells/kg.
CELLS_PER_KG_RANGE = (1.0e4, 1.0e8)
#: Plausible MSC product concentration, viable cells/mL.
CONCENTRATION_RANGE = (1.0e4, 1.0e8)
#: Relative tolerance at the protocol-range boundaries, so that a dose computed as
#: 140e6 cells / 70 kg is not "above 2×10^6 cells/kg" by a floating-point rounding error.
BOUNDARY_RTOL = 1e-9


class WeightBasis(StrEnum):
    """Which body weight the dose per kg is multiplied by."""

    ACTUAL = "actual"
    PREDICTED = "predicted"


class Sex(StrEnum):
    """Sex as used by the predicted-body-weight formula (same ids as the screening form)."""

    MALE = "male"
    FEMALE = "female"


_SEX_ALIASES = {"male": Sex.MALE, "m": Sex.MALE, "female": Sex.FEMALE, "f": Sex.FEMALE}


# --- formatting ----------------------------------------------------------------------


def _number(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` significant figures (whole numbers stay whole), no trailing zeros."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_cells(n: float, *, digits: int = 3) -> str:
    """Cells in the clinical "×10^6" notation: 7.0e7 → ``"70×10^6"``, 1.4e6 → ``"1.4×10^6"``."""
    return f"{_number(n / 1e6, digits)}×10^6"


def format_cell_range(low: float, high: float, *, digits: int = 3) -> str:
    """A range in ×10^6: (1e6, 2e6) → ``"1–2×10^6"``."""
    return f"{_number(low / 1e6, digits)}–{_number(high / 1e6, digits)}×10^6"


def _kg(x: float) -> str:
    return _number(x, 4)


# --- weight ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DosingWeight:
    """The weight (kg) a per-kg dose is multiplied by, its basis, and how it was obtained."""

    weight_kg: float
    basis: WeightBasis
    detail: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight_kg",
                           to_canonical("weight", self.weight_kg, "kg", field="weight_kg"))
        try:
            object.__setattr__(self, "basis", WeightBasis(self.basis))
        except ValueError:
            raise ImplausibleValue(f"weight basis '{self.basis}' is not one of actual, "
                                   "predicted.", field="basis") from None

    def __str__(self) -> str:
        return f"{_kg(self.weight_kg)} kg ({self.detail})"

    def to_dict(self) -> dict[str, Any]:
        return {"weight_kg": self.weight_kg, "basis": self.basis.value, "detail": self.detail}


def _check_weight(value: float, low: float, high: float) -> float:
    try:
        return check_range(value, low=low, high=high, label="actual body weight", unit="kg",
                           field="actual_weight_kg")
    except ImplausibleValue:
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value)
        ):
            raise
        for unit, factor, name in (("g", 1e-3, "grams"), ("lb", LB_TO_KG, "pounds")):
            if value > high and low <= value * factor <= high:
                raise LikelyWrongUnit(
                    f"actual body weight: {value:g} kg is outside the plausible adult range "
                    f"{low:g}–{high:g} kg; it looks like {name} ({value:g} {unit} = "
                    f"{_kg(value * factor)} kg). Re-enter the weight in kg.",
                    field="actual_weight_kg",
                ) from None
        raise ImplausibleValue(
            f"actual body weight: {value:g} kg is outside the plausible adult range "
            f"{low:g}–{high:g} kg; check the value and whether it was entered in lb or g "
            "instead of kg.",
            field="actual_weight_kg",
        ) from None


def _check_height(value: float) -> float:
    low, high = HEIGHT_RANGE_CM
    try:
        return check_range(value, low=low, high=high, label="height", unit="cm",
                           field="height_cm")
    except ImplausibleValue:
        if isinstance(value, int | float) and not isinstance(value, bool):
            for factor, name in ((100.0, "metres"), (2.54, "inches")):
                if low <= value * factor <= high:
                    raise LikelyWrongUnit(
                        f"height: {value:g} cm is outside {low:g}–{high:g} cm; it looks like "
                        f"{name} ({_kg(value * factor)} cm). Re-enter the height in cm.",
                        field="height_cm",
                    ) from None
        raise


def _sex(value: Sex | str | None) -> Sex:
    if value is None:
        raise MissingValue("predicted body weight needs the patient's sex (male/female).",
                           field="sex")
    try:
        return _SEX_ALIASES[str(value).strip().lower()]
    except KeyError:
        raise ImplausibleValue(f"sex '{value}' is not male or female.", field="sex") from None


def predicted_body_weight_kg(height_cm: float, sex: Sex | str) -> float:
    """ARDSnet predicted body weight, kg: male 50, female 45.5, + 0.91 × (height_cm − 152.4).

    Height must be 120–230 cm (a height in metres or inches is refused with a hint).
    Rounded to 0.01 kg.
    """
    height = _check_height(height_cm)
    base = 50.0 if _sex(sex) is Sex.MALE else 45.5
    return round(base + 0.91 * (height - 152.4), 2)


def dosing_weight_kg(
    actual_weight_kg: float,
    *,
    basis: WeightBasis | str = WeightBasis.ACTUAL,
    height_cm: float | None = None,
    sex: Sex | str | None = None,
    plausible_range_kg: tuple[float, float] = (30.0, 250.0),
) -> DosingWeight:
    """The weight to dose by, in kg, after refusing implausible input.

    The actual weight is always required and checked against ``plausible_range_kg``
    (inclusive; protocol ``intervention.plausible_weight_kg``): 150000 is refused as
    "looks like grams", 330 as "looks like pounds". A weight in lb that is also a
    plausible number of kg (154 lb) cannot be detected. For the predicted basis,
    ``height_cm`` and ``sex`` are required and the actual weight is kept in ``detail``.
    """
    low, high = plausible_range_kg
    if not 0 < low < high:
        raise ImplausibleValue(
            f"plausible weight range {low:g}–{high:g} kg is not a range of positive weights.",
            field="plausible_range_kg",
        )
    try:
        chosen = WeightBasis(basis)
    except ValueError:
        raise ImplausibleValue(f"weight basis '{basis}' is not one of actual, predicted.",
                               field="basis") from None
    actual = _check_weight(actual_weight_kg, low, high)
    if chosen is WeightBasis.ACTUAL:
        return DosingWeight(actual, chosen, "actual body weight")
    if height_cm is None:
        raise MissingValue("predicted body weight needs the height in cm.", field="height_cm")
    patient_sex = _sex(sex)
    pbw = predicted_body_weight_kg(height_cm, patient_sex)
    base = "50" if patient_sex is Sex.MALE else "45.5"
    return DosingWeight(
        pbw, chosen,
        f"predicted body weight (ARDSnet, {patient_sex}, {float(height_cm):g} cm: "
        f"{base} + 0.91 × ({float(height_cm):g} − 152.4)); actual {_kg(actual)} kg",
    )


# --- dose ------------------------------------------------------------------------------


def _check_cells(value: float, *, low: float, high: float, label: str, unit: str,
                 field: str) -> float:
    """check_range, plus a hint when the value was typed in millions (2 for 2×10^6)."""
    try:
        return check_range(value, low=low, high=high, label=label, unit=unit, field=field)
    except ImplausibleValue:
        if (isinstance(value, int | float) and not isinstance(value, bool)
                and 0 < value < low and low <= value * 1e6 <= high):
            raise LikelyWrongUnit(
                f"{label}: {value:g} {unit} is outside {format_cell_range(low, high)} {unit}; "
                f"it looks like a value in ×10^6 {unit} ({format_cells(value * 1e6)} {unit}). "
                f"Enter the full number, e.g. {value * 1e6:,.0f}.",
                field=field,
            ) from None
        raise


@dataclass(frozen=True)
class MscDose:
    """Absolute viable-cell numbers for one dose, and the volume to draw up if known."""

    weight: DosingWeight
    target_cells_per_kg: float
    min_cells_per_kg: float
    max_cells_per_kg: float
    target_cells: float
    min_cells: float
    max_cells: float
    concentration_cells_per_ml: float | None = None
    volume_ml: float | None = None

    def __str__(self) -> str:
        text = (f"{format_cells(self.target_cells)} viable cells "
                f"({format_cells(self.target_cells_per_kg)} cells/kg × {self.weight}); "
                f"protocol range {format_cell_range(self.min_cells, self.max_cells)} cells")
        if self.volume_ml is not None and self.concentration_cells_per_ml is not None:
            text += (f"; {_number(self.volume_ml, 3)} mL at "
                     f"{format_cells(self.concentration_cells_per_ml)} cells/mL")
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight.to_dict(),
            "target_cells_per_kg": self.target_cells_per_kg,
            "min_cells_per_kg": self.min_cells_per_kg,
            "max_cells_per_kg": self.max_cells_per_kg,
            "target_cells": self.target_cells,
            "min_cells": self.min_cells,
            "max_cells": self.max_cells,
            "concentration_cells_per_ml": self.concentration_cells_per_ml,
            "volume_ml": self.volume_ml,
        }


def compute_msc_dose(
    weight: DosingWeight,
    *,
    target_cells_per_kg: float = 1.0e6,
    min_cells_per_kg: float = 1.0e6,
    max_cells_per_kg: float = 2.0e6,
    concentration_cells_per_ml: float | None = None,
) -> MscDose:
    """Viable cells to give (target, min, max) = cells/kg × ``weight.weight_kg``.

    ``volume_ml`` = target cells / ``concentration_cells_per_ml`` (viable cells per mL
    of product), None without a concentration. Refuses a target outside [min, max],
    per-kg doses outside 10^4–10^8 cells/kg and concentrations outside 10^4–10^8
    cells/mL (a value typed in millions, "2" for 2×10^6, gets a hint).
    """
    low, high = CELLS_PER_KG_RANGE
    per_kg = {
        name: _check_cells(value, low=low, high=high, label=name.replace("_", " "),
                           unit="cells/kg", field=name)
        for name, value in (("target_cells_per_kg", target_cells_per_kg),
                            ("min_cells_per_kg", min_cells_per_kg),
                            ("max_cells_per_kg", max_cells_per_kg))
    }
    target, lo, hi = (per_kg["target_cells_per_kg"], per_kg["min_cells_per_kg"],
                      per_kg["max_cells_per_kg"])
    if not lo <= target <= hi:
        raise ImplausibleValue(
            f"target dose {format_cells(target)} cells/kg is outside the protocol range "
            f"{format_cell_range(lo, hi)} cells/kg; check the dose settings.",
            field="target_cells_per_kg",
        )
    volume: float | None = None
    concentration: float | None = None
    if concentration_cells_per_ml is not None:
        c_low, c_high = CONCENTRATION_RANGE
        concentration = _check_cells(concentration_cells_per_ml, low=c_low, high=c_high,
                                     label="cell concentration", unit="cells/mL",
                                     field="concentration_cells_per_ml")
        volume = target * weight.weight_kg / concentration
    kg = weight.weight_kg
    return MscDose(weight, target, lo, hi, round(target * kg), round(lo * kg), round(hi * kg),
                   concentration, None if volume is None else round(volume, 2))


def delivered_dose_cells_per_kg(viable_cells: float, weight_kg: float) -> float:
    """Delivered dose, cells/kg = viable cells infused / dosing weight (kg)."""
    cells = check_range(viable_cells, low=0, high=1e11, label="viable cells infused",
                        unit="cells", field="viable_cells")
    weight = to_canonical("weight", weight_kg, "kg", field="weight_kg")
    return cells / weight


@dataclass(frozen=True)
class DoseCheck:
    """Whether a delivered dose (cells/kg) lies in the protocol range, with a readable message."""

    in_range: bool
    message: str
    dose_cells_per_kg: float
    min_cells_per_kg: float
    max_cells_per_kg: float

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"in_range": self.in_range, "message": self.message,
                "dose_cells_per_kg": self.dose_cells_per_kg,
                "min_cells_per_kg": self.min_cells_per_kg,
                "max_cells_per_kg": self.max_cells_per_kg}


def _distinct(dose: float, bound: float) -> str:
    """Format ``dose`` with enough digits that it does not print as ``bound``."""
    for digits in range(3, 13):
        text = format_cells(dose, digits=digits)
        if text != format_cells(bound, digits=digits):
            return text
    return format_cells(dose, digits=12)


def check_dose_in_range(
    dose_cells_per_kg: float, min_cells_per_kg: float, max_cells_per_kg: float
) -> DoseCheck:
    """Is ``dose_cells_per_kg`` within [min, max] (inclusive, relative tolerance 1e-9)?

    Message like "1.4×10^6 cells/kg is within the protocol range 1–2×10^6 cells/kg".
    """
    dose = check_range(dose_cells_per_kg, low=0, high=CELLS_PER_KG_RANGE[1],
                       label="delivered dose", unit="cells/kg", field="dose_cells_per_kg")
    if not 0 < min_cells_per_kg <= max_cells_per_kg:
        raise ImplausibleValue(
            f"protocol range {min_cells_per_kg:g}–{max_cells_per_kg:g} cells/kg is not a "
            "range of positive doses.",
            field="min_cells_per_kg",
        )
    span = f"the protocol range {format_cell_range(min_cells_per_kg, max_cells_per_kg)} cells/kg"
    if dose < min_cells_per_kg * (1 - BOUNDARY_RTOL):
        in_range = False
        message = f"{_distinct(dose, min_cells_per_kg)} cells/kg is below {span}"
    elif dose > max_cells_per_kg * (1 + BOUNDARY_RTOL):
        in_range = False
        message = f"{_distinct(dose, max_cells_per_kg)} cells/kg is above {span}"
    else:
        in_range = True
        message = f"{format_cells(dose)} cells/kg is within {span}"
    return DoseCheck(in_range, message, dose, float(min_cells_per_kg), float(max_cells_per_kg))
