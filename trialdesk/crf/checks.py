"""Edit checks on one form at entry: ranges with units, cross-field and cross-visit rules.

:func:`check_form` returns every finding at once (:mod:`trialdesk.crf.findings`): hard
errors block saving, soft warnings need a confirmation. Nothing here raises for bad
data — a coordinator sees all problems of a form together, not one per attempt.

Checks
------
* **Values** — a number, in a unit the field accepts (converted with
  :func:`trialdesk.clinical.units.to_canonical`), inside the physically possible range
  (else an error; a value plausible only in another unit names that unit), inside the
  usual range (else a warning). SOFA inputs are checked by
  :mod:`trialdesk.clinical.sofa` itself (FiO2 entered as 40 is refused as a percentage).
  Times need a UTC offset and must not lie in the future (5 min clock tolerance);
  dates must not be after today in the site's calendar.
* **Cross-field** — an end before its start (thaw, infusion), both units of one lab
  value, a dead patient without a date of death, a reaction grade without a reaction,
  a withdrawal without a reason, a repeat lactate before the initial one.
* **Cross-visit** — a day outside the form's schedule, a study day that has not begun,
  a visit dated after a recorded death (and a death dated before recorded visits),
  an infusion before randomization, a form the subject's arm does not receive
  (a warning: saved, and the web app records a protocol deviation).
* **MSC dose not given** (``msc_not_given``) — 'other' needs its detail, the decision
  time must not be before randomization, only the MSC arm has a dose to withhold, and
  an infusion and a not-given record of one subject refuse each other (either order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from trialdesk.clinical.dosing import dosing_weight_kg
from trialdesk.clinical.sofa import SofaInputs, SofaResult, compute_sofa
from trialdesk.clinical.timeutil import (
    CLOCK_SKEW_TOLERANCE,
    format_local,
    parse_aware,
    site_zone,
)
from trialdesk.clinical.units import to_canonical
from trialdesk.crf.findings import Finding, Severity, error, errors_of, warning, warnings_of
from trialdesk.crf.forms import FieldKind, FormField, form_definition
from trialdesk.crf.schedule import (
    assessment_for,
    day_date,
    day_zero_date,
    schedule_problem,
    study_day,
    unscheduled_for,
)
from trialdesk.errors import TrialError
from trialdesk.protocol.schema import Protocol

#: forms that may be recorded about days after a death (they record it)
OUTCOME_FORMS = frozenset({"vital_status", "end_of_study"})
MAX_TEXT = 2000
#: the MSC infusion (day 0) and the record that the dose was not given exclude each other
INFUSION_FORM, NOT_GIVEN_FORM = "msc_infusion", "msc_not_given"


@dataclass(frozen=True)
class VisitContext:
    """What the checks need to know about the subject besides the form itself.

    Times are aware datetimes; ``now`` is the moment of entry. ``recorded`` lists the
    subject's other saved forms as (form id, day); ``death_date`` is a death already
    recorded on another form (site calendar).
    """

    randomized_at: dt.datetime
    timezone: str
    arm: str
    now: dt.datetime
    onset_at: dt.datetime | None = None
    death_date: dt.date | None = None
    recorded: Collection[tuple[str, int | None]] = ()


@dataclass(frozen=True)
class CheckResult:
    """Findings for one form, its values in canonical units, and SOFA for a SOFA form."""

    form_id: str
    day: int | None
    values: dict[str, Any]
    findings: tuple[Finding, ...]
    sofa: SofaResult | None = None
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return errors_of(self.findings)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return warnings_of(self.findings)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"form_id": self.form_id, "day": self.day,
                "findings": [f.to_dict() for f in self.findings],
                "derived": self.derived}


# --- single values ----------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _number_value(f: FormField, raw: Any) -> tuple[float | None, list[Finding]]:
    """The value in the canonical unit, or None with the findings that say why."""
    value, unit = raw, f.unit
    if isinstance(raw, Mapping):
        if not f.alt_units or set(raw) - {"value", "unit"}:
            return None, [error("INPUT_REJECTED", f.id, f"{f.label}: give a number in "
                                f"{f.unit}" + (f" or {{value, unit}} with unit "
                                               f"{', '.join(f.units)}" if f.alt_units else ""))]
        value, unit = raw.get("value"), str(raw.get("unit") or f.unit)
    if not _is_number(value):
        return None, [error("NOT_A_NUMBER", f.id, f"{f.label}: '{value}' is not a number.")]
    if f.kind is FieldKind.INTEGER and value != int(value):
        return None, [error("NOT_A_WHOLE_NUMBER", f.id,
                            f"{f.label}: {_fmt(value)} is not a whole number.")]
    canonical = float(value)
    if f.sofa_input:
        try:
            SofaInputs(**{f.id: value})
        except TrialError as exc:
            return None, [error(exc.code, f.id, exc.message)]
    elif f.measure:
        if unit not in f.units and f.measure:
            return None, [error("UNKNOWN_UNIT", f.id, f"{f.label}: unit '{unit}' is not "
                                f"accepted here; use {' or '.join(f.units)}.")]
        try:
            canonical = to_canonical(f.measure, value, unit, field=f.id)
        except TrialError as exc:
            return None, [error(exc.code, f.id, exc.message)]
    elif unit != f.unit:
        return None, [error("UNKNOWN_UNIT", f.id, f"{f.label}: enter it in {f.unit}.")]
    if f.hard_range and not f.hard_range[0] <= canonical <= f.hard_range[1]:
        low, high = f.hard_range
        return None, [error("IMPLAUSIBLE_VALUE", f.id,
                            f"{f.label}: {_fmt(canonical)} {f.unit or ''} is outside the "
                            f"possible range {_fmt(low)}–{_fmt(high)} {f.unit or ''}; check "
                            "the value and its unit.".replace(" ;", ";"))]
    found: list[Finding] = []
    if f.soft_range and not f.soft_range[0] <= canonical <= f.soft_range[1]:
        low, high = f.soft_range
        found.append(warning("UNUSUAL_VALUE", f.id,
                             f"{f.label}: {_fmt(canonical)} {f.unit or ''} is unusual (usual "
                             f"range {_fmt(low)}–{_fmt(high)} {f.unit or ''}); confirm it is "
                             "correct.".replace("  ", " ")))
    return canonical, found


def _value(f: FormField, raw: Any, ctx: VisitContext) -> tuple[Any, list[Finding]]:
    if f.kind in (FieldKind.NUMBER, FieldKind.INTEGER):
        return _number_value(f, raw)
    if f.kind is FieldKind.CHOICE:
        if raw not in f.choice_ids:
            return None, [error("UNKNOWN_CHOICE", f.id, f"{f.label}: '{raw}' is not one of "
                                f"{', '.join(f.choice_ids)}.")]
        return raw, []
    if f.kind is FieldKind.BOOLEAN:
        if not isinstance(raw, bool):
            return None, [error("INPUT_REJECTED", f.id, f"{f.label}: answer yes or no.")]
        return raw, []
    if f.kind is FieldKind.TEXT:
        if not isinstance(raw, str) or len(raw) > MAX_TEXT:
            return None, [error("INPUT_REJECTED", f.id, f"{f.label}: text of at most "
                                f"{MAX_TEXT} characters.")]
        return raw.strip(), []
    if f.kind is FieldKind.DATETIME:
        try:
            t = parse_aware(raw, field=f.id)
        except TrialError as exc:
            return None, [error(exc.code, f.id, f"{f.label}: {exc.message}")]
        if t > ctx.now + CLOCK_SKEW_TOLERANCE and not f.may_be_future:
            return None, [error("FUTURE_TIME", f.id, f"{f.label}: "
                                f"{format_local(t, ctx.timezone)} is in the future; check the "
                                "date, the time and the time zone.")]
        return t, []
    # DATE
    try:
        d = dt.date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        d = None
    if d is None:
        return None, [error("NOT_A_DATE", f.id, f"{f.label}: '{raw}' is not a date "
                            "(YYYY-MM-DD).")]
    today = ctx.now.astimezone(site_zone(ctx.timezone)).date()
    if d > today:
        return None, [error("FUTURE_TIME", f.id, f"{f.label}: {d.isoformat()} is after today "
                            f"({today.isoformat()}).")]
    return d, []


# --- the form -----------------------------------------------------------------------------


def sofa_inputs(data: Mapping[str, Any]) -> dict[str, Any]:
    """The SOFA form's data as :class:`SofaInputs` keys ("oxygen" support scores as none)."""
    keys = SofaInputs.accepted_keys()
    inputs = {k: v for k, v in data.items() if k in keys and v is not None}
    if inputs.get("respiratory_support") == "oxygen":
        inputs["respiratory_support"] = "none"
    return inputs


