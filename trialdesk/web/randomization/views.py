"""The printable randomization confirmation and the cell-therapy lab's dashboard."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from trialdesk.clinical.timeutil import format_local, utcnow
from trialdesk.web.accounts.permissions import check_site, requires, sites_for
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.randomization.lab_queue import doses_to_prepare
from trialdesk.web.randomization.models import Allocation


@requires("randomization.view")
@require_GET
def confirmation(request: HttpRequest, subject_id: str) -> HttpResponse:
    allocation = get_object_or_404(Allocation.objects.select_related("site", "screening"),
                                   subject_id=subject_id)
    check_site(request.user, "randomization.view", allocation.site)
    protocol = current_protocol()
    return render(request, "randomization/confirmation.html", {
        "a": allocation, "arm": protocol.arm(allocation.arm),
        "local_time": format_local(allocation.randomized_at, allocation.site.timezone),
    })


@requires("lab.dashboard")
@require_GET
def lab_dashboard(request: HttpRequest) -> HttpResponse:
    """MSC-arm patients still waiting for their infusion at the lab's sites, soonest
    infusion deadline (onset + 10 h) first. Patients whose infusion is recorded leave
    this list (they are on the MSC records page, casebook:lab), and so do patients whose
    death or end of study is recorded before an infusion, or whose dose is recorded as
    not given (both counted below the list)."""
    protocol = current_protocol()
    queue = doses_to_prepare(protocol, sites_for(request.user, "lab.dashboard"), utcnow())
    return render(request, "randomization/lab_dashboard.html",
                  {"rows": queue.pending, "spec": protocol.intervention,
                   "infused": queue.infused, "left_study": queue.left_study,
                   "not_given": queue.not_given})
