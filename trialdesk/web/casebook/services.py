"""Casebook use cases: read a patient's casebook, save a form, keep deviations current.

Every rule is the domain core's (:mod:`trialdesk.crf`, :mod:`trialdesk.intervention`,
:mod:`trialdesk.clinical`); this module loads and stores. The pages and the API call
these same functions.

Saving a form (:func:`save_form`)
---------------------------------
1. The patient's data must not be locked (``trialdesk.web.datamgmt.locks``): the save
   takes the lock rows in its transaction, so a lock set meanwhile waits for it.
2. The edit checks run on the data as entered. Hard errors refuse the save with
   :class:`~trialdesk.errors.EditCheckFailed` listing *every* finding; unconfirmed soft
   warnings refuse it with :class:`~trialdesk.errors.ConfirmationRequired`. A refused
   save changes nothing: the saved record keeps its data.
3. Changing saved data needs a reason; the reason (and any warnings confirmed) is the
   audit row's change reason. Resending identical data changes nothing.
4. What the core computes (SOFA, bundles, dose, release) is stored in ``derived``;
   protocol deviations are re-detected after every MSC form.

Forms marked entered in error (:func:`mark_form_entered_in_error`) are kept but left out
of everything here: the schedule, SOFA per day, the edit checks' context, the MSC records
and deviations. Their slot can be entered again as a new record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from trialdesk.clinical.timeutil import site_zone, utcnow
from trialdesk.crf.checks import CheckResult, VisitContext, canonical_values, check_form
from trialdesk.crf.forms import LAB_FORMS, form_definition
from trialdesk.crf.schedule import SubjectSchedule, subject_schedule
from trialdesk.crf.vital_status import death_date  # the casebook's date of death (core)
from trialdesk.errors import ConfirmationRequired, EditCheckFailed, InputRejected
from trialdesk.intervention.deviations import detect_deviations, dose_given
from trialdesk.intervention.release import check_release, time_value
from trialdesk.protocol import Protocol
from trialdesk.web.audit.entered_in_error import clean_reason, mark
from trialdesk.web.casebook.models import Deviation, DeviationStatus, FormRecord
from trialdesk.web.randomization.models import Allocation

#: forms whose saving re-runs deviation detection
MSC_FORMS = ("msc_product", "msc_infusion", "msc_not_given")
#: the day each MSC form is stored under: the product and the dose not given once per
#: patient, the infusion day 0
MSC_DAYS: dict[str, int | None] = {"msc_product": None, "msc_infusion": 0,
                                   "msc_not_given": None}


def msc_records(allocation: Allocation) -> dict[str, FormRecord]:
    """The patient's saved MSC product, infusion and not-given records, by form id."""
    rows = allocation.form_records.active().filter(form_id__in=MSC_FORMS)
    return {r.form_id: r for r in rows if r.day == MSC_DAYS[r.form_id]}


def _hold_unlocked(allocation: Allocation) -> None:
    """The data manager's lock (patient or trial) stops every change to the casebook;
    called inside the saving transaction, it holds the lock rows until the commit."""
    from trialdesk.web.datamgmt.locks import hold_unlocked

    hold_unlocked(allocation)


# --- reading ------------------------------------------------------------------------------


def visit_context(allocation: Allocation, *, now: dt.datetime | None = None,
                  exclude: tuple[str, int | None] | None = None) -> VisitContext:
    """The subject facts the edit checks need; ``exclude`` = the form being edited."""
    others = [r for r in allocation.form_records.active() if (r.form_id, r.day) != exclude]
    return VisitContext(
        randomized_at=allocation.randomized_at, timezone=allocation.site.timezone,
        arm=allocation.arm, now=now or utcnow(), onset_at=allocation.screening.onset_utc,
        death_date=death_date(others), recorded=[(r.form_id, r.day) for r in others])


@dataclass(frozen=True)
class Casebook:
    """A patient's casebook: schedule with statuses, records, SOFA per day, deviations."""

    allocation: Allocation
    schedule: SubjectSchedule
    records: dict[tuple[str, int | None], FormRecord]
    deviations: list[Deviation]
    death_date: dt.date | None
    sofa_by_day: dict[int, dict[str, Any]] = field(default_factory=dict)

    def record(self, form_id: str, day: int | None) -> FormRecord | None:
        return self.records.get((form_id, day))