def sofa_for(data: Mapping[str, Any]) -> SofaResult:
    """SOFA of a SOFA form's data, by :func:`trialdesk.clinical.sofa.compute_sofa`.

    Raises the clinical core's errors for values it refuses.
    """
    return compute_sofa(SofaInputs.from_mapping(sofa_inputs(data)))


def check_form(protocol: Protocol, form_id: str, day: int | None, data: Mapping[str, Any],
               ctx: VisitContext) -> CheckResult:
    """Every finding for ``data`` entered on ``form_id`` for study day ``day``."""
    definition = form_definition(form_id)
    findings: list[Finding] = []
    values: dict[str, Any] = {}
    known = set(definition.field_ids)
    for key in data:
        if key not in known:
            findings.append(error("UNKNOWN_FIELD", str(key), f"'{key}' is not a field of "
                                  f"{definition.label}; fields: {', '.join(known)}."))
    for f in definition.fields:
        raw = data.get(f.id)
        if raw is None or raw == "":
            if f.required:
                findings.append(error("MISSING_VALUE", f.id, f"{f.label} is required."))
            continue
        value, found = _value(f, raw, ctx)
        findings += found
        if value is not None:
            values[f.id] = value
    findings += _cross_visit(protocol, form_id, day, values, ctx)
    cross, derived, sofa = _CROSS_FIELD.get(form_id, _no_cross)(protocol, day, data, values,
                                                               ctx)
    findings += cross
    if any(f.severity is Severity.ERROR for f in findings):
        sofa, derived = None, {}  # nothing is computed from a form that cannot be saved
    return CheckResult(form_id, day, values, _unique(findings), sofa, derived)


