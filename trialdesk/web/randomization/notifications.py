"""Tell the cell-therapy lab about an MSC-arm allocation (email through Django's backend)."""

from __future__ import annotations

from django.core.mail import send_mail

from trialdesk.clinical.onset import EnrolmentWindow
from trialdesk.clinical.timeutil import format_local
from trialdesk.protocol import Protocol
from trialdesk.web.accounts.models import Membership, Role


def notify_lab(protocol: Protocol, allocation) -> int:
    """Email the lab staff of the allocation's site; returns the number of messages sent."""
    spec = protocol.intervention
    if allocation.arm != spec.arm:
        return 0
    recipients = sorted({
        m.user.email for m in Membership.objects.select_related("user").filter(
            role=Role.LAB, active=True, user__is_active=True)
        if m.user.email and (m.site_id in (None, allocation.site_id))
    })
    if not recipients:
        return 0
    onset = allocation.screening.onset_utc
    deadline = (format_local(EnrolmentWindow(onset, spec.deadline_hours_after_onset)
                             .deadline_utc, allocation.site.timezone)
                if onset else "unknown (no onset time)")
    send_mail(
        subject=f"[{protocol.identifiers.acronym}] MSC dose needed for {allocation.subject_id}",
        message=(f"{allocation.subject_id} ({allocation.site.name}) was randomized to "
                 f"{protocol.arm(allocation.arm).label}.\nInfusion deadline: {deadline}.\n"
                 "Open the lab dashboard in TrialDesk for the dose."),
        from_email=None, recipient_list=recipients)
    return len(recipients)
