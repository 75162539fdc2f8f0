"""The candidate board (htmx, refreshed every few seconds), a patient's pre-screening page
and the one-click "open screening" from a candidate."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from trialdesk.clinical.timeutil import utcnow
from trialdesk.web.accounts.permissions import check_site, has_permission, requires, sites_for
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.prescreen.board_display import board_lines, csrf_field
from trialdesk.web.prescreen.models import PrescreenPatient, ScreeningReferral
from trialdesk.web.prescreen.services import board as board_rows
from trialdesk.web.prescreen.services import open_screening as open_referral

#: seconds between two refreshes of the board (htmx polling)
REFRESH_SECONDS = 5


@requires("prescreen.view")
@require_GET
def board(request: HttpRequest) -> HttpResponse:
    """Candidates and possibles at your sites, soonest deadline first."""
    sections = board_lines(board_rows(sites_for(request.user, "prescreen.view"), utcnow()))
    template = "prescreen/_board_rows.html" if request.htmx else "prescreen/board.html"
    can_open = has_permission(request.user, "screening.edit")
    return render(request, template, {
        "sections": sections, "refresh": REFRESH_SECONDS, "can_open": can_open,
        "csrf_field": csrf_field(get_token(request)) if can_open else "",
        "deadline_hours": current_protocol().enrolment_deadline_hours})


def _patient_for(request: HttpRequest, prescreen_id: int, action: str) -> PrescreenPatient:
    patient = get_object_or_404(PrescreenPatient.objects.select_related("site"),
                                pk=prescreen_id)
    check_site(request.user, action, patient.site)
    return patient


@requires("prescreen.view")
@require_GET
def patient(request: HttpRequest, prescreen_id: int) -> HttpResponse:
    """One ICU patient: criteria with reasons, every value received with its source and
    state, and the screenings opened from the board with the provenance of each value."""
    p = _patient_for(request, prescreen_id, "prescreen.view")
    referrals = ScreeningReferral.objects.select_related("screening").filter(patient=p)
    events = p.events.select_related("message").order_by("-at_utc", "-id")[:200]
    return render(request, "prescreen/patient.html", {
        "p": p, "events": events, "referrals": referrals, "now": utcnow(),
        "can_open": has_permission(request.user, "screening.edit", p.site)})


@requires("screening.edit")
@require_POST
def open_screening(request: HttpRequest, prescreen_id: int) -> HttpResponse:
    """Open a screening pre-filled with the data the detector used and go to it: the
    screening's page shows where each value came from (source and time)."""
    p = _patient_for(request, prescreen_id, "screening.edit")
    referral = open_referral(p, request.user, current_protocol())
    messages.success(request, f"{referral.screening.screening_number} opened from the "
                              f"pre-screening of ICU patient {p.patient_id}.")
    return redirect("screening:detail", pk=referral.screening.pk)
