"""Screening use cases: log a patient, correct the record (with a reason), record consent,
close without enrolment. Eligibility is always the domain engine's answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from trialdesk.clinical.timeutil import parse_aware, utcnow
from trialdesk.eligibility import EligibilityResult, evaluate
from trialdesk.errors import FutureTime, InputRejected, TimeOrderError, TrialError
from trialdesk.protocol import Protocol
from trialdesk.web.screening.models import Consent, ConsentType, Screening, ScreeningStatus
from trialdesk.web.sites.models import Site

NOT_ENROLLED_REASONS = {
    "ineligible": "Not eligible",
    "declined": "Declined to participate",
    "missed_window": "Missed the enrolment window",
    "other": "Other",
}


@dataclass(frozen=True)
class ScreeningView:
    """A screening with its current eligibility (recomputed, never stored as truth)."""

    screening: Screening
    eligibility: EligibilityResult


def _onset_utc(protocol: Protocol, record: dict[str, Any]) -> dt.datetime | None:
    raw = record.get(protocol.onset.field)
    if not raw:
        return None
    try:
        return parse_aware(raw, field=protocol.onset.field)
    except TrialError:
        return None


def assess(protocol: Protocol, screening: Screening,
           at: dt.datetime | None = None) -> EligibilityResult:
    return evaluate(protocol, screening.record, at, site_id=screening.site.code)


@transaction.atomic
def create_screening(protocol: Protocol, site: Site, user: Any,
                     record: dict[str, Any]) -> ScreeningView:
    """Log a patient assessed for eligibility. The record is saved as entered, even
    when some values are refused: those show as problems and block randomization."""
    for attempt in range(5):
        number = Screening.objects.filter(site=site).count() + 1 + attempt
        try:
            with transaction.atomic():
                screening = Screening(
                    site=site, screening_number=f"S-{site.code.upper()}-{number:04d}",
                    record=record, onset_utc=_onset_utc(protocol, record), created_by=user)
                screening._history_user = user
                screening._change_reason = "screening logged"
                screening.save()
            break
        except IntegrityError:
            continue
    else:  # pragma: no cover - five concurrent creations at one site
        raise InputRejected("Could not number the screening; please try again.")
    return ScreeningView(screening, assess(protocol, screening))


def update_screening(protocol: Protocol, screening: Screening, user: Any,
                     record: dict[str, Any], reason: str) -> ScreeningView:
    """Correct a screening record; a reason for the change is required."""
    if not reason.strip():
        raise InputRejected("Give a reason for the change (e.g. 'lab result corrected').",
                            field="reason")
    if screening.status != ScreeningStatus.OPEN:
        status = screening.get_status_display().lower()
        raise InputRejected(f"{screening.screening_number} is {status}: its screening data "
                            "can no longer be changed.")
    screening.record = record
    screening.onset_utc = _onset_utc(protocol, record)
    screening._history_user = user
    screening._change_reason = reason.strip()
    screening.save()
    return ScreeningView(screening, assess(protocol, screening))


def record_consent(protocol: Protocol, screening: Screening, user: Any, *, consent_type: str,
                   document_version: str, obtained_at: dt.datetime, obtained_by: str,
                   signed_by: str = "") -> Consent:
    """Record informed consent and mark the screening record's consent field as signed."""
    try:
        kind = ConsentType(consent_type)
    except ValueError:
        raise InputRejected(f"Unknown consent type '{consent_type}'; use one of "
                            f"{', '.join(c.value for c in ConsentType)}.",
                            field="consent_type") from None
    if not document_version.strip():
        raise InputRejected("Enter the version of the consent document used.",
                            field="document_version")
    if not obtained_by.strip():
        raise InputRejected("Enter who obtained consent.", field="obtained_by")
    obtained_at = parse_aware(obtained_at, field="obtained_at")
    now = utcnow()
    if obtained_at > now + dt.timedelta(minutes=5):
        raise FutureTime(f"Consent time {obtained_at:%Y-%m-%d %H:%M} UTC is in the future; "
                         "check the date, time and time zone.", field="obtained_at")
    allocation = getattr(screening, "allocation", None)
    if allocation is not None and obtained_at > allocation.randomized_at \
            and kind is not ConsentType.DEFERRED:
        raise TimeOrderError(
            f"Consent at {obtained_at:%Y-%m-%d %H:%M} UTC would be after randomization at "
            f"{allocation.randomized_at:%Y-%m-%d %H:%M} UTC; only deferred (emergency) "
            "consent may follow randomization.", field="obtained_at")
    consent_field = protocol.eligibility.consent_field
    with transaction.atomic():
        consent = Consent(screening=screening, consent_type=kind,
                          document_version=document_version.strip(), obtained_at=obtained_at,
                          obtained_by=obtained_by.strip(), signed_by=signed_by.strip(),
                          recorded_by=user)
        consent._history_user = user
        consent.save()
        if consent_field and screening.record.get(consent_field) is not True:
            screening.record = {**screening.record, consent_field: True}
            screening._history_user = user
            screening._change_reason = f"consent recorded ({kind.label})"
            screening.save()
    return consent


