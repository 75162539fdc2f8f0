""""Needs you now": the home page's worklist for the signed-in user.

A coordinator at 3 a.m., the lab, the data manager and the monitor open TrialDesk to
find what needs *them* now. This module assembles, for the user's roles and sites only,
one :class:`WorkItem` per kind of pending work — a count, the most urgent detail and the
page where it is acted on — from the services those pages use themselves:

==================  =====================================  ===========================
item                read by                                 acted on (its permission)
==================  =====================================  ===========================
candidates          prescreen board (``board``)             candidate board
screenings          ``screening.services.open_screenings``  screening dashboard
doses               ``randomization.lab_queue``             lab dashboard
overdue_forms       ``casebook.matrix.summaries``           Patients, "needs attention"
queries_to_answer   open / reopened queries                 queries to answer
queries_to_close    answered queries                        query list, answered
safety_overdue      ``safety.services.dashboard_rows``      safety dashboard
safety_due          (the same, due within 24 h)             safety dashboard
signatures          ``casebook.matrix.matrix_rows``         sign the casebook
sdv                 ``casebook.matrix.matrix_rows``         the patient's casebook
deviations          open (unacknowledged) deviations        deviations list
report              the latest stored report                reports
==================  =====================================  ===========================

Who sees an item: the user must hold the permission that *acts* on it (e.g.
``screening.edit`` for open screenings, ``lab.dashboard`` for doses) and the one its
link needs, at the same site; the item counts only records of those sites
(:func:`~trialdesk.web.accounts.permissions.sites_for`). Roles that can only read a list
(a data manager's view of the screening log, the lab's view of casebooks) are not told
that it "needs them". Overdue forms are for those who enter them (``casebook.edit``) or
chase them (``query.raise``); the latest report for the statistician and DMC roles.

Safety reports: the SAE report to the sponsor is shown to everyone with the safety
dashboard (the investigator owes it; data manager, monitor and sponsor chase it); the
SUSAR report to the regulators only to those who record it (``safety.regulator_report``).

Urgency is how much the item needs the user *now*, not the word on it:

* ``overdue`` — a legal or protocol deadline has passed (an SAE/SUSAR report owed past
  its due time; an MSC dose past its infusion deadline with no infusion recorded);
* ``soon`` — a clock is running out within 24 h (a candidate or an open screening in the
  enrolment window, a dose still in time, a safety report due within 24 h);
* ``normal`` — backlog without a running clock (overdue daily forms, queries,
  signatures, SDV, deviations, the latest report).

Items are ordered overdue → soon → normal, and within each by the time left (soonest
first), then in the order above. Times left are written by
:func:`trialdesk.safety.durations.describe_time_left` ("7 h 0 min left", "2 h 0 min
late"), truncated, never rounded up. An item with nothing pending is left out.

Every read is in bulk: the number of database queries does not grow with the number of
patients (a test counts them).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from trialdesk.clinical.timeutil import utcnow
from trialdesk.datamanagement.queries import QueryState
from trialdesk.protocol import Protocol
from trialdesk.safety.deadlines import ObligationKind, ObligationStatus
from trialdesk.safety.durations import describe_duration, describe_time_left
from trialdesk.web.accounts.models import Role
from trialdesk.web.accounts.permissions import PERMISSIONS, roles_of, sites_for

#: a safety report due within this many hours is listed (as ``soon``)
SAFETY_DUE_WITHIN_HOURS = 24
#: roles shown the latest report (who reads reports for a living)
REPORT_READERS = frozenset({Role.STATISTICIAN, Role.DMC_STATISTICIAN, Role.DMC})
#: the order of items of equal urgency and time left (the module table's order)
ORDER = ("candidates", "screenings", "doses", "safety_overdue", "safety_due",
         "overdue_forms", "queries_to_answer", "queries_to_close", "signatures", "sdv",
         "deviations", "report")


#: item key → its label for one thing and for several
LABELS = {
    "candidates": ("ICU candidate to screen", "ICU candidates to screen"),
    "screenings": ("Open screening", "Open screenings"),
    "doses": ("MSC dose to prepare", "MSC doses to prepare"),
    "safety_overdue": ("Safety report overdue", "Safety reports overdue"),
    "safety_due": (f"Safety report due within {SAFETY_DUE_WITHIN_HOURS} h",
                   f"Safety reports due within {SAFETY_DUE_WITHIN_HOURS} h"),
    "overdue_forms": ("Overdue form", "Overdue forms"),
    "queries_to_answer": ("Query to answer", "Queries to answer"),
    "queries_to_close": ("Answered query to close", "Answered queries to close"),
    "signatures": ("Form awaiting your signature", "Forms awaiting your signature"),
    "sdv": ("Form awaiting SDV", "Forms awaiting SDV"),
    "deviations": ("Deviation to acknowledge", "Deviations to acknowledge"),
    "report": ("Latest report", "Latest report"),
}
#: the reports as the worklist names them (short enough for one line)
REPORT_NAMES = {ObligationKind.SAE_TO_SPONSOR: "SAE report to the sponsor",
                ObligationKind.SUSAR_TO_REGULATOR: "SUSAR report to the regulators"}


def _label(key: str, count: int | None) -> str:
    one, many = LABELS[key]
    return one if count == 1 else many


class Urgency(StrEnum):
    OVERDUE = "overdue"
    SOON = "soon"
    NORMAL = "normal"


_RANK = {Urgency.OVERDUE: 0, Urgency.SOON: 1, Urgency.NORMAL: 2}


@dataclass(frozen=True)
class WorkItem:
    """One kind of pending work: ``count`` things, the most urgent ``detail`` and its
    ``clock`` ("7 h 0 min left", "2 h 0 min late"; empty without a deadline), ``url``."""

    key: str
    label: str
    count: int | None  # None: informational (the latest report)
    detail: str
    urgency: Urgency
    url: str
    clock: str = ""
    seconds_left: float | None = field(default=None, compare=False)  # the soonest clock

    @property
    def text(self) -> str:
        """The detail with its clock, as the card shows it."""
        return f"{self.detail}, {self.clock}" if self.clock else self.detail


@dataclass(frozen=True)
class Worklist:
    items: list[WorkItem]
    as_of: dt.datetime  # UTC

    @property
    def empty(self) -> bool:
        return not self.items

    def keys(self) -> list[str]:
        return [i.key for i in self.items]


class _Access:
    """The user's roles read once; the sites of an action by ``sites_for`` on first use.

    ``sites_for(user, action)`` depends only on which of the user's roles the action
    allows, so actions allowing the same roles share one answer (a user with one role
    reads their sites once, not once per action).
    """

    def __init__(self, user: Any):
        self.user = user
        self.roles = roles_of(user)
        self._sites: dict[frozenset[Role], frozenset[int]] = {}

    def may(self, action: str) -> bool:
        """has_permission at any site (the same rule, from the roles read once)."""
        return bool(self.roles & PERMISSIONS[action])

    def site_ids(self, action: str) -> frozenset[int]:
        allowing = frozenset(self.roles & PERMISSIONS[action])
        if not allowing:
            return frozenset()
        if allowing not in self._sites:
            self._sites[allowing] = frozenset(
                sites_for(self.user, action).values_list("pk", flat=True))
        return self._sites[allowing]

    def where(self, acting: tuple[str, ...], link: str) -> frozenset[int]:
        """Sites where the user may act (any of ``acting``) and open the item's page."""
        acts = frozenset().union(*(self.site_ids(a) for a in acting))
        return acts & self.site_ids(link) if acts else frozenset()


