"""Units of the laboratory and bedside values TrialDesk handles.

Every measure has one canonical unit (the one named in variable names such as
``lactate_mmol_l``). Values arrive in whatever unit the lab prints; they are
converted once, on entry, with the factors below (``../shared/domain.md`` §4.2, §5.2)
and range-checked in the unit they were entered in, so a value that is only
plausible in another unit (500 neutrophils "×10^9/L") is refused with a message
that names the unit it was probably meant in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trialdesk.errors import ImplausibleValue, LikelyWrongUnit, UnknownUnit


@dataclass(frozen=True)
class MeasureSpec:
    """A measurable quantity: canonical unit, accepted units, plausible range."""

    name: str
    label: str
    canonical_unit: str
    #: unit -> factor; value_in_canonical = value_in_unit * factor
    factors: dict[str, float]
    #: physiologically possible range, in the canonical unit (inclusive)
    plausible_min: float
    plausible_max: float
    #: units in which a value must be a whole number (cell counts per µL)
    integer_units: frozenset[str] = frozenset()


# Spellings seen on lab reports and in EHR exports, mapped to our unit keys.
_UNIT_ALIASES: dict[str, str] = {
    "10^9/l": "10^9/L", "x10^9/l": "10^9/L", "×10^9/l": "10^9/L", "10e9/l": "10^9/L",
    "10*9/l": "10^9/L", "g/l_cells": "10^9/L", "giga/l": "10^9/L",
    "10^3/ul": "10^3/uL", "10^3/µl": "10^3/uL", "x10^3/ul": "10^3/uL", "k/ul": "10^3/uL",
    "k/µl": "10^3/uL", "10*3/ul": "10^3/uL", "10e3/ul": "10^3/uL", "thou/ul": "10^3/uL",
    "cells/ul": "cells/uL", "cells/µl": "cells/uL", "/ul": "cells/uL", "/µl": "cells/uL",
    "/mm3": "cells/uL", "/mm³": "cells/uL", "cells/mm3": "cells/uL", "cells/mm³": "cells/uL",
    "mmol/l": "mmol/L", "mg/dl": "mg/dL", "umol/l": "umol/L", "µmol/l": "umol/L",
    "μmol/l": "umol/L", "mmhg": "mmHg", "mm hg": "mmHg", "kpa": "kPa", "mg/l": "mg/L",
    "ng/ml": "ng/mL", "pg/ml": "pg/mL", "ug/l": "ug/L", "µg/l": "ug/L", "kg": "kg",
    "lb": "lb", "lbs": "lb", "%": "%", "fraction": "fraction",
}

CELL_COUNT_FACTORS = {"10^9/L": 1.0, "10^3/uL": 1.0, "cells/uL": 1e-3}

MEASURES: dict[str, MeasureSpec] = {
    spec.name: spec
    for spec in (
        MeasureSpec("neutrophils", "absolute neutrophil count", "10^9/L", CELL_COUNT_FACTORS,
                    0.0, 200.0, frozenset({"cells/uL"})),
        MeasureSpec("wbc", "white blood cell count", "10^9/L", CELL_COUNT_FACTORS,
                    0.0, 500.0, frozenset({"cells/uL"})),
        MeasureSpec("platelets", "platelet count", "10^9/L", CELL_COUNT_FACTORS,
                    0.0, 2000.0, frozenset({"cells/uL"})),
        MeasureSpec("lactate", "lactate", "mmol/L", {"mmol/L": 1.0, "mg/dL": 1 / 9.0},
                    0.0, 30.0),
        MeasureSpec("creatinine", "creatinine", "mg/dL", {"mg/dL": 1.0, "umol/L": 1 / 88.4},
                    0.0, 30.0),
        MeasureSpec("bilirubin", "total bilirubin", "mg/dL", {"mg/dL": 1.0, "umol/L": 1 / 17.1},
                    0.0, 80.0),
        MeasureSpec("pao2", "PaO2", "mmHg", {"mmHg": 1.0, "kPa": 7.50}, 15.0, 760.0),
        MeasureSpec("crp", "C-reactive protein", "mg/L", {"mg/L": 1.0, "mg/dL": 10.0},
                    0.0, 1000.0),
        MeasureSpec("procalcitonin", "procalcitonin", "ng/mL", {"ng/mL": 1.0, "ug/L": 1.0},
                    0.0, 1000.0),
        MeasureSpec("il6", "interleukin-6", "pg/mL", {"pg/mL": 1.0}, 0.0, 1_000_000.0),
        MeasureSpec("il10", "interleukin-10", "pg/mL", {"pg/mL": 1.0}, 0.0, 100_000.0),
        MeasureSpec("weight", "body weight", "kg", {"kg": 1.0, "lb": 0.45359237}, 0.3, 400.0),
    )
}


def normalize_unit(unit: str) -> str:
    """Return our key for a unit spelling (``"K/µL"`` → ``"10^3/uL"``); unknown stays as is."""
    key = unit.strip().replace(" ", "").lower()
    return _UNIT_ALIASES.get(key, unit.strip())


def measure_spec(measure: str) -> MeasureSpec:
    try:
        return MEASURES[measure]
    except KeyError:
        raise UnknownUnit(
            f"Unknown measure '{measure}'. Known measures: {', '.join(sorted(MEASURES))}."
        ) from None


def _fmt(value: float) -> str:
    return f"{value:g}"


def to_canonical(measure: str, value: float, unit: str, *, field: str | None = None) -> float:
    """Convert ``value`` in ``unit`` to the measure's canonical unit, refusing the impossible.

    Raises :class:`UnknownUnit` for a unit this measure is never reported in,
    :class:`LikelyWrongUnit` when the value is impossible in the unit given but
    plausible in another one, and :class:`ImplausibleValue` otherwise.
    """
    spec = measure_spec(measure)
    field = field or measure
    unit_key = normalize_unit(unit)
    if unit_key not in spec.factors:
        raise UnknownUnit(
            f"{spec.label}: unit '{unit}' is not accepted; use one of "
            f"{', '.join(spec.factors)}.",
            field=field,
        )
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ImplausibleValue(f"{spec.label}: '{value}' is not a number.", field=field)
    canonical = value * spec.factors[unit_key]
    problem: str | None = None
    if unit_key in spec.integer_units and value != int(value):
        problem = f"a count in {unit_key} is a whole number, but {_fmt(value)} was entered"
    elif not spec.plausible_min <= canonical <= spec.plausible_max:
        problem = (
            f"{_fmt(value)} {unit_key} is outside the possible range "
            f"{_fmt(spec.plausible_min / spec.factors[unit_key])}–"
            f"{_fmt(spec.plausible_max / spec.factors[unit_key])} {unit_key}"
        )
    if problem is None:
        return canonical
    for other, factor in spec.factors.items():
        if other == unit_key or factor == spec.factors[unit_key]:
            continue
        if other in spec.integer_units and value != int(value):
            continue
        if spec.plausible_min <= value * factor <= spec.plausible_max:
            raise LikelyWrongUnit(
                f"{spec.label}: {problem}. It looks like a value in {other} "
                f"({_fmt(value)} {other} = {_fmt(value * factor)} {spec.canonical_unit}); "
                f"check the lab report and re-enter it with its unit.",
                field=field,
            )
    raise ImplausibleValue(
        f"{spec.label}: {problem}; check the value and its unit.", field=field
    )


def check_range(
    value: float, *, low: float, high: float, label: str, unit: str, field: str
) -> float:
    """Refuse a number outside [low, high] (both in ``unit``) with an actionable message."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ImplausibleValue(f"{label}: '{value}' is not a number.", field=field)
    if not low <= value <= high:
        raise ImplausibleValue(
            f"{label}: {_fmt(value)} {unit} is outside the possible range "
            f"{_fmt(low)}–{_fmt(high)} {unit}; check the value and its unit.",
            field=field,
        )
    return float(value)