def _unique(findings: list[Finding]) -> tuple[Finding, ...]:
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.key + f.message, f)
    return tuple(seen.values())


def _no_cross(*_: Any) -> tuple[list[Finding], dict[str, Any], SofaResult | None]:
    return [], {}, None


def _cross_visit(protocol: Protocol, form_id: str, day: int | None, values: dict[str, Any],
                 ctx: VisitContext) -> list[Finding]:
    found: list[Finding] = []
    problem = schedule_problem(protocol, form_id, day)
    if problem:
        found.append(error("DAY_OUT_OF_SCHEDULE", "day", problem))
    assessment = assessment_for(protocol, form_id) or unscheduled_for(protocol, form_id)
    if assessment is not None and assessment.arms and ctx.arm not in assessment.arms:
        found.append(warning("WRONG_ARM", None, f"{assessment.label} is given only in the "
                             f"{', '.join(protocol.arm_label(a) for a in assessment.arms)} "
                             f"arm; this subject is in the {protocol.arm_label(ctx.arm)} arm. "
                             "Saving records a "
                             "protocol deviation."))
    if day is not None and problem is None:
        date = day_date(day, ctx.randomized_at, ctx.timezone)
        today = ctx.now.astimezone(site_zone(ctx.timezone)).date()
        if date > today:
            found.append(error("DAY_IN_FUTURE", "day", f"Day {day} is {date.isoformat()}, "
                               f"which has not begun (today is {today.isoformat()})."))
        if (ctx.death_date is not None and form_id not in OUTCOME_FORMS
                and date > ctx.death_date):
            found.append(error("VISIT_AFTER_DEATH", "day", f"Day {day} ({date.isoformat()}) "
                               f"is after the recorded death on {ctx.death_date.isoformat()}; "
                               "no visit can follow a death. Check the day or the death date."))
    return found