def casebook(protocol: Protocol, allocation: Allocation, *,
             now: dt.datetime | None = None) -> Casebook:
    records = list(allocation.form_records.active())
    by_key = {(r.form_id, r.day): r for r in records}
    died = death_date(records)
    today = (now or utcnow()).astimezone(site_zone(allocation.site.timezone)).date()
    schedule = subject_schedule(protocol, randomized_at=allocation.randomized_at,
                                timezone=allocation.site.timezone, arm=allocation.arm,
                                today=today, death_date=died, done=by_key.keys())
    sofa = {r.day: r.derived["sofa"] for r in records
            if r.form_id == "sofa" and r.day is not None and "sofa" in r.derived}
    return Casebook(allocation, schedule, by_key, list(allocation.deviations.all()), died,
                    sofa)


# --- saving -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveOutcome:
    record: FormRecord
    created: bool
    changed: bool
    result: CheckResult
    deviations: tuple[Deviation, ...] = ()


def _refusal_message(findings, intro: str) -> str:
    return intro + " " + " ".join(f"({n}) {f.message}" for n, f in enumerate(findings, 1))


def _derived(protocol: Protocol, allocation: Allocation, form_id: str, result: CheckResult,
             data: Mapping[str, Any]) -> dict[str, Any]:
    derived = dict(result.derived)
    if form_id == "msc_infusion":
        product = msc_records(allocation).get("msc_product")
        dose = dose_given(protocol, canonical_values(form_id, data),
                          product.data if product else None)
        derived["dose"] = dose.to_dict() if dose else None
        start = time_value(data, "infusion_start_at")
        onset = allocation.screening.onset_utc
        if start is not None and onset is not None:
            hours = (start - onset).total_seconds() / 3600
            derived["hours_after_onset"] = round(hours, 3)
            derived["late"] = hours > protocol.intervention.deadline_hours_after_onset
    if form_id == "msc_product":
        derived["release"] = check_release(data, protocol.intervention.release_criteria
                                           ).to_dict()
    return derived


def save_form(protocol: Protocol, allocation: Allocation, form_id: str, day: int | None,
              data: Mapping[str, Any], *, user: Any, reason: str = "",
              confirm: Iterable[str] = (), now: dt.datetime | None = None) -> SaveOutcome:
    """Check and save one form (see the module docstring); raises on refusal, saving nothing.

    ``confirm`` holds the ``key`` of each soft warning the user confirms.
    """
    form_definition(form_id)  # unknown form → InputRejected
    if not isinstance(data, Mapping):
        raise InputRejected("Form data must be an object of field → value.", field="data")
    now = now or utcnow()
    confirmed_keys = set(confirm)
    with transaction.atomic():
        _hold_unlocked(allocation)
        existing = (FormRecord.objects.select_for_update().active()
                    .filter(allocation=allocation, form_id=form_id, day=day).first())
        if existing is not None and existing.data == dict(data):
            # a resent save (a retried request): nothing changes, nothing is re-asked
            return SaveOutcome(existing, False, False, CheckResult(form_id, day, {}, ()))
        ctx = visit_context(allocation, now=now, exclude=(form_id, day))
        result = check_form(protocol, form_id, day, data, ctx)
        if result.errors:
            raise EditCheckFailed(
                _refusal_message(result.errors, f"Not saved: {len(result.errors)} "
                                 f"problem{'s' if len(result.errors) > 1 else ''} to correct."),
                problems=[f.to_dict() for f in result.findings],
                field=result.errors[0].field)
        pending = [w for w in result.warnings if w.key not in confirmed_keys]
        if pending:
            raise ConfirmationRequired(
                _refusal_message(pending, "Not saved yet: confirm these unusual values (or "
                                 "correct them)."),
                problems=[f.to_dict() for f in result.findings], field=pending[0].field)
        confirmations = [{**w.to_dict(), "confirmed_by": user.get_username(),
                          "confirmed_at": now.isoformat()} for w in result.warnings]
        if existing is not None and not (reason or "").strip():
            raise InputRejected("This form is already saved: give a reason for the change "
                                "(e.g. 'lab value corrected'). Nothing was changed.",
                                field="reason")
        record = existing or FormRecord(allocation=allocation, form_id=form_id, day=day)
        record.data = dict(data)
        record.derived = _derived(protocol, allocation, form_id, result, data)
        record.confirmed_warnings = confirmations
        record.entered_by = user
        why = (reason or "").strip() or "form entered"
        if confirmations:
            why += "; confirmed: " + "; ".join(c["message"] for c in confirmations)
        record._history_user = user
        record._change_reason = why
        record.save()
        deviations: tuple[Deviation, ...] = ()
        if form_id in MSC_FORMS:
            deviations = sync_deviations(protocol, allocation, user=user, now=now)
    return SaveOutcome(record, existing is None, True, result, deviations)