def close_screening(screening: Screening, user: Any, *, reason_code: str,
                    detail: str = "") -> Screening:
    """Close a screening without enrolment (CONSORT 'excluded', with its reason)."""
    if reason_code not in NOT_ENROLLED_REASONS:
        raise InputRejected(f"Reason must be one of {', '.join(NOT_ENROLLED_REASONS)}.",
                            field="reason_code")
    if screening.status != ScreeningStatus.OPEN:
        raise InputRejected(f"{screening.screening_number} is already "
                            f"{screening.get_status_display().lower()}.")
    screening.status = ScreeningStatus.NOT_ENROLLED
    screening.not_enrolled_reason = f"{reason_code}: {detail}".strip(": ")
    screening._history_user = user
    screening._change_reason = f"not enrolled — {NOT_ENROLLED_REASONS[reason_code]}"
    screening.save()
    return screening


def confirm_deferred_consent(consent: Consent, user: Any, *, confirmed_at: dt.datetime) -> Consent:
    """Record that the recovered patient confirmed a deferred (emergency) consent."""
    if consent.consent_type != ConsentType.DEFERRED:
        raise InputRejected("Only a deferred (emergency) consent is confirmed by the patient "
                            "later.", field="consent_type")
    if consent.confirmed_by_patient_at is not None:
        raise InputRejected("This deferred consent is already confirmed.")
    confirmed_at = parse_aware(confirmed_at, field="confirmed_at")
    if confirmed_at > utcnow() + dt.timedelta(minutes=5):
        raise FutureTime("The confirmation time is in the future; check the date and time.",
                         field="confirmed_at")
    if confirmed_at < consent.obtained_at:
        raise TimeOrderError("The patient's confirmation cannot precede the deferred consent.",
                             field="confirmed_at")
    consent.confirmed_by_patient_at = confirmed_at
    consent._history_user = user
    consent._change_reason = "deferred consent confirmed by the patient"
    consent.save()
    return consent


def mark_entered_in_error(screening: Screening, user: Any, *, reason: str) -> Screening:
    """Retire a screening logged by mistake; it stays in the database and the audit trail."""
    if not reason.strip():
        raise InputRejected("Say why the screening was entered in error.", field="reason")
    if screening.status == ScreeningStatus.RANDOMIZED:
        raise InputRejected(f"{screening.screening_number} is randomized: a randomized patient "
                            "is never removed (intention to treat); record a withdrawal.")
    screening.status = ScreeningStatus.ENTERED_IN_ERROR
    screening._history_user = user
    screening._change_reason = f"entered in error: {reason.strip()}"
    screening.save()
    return screening


@dataclass(frozen=True)
class OpenScreenings:
    """Open screenings at some sites, split by the enrolment window at ``now``.

    ``in_window`` is sorted by onset, which is deadline order (soonest first); the window
    is inclusive, so a screening exactly at its deadline is still in it. The screening
    dashboard and the home page's worklist read the same querysets.
    """

    in_window: Any  # QuerySet[Screening], soonest deadline first
    closed: Any  # window passed: the outcome is still to be recorded (latest first)
    no_onset: Any  # onset not recorded yet (oldest first)


def open_screenings(protocol: Protocol, sites: Any, now: dt.datetime) -> OpenScreenings:
    """The open screenings at ``sites`` (a queryset or list of sites) by window state."""
    cutoff = now - dt.timedelta(hours=protocol.enrolment_deadline_hours)
    open_here = Screening.objects.select_related("site").filter(
        site__in=sites, status=ScreeningStatus.OPEN)
    return OpenScreenings(
        in_window=open_here.filter(onset_utc__gte=cutoff).order_by("onset_utc"),
        closed=open_here.filter(onset_utc__lt=cutoff).order_by("-onset_utc"),
        no_onset=open_here.filter(onset_utc=None).order_by("created_at"))
