"""Screening pages: the dashboard of open screenings with their clocks, a screening's
page (live eligibility, consent, randomize), corrections with reasons, the audit view."""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from trialdesk.clinical.onset import EnrolmentWindow
from trialdesk.clinical.timeutil import format_local, utcnow
from trialdesk.eligibility import evaluate
from trialdesk.errors import TrialError
from trialdesk.web.accounts.permissions import check_site, has_permission, requires, sites_for
from trialdesk.web.audit.views import history_rows
from trialdesk.web.core.forms import ScreeningForm
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.randomization.services import randomize
from trialdesk.web.screening.forms import CloseForm, ConsentForm, ReasonForm
from trialdesk.web.screening.models import Screening, ScreeningStatus
from trialdesk.web.screening.services import (
    assess,
    close_screening,
    create_screening,
    open_screenings,
    record_consent,
    update_screening,
)


def clock(screening: Screening, now=None) -> dict[str, Any] | None:
    """The onset clock of a screening (domain EnrolmentWindow), shown in site time."""
    if screening.onset_utc is None:
        return None
    protocol = current_protocol()
    now = now or utcnow()
    window = EnrolmentWindow(screening.onset_utc, protocol.enrolment_deadline_hours)
    try:
        status = window.status(now)
    except TrialError:
        return None
    return {"status": status, "urgency": status.urgency.value,
            "elapsed_h": status.hours_elapsed, "left_h": status.hours_left,
            "deadline_local": format_local(window.deadline_utc, screening.site.timezone),
            "onset_local": format_local(screening.onset_utc, screening.site.timezone)}


def _screening_for(request: HttpRequest, pk: int, action: str) -> Screening:
    screening = get_object_or_404(Screening.objects.select_related("site"), pk=pk)
    check_site(request.user, action, screening.site)
    return screening


def _dashboard_row(screening: Screening, c: dict[str, Any] | None) -> dict[str, Any]:
    """Display strings computed once in Python: the dashboard may list 1,000 screenings."""
    row = {"number": screening.screening_number, "site": screening.site.code,
           "href": reverse("screening:detail", args=[screening.pk]),
           "urgency": c["urgency"] if c else "none", "left_h": c["left_h"] if c else None}
    if c:
        row.update(onset=c["onset_local"], deadline=c["deadline_local"],
                   elapsed=f"{c['elapsed_h']:.1f} h",
                   left=f"{c['left_h']:.1f} h" if c["status"].is_open else "closed")
    return row


DASHBOARD_PAGE = 50