# --- cross-field rules per form -----------------------------------------------------------


def _order(values: dict[str, Any], first: str, then: str, label: str) -> list[Finding]:
    a, b = values.get(first), values.get(then)
    if a is not None and b is not None and b < a:
        return [error("TIME_ORDER", then, f"{label}: the end ({b:%Y-%m-%d %H:%M} UTC) is "
                      f"before the start ({a:%Y-%m-%d %H:%M} UTC).")]
    return []


def _sofa(protocol: Protocol, day: int | None, data: Mapping[str, Any],
          values: dict[str, Any], ctx: VisitContext):
    found: list[Finding] = []
    for lab in ("bilirubin", "creatinine"):
        if f"{lab}_umol_l" in values and f"{lab}_mg_dl" in values:
            found.append(error("INPUT_REJECTED", f"{lab}_umol_l",
                               f"{lab.capitalize()} is given both in µmol/L and in mg/dL; "
                               "keep the one in the unit the lab printed."))
    if values.get("gcs_basis") == "assumed_normal" and values.get("gcs") not in (None, 15):
        found.append(warning("GCS_BASIS", "gcs", "GCS basis is 'assumed normal' but the GCS "
                             f"entered is {values['gcs']}, not 15; confirm."))
    sofa = None
    derived: dict[str, Any] = {}
    if not found:
        usable = {k: v for k, v in data.items() if k in values or k == "respiratory_support"}
        try:
            sofa = sofa_for(usable)
        except TrialError as exc:  # pragma: no cover - every input was checked above
            found.append(error(exc.code, exc.field, exc.message))
        else:
            derived = {"sofa": {"components": dict(sofa.components), "total": sofa.total,
                                "total_without_coagulation": sofa.total_without_coagulation,
                                "missing": list(sofa.missing)}}
    return found, derived, sofa


def _standard_therapy(protocol: Protocol, day: int | None, data: Mapping[str, Any],
                      values: dict[str, Any], ctx: VisitContext):
    found: list[Finding] = []
    cultures, abx = values.get("blood_cultures_at"), values.get("antibiotics_first_dose_at")
    if cultures is not None and abx is not None and cultures > abx:
        found.append(warning("CULTURES_AFTER_ANTIBIOTICS", "blood_cultures_at",
                             "Blood cultures were drawn after the first antibiotic dose "
                             "(SSC 2012: before antibiotics); confirm the times."))
    first, repeat = values.get("lactate_measured_at"), values.get("repeat_lactate_at")
    if first is not None and repeat is not None and repeat <= first:
        found.append(error("TIME_ORDER", "repeat_lactate_at", "The repeat lactate is timed "
                           "before (or with) the initial lactate; check both times."))
    derived: dict[str, Any] = {}
    if ctx.onset_at is not None:
        from trialdesk.crf.bundles import bundle_compliance

        derived = {"bundles": bundle_compliance(values, ctx.onset_at).to_dict()}
    return found, derived, None


def _msc_product(protocol: Protocol, day: int | None, data: Mapping[str, Any],
                 values: dict[str, Any], ctx: VisitContext):
    found = _order(values, "thaw_start_at", "thaw_end_at", "Thaw")
    expiry, released = values.get("expiry_at"), values.get("released_at")
    if expiry is not None and released is not None and expiry < released:
        found.append(warning("RELEASED_AFTER_EXPIRY", "released_at", "The product was "
                             "released after its expiry; confirm the times."))
    return found, {}, None


def _before_randomization(values: dict[str, Any], field_id: str, what: str, code: str,
                          ctx: VisitContext) -> list[Finding]:
    """An event of the MSC arm timed before randomization: impossible, a hard error."""
    t = values.get(field_id)
    if t is None or t >= ctx.randomized_at:
        return []
    return [error(code, field_id, f"The {what} {format_local(t, ctx.timezone)} is before "
                  f"randomization at {format_local(ctx.randomized_at, ctx.timezone)}; that is "
                  "impossible. Check the date, the time and the time zone.")]


