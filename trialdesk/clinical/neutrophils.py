"""Absolute neutrophil count (ANC) from a lab report, in 10^9/L.

Two routes (``../shared/domain.md`` §5.2): an absolute count as printed, in any
accepted unit (10^9/L, 10^3/µL, cells/µL, /mm³), or WBC × (segmented + band %) / 100.
Values plausible only in another unit are refused by :mod:`trialdesk.clinical.units`
with a message naming the likely unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from trialdesk.clinical.units import check_range, to_canonical
from trialdesk.errors import ImplausibleValue, MissingValue

AncSource = Literal["absolute", "wbc_differential"]


@dataclass(frozen=True)
class NeutrophilCount:
    """An ANC in 10^9/L and how it was obtained (for the audit of eligibility)."""

    value_10e9_per_l: float
    source: AncSource
    detail: str

    def __str__(self) -> str:
        return f"ANC {self.value_10e9_per_l:g} ×10^9/L ({self.detail})"

    def to_dict(self) -> dict[str, Any]:
        return {"value_10e9_per_l": self.value_10e9_per_l, "source": self.source,
                "detail": self.detail}


def anc_from_absolute(value: float, unit: str, *, field: str = "neutrophils") -> NeutrophilCount:
    """ANC from an absolute count as printed by the lab, converted to 10^9/L."""
    anc = to_canonical("neutrophils", value, unit, field=field)
    return NeutrophilCount(anc, "absolute", f"absolute count {value:g} {unit}")


def anc_from_differential(
    wbc_10e9_per_l: float,
    neutrophil_percent: float | None = None,
    *,
    segmented_percent: float | None = None,
    band_percent: float | None = None,
) -> NeutrophilCount:
    """ANC = WBC × (segmented + band %) / 100.

    Give either the combined ``neutrophil_percent`` or ``segmented_percent`` (and
    ``band_percent`` when bands were counted). A WBC of 4500 "×10^9/L" is refused
    as a likely cells/µL value.
    """
    wbc = to_canonical("wbc", wbc_10e9_per_l, "10^9/L", field="wbc_10e9_per_l")
    if neutrophil_percent is not None and segmented_percent is not None:
        raise ImplausibleValue(
            "Give either neutrophil_percent (segmented + bands) or segmented_percent/"
            "band_percent, not both.",
            field="neutrophil_percent",
        )
    if neutrophil_percent is None and segmented_percent is None:
        raise MissingValue(
            "The differential needs neutrophil_percent (or segmented_percent and "
            "band_percent) to compute the ANC from the WBC.",
            field="neutrophil_percent",
        )
    if neutrophil_percent is not None:
        pct = check_range(neutrophil_percent, low=0, high=100, label="neutrophil %",
                          unit="%", field="neutrophil_percent")
        detail = f"WBC {wbc:g} ×10^9/L × {pct:g}% neutrophils"
    else:
        seg = check_range(segmented_percent, low=0, high=100, label="segmented neutrophil %",
                          unit="%", field="segmented_percent")
        bands = check_range(band_percent or 0.0, low=0, high=100, label="band %",
                            unit="%", field="band_percent")
        pct = seg + bands
        if pct > 100:
            raise ImplausibleValue(
                f"segmented ({seg:g}%) + band ({bands:g}%) neutrophils add up to {pct:g}%, "
                "more than 100%; check the differential.",
                field="segmented_percent",
            )
        detail = f"WBC {wbc:g} ×10^9/L × ({seg:g}% segmented + {bands:g}% bands)"
    return NeutrophilCount(round(wbc * pct / 100.0, 6), "wbc_differential", detail)


def anc_from_record(
    record: dict[str, Any], *, field: str = "neutrophils", default_unit: str | None = None
) -> NeutrophilCount | None:
    """ANC from a screening record (the ``screen`` JSON format), or None when absent.

    Accepts ``<field>: {"value": …, "unit": …}`` (``unit`` may be left out when the
    protocol declares a default unit) or ``wbc_10e9_per_l`` with ``neutrophil_percent``
    (or ``segmented_percent`` + ``band_percent``). When both routes are given the
    absolute count wins (it is what the lab measured). A WBC without a differential
    is refused: a WBC is not a neutrophil count.
    """
    raw = record.get(field)
    if raw is not None:
        if not isinstance(raw, dict) or "value" not in raw:
            raise ImplausibleValue(
                f'{field} must be given as {{"value": 0.4, "unit": "10^9/L"}}.', field=field
            )
        if raw["value"] is None:
            return None
        unit = raw.get("unit") or default_unit
        if unit is None:
            raise MissingValue(f"{field}: the unit is missing (10^9/L, 10^3/uL or cells/uL).",
                               field=field)
        return anc_from_absolute(raw["value"], str(unit), field=field)
    wbc = record.get("wbc_10e9_per_l")
    pct = record.get("neutrophil_percent")
    seg = record.get("segmented_percent")
    if wbc is None:
        if pct is not None or seg is not None:
            raise MissingValue("A neutrophil percentage was given without the WBC "
                               "(wbc_10e9_per_l) it is a percentage of.",
                               field="wbc_10e9_per_l")
        return None
    return anc_from_differential(
        wbc, pct, segmented_percent=seg, band_percent=record.get("band_percent")
    )