@requires("screening.view")
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Open screenings, most urgent first: deadline order is onset order, so the database
    sorts and pages them; clocks are computed for the rows shown only."""
    now = utcnow()
    found = open_screenings(current_protocol(), sites_for(request.user, "screening.view"), now)
    sections = []
    for title, queryset in (("In the enrolment window", found.in_window),
                            ("Window closed — record the outcome", found.closed),
                            ("Onset not recorded", found.no_onset)):
        shown = [_dashboard_row(s, clock(s, now)) for s in queryset[:DASHBOARD_PAGE]]
        sections.append({"title": title, "rows": shown, "total": queryset.count()})
    template = "screening/_dashboard_rows.html" if request.htmx else "screening/dashboard.html"
    return render(request, template, {"sections": sections, "page": DASHBOARD_PAGE,
                                      "can_edit": has_permission(request.user,
                                                                 "screening.edit")})


@requires("screening.edit")
@require_http_methods(["GET", "POST"])
def new_screening(request: HttpRequest) -> HttpResponse:
    protocol = current_protocol()
    sites = list(sites_for(request.user, "screening.edit"))
    if not sites:
        raise PermissionDenied("You are not staff at any site.")
    site = next((s for s in sites if s.code == request.POST.get("site")), sites[0])
    form = ScreeningForm(protocol, request.POST or None, zone=site.timezone)
    if request.method == "POST" and form.is_valid():
        view = create_screening(protocol, site, request.user, form.to_record())
        messages.success(request, f"{view.screening.screening_number} logged.")
        return redirect("screening:detail", pk=view.screening.pk)
    return render(request, "screening/new.html", {"form": form, "sites": sites, "site": site},
                  status=400 if request.method == "POST" else 200)


@requires("screening.edit")
@require_POST
def live_eligibility(request: HttpRequest) -> HttpResponse:
    """htmx: the criteria table for the form as currently filled in (nothing saved)."""
    protocol = current_protocol()
    sites = {s.code: s for s in sites_for(request.user, "screening.edit")}
    site = sites.get(request.POST.get("site", "")) or next(iter(sites.values()), None)
    zone = site.timezone if site else protocol.sites[0].timezone
    form = ScreeningForm(protocol, request.POST, zone=zone)
    result = evaluate(protocol, form.to_record() if form.is_valid() else {},
                      site_id=site.code if site else None)
    return render(request, "screening/_eligibility.html",
                  {"result": result, "form_errors": form.errors})


@requires("screening.view")
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    screening = _screening_for(request, pk, "screening.view")
    return _render_detail(request, screening)


def _render_detail(request: HttpRequest, screening: Screening, *, status: int = 200,
                   edit_form: ScreeningForm | None = None, reason_form: ReasonForm | None = None,
                   consent_form: ConsentForm | None = None, error: TrialError | None = None
                   ) -> HttpResponse:
    protocol = current_protocol()
    user = request.user
    zone = screening.site.timezone
    initial = ScreeningForm.initial_from_record(protocol, screening.record, zone)
    context = {
        "s": screening, "result": assess(protocol, screening), "clock": clock(screening),
        "consents": screening.consents.all(),
        "allocation": getattr(screening, "allocation", None),
        # opened from the candidate board: where each pre-filled value came from
        "referral": getattr(screening, "prescreen_referral", None),
        "edit_form": edit_form or ScreeningForm(protocol, initial=initial, zone=zone),
        "reason_form": reason_form or ReasonForm(),
        "consent_form": consent_form or ConsentForm(),
        "close_form": CloseForm(), "error": error,
        "request_id": uuid.uuid4().hex,
        "is_open": screening.status == ScreeningStatus.OPEN,
        "can_edit": has_permission(user, "screening.edit", screening.site),
        "can_consent": has_permission(user, "consent.record", screening.site),
        "can_randomize": has_permission(user, "randomization.randomize", screening.site),
        "can_audit": has_permission(user, "audit.view", screening.site),
    }
    return render(request, "screening/detail.html", context, status=status)


@requires("screening.edit")
@require_POST
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    protocol = current_protocol()
    screening = _screening_for(request, pk, "screening.edit")
    form = ScreeningForm(protocol, request.POST, zone=screening.site.timezone)
    reason = ReasonForm(request.POST)
    if form.is_valid() and reason.is_valid():
        try:
            update_screening(protocol, screening, request.user, form.to_record(),
                             reason.cleaned_data["reason"])
        except TrialError as exc:
            return _render_detail(request, screening, status=400, edit_form=form,
                                  reason_form=reason, error=exc)
        messages.success(request, "Screening record corrected.")
        return redirect("screening:detail", pk=pk)
    return _render_detail(request, screening, status=400, edit_form=form, reason_form=reason)


@requires("consent.record")
@require_POST
def consent(request: HttpRequest, pk: int) -> HttpResponse:
    protocol = current_protocol()
    screening = _screening_for(request, pk, "consent.record")
    form = ConsentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        obtained = data["obtained_at"].replace(tzinfo=ZoneInfo(screening.site.timezone))
        try:
            record_consent(protocol, screening, request.user,
                           consent_type=data["consent_type"],
                           document_version=data["document_version"], obtained_at=obtained,
                           obtained_by=data["obtained_by"], signed_by=data["signed_by"])
        except TrialError as exc:
            return _render_detail(request, screening, status=400, consent_form=form, error=exc)
        messages.success(request, "Consent recorded.")
        return redirect("screening:detail", pk=pk)
    return _render_detail(request, screening, status=400, consent_form=form)


@requires("randomization.randomize")
@require_POST
def randomize_view(request: HttpRequest, pk: int) -> HttpResponse:
    screening = _screening_for(request, pk, "randomization.randomize")
    try:
        outcome = randomize(screening.pk, user=request.user,
                            request_id=request.POST.get("request_id", ""),
                            protocol=current_protocol())
    except TrialError as exc:
        return _render_detail(request, screening, status=409, error=exc)
    return redirect("randomization:confirmation", subject_id=outcome.allocation.subject_id)


@requires("screening.edit")
@require_POST
def close(request: HttpRequest, pk: int) -> HttpResponse:
    screening = _screening_for(request, pk, "screening.edit")
    form = CloseForm(request.POST)
    if form.is_valid():
        try:
            close_screening(screening, request.user, **form.cleaned_data)
        except TrialError as exc:
            return _render_detail(request, screening, status=400, error=exc)
        return redirect("screening:detail", pk=pk)
    return _render_detail(request, screening, status=400)


@requires("audit.view")
@require_GET
def audit(request: HttpRequest, pk: int) -> HttpResponse:
    screening = _screening_for(request, pk, "audit.view")
    rows = history_rows(screening)
    for c in screening.consents.all():
        rows += history_rows(c)
    allocation = getattr(screening, "allocation", None)
    if allocation is not None:
        rows += history_rows(allocation)
    rows.sort(key=lambda r: r["when"])
    return render(request, "screening/audit.html", {"s": screening, "rows": rows})