def _msc_infusion(protocol: Protocol, day: int | None, data: Mapping[str, Any],
                  values: dict[str, Any], ctx: VisitContext):
    found = _order(values, "infusion_start_at", "infusion_end_at", "Infusion")
    found += _before_randomization(values, "infusion_start_at", "infusion start",
                                   "INFUSION_BEFORE_RANDOMIZATION", ctx)
    if (NOT_GIVEN_FORM, None) in ctx.recorded:
        found.append(error("MSC_GIVEN_AND_NOT_GIVEN", "infusion_start_at", "This patient's "
                           "MSC dose is recorded as not given: an infusion cannot also be "
                           "recorded. If the dose was given after all, mark the not-given "
                           "record entered in error first."))
    spec = protocol.intervention
    if "weight_kg" in values:
        try:
            dosing_weight_kg(values["weight_kg"], plausible_range_kg=spec.plausible_weight_kg)
        except TrialError as exc:
            found.append(error(exc.code, "weight_kg", exc.message))
    basis = values.get("weight_basis")
    if basis is not None and basis != spec.weight_basis:
        found.append(warning("WEIGHT_BASIS", "weight_basis", f"The protocol doses by "
                             f"{spec.weight_basis} body weight; {basis} was used. Confirm."))
    if "cells_infused" not in values and "volume_infused_ml" not in values:
        found.append(warning("DOSE_UNKNOWN", "cells_infused", "Neither the cells nor the "
                             "volume infused is given: the dose in cells/kg cannot be "
                             "computed. Confirm to save without it."))
    if values.get("reaction") == "yes" and "reaction_ctcae_grade" not in values:
        found.append(error("MISSING_VALUE", "reaction_ctcae_grade",
                           "An infusion reaction needs its CTCAE grade (1–5)."))
    if values.get("reaction") != "yes" and "reaction_ctcae_grade" in values:
        found.append(error("INPUT_REJECTED", "reaction_ctcae_grade", "A CTCAE grade is given "
                           "but no reaction is recorded; set 'Infusion reaction' to yes."))
    if values.get("interruptions", 0) > 0 and not values.get("interruption_reason"):
        found.append(warning("MISSING_REASON", "interruption_reason",
                             "Interruptions are recorded without a reason; confirm."))
    return found, {}, None


def _msc_not_given(protocol: Protocol, day: int | None, data: Mapping[str, Any],
                   values: dict[str, Any], ctx: VisitContext):
    """A dose recorded as not given: reason (detail for 'other'), a decision time after
    randomization, only in the MSC arm, and never together with an infusion."""
    found: list[Finding] = []
    spec = protocol.intervention
    if ctx.arm != spec.arm:
        found.append(error("NOT_IN_MSC_ARM", "reason", "This subject is in the "
                           f"{protocol.arm_label(ctx.arm)} arm, which receives no MSC "
                           f"({protocol.arm_label(spec.arm)} arm only): there is no dose to "
                           "record as not given."))
    if values.get("reason") == "other" and not values.get("reason_detail"):
        found.append(error("MISSING_VALUE", "reason_detail", "The reason is 'Other': say "
                           "what it was in 'Details'."))
    found += _before_randomization(values, "decided_at", "decision", "TIME_ORDER", ctx)
    if (INFUSION_FORM, 0) in ctx.recorded:
        found.append(error("MSC_GIVEN_AND_NOT_GIVEN", "reason", "An MSC infusion is recorded "
                           "for this patient: the dose cannot also be recorded as not given. "
                           "If the infusion record is wrong, mark it entered in error first."))
    return found, {}, None


