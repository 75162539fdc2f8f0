"""The cell-therapy lab's queue: MSC doses still to prepare, soonest deadline first.

A dose is pending for every patient randomized to the protocol's MSC arm whose infusion
is not recorded yet (a form entered in error does not count), whose dose is not recorded
as not given (``msc_not_given``, counted apart) and who is still in the study: a
patient whose death or end of study (withdrawn, lost to follow-up) is recorded can no
longer receive a dose, so the lab is not asked to prepare one (the missing
infusion stays visible on the casebook and the deviations pages). Its deadline is the
protocol's infusion deadline after septic-shock onset (RUMCESS: onset + 10 h, inclusive;
:class:`trialdesk.clinical.onset.EnrolmentWindow`). The lab dashboard lists the queue and
the home page's worklist counts it; both read it here, in four queries whatever the number
of patients.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from trialdesk.clinical.onset import EnrolmentWindow
from trialdesk.clinical.timeutil import format_local
from trialdesk.crf.vital_status import VitalState, vital_status
from trialdesk.protocol import Protocol
from trialdesk.web.randomization.models import Allocation


@dataclass(frozen=True)
class PendingDose:
    """One patient waiting for the MSC infusion; ``deadline`` None when onset is unknown."""

    allocation: Allocation
    deadline: dt.datetime | None  # UTC
    deadline_local: str  # in the site's zone, or "onset unknown"
    seconds_left: float | None  # negative once the deadline has passed

    @property
    def left_h(self) -> float | None:
        return None if self.seconds_left is None else self.seconds_left / 3600

    @property
    def passed(self) -> bool:
        return self.seconds_left is not None and self.seconds_left < 0


@dataclass(frozen=True)
class LabQueue:
    pending: list[PendingDose]  # soonest deadline first, unknown onset last
    infused: int  # MSC-arm patients at the sites with the infusion recorded
    #: MSC-arm patients without an infusion whose death or end of study is recorded
    left_study: int = 0
    #: MSC-arm patients whose dose is recorded as not given (with a reason)
    not_given: int = 0


def doses_to_prepare(protocol: Protocol, sites: Any, now: dt.datetime) -> LabQueue:
    """The lab's queue at ``sites`` (a queryset or list of sites) at ``now`` (UTC)."""
    from trialdesk.web.casebook.models import FormRecord

    spec = protocol.intervention
    allocations = (Allocation.objects.select_related("site", "screening")
                   .filter(site__in=sites, arm=spec.arm).order_by("-randomized_at"))
    infused = set(FormRecord.objects.active().filter(allocation__in=allocations,
                                                     form_id="msc_infusion")
                  .values_list("allocation_id", flat=True))
    withheld = set(FormRecord.objects.active().filter(allocation__in=allocations,
                                                      form_id="msc_not_given")
                   .values_list("allocation_id", flat=True)) - infused
    outcome_forms: dict[int, list[Any]] = {}
    for record in (FormRecord.objects.active()
                   .filter(allocation__in=allocations, form_id__in=OUTCOME_FORM_IDS)
                   .only("allocation_id", "form_id", "day", "data")):
        outcome_forms.setdefault(record.allocation_id, []).append(record)
    pending, left_study = [], 0
    for a in allocations:
        if a.pk in infused or a.pk in withheld:
            continue
        if _left_study(outcome_forms.get(a.pk, ())):
            left_study += 1
            continue
        onset = a.screening.onset_utc
        deadline = (EnrolmentWindow(onset, spec.deadline_hours_after_onset).deadline_utc
                    if onset else None)
        pending.append(PendingDose(
            a, deadline, format_local(deadline, a.site.timezone) if deadline
            else "onset unknown",
            (deadline - now).total_seconds() if deadline else None))
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    pending.sort(key=lambda d: d.deadline or far)
    return LabQueue(pending, len(infused), left_study, len(withheld))


#: the forms that record a death or the end of study (:mod:`trialdesk.crf.vital_status`)
OUTCOME_FORM_IDS = ("vital_status", "end_of_study")


def _left_study(records: Any) -> bool:
    """Death or end of study recorded (the core's rules; day 0 does not matter here)."""
    if not records:
        return False
    state = vital_status(records, dt.date.min).state
    return state in (VitalState.DIED, VitalState.WITHDRAWN, VitalState.LOST_TO_FOLLOW_UP,
                     VitalState.COMPLETED)
