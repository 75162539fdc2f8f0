"""Adverse-event pages (list and form per patient, event detail) and the safety dashboard."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from trialdesk.clinical.timeutil import format_local, utcnow
from trialdesk.errors import TrialError
from trialdesk.safety.classification import (
    CTCAE_GRADES,
    Causality,
    Expectedness,
    Outcome,
    Seriousness,
)
from trialdesk.safety.deadlines import ReportingRules
from trialdesk.safety.durations import describe_duration, describe_time_left
from trialdesk.web.accounts.permissions import check_site, has_permission, requires, sites_for
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.datamgmt.locks import lock_state
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.safety.services import (
    AE_FIELDS,
    assess,
    dashboard_rows,
    mark_ae_entered_in_error,
    record_report,
    report_ae,
    update_ae,
)


def site_time(value: str, zone: str) -> str:
    """A form's ``datetime-local`` value, read in the site's zone, as ISO 8601 with offset.

    A value that already carries an offset is kept as is.
    """
    value = (value or "").strip()
    if not value:
        return ""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return value  # the service refuses it with a message naming the field
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.isoformat()


def _entry(request: HttpRequest, zone: str) -> dict[str, Any]:
    post = request.POST
    entry: dict[str, Any] = {k: post.get(k, "") for k in AE_FIELDS if k != "seriousness"}
    entry["seriousness"] = post.getlist("seriousness")
    entry["onset"] = site_time(entry["onset"], zone)
    entry["awareness"] = site_time(entry["awareness"], zone)
    return entry


def _choices() -> dict[str, Any]:
    return {"seriousness_choices": [(s.value, s.label) for s in Seriousness],
            "grades": sorted(CTCAE_GRADES.items()),
            "causalities": [c.value for c in Causality],
            "expectednesses": [e.value for e in Expectedness],
            "outcomes": [o.value for o in Outcome]}


def _allocation(request: HttpRequest, subject_id: str, action: str) -> Allocation:
    allocation = get_object_or_404(Allocation.objects.select_related("site"),
                                   subject_id=subject_id)
    check_site(request.user, action, allocation.site)
    return allocation


def _event(request: HttpRequest, ae_id: int, action: str) -> AdverseEvent:
    ae = get_object_or_404(AdverseEvent.objects.select_related("allocation__site"), pk=ae_id)
    check_site(request.user, action, ae.allocation.site)
    return ae


def _local_input(t: dt.datetime | None, zone: str) -> str:
    return t.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M") if t else ""


def _obligation_view(o: Any, zone: str) -> dict[str, Any]:
    """``clock``: "2 d 3 h left" / "40 d 11 h late" while a report is owed; ``late``: how
    late a report was made ("1 d 2 h"); both by :func:`describe_duration`."""
    left = o.time_left
    return {"o": o, "due_local": format_local(o.due_utc, zone) if o.due_utc else "—",
            "clock": describe_time_left(left.total_seconds()) if left is not None else None,
            "late": describe_duration(o.lateness.total_seconds())
            if o.lateness is not None else None}


#: query string of the lists that show the records entered in error instead
SHOW_IN_ERROR = "entered_in_error"


@requires("ae.view")
@require_GET
def patient_events(request: HttpRequest, subject_id: str) -> HttpResponse:
    """The patient's events in use; ``?show=entered_in_error`` lists the retired ones."""
    allocation = _allocation(request, subject_id, "ae.view")
    protocol = current_protocol()
    now = utcnow()
    zone = allocation.site.timezone
    show_in_error = request.GET.get("show") == SHOW_IN_ERROR
    events = allocation.adverse_events.all()
    events = events.entered_in_error() if show_in_error else events.active()
    rows = []
    for ae in events:
        cls, obls = assess(ae, protocol, at=now)
        rows.append({"ae": ae, "cls": cls,
                     "obligations": [] if show_in_error else
                     [_obligation_view(o, zone) for o in obls if o.required],
                     "onset_local": format_local(ae.onset_at, zone)})
    return render(request, "safety/patient_events.html", {
        "a": allocation, "rows": rows, "lock": lock_state(allocation),
        "show_in_error": show_in_error,
        "in_error_count": allocation.adverse_events.entered_in_error().count(),
        "can_report": has_permission(request.user, "ae.report", allocation.site)})


@requires("ae.report")
@require_http_methods(["GET", "POST"])
def new_event(request: HttpRequest, subject_id: str) -> HttpResponse:
    allocation = _allocation(request, subject_id, "ae.report")
    protocol = current_protocol()
    zone = allocation.site.timezone
    error, values = None, {}
    if request.method == "POST":
        values = _entry(request, zone)
        try:
            ae = report_ae(allocation, request.user, values, protocol=protocol)
        except TrialError as exc:
            error = exc
        else:
            messages.success(request, f"Adverse event '{ae.term}' recorded.")
            return redirect("safety:event", ae_id=ae.pk)
        values["onset"] = request.POST.get("onset", "")
        values["awareness"] = request.POST.get("awareness", "")
    return render(request, "safety/event_form.html", {
        "a": allocation, "values": values, "error": error, "zone": zone, "ae": None,
        "exempt_events": protocol.safety.exempt_events, **_choices()},
        status=422 if error else 200)