def _death_conflicts(death: dt.date, field_id: str, ctx: VisitContext) -> list[Finding]:
    found: list[Finding] = []
    day0 = day_zero_date(ctx.randomized_at, ctx.timezone)
    if death < day0:
        found.append(error("TIME_ORDER", field_id, f"Death on {death.isoformat()} is before "
                           f"randomization (day 0 = {day0.isoformat()})."))
    later = sorted({(form, day) for form, day in ctx.recorded
                    if day is not None and form not in OUTCOME_FORMS
                    and day0 + dt.timedelta(days=day) > death})
    if later:
        shown = ", ".join(f"{form} day {day}" for form, day in later[:5])
        found.append(error("VISIT_AFTER_DEATH", field_id, f"Death on {death.isoformat()} is "
                           f"before recorded visits ({shown}); check the date of death or "
                           "those visits."))
    return found


def _vital_status(protocol: Protocol, day: int | None, data: Mapping[str, Any],
                  values: dict[str, Any], ctx: VisitContext):
    found: list[Finding] = []
    status, death = values.get("status"), values.get("date_of_death")
    if status == "dead" and death is None and "date_of_death" not in data:
        found.append(error("MISSING_VALUE", "date_of_death", "A dead patient needs the date "
                           "of death."))
    if status != "dead" and "date_of_death" in values:
        found.append(error("INPUT_REJECTED", "date_of_death", f"A date of death is given but "
                           f"the status is {status}; set the status to dead or clear the date."))
    if status == "dead" and death is not None:
        found += _death_conflicts(death, "date_of_death", ctx)
    if status == "alive" and "last_known_alive_date" not in data:
        found.append(warning("MISSING_VALUE", "last_known_alive_date", "Give the date the "
                             "patient was last known alive; confirm to save without it."))
    return found, {}, None


def _end_of_study(protocol: Protocol, day: int | None, data: Mapping[str, Any],
                  values: dict[str, Any], ctx: VisitContext):
    found: list[Finding] = []
    status, date = values.get("status"), values.get("date")
    if status == "withdrawn" and not values.get("reason"):
        found.append(error("MISSING_VALUE", "reason", "A withdrawal needs its reason."))
    if date is not None:
        day0 = day_zero_date(ctx.randomized_at, ctx.timezone)
        if status == "died":
            found += _death_conflicts(date, "date", ctx)
        elif date < day0:
            found.append(error("TIME_ORDER", "date", f"{date.isoformat()} is before "
                               f"randomization (day 0 = {day0.isoformat()})."))
    return found, {}, None


def sample_day_findings(values: dict[str, Any], day: int | None,
                        ctx: VisitContext) -> list[Finding]:
    """A sample time on another study day than the form's (a warning)."""
    sampled = values.get("sampled_at")
    if sampled is None or day is None:
        return []
    actual = study_day(sampled, ctx.randomized_at, ctx.timezone)
    if actual == day:
        return []
    return [warning("SAMPLE_DAY_MISMATCH", "sampled_at", f"The sample was taken on study day "
                    f"{actual}, but this is the day-{day} form; confirm.")]


def _inflammatory_markers(protocol: Protocol, day: int | None, data: Mapping[str, Any],
                          values: dict[str, Any], ctx: VisitContext):
    return sample_day_findings(values, day, ctx), {}, None

_CROSS_FIELD = {
    "sofa": _sofa,
    "standard_therapy": _standard_therapy,
    "inflammatory_markers": _inflammatory_markers,
    "msc_product": _msc_product,
    "msc_infusion": _msc_infusion,
    "msc_not_given": _msc_not_given,
    "vital_status": _vital_status,
    "end_of_study": _end_of_study,
}


def canonical_values(form_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Stored data with numbers in their canonical units (``{"value", "unit"}`` converted).

    For reading saved forms (deviations, exports); values that do not convert are left
    out. Times stay as stored (ISO strings).
    """
    definition = form_definition(form_id)
    out: dict[str, Any] = {}
    for f in definition.fields:
        raw = data.get(f.id)
        if raw is None:
            continue
        if isinstance(raw, Mapping) and f.measure:
            try:
                out[f.id] = to_canonical(f.measure, raw.get("value"), str(raw.get("unit")),
                                         field=f.id)
            except TrialError:
                continue
        else:
            out[f.id] = raw
    return out
