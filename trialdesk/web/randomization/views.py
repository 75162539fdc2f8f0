"""The printable randomization confirmation and the cell-therapy lab's dashboard."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from trialdesk.clinical.onset import EnrolmentWindow
from trialdesk.clinical.timeutil import format_local, utcnow
from trialdesk.web.accounts.permissions import check_site, requires, sites_for
from trialdesk.web.core.protocol_access import current_protocol
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
    this list; they are on the MSC records page (casebook:lab)."""
    from trialdesk.web.casebook.models import FormRecord

    protocol = current_protocol()
    spec = protocol.intervention
    allocations = (Allocation.objects.select_related("site", "screening")
                   .filter(site__in=sites_for(request.user, "lab.dashboard"), arm=spec.arm)
                   .order_by("-randomized_at"))
    infused = set(FormRecord.objects.active().filter(allocation__in=allocations,
                                                     form_id="msc_infusion")
                  .values_list("allocation_id", flat=True))
    now = utcnow()
    rows = []
    for a in allocations:
        if a.pk in infused:
            continue
        onset = a.screening.onset_utc
        deadline = (EnrolmentWindow(onset, spec.deadline_hours_after_onset).deadline_utc
                    if onset else None)
        rows.append({"a": a, "deadline": deadline,
                     "deadline_local": format_local(deadline, a.site.timezone)
                     if deadline else "onset unknown",
                     "left_h": (deadline - now).total_seconds() / 3600 if deadline else None})
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    rows.sort(key=lambda r: r["deadline"] or far)
    return render(request, "randomization/lab_dashboard.html",
                  {"rows": rows, "spec": spec, "infused": len(infused)})