def _left(seconds: float) -> str:
    return describe_time_left(seconds)


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def build_worklist(user: Any, protocol: Protocol, *,
                   now: dt.datetime | None = None) -> Worklist:
    """What needs ``user`` now at their sites, most urgent first (see the module doc)."""
    now = now or utcnow()
    access = _Access(user)
    items: list[WorkItem] = []
    for part in (_candidates, _screenings, _doses, _safety, _casebook_items, _queries,
                 _deviations, _report):
        items += part(access, protocol, now)
    position = {key: n for n, key in enumerate(ORDER)}
    items.sort(key=lambda i: (_RANK[i.urgency],
                              math.inf if i.seconds_left is None else i.seconds_left,
                              position.get(i.key, len(ORDER))))
    return Worklist(items, now)


# --- clocks: the enrolment window, doses, safety reports ------------------------------------


def _candidates(access: _Access, protocol: Protocol, now: dt.datetime) -> list[WorkItem]:
    from trialdesk.web.prescreen.services import board

    sites = access.where(("prescreen.view",), "prescreen.view")
    if not sites:
        return []
    # in the window, no screening opened from them yet (those are on the screening item)
    rows = [r for r in board(list(sites), now)["window"] if r.screening is None]
    if not rows:
        return []
    first = rows[0]
    kinds = {s: sum(1 for r in rows if r.patient.status == s) for s in ("candidate",
                                                                         "possible")}
    split = ", ".join(_plural(n, kind) for kind, n in kinds.items() if n)
    return [WorkItem("candidates", _label("candidates", len(rows)), len(rows),
                     f"{split}; soonest: ICU patient {first.patient.patient_id}",
                     Urgency.SOON, reverse("prescreen:board"),
                     _left(first.seconds_left or 0), first.seconds_left)]