@requires("ae.report")
@require_http_methods(["GET", "POST"])
def edit_event(request: HttpRequest, ae_id: int) -> HttpResponse:
    ae = _event(request, ae_id, "ae.report")
    protocol = current_protocol()
    zone = ae.allocation.site.timezone
    error = None
    if request.method == "POST":
        values = _entry(request, zone)
        try:
            update_ae(ae, request.user, values, reason=request.POST.get("reason", ""),
                      protocol=protocol)
        except TrialError as exc:
            error = exc
        else:
            messages.success(request, "Adverse event updated.")
            return redirect("safety:event", ae_id=ae.pk)
        values["onset"] = request.POST.get("onset", "")
        values["awareness"] = request.POST.get("awareness", "")
    else:
        values = {"term": ae.term, "description": ae.description,
                  "onset": _local_input(ae.onset_at, zone),
                  "awareness": _local_input(ae.awareness_at, zone),
                  "seriousness": ae.seriousness, "severity_grade": str(ae.severity_grade),
                  "causality": ae.causality, "expectedness": ae.expectedness,
                  "outcome": ae.outcome, "exempt_event_id": ae.exempt_event_id}
    return render(request, "safety/event_form.html", {
        "a": ae.allocation, "ae": ae, "values": values, "error": error, "zone": zone,
        "exempt_events": protocol.safety.exempt_events, **_choices()},
        status=422 if error else 200)


@requires("ae.view")
@require_GET
def event(request: HttpRequest, ae_id: int) -> HttpResponse:
    from trialdesk.web.datamgmt.services import queries_on, sdv_of, signatures_of

    ae = _event(request, ae_id, "ae.view")
    protocol = current_protocol()
    zone = ae.allocation.site.timezone
    cls, obls = assess(ae, protocol)
    history = ae.history.select_related("history_user").order_by("-history_date")
    site = ae.allocation.site
    return render(request, "safety/event.html", {
        "ae": ae, "a": ae.allocation, "cls": cls, "zone": zone,
        # an event entered in error owes no report
        "obligations": [] if ae.entered_in_error else [_obligation_view(o, zone)
                                                       for o in obls],
        "onset_local": format_local(ae.onset_at, zone),
        "awareness_local": format_local(ae.awareness_at, zone),
        "history": history, "signatures": signatures_of(ae), "sdv": sdv_of(ae),
        "queries": queries_on(ae), "lock": lock_state(ae.allocation),
        "can_report": has_permission(request.user, "ae.report", site),
        "can_regulator": has_permission(request.user, "safety.regulator_report", site)})


def _report(request: HttpRequest, ae_id: int, action: str, recipient: str) -> HttpResponse:
    ae = _event(request, ae_id, action)
    zone = ae.allocation.site.timezone
    try:
        record_report(ae, request.user, recipient=recipient,
                      reported_at=site_time(request.POST.get("reported_at", ""), zone),
                      reason=request.POST.get("reason", ""))
    except TrialError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
    else:
        messages.success(request, f"Report to the {recipient} recorded.")
    return redirect("safety:event", ae_id=ae.pk)


@requires("ae.report")
@require_POST
def report_to_sponsor(request: HttpRequest, ae_id: int) -> HttpResponse:
    return _report(request, ae_id, "ae.report", "sponsor")


@requires("safety.regulator_report")
@require_POST
def report_to_regulator(request: HttpRequest, ae_id: int) -> HttpResponse:
    return _report(request, ae_id, "safety.regulator_report", "regulator")


@requires("ae.report")
@require_POST
def entered_in_error(request: HttpRequest, ae_id: int) -> HttpResponse:
    """Mark the event entered in error (reason required); refused under a lock."""
    ae = _event(request, ae_id, "ae.report")
    try:
        mark_ae_entered_in_error(ae, request.user, reason=request.POST.get("reason", ""))
    except TrialError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
        return redirect("safety:event", ae_id=ae.pk)
    messages.success(request, f"Adverse event '{ae.term}' marked entered in error; it is "
                     "kept in the audit trail and under 'entered in error'.")
    return redirect("safety:patient_events", subject_id=ae.allocation.subject_id)


@requires("safety.dashboard")
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Every SAE/SUSAR report owed at the user's sites: overdue first, highlighted."""
    protocol = current_protocol()
    events = AdverseEvent.objects.filter(
        allocation__site__in=sites_for(request.user, "safety.dashboard"))
    rows = [{"r": r, **_obligation_view(r.obligation, r.ae.allocation.site.timezone)}
            for r in dashboard_rows(events, protocol)]
    pending = [row for row in rows if row["o"].status in ("overdue", "due")]
    settled = [row for row in rows if row["o"].status not in ("overdue", "due")]
    return render(request, "safety/dashboard.html", {
        "pending": pending, "settled": settled[:50],
        "overdue": sum(1 for row in rows if row["o"].status == "overdue"),
        "safety": protocol.safety,
        # the zone the deadlines are counted in: the protocol's, else the first site's
        "reporting_timezone": ReportingRules.from_protocol(protocol).reporting_timezone})
