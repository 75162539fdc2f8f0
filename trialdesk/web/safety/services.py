"""Adverse-event use cases: report, update (with a reason), record a report, mark entered
in error; the dashboard.

Every change takes the patient's lock rows in its transaction (``hold_unlocked``: a
locked patient or trial refuses it, and a lock set meanwhile waits for it) and is kept
in the event's history with the user and the reason. An event marked entered in error is
final and leaves the lists and the obligations. Reporting obligations (due times,
status) come from the domain core :mod:`trialdesk.safety.deadlines`, never from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from trialdesk.clinical.timeutil import ensure_not_future, parse_aware, utcnow
from trialdesk.errors import InputRejected, TimeOrderError
from trialdesk.protocol import Protocol
from trialdesk.safety.classification import Classification, EventFacts
from trialdesk.safety.deadlines import (
    Obligation,
    ObligationStatus,
    ReportingRules,
    obligations,
)
from trialdesk.web.audit.entered_in_error import (
    clean_reason,
    mark,
    refuse_if_entered_in_error,
)
from trialdesk.web.datamgmt.locks import hold_unlocked
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.safety.models import AdverseEvent

#: keys of an adverse-event entry (form or API body)
AE_FIELDS = ("term", "description", "onset", "awareness", "seriousness", "severity_grade",
             "causality", "expectedness", "outcome", "exempt_event_id")
REQUIRED = ("term", "onset", "awareness", "severity_grade")


def _facts(values: dict[str, Any]) -> EventFacts:
    return EventFacts.build(
        seriousness=values.get("seriousness") or (), severity_grade=values["severity_grade"],
        causality=values.get("causality") or "not_assessed",
        expectedness=values.get("expectedness") or "not_assessed",
        outcome=values.get("outcome") or "unknown",
        exempt_event_id=values.get("exempt_event_id") or "")


def _clean(entry: dict[str, Any], protocol: Protocol, now: datetime) -> dict[str, Any]:
    """Validate an entry; refuse unknown keys, missing values, impossible times."""
    unknown = sorted(set(entry) - set(AE_FIELDS))
    if unknown:
        raise InputRejected(f"Unknown adverse-event field(s): {', '.join(unknown)}; "
                            f"known: {', '.join(AE_FIELDS)}.", field=unknown[0])
    for key in REQUIRED:
        if entry.get(key) in (None, ""):
            raise InputRejected(f"{key.replace('_', ' ').capitalize()} is required.",
                                field=key)
    term = str(entry["term"]).strip()
    if not term:
        raise InputRejected("Term is required (e.g. 'infusion reaction, fever').",
                            field="term")
    onset = ensure_not_future(parse_aware(entry["onset"], field="onset"), now, field="onset")
    aware = ensure_not_future(parse_aware(entry["awareness"], field="awareness"), now,
                              field="awareness")
    if aware < onset:
        raise TimeOrderError("Awareness cannot be earlier than the onset of the event.",
                             field="awareness")
    try:
        grade = int(entry["severity_grade"])
    except (TypeError, ValueError):
        raise InputRejected(f"Severity: CTCAE grade must be 1 to 5, got "
                            f"{entry['severity_grade']!r}.", field="severity_grade") from None
    seriousness = entry.get("seriousness") or []
    if isinstance(seriousness, str):
        seriousness = [seriousness]
    values = {**entry, "term": term, "onset": onset, "awareness": aware,
              "severity_grade": grade, "seriousness": sorted(set(seriousness)),
              "description": str(entry.get("description") or "")}
    facts = _facts(values)
    # classification refuses an exempt id the protocol does not list
    obligations(facts, awareness=aware, at=now, rules=ReportingRules.from_protocol(protocol))
    return values


def _apply(ae: AdverseEvent, values: dict[str, Any], protocol: Protocol,
           now: datetime) -> None:
    ae.term = values["term"]
    ae.description = values["description"]
    ae.onset_at = values["onset"]
    ae.awareness_at = values["awareness"]
    ae.seriousness = values["seriousness"]
    ae.severity_grade = values["severity_grade"]
    ae.causality = values.get("causality") or "not_assessed"
    ae.expectedness = values.get("expectedness") or "not_assessed"
    ae.outcome = values.get("outcome") or "unknown"
    ae.exempt_event_id = values.get("exempt_event_id") or ""
    cls, _ = assess(ae, protocol, at=now)
    ae.serious = cls.serious
    ae.susar = cls.susar


def report_ae(allocation: Allocation, user: Any, entry: dict[str, Any], *,
              protocol: Protocol, now: datetime | None = None) -> AdverseEvent:
    """Record a new adverse event of a randomized patient."""
    now = now or utcnow()
    values = _clean(entry, protocol, now)
    with transaction.atomic():
        hold_unlocked(allocation)
        ae = AdverseEvent(allocation=allocation, created_by=user)
        _apply(ae, values, protocol, now)
        ae._history_user = user
        ae._change_reason = "adverse event reported"
        ae.save()
    return ae


def update_ae(ae: AdverseEvent, user: Any, entry: dict[str, Any], *, reason: str,
              protocol: Protocol, now: datetime | None = None) -> AdverseEvent:
    """Correct or follow up an adverse event; ``entry`` is the complete new assessment."""
    now = now or utcnow()
    if not (reason or "").strip():
        raise InputRejected("Give a reason for the change (e.g. 'follow-up: outcome "
                            "recovered', 'causality re-assessed').", field="reason")
    values = _clean(entry, protocol, now)
    with transaction.atomic():
        hold_unlocked(ae.allocation)
        ae = AdverseEvent.objects.select_for_update().get(pk=ae.pk)
        refuse_if_entered_in_error(ae, "adverse event")
        _apply(ae, values, protocol, now)
        for name, t in (("reported_to_sponsor", ae.reported_to_sponsor_at),
                        ("reported_to_regulator", ae.reported_to_regulator_at)):
            if t is not None and t < ae.awareness_at:
                raise TimeOrderError(f"The {name.replace('_', ' ')} time is earlier than the "
                                     "new awareness time.", field="awareness")
        ae._history_user = user
        ae._change_reason = reason.strip()
        ae.save()
    return ae


RECIPIENTS = {"sponsor": "reported_to_sponsor_at", "regulator": "reported_to_regulator_at"}


def record_report(ae: AdverseEvent, user: Any, *, recipient: str, reported_at: Any,
                  reason: str = "", now: datetime | None = None) -> AdverseEvent:
    """Record when the SAE went to the sponsor, or the SUSAR to the regulators.

    Changing a time already recorded needs a reason.
    """
    now = now or utcnow()
    if recipient not in RECIPIENTS:
        raise InputRejected("Recipient must be 'sponsor' or 'regulator'.", field="recipient")
    at = ensure_not_future(parse_aware(reported_at, field="reported_at"), now,
                           field="reported_at")
    attr = RECIPIENTS[recipient]
    with transaction.atomic():
        hold_unlocked(ae.allocation)
        ae = AdverseEvent.objects.select_for_update().get(pk=ae.pk)
        refuse_if_entered_in_error(ae, "adverse event")
        if at < ae.awareness_at:
            raise TimeOrderError("The report cannot be earlier than the site's awareness of "
                                 "the event.", field="reported_at")
        previous = getattr(ae, attr)
        if previous is not None and not (reason or "").strip():
            raise InputRejected(f"A report to the {recipient} is already recorded; give a "
                                "reason to change its time.", field="reason")
        setattr(ae, attr, at)
        ae._history_user = user
        ae._change_reason = (reason.strip() if previous is not None
                             else f"report to the {recipient} recorded")
        ae.save()
    return ae


def mark_ae_entered_in_error(ae: AdverseEvent, user: Any, *, reason: str) -> AdverseEvent:
    """Retire an event reported by mistake (wrong patient, duplicate): kept with its
    history, gone from the lists, the obligations and the export. Refused under a lock."""
    why = clean_reason(reason, "adverse event")
    with transaction.atomic():
        hold_unlocked(ae.allocation)
        ae = AdverseEvent.objects.select_for_update().get(pk=ae.pk)
        if ae.entered_in_error:
            raise InputRejected(f"This adverse event is already marked entered in error "
                                f"({ae.entered_in_error_reason}).", field="reason")
        mark(ae, user, why)
    return ae


def rules_for(protocol: Protocol) -> ReportingRules:
    return ReportingRules.from_protocol(protocol)


def assess(ae: AdverseEvent, protocol: Protocol, *, at: datetime | None = None,
           ) -> tuple[Classification, tuple[Obligation, ...]]:
    """Classification and obligations of a stored event at ``at`` (default now)."""
    facts = EventFacts.build(seriousness=ae.seriousness, severity_grade=ae.severity_grade,
                             causality=ae.causality, expectedness=ae.expectedness,
                             outcome=ae.outcome, exempt_event_id=ae.exempt_event_id)
    return obligations(facts, awareness=ae.awareness_at, at=at or utcnow(),
                       rules=rules_for(protocol),
                       reported_to_sponsor=ae.reported_to_sponsor_at,
                       reported_to_regulator=ae.reported_to_regulator_at)


@dataclass(frozen=True)
class DashboardRow:
    ae: AdverseEvent
    classification: Classification
    obligation: Obligation

    @property
    def escalated(self) -> bool:
        return self.obligation.status is ObligationStatus.OVERDUE


_ORDER = {ObligationStatus.OVERDUE: 0, ObligationStatus.DUE: 1, ObligationStatus.MET_LATE: 2,
          ObligationStatus.MET: 3}


def dashboard_rows(events: QuerySet[AdverseEvent], protocol: Protocol, *,
                   at: datetime | None = None) -> list[DashboardRow]:
    """Every SAE/SUSAR obligation of ``events``: overdue first (most overdue on top), then
    due (soonest first), then settled ones (met late, met). Events entered in error owe
    nothing and are left out."""
    at = at or utcnow()
    rows = []
    for ae in events.filter(serious=True, entered_in_error=False).select_related(
            "allocation", "allocation__site"):
        cls, obls = assess(ae, protocol, at=at)
        rows += [DashboardRow(ae, cls, o) for o in obls if o.required]
    rows.sort(key=lambda r: (_ORDER[r.obligation.status], r.obligation.due_utc))
    return rows
