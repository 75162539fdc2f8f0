"""Evaluate a protocol's eligibility criteria against a screening record.

Each criterion yields ``met`` / ``not_met`` / ``unknown`` with a reason and the
data it used; the overall decision is ``ineligible`` as soon as one criterion
excludes (an inclusion not met, an exclusion met), else ``incomplete`` while any
criterion is unknown, else ``eligible``. Criteria are typed entries of the
protocol file; nothing here knows about a particular trial.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from trialdesk.clinical.onset import EnrolmentWindow
from trialdesk.clinical.timeutil import format_local, utcnow
from trialdesk.clinical.units import measure_spec, to_canonical
from trialdesk.eligibility.age import completed_years, exact_age_for_comparison
from trialdesk.eligibility.record import ScreeningRecord, parse_record
from trialdesk.eligibility.results import (
    CriterionResult,
    CriterionStatus,
    Decision,
    EligibilityResult,
)
from trialdesk.errors import NaiveTime
from trialdesk.protocol.schema import (
    AgeBasis,
    AgeCriterion,
    ChoiceCriterion,
    Criterion,
    EventRecordedCriterion,
    FlagCriterion,
    MeasurementCriterion,
    Protocol,
    WithinHoursCriterion,
)

MET, NOT_MET, UNKNOWN = CriterionStatus.MET, CriterionStatus.NOT_MET, CriterionStatus.UNKNOWN

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_OP_TEXT = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
#: tolerance for comparing converted lab values (1000 cells/µL is exactly 1.0 ×10^9/L)
_EPSILON = 1e-9


def _compare(value: float, op: str, threshold: float) -> bool:
    if op in ("<=", ">=") and abs(value - threshold) <= _EPSILON:
        return True
    if op in ("<", ">") and abs(value - threshold) <= _EPSILON:
        return False
    return _OPS[op](value, threshold)


class _Context:
    def __init__(self, protocol: Protocol, record: ScreeningRecord, at: dt.datetime,
                 zone: str):
        self.protocol = protocol
        self.record = record
        self.at = at
        self.zone = zone
        self.tz = ZoneInfo(zone)

    def local(self, when: dt.datetime) -> str:
        return format_local(when, self.zone)


def _result(ctx: _Context, kind: str, crit: Criterion, status: CriterionStatus, reason: str,
            data: Mapping[str, Any] | None = None, missing: tuple[str, ...] = ()
            ) -> CriterionResult:
    return CriterionResult(
        id=crit.id, type=kind, text=crit.text, status=status, reason=reason,  # type: ignore[arg-type]
        data_used={k: str(v) for k, v in (data or {}).items()},
        missing_fields=missing,
    )


def _unusable(ctx: _Context, kind: str, crit: Criterion, field_id: str) -> CriterionResult | None:
    """An ``unknown`` result when the field is in error or absent, else None."""
    error = ctx.record.errors.get(field_id)
    if error is not None:
        res = _result(ctx, kind, crit, UNKNOWN, f"cannot use {field_id}: {error.message}",
                      missing=(field_id,))
        return CriterionResult(**{**res.__dict__, "error_code": error.code})
    if not ctx.record.has(field_id):
        label = ctx.protocol.field(field_id).label
        return _result(ctx, kind, crit, UNKNOWN, f"{label} not recorded", missing=(field_id,))
    return None


def _age(ctx: _Context, kind: str, crit: AgeCriterion) -> CriterionResult:
    if (res := _unusable(ctx, kind, crit, crit.field)) is not None:
        return res
    born: dt.date = ctx.record.values[crit.field]
    today = ctx.at.astimezone(ctx.tz).date()
    years = completed_years(born, today)
    if ctx.protocol.eligibility.age_basis is AgeBasis.EXACT:
        compared = exact_age_for_comparison(born, today)
        basis = "exact age"
    else:
        compared = float(years)
        basis = "completed years"
    holds = _OPS[crit.op](compared, crit.years)
    shown = f"{years} years" + ("" if compared == years else " and some days")
    reason = (f"age {shown} on {today.isoformat()} ({basis}) is "
              f"{'' if holds else 'not '}{_OP_TEXT[crit.op]} {crit.years}")
    return _result(ctx, kind, crit, MET if holds else NOT_MET, reason,
                   {crit.field: born.isoformat(), "age_years": years})


def _within_hours(ctx: _Context, kind: str, crit: WithinHoursCriterion) -> CriterionResult:
    if (res := _unusable(ctx, kind, crit, crit.field)) is not None:
        return res
    start: dt.datetime = ctx.record.values[crit.field]
    window = EnrolmentWindow(start, crit.hours)
    elapsed_h = window.elapsed(ctx.at).total_seconds() / 3600
    left_h = window.time_left(ctx.at).total_seconds() / 3600
    label = ctx.protocol.field(crit.field).label.lower()
    if window.is_open(ctx.at):
        reason = (f"{elapsed_h:.1f} h since {label} at {ctx.local(start)}; "
                  f"{left_h:.1f} h left, deadline {ctx.local(window.deadline_utc)}")
        status = MET
    else:
        reason = (f"window closed: {elapsed_h:.1f} h since {label} at {ctx.local(start)}; "
                  f"deadline was {ctx.local(window.deadline_utc)}")
        status = NOT_MET
    return _result(ctx, kind, crit, status, reason,
                   {crit.field: start.isoformat(), "hours_elapsed": f"{elapsed_h:.2f}"})


def _event_recorded(ctx: _Context, kind: str, crit: EventRecordedCriterion) -> CriterionResult:
    if crit.negated_by and ctx.record.values.get(crit.negated_by) is False:
        return _result(ctx, kind, crit, NOT_MET,
                       f"{ctx.protocol.field(crit.negated_by).label}: no",
                       {crit.negated_by: "false"})
    if (res := _unusable(ctx, kind, crit, crit.field)) is not None:
        return res
    when: dt.datetime = ctx.record.values[crit.field]
    definition = ctx.protocol.onset.definition if crit.field == ctx.protocol.onset.field else ""
    suffix = f" (definition: {definition})" if definition else ""
    return _result(ctx, kind, crit, MET,
                   f"{ctx.protocol.field(crit.field).label} recorded at {ctx.local(when)}{suffix}",
                   {crit.field: when.isoformat()})


def _measurement(ctx: _Context, kind: str, crit: MeasurementCriterion) -> CriterionResult:
    if (res := _unusable(ctx, kind, crit, crit.field)) is not None:
        return res
    spec = ctx.protocol.field(crit.field)
    measure = measure_spec(spec.measure or "")
    value = ctx.record.values[crit.field]
    threshold = to_canonical(measure.name, crit.value, crit.unit)
    holds = _compare(value.value, crit.op, threshold)
    reason = (f"{measure.label} {value.value:g} {measure.canonical_unit} ({value.detail}) is "
              f"{'' if holds else 'not '}{_OP_TEXT[crit.op]} {crit.value:g} {crit.unit}")
    return _result(ctx, kind, crit, MET if holds else NOT_MET, reason,
                   {crit.field: f"{value.value:g} {measure.canonical_unit}"})


def _flag(ctx: _Context, kind: str, crit: FlagCriterion) -> CriterionResult:
    label = ctx.protocol.field(crit.field).label
    value = ctx.record.values.get(crit.field)
    if value is None and crit.field not in ctx.record.errors:
        for other, expected in crit.not_applicable_when.items():
            if ctx.record.values.get(other) == expected:
                return _result(ctx, kind, crit, NOT_MET,
                               f"not applicable: {ctx.protocol.field(other).label.lower()} "
                               f"is {expected}", {other: expected})
    if (res := _unusable(ctx, kind, crit, crit.field)) is not None:
        return res
    holds = value is crit.equals
    return _result(ctx, kind, crit, MET if holds else NOT_MET,
                   f"{label}: {'yes' if value else 'no'}", {crit.field: str(value).lower()})


def _choice(ctx: _Context, kind: str, crit: ChoiceCriterion) -> CriterionResult:
    if (res := _unusable(ctx, kind, crit, crit.field)) is not None:
        return res
    value = ctx.record.values[crit.field]
    holds = value in crit.any_of
    return _result(ctx, kind, crit, MET if holds else NOT_MET,
                   f"{ctx.protocol.field(crit.field).label}: {value} is "
                   f"{'' if holds else 'not '}one of {', '.join(crit.any_of)}",
                   {crit.field: value})


_EVALUATORS: dict[type, Callable[..., CriterionResult]] = {
    AgeCriterion: _age,
    WithinHoursCriterion: _within_hours,
    EventRecordedCriterion: _event_recorded,
    MeasurementCriterion: _measurement,
    FlagCriterion: _flag,
    ChoiceCriterion: _choice,
}


def decide(criteria: tuple[CriterionResult, ...]) -> Decision:
    if any(c.excludes for c in criteria):
        return Decision.INELIGIBLE
    if any(c.status is UNKNOWN for c in criteria):
        return Decision.INCOMPLETE
    return Decision.ELIGIBLE


def evaluate(protocol: Protocol, data: Mapping[str, Any],
             at: dt.datetime | None = None, *, site_id: str | None = None
             ) -> EligibilityResult:
    """Evaluate every criterion of ``protocol`` for the record ``data`` at time ``at``.

    ``at`` (aware; default now) is when the question is asked: it fixes the age
    and the hours elapsed since onset. Clinical times after ``at`` are refused.
    ``site_id`` picks the site whose time zone dates and reasons are shown in
    (default: the protocol's first site).
    """
    at = utcnow() if at is None else at
    if at.tzinfo is None:
        raise NaiveTime("The evaluation time has no UTC offset; add one, e.g. "
                        "2026-03-01T02:15:00+03:00.", field="at")
    at = at.astimezone(dt.UTC)
    record = parse_record(protocol, dict(data), at)
    ctx = _Context(protocol, record, at, protocol.site(site_id).timezone)
    results = tuple(_EVALUATORS[type(crit)](ctx, kind, crit) for kind, crit in protocol.criteria)
    problems = [err.to_dict() for err in record.errors.values()]
    problems += [
        {"code": "UNKNOWN_FIELD", "field": key,
         "message": f"'{key}' is not a screening field of {protocol.protocol_id}; it was "
                    f"ignored. Known fields: {', '.join(f.id for f in protocol.screening_fields)}."}
        for key in record.unknown_keys
    ]
    return EligibilityResult(
        decision=decide(results),
        criteria=results,
        evaluated_at_utc=at,
        protocol_id=protocol.protocol_id,
        protocol_version=protocol.protocol_version,
        protocol_sha256=protocol.content_sha256,
        input_problems=tuple(problems),
    )