def _screenings(access: _Access, protocol: Protocol, now: dt.datetime) -> list[WorkItem]:
    from trialdesk.web.screening.services import open_screenings

    sites = access.where(("screening.edit",), "screening.view")
    if not sites:
        return []
    in_window = open_screenings(protocol, list(sites), now).in_window
    count = in_window.count()
    if not count:
        return []
    first = in_window.first()
    left = (first.onset_utc + dt.timedelta(hours=protocol.enrolment_deadline_hours)
            - now).total_seconds()
    return [WorkItem("screenings", _label("screenings", count), count,
                     f"enrolment window still open; soonest: {first.screening_number}",
                     Urgency.SOON, reverse("screening:dashboard"), _left(left), left)]


def _doses(access: _Access, protocol: Protocol, now: dt.datetime) -> list[WorkItem]:
    from trialdesk.web.randomization.lab_queue import doses_to_prepare

    sites = access.where(("lab.dashboard",), "lab.dashboard")
    if not sites:
        return []
    pending = doses_to_prepare(protocol, list(sites), now).pending
    if not pending:
        return []
    late = [d for d in pending if d.passed]
    in_time = [d for d in pending if d.seconds_left is not None and not d.passed]
    unknown = len(pending) - len(late) - len(in_time)
    parts = [f"{unknown} with onset unknown"] if unknown else []
    if late and in_time:
        parts.append(f"{len(in_time)} in time")
    first = late[0] if late else in_time[0] if in_time else None
    if first is not None:
        parts.append(f"{'past the deadline, infusion not recorded' if late else 'soonest'}: "
                     f"{first.allocation.subject_id}")
    return [WorkItem("doses", _label("doses", len(pending)), len(pending), "; ".join(parts),
                     Urgency.OVERDUE if late else Urgency.SOON,
                     reverse("randomization:lab_dashboard"),
                     _left(first.seconds_left) if first else "",
                     first.seconds_left if first else None)]


def _safety(access: _Access, protocol: Protocol, now: dt.datetime) -> list[WorkItem]:
    from trialdesk.web.safety.models import AdverseEvent
    from trialdesk.web.safety.services import dashboard_rows

    sites = access.where(("safety.dashboard",), "safety.dashboard")
    if not sites:
        return []
    # the SUSAR report to the regulators is the sponsor's duty (safety.regulator_report):
    # it is not shown to the investigator as work of theirs
    regulator_sites = access.where(("safety.regulator_report",), "safety.dashboard")
    rows = [r for r in dashboard_rows(AdverseEvent.objects.filter(allocation__site__in=sites),
                                      protocol, at=now)
            if r.obligation.kind is not ObligationKind.SUSAR_TO_REGULATOR
            or r.ae.allocation.site_id in regulator_sites]
    within = dt.timedelta(hours=SAFETY_DUE_WITHIN_HOURS)
    overdue = [r for r in rows if r.obligation.status is ObligationStatus.OVERDUE]
    due = [r for r in rows if r.obligation.status is ObligationStatus.DUE
           and r.obligation.time_left is not None and r.obligation.time_left <= within]
    url = reverse("safety:dashboard")
    out = []
    for key, found, urgency in (("safety_overdue", overdue, Urgency.OVERDUE),
                                ("safety_due", due, Urgency.SOON)):
        if found:  # dashboard_rows puts the most overdue, then the soonest due, first
            o, subject = found[0].obligation, found[0].ae.allocation.subject_id
            left = o.time_left.total_seconds()
            which = "most overdue" if urgency is Urgency.OVERDUE else "soonest"
            out.append(WorkItem(key, _label(key, len(found)), len(found),
                                f"{which}: {subject}, {REPORT_NAMES[o.kind]}", urgency, url,
                                _left(left), left))
    return out


# --- backlog: forms, signatures, SDV, queries, deviations, reports ---------------------------


