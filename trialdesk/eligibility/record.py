"""A screening record read against the protocol's declared fields.

Values are parsed one field at a time; a value that cannot be used (wrong unit,
impossible number, time in the future, unknown choice) is kept as a field error
instead of aborting, so the coordinator sees every problem at once and every
criterion that depends on a bad field is ``unknown`` with that error as reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from trialdesk.clinical.neutrophils import anc_from_record
from trialdesk.clinical.timeutil import ensure_not_future, parse_aware
from trialdesk.clinical.units import to_canonical
from trialdesk.errors import FutureTime, ImplausibleValue, InputRejected, TrialError
from trialdesk.protocol.schema import FieldType, Protocol, RecordField

#: keys that feed a measurement field instead of being fields of their own
_DIFFERENTIAL_KEYS = ("wbc_10e9_per_l", "neutrophil_percent", "segmented_percent", "band_percent")


@dataclass(frozen=True)
class Measured:
    """A measurement converted to its measure's canonical unit."""

    value: float
    unit: str
    detail: str

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class ScreeningRecord:
    values: dict[str, Any]
    errors: dict[str, TrialError] = field(default_factory=dict)
    unknown_keys: tuple[str, ...] = ()

    def has(self, field_id: str) -> bool:
        return self.values.get(field_id) is not None


def _parse_date(raw: Any, spec: RecordField, at: dt.datetime) -> dt.date:
    if isinstance(raw, dt.datetime) or not isinstance(raw, str | dt.date):
        raise ImplausibleValue(f"{spec.label}: give a date as YYYY-MM-DD, got {raw!r}.",
                               field=spec.id)
    if isinstance(raw, str):
        try:
            raw = dt.date.fromisoformat(raw)
        except ValueError:
            raise ImplausibleValue(f"{spec.label}: '{raw}' is not a date; use YYYY-MM-DD "
                                   "(e.g. 1971-04-23).", field=spec.id) from None
    if raw > at.date():
        raise FutureTime(f"{spec.label}: {raw.isoformat()} is after today "
                         f"({at.date().isoformat()}); check the year.", field=spec.id)
    if raw.year < at.year - 130:
        raise ImplausibleValue(f"{spec.label}: {raw.isoformat()} would make the patient "
                               "older than 130; check the year.", field=spec.id)
    return raw


def _parse_value(raw: Any, spec: RecordField, at: dt.datetime) -> Any:
    if spec.type is FieldType.DATE:
        return _parse_date(raw, spec, at)
    if spec.type is FieldType.DATETIME:
        when = parse_aware(raw, field=spec.id)
        ensure_not_future(when, at, field=spec.id)
        return when
    if spec.type is FieldType.BOOLEAN:
        if not isinstance(raw, bool):
            raise ImplausibleValue(f"{spec.label}: answer true or false (or leave it empty "
                                   f"if unknown), got {raw!r}.", field=spec.id)
        return raw
    if spec.type is FieldType.CHOICE:
        if raw not in spec.choice_ids:
            raise ImplausibleValue(f"{spec.label}: '{raw}' is not one of "
                                   f"{', '.join(spec.choice_ids)}.", field=spec.id)
        return raw
    # measurement: {"value": …, "unit": …}
    if not isinstance(raw, dict) or "value" not in raw:
        example = spec.default_unit or "unit"
        raise ImplausibleValue(f'{spec.label}: give {{"value": …, "unit": "{example}"}}, '
                               f"got {raw!r}.", field=spec.id)
    if raw["value"] is None:
        return None
    unit = raw.get("unit") or spec.default_unit
    if unit is None:
        raise ImplausibleValue(f"{spec.label}: the unit is missing.", field=spec.id)
    value = to_canonical(spec.measure or "", raw["value"], str(unit), field=spec.id)
    return Measured(value, str(unit), f"{raw['value']:g} {unit}")


def parse_record(protocol: Protocol, data: dict[str, Any], at: dt.datetime) -> ScreeningRecord:
    """Read ``data`` (the ``screen`` JSON format) against the protocol's fields.

    ``at`` is the evaluation time: clinical times after it are refused as future.
    """
    values: dict[str, Any] = {}
    errors: dict[str, TrialError] = {}
    known = {f.id for f in protocol.screening_fields}
    uses_differential = any(f.allow_wbc_differential for f in protocol.screening_fields)
    unknown = tuple(
        k for k in data
        if k not in known and not (uses_differential and k in _DIFFERENTIAL_KEYS)
    )
    for spec in protocol.screening_fields:
        try:
            if spec.allow_wbc_differential and spec.measure == "neutrophils":
                anc = anc_from_record(data, field=spec.id,
                                      default_unit=spec.default_unit)
                values[spec.id] = (
                    None if anc is None
                    else Measured(anc.value_10e9_per_l, "10^9/L", anc.detail)
                )
                continue
            raw = data.get(spec.id)
            values[spec.id] = None if raw is None else _parse_value(raw, spec, at)
        except InputRejected as exc:
            if exc.field is None:
                exc.field = spec.id
            errors[spec.id] = exc
            values[spec.id] = None
    return ScreeningRecord(values, errors, unknown)
