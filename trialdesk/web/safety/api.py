"""API routes for adverse events and the safety obligations (docs/api.md).

The pages' services and permissions; errors through the API's one mapping.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from trialdesk.web.accounts.permissions import sites_for
from trialdesk.web.api.auth import permission, require_site
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.safety.services import (
    assess,
    dashboard_rows,
    mark_ae_entered_in_error,
    record_report,
    report_ae,
    update_ae,
)

router = Router(tags=["adverse events"])


class AdverseEventIn(Schema):
    term: str
    description: str = ""
    onset: str
    awareness: str
    seriousness: list[str] = Field(default_factory=list)
    severity_grade: int
    causality: str = "not_assessed"
    expectedness: str = "not_assessed"
    outcome: str = "unknown"
    exempt_event_id: str = ""


class AdverseEventUpdate(AdverseEventIn):
    reason: str


class ReportIn(Schema):
    reported_at: str
    reason: str = ""


class EnteredInErrorIn(Schema):
    reason: str


def _obligation(o: Any) -> dict[str, Any]:
    left = o.time_left
    return {"kind": o.kind.value, "status": o.status.value, "due_at": o.due_utc,
            "clock_start_at": o.clock_start_utc, "clock_start_basis": o.clock_start_basis,
            "reported_at": o.reported_utc, "rule": o.rule, "reason": o.reason,
            "seconds_left": int(left.total_seconds()) if left is not None else None}


def _event(ae: AdverseEvent) -> dict[str, Any]:
    cls, obls = assess(ae, current_protocol())
    return {"id": ae.pk, "subject_id": ae.allocation.subject_id, "term": ae.term,
            "description": ae.description, "onset_at": ae.onset_at,
            "awareness_at": ae.awareness_at, "seriousness": ae.seriousness,
            "severity_grade": ae.severity_grade, "causality": ae.causality,
            "expectedness": ae.expectedness, "outcome": ae.outcome,
            "exempt_event_id": ae.exempt_event_id,
            "reported_to_sponsor_at": ae.reported_to_sponsor_at,
            "reported_to_regulator_at": ae.reported_to_regulator_at,
            "category": cls.label, "serious": cls.serious, "susar": cls.susar,
            "exempt": cls.exempt, "reasons": list(cls.reasons),
            "entered_in_error": ae.entered_in_error,
            "entered_in_error_reason": ae.entered_in_error_reason,
            # an event entered in error owes no report
            "obligations": [] if ae.entered_in_error else [_obligation(o) for o in obls]}


def _allocation(request: HttpRequest, subject_id: str) -> Allocation:
    allocation = get_object_or_404(Allocation.objects.select_related("site"),
                                   subject_id=subject_id)
    require_site(request, allocation.site)
    return allocation


def _ae(request: HttpRequest, ae_id: int) -> AdverseEvent:
    ae = get_object_or_404(AdverseEvent.objects.select_related("allocation__site"), pk=ae_id)
    require_site(request, ae.allocation.site)
    return ae


@router.get("/allocations/{subject_id}/adverse-events", **permission("ae.view"),
            response=list[dict], url_name="ae_list", operation_id="ae_list",
            summary="A patient's adverse events with their reporting obligations")
def ae_list(request: HttpRequest, subject_id: str, entered_in_error: bool = False):
    """The events in use; ``?entered_in_error=true`` lists those entered in error instead."""
    allocation = _allocation(request, subject_id)
    events = allocation.adverse_events.select_related("allocation")
    events = events.entered_in_error() if entered_in_error else events.active()
    return [_event(ae) for ae in events]


@router.post("/allocations/{subject_id}/adverse-events", **permission("ae.report"),
             response={201: dict}, url_name="ae_create", operation_id="ae_create",
             summary="Report an adverse event")
def ae_create(request: HttpRequest, subject_id: str, payload: AdverseEventIn):
    allocation = _allocation(request, subject_id)
    ae = report_ae(allocation, request.auth, payload.dict(), protocol=current_protocol())
    return Status(201, _event(ae))


@router.get("/adverse-events/{ae_id}", **permission("ae.view"), response=dict,
            url_name="ae_detail", operation_id="ae_detail",
            summary="An adverse event with its classification and obligations")
def ae_detail(request: HttpRequest, ae_id: int):
    return _event(_ae(request, ae_id))


@router.put("/adverse-events/{ae_id}", **permission("ae.report"), response=dict,
            url_name="ae_update", operation_id="ae_update",
            summary="Correct or follow up an adverse event (reason required)")
def ae_update(request: HttpRequest, ae_id: int, payload: AdverseEventUpdate):
    ae = _ae(request, ae_id)
    data = payload.dict()
    reason = data.pop("reason")
    return _event(update_ae(ae, request.auth, data, reason=reason,
                            protocol=current_protocol()))


@router.post("/adverse-events/{ae_id}/sponsor-report", **permission("ae.report"),
             response=dict, url_name="ae_sponsor_report", operation_id="ae_sponsor_report",
             summary="Record when the SAE was reported to the sponsor")
def ae_sponsor_report(request: HttpRequest, ae_id: int, payload: ReportIn):
    ae = _ae(request, ae_id)
    return _event(record_report(ae, request.auth, recipient="sponsor",
                                reported_at=payload.reported_at, reason=payload.reason))


@router.post("/adverse-events/{ae_id}/regulator-report",
             **permission("safety.regulator_report"), response=dict,
             url_name="ae_regulator_report", operation_id="ae_regulator_report",
             summary="Record when the SUSAR was reported to the regulators")
def ae_regulator_report(request: HttpRequest, ae_id: int, payload: ReportIn):
    ae = _ae(request, ae_id)
    return _event(record_report(ae, request.auth, recipient="regulator",
                                reported_at=payload.reported_at, reason=payload.reason))


@router.post("/adverse-events/{ae_id}/entered-in-error", **permission("ae.report"),
             response=dict, url_name="ae_entered_in_error", operation_id="ae_entered_in_error",
             summary="Mark an adverse event entered in error (reason required; kept, audited)")
def ae_entered_in_error(request: HttpRequest, ae_id: int, payload: EnteredInErrorIn):
    ae = _ae(request, ae_id)
    return _event(mark_ae_entered_in_error(ae, request.auth, reason=payload.reason))


@router.get("/safety/obligations", **permission("safety.dashboard"), response=list[dict],
            url_name="safety_obligations", operation_id="safety_obligations",
            summary="SAE/SUSAR reports owed at your sites, overdue first")
def safety_obligations(request: HttpRequest):
    events = AdverseEvent.objects.filter(
        allocation__site__in=sites_for(request.auth, "safety.dashboard"))
    return [{"ae_id": r.ae.pk, "subject_id": r.ae.allocation.subject_id, "term": r.ae.term,
             "category": r.classification.label, **_obligation(r.obligation)}
            for r in dashboard_rows(events, current_protocol())]