def _casebook_items(access: _Access, protocol: Protocol, now: dt.datetime) -> list[WorkItem]:
    from trialdesk.web.casebook.matrix import matrix_rows, summaries
    from trialdesk.web.randomization.models import Allocation

    overdue_sites = access.where(("casebook.edit", "query.raise"), "casebook.view")
    sign_sites = access.where(("record.sign",), "record.sign")
    sdv_sites = access.where(("sdv.mark",), "casebook.view")
    every = overdue_sites | sign_sites | sdv_sites
    if not every:
        return []
    found = summaries(protocol, Allocation.objects.filter(site__in=every), now=now)
    out = []
    behind = sorted((s for s in found if s.allocation.site_id in overdue_sites
                     and s.overdue), key=lambda s: (-s.overdue, s.allocation.subject_id))
    if behind:
        most, total = behind[0], sum(s.overdue for s in behind)
        out.append(WorkItem(
            "overdue_forms", _label("overdue_forms", total), total,
            f"{_plural(len(behind), 'patient')}; most behind: "
            f"{most.allocation.subject_id} ({_plural(most.overdue, 'form')})",
            Urgency.NORMAL, reverse("casebook:index") + "?" + urlencode({"attention": "1"})))
    if not (sign_sites or sdv_sites):
        return out
    rows = matrix_rows(protocol, [s for s in found if s.allocation.site_id in sign_sites
                                  | sdv_sites])
    for key, sites, owed, url in (
            ("signatures", sign_sites,
             lambda r: r.awaiting_signature,
             lambda a: reverse("datamgmt:sign_casebook", args=[a.subject_id])),
            ("sdv", sdv_sites,
             lambda r: r.awaiting_sdv,
             lambda a: reverse("casebook:detail", args=[a.subject_id]) + "#recorded-forms")):
        waiting = sorted(((owed(r), r.allocation) for r in rows
                          if r.allocation.site_id in sites and owed(r)),
                         key=lambda p: (-p[0], p[1].subject_id))
        if waiting:
            n, first = waiting[0]
            total = sum(n for n, _ in waiting)
            out.append(WorkItem(key, _label(key, total), total,
                                f"{_plural(len(waiting), 'patient')}; most: "
                                f"{first.subject_id} ({_plural(n, 'form')})",
                                Urgency.NORMAL, url(first)))
    return out


def _since(then: dt.datetime, now: dt.datetime) -> str:
    return f"{describe_duration((now - then).total_seconds())} ago"


def _queries(access: _Access, protocol: Protocol, now: dt.datetime) -> list[WorkItem]:
    from trialdesk.web.datamgmt.models import Query

    out = []
    for key, acting, link, states, url, stamp, verb in (
            ("queries_to_answer", "query.answer", "query.answer",
             (QueryState.OPEN.value, QueryState.REOPENED.value),
             reverse("datamgmt:queries_to_answer"), "raised_at", "raised"),
            ("queries_to_close", "query.close",
             "query.raise", (QueryState.ANSWERED.value,),
             reverse("datamgmt:query_list") + "?" + urlencode({"state": "answered"}),
             "updated_at", "answered")):
        sites = access.where((acting,), link)
        if not sites:
            continue
        found = Query.objects.filter(allocation__site__in=sites, state__in=states)
        count = found.count()
        if not count:
            continue
        oldest = found.order_by(stamp, "pk").select_related("allocation").first()
        out.append(WorkItem(key, _label(key, count), count,
                            f"oldest: {oldest.allocation.subject_id}, {verb} "
                            f"{_since(getattr(oldest, stamp), now)}", Urgency.NORMAL, url))
    return out


def _deviations(access: _Access, protocol: Protocol, now: dt.datetime) -> list[WorkItem]:
    from trialdesk.web.casebook.models import Deviation, DeviationStatus

    sites = access.where(("deviation.acknowledge",), "deviation.view")
    if not sites:
        return []
    found = Deviation.objects.filter(allocation__site__in=sites, status=DeviationStatus.OPEN)
    count = found.count()
    if not count:
        return []
    oldest = found.order_by("detected_at", "pk").select_related("allocation").first()
    return [WorkItem("deviations", _label("deviations", count), count,
                     f"oldest: {oldest.code} for {oldest.allocation.subject_id}, detected "
                     f"{_since(oldest.detected_at, now)}", Urgency.NORMAL,
                     reverse("casebook:deviations"))]


def _report(access: _Access, protocol: Protocol, now: dt.datetime) -> list[WorkItem]:
    from trialdesk.web.reports.models import ReportArtefact, ReportVersion

    if not (access.roles & REPORT_READERS and access.may("report.open")):
        return []
    versions = [ReportVersion.OPEN] + ([ReportVersion.CLOSED]
                                       if access.may("report.closed") else [])
    latest = (ReportArtefact.objects.filter(version__in=versions)
              .only("pk", "version", "generated_at", "n_subjects").first())
    if latest is None:
        return []
    return [WorkItem("report", _label("report", None), None,
                     f"{latest.get_version_display().split(' (')[0]} report, "
                     f"{latest.generated_at:%Y-%m-%d %H:%M} UTC, "
                     f"{_plural(latest.n_subjects, 'patient')}",
                     Urgency.NORMAL, reverse("reports:index") + f"#report-{latest.pk}")]