# --- deviations -----------------------------------------------------------------------------


def sync_deviations(protocol: Protocol, allocation: Allocation, *, user: Any,
                    now: dt.datetime | None = None) -> tuple[Deviation, ...]:
    """Make the patient's Deviation rows match what the MSC records show now.

    New deviations open; ones no longer shown become ``resolved``; a resolved one shown
    again reopens. Every change is audited. Returns the deviations currently shown.
    """
    now = now or utcnow()
    records = msc_records(allocation)
    infusion, product = records.get("msc_infusion"), records.get("msc_product")
    found = detect_deviations(
        protocol, arm=allocation.arm, onset_at=allocation.screening.onset_utc,
        infusion=canonical_values("msc_infusion", infusion.data) if infusion else None,
        product=product.data if product else None,
        not_given=records["msc_not_given"].data if "msc_not_given" in records else None)
    existing = {d.code: d for d in Deviation.objects.select_for_update()
                .filter(allocation=allocation)}
    shown = []
    for dev in found:
        row = existing.get(dev.code)
        source = records.get(dev.form)
        if row is None:
            row = Deviation(allocation=allocation, code=dev.code, severity=dev.severity,
                            message=dev.message, source=source, detected_at=now)
            row._change_reason = "detected automatically"
        elif row.status == DeviationStatus.RESOLVED:
            row.status, row.message, row.detected_at = DeviationStatus.OPEN, dev.message, now
            row._change_reason = "shown again by the data"
        elif row.message != dev.message:
            row.message = dev.message
            row._change_reason = "details changed with the data"
        else:
            shown.append(row)
            continue
        row._history_user = user
        row.save()
        shown.append(row)
    for code, row in existing.items():
        if code not in {d.code for d in found} and row.status != DeviationStatus.RESOLVED:
            row.status = DeviationStatus.RESOLVED
            row._history_user = user
            row._change_reason = "no longer shown by the data (corrected)"
            row.save()
    return tuple(shown)


def acknowledge_deviation(deviation: Deviation, user: Any, *, comment: str = "",
                          now: dt.datetime | None = None) -> Deviation:
    """The investigator or data manager has seen the deviation (with an optional comment)."""
    if deviation.status != DeviationStatus.OPEN:
        raise InputRejected(f"This deviation is {deviation.get_status_display().lower()}; "
                            "only an open deviation can be acknowledged.", field="deviation")
    with transaction.atomic():
        _hold_unlocked(deviation.allocation)
        deviation.status = DeviationStatus.ACKNOWLEDGED
        deviation.acknowledged_by = user
        deviation.acknowledged_at = now or utcnow()
        deviation.comment = (comment or "").strip()
        deviation._history_user = user
        deviation._change_reason = "acknowledged" + (f": {deviation.comment}"
                                                     if deviation.comment else "")
        deviation.save()
    return deviation


# --- entered in error -----------------------------------------------------------------------


def mark_form_entered_in_error(protocol: Protocol, allocation: Allocation, form_id: str,
                               day: int | None, user: Any, *, reason: str,
                               now: dt.datetime | None = None) -> FormRecord:
    """Retire the patient's form in use for (``form_id``, ``day``), entered by mistake.

    Kept with its history (the reason is the audit row's reason); it leaves the schedule,
    SOFA, the checks and the export, and the slot can be entered again. Refused under a
    lock. Deviations are re-detected when an MSC form is retired.
    """
    form_definition(form_id)  # unknown form → InputRejected
    why = clean_reason(reason, "form")
    with transaction.atomic():
        _hold_unlocked(allocation)
        record = (FormRecord.objects.select_for_update().active()
                  .filter(allocation=allocation, form_id=form_id, day=day).first())
        if record is None:
            when = "" if day is None else f" for day {day}"
            raise InputRejected(f"No {form_id} form{when} is saved for "
                                f"{allocation.subject_id}: nothing to mark entered in error.",
                                field="form_id")
        mark(record, user, why)
        if form_id in MSC_FORMS:
            sync_deviations(protocol, allocation, user=user, now=now)
    return record


def is_lab_form(form_id: str) -> bool:
    return form_id in LAB_FORMS
