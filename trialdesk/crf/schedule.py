"""Which form is due on which study day, for one subject, from the protocol's schedule.

Study days
----------
**Day 0 is the calendar day of randomization in the site's time zone**; day *n* is
the *n*-th calendar day after it (``docs/conventions.md``). A patient randomized at
23:50 Moscow time has a day 0 of ten minutes: the worst values of that calendar day
still make the day-0 form. Calendar days (not 24-h blocks from the time stamp) are
what ICU charts and daily lab rounds use; the primary outcome's 28 × 24 h window is
computed from time stamps elsewhere and is not affected.

Status of one (form, day)
-------------------------
* ``done`` — a record of the form exists for that day (whatever else is true);
* ``not_required`` — the subject's arm does not get the form (``arms`` in the protocol),
  or the day's date is after a recorded death date, or (the MSC infusion) the dose is
  recorded as not given (``msc_not_given``);
* ``upcoming`` — today (site calendar) is before the day's date minus its window;
* ``due`` — today lies in [date − window_days, date + window_days + grace_days];
* ``overdue`` — later than that. ``grace_days`` (default 1) leaves the next calendar
  day to complete a day's worst values.

Forms listed under ``schedule.unscheduled`` (the MSC product record, the MSC dose not
given, end of study) have
one slot per subject, ``day`` None: ``done`` once recorded, else ``not_required``
(recorded once, when it happens; never in an arm the form does not name).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trialdesk.clinical.timeutil import ensure_aware, site_zone
from trialdesk.protocol.schema import Assessment, Protocol, UnscheduledForm

#: calendar days after a day's window in which its form is still "due", not "overdue"
GRACE_DAYS = 1


class SlotStatus(StrEnum):
    DONE = "done"
    DUE = "due"
    OVERDUE = "overdue"
    UPCOMING = "upcoming"
    NOT_REQUIRED = "not_required"


def study_day(t: dt.datetime, randomized_at: dt.datetime, timezone: str) -> int:
    """The study day of instant ``t``: calendar days after randomization, site time."""
    zone = site_zone(timezone)
    local = ensure_aware(t, field="time").astimezone(zone).date()
    day0 = ensure_aware(randomized_at, field="randomized_at").astimezone(zone).date()
    return (local - day0).days


def day_zero_date(randomized_at: dt.datetime, timezone: str) -> dt.date:
    """The calendar date (site time) of day 0."""
    return ensure_aware(randomized_at, field="randomized_at").astimezone(
        site_zone(timezone)).date()


def day_date(day: int, randomized_at: dt.datetime, timezone: str) -> dt.date:
    """The calendar date (site time) of study day ``day``."""
    return day_zero_date(randomized_at, timezone) + dt.timedelta(days=day)


@dataclass(frozen=True)
class Slot:
    """One (form, day) of a subject's schedule and its status, with why."""

    form: str
    label: str
    day: int | None
    date: dt.date | None
    status: SlotStatus
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"form": self.form, "label": self.label, "day": self.day,
                "date": self.date.isoformat() if self.date else None,
                "status": self.status.value, "reason": self.reason}


@dataclass(frozen=True)
class SubjectSchedule:
    """Every scheduled (form, day) of one subject with its status, plus unscheduled forms."""

    day0_date: dt.date
    today_day: int
    slots: tuple[Slot, ...]
    unscheduled: tuple[Slot, ...]

    def slot(self, form: str, day: int | None) -> Slot | None:
        return next((s for s in self.slots + self.unscheduled
                     if s.form == form and s.day == day), None)

    @property
    def days(self) -> tuple[int, ...]:
        return tuple(sorted({s.day for s in self.slots if s.day is not None}))

    @property
    def forms(self) -> tuple[tuple[str, str], ...]:
        """(form id, label) in protocol order."""
        seen: dict[str, str] = {}
        for s in self.slots:
            seen.setdefault(s.form, s.label)
        return tuple(seen.items())

    def count(self, status: SlotStatus) -> int:
        return sum(1 for s in self.slots if s.status is status)

    def to_dict(self) -> dict[str, Any]:
        return {"day0_date": self.day0_date.isoformat(), "today_day": self.today_day,
                "slots": [s.to_dict() for s in self.slots],
                "unscheduled": [s.to_dict() for s in self.unscheduled]}


def assessment_for(protocol: Protocol, form_id: str) -> Assessment | None:
    return next((a for a in protocol.schedule.assessments if a.form == form_id), None)


def unscheduled_for(protocol: Protocol, form_id: str) -> UnscheduledForm | None:
    return next((u for u in protocol.schedule.unscheduled if u.form == form_id), None)


def is_unscheduled(protocol: Protocol, form_id: str) -> bool:
    return unscheduled_for(protocol, form_id) is not None


def schedule_problem(protocol: Protocol, form_id: str, day: int | None) -> str | None:
    """Why ``form_id`` cannot be recorded on ``day`` (None when the schedule allows it).

    Scheduled forms need one of their days; unscheduled forms take no day. The arm is
    not checked here (a form given in the wrong arm is a protocol deviation, recorded).
    """
    if is_unscheduled(protocol, form_id):
        return None if day is None else (
            f"{form_id} is recorded once per subject, not on a study day.")
    assessment = assessment_for(protocol, form_id)
    if assessment is None:
        return f"The protocol's schedule has no form '{form_id}'."
    days = assessment.day_list()
    if day is None or day not in days:
        shown = (f"days {days[0]}–{days[-1]}" if days == tuple(range(days[0], days[-1] + 1))
                 else "days " + ", ".join(str(d) for d in days))
        return (f"{assessment.label} is scheduled on {shown}; day {day} is outside the "
                "schedule.")
    return None


def subject_schedule(
    protocol: Protocol,
    *,
    randomized_at: dt.datetime,
    timezone: str,
    arm: str,
    today: dt.date,
    death_date: dt.date | None = None,
    done: Collection[tuple[str, int | None]] = (),
    grace_days: int = GRACE_DAYS,
) -> SubjectSchedule:
    """Status of every (form, day) for one subject; ``today`` is the site's calendar date."""
    day0 = day_zero_date(randomized_at, timezone)
    done_set = set(done)
    # reasons name the arm as people read it (the protocol's label), membership uses the id
    arm_name = protocol.arm_label(arm)
    slots: list[Slot] = []
    for a in protocol.schedule.assessments:
        for day in a.day_list():
            date = day0 + dt.timedelta(days=day)
            slots.append(Slot(a.form, a.label, day, date,
                              *_status(a, day, date, arm, today, death_date, done_set,
                                       grace_days, arm_name)))
    unscheduled = tuple(
        Slot(u.form, u.label, None, None, *_once_status(u, arm, done_set, arm_name))
        for u in protocol.schedule.unscheduled)
    return SubjectSchedule(day0, (today - day0).days, tuple(slots), unscheduled)


def _once_status(u: UnscheduledForm, arm: str, done: set[tuple[str, int | None]],
                 arm_name: str) -> tuple[SlotStatus, str]:
    if (u.form, None) in done:
        return SlotStatus.DONE, ""
    if u.arms and arm not in u.arms:
        return SlotStatus.NOT_REQUIRED, f"not given in the {arm_name} arm"
    return SlotStatus.NOT_REQUIRED, "recorded once, when it happens"


def _status(a: Assessment, day: int, date: dt.date, arm: str, today: dt.date,
            death_date: dt.date | None, done: set[tuple[str, int | None]],
            grace_days: int, arm_name: str) -> tuple[SlotStatus, str]:
    if (a.form, day) in done:
        return SlotStatus.DONE, ""
    if a.arms and arm not in a.arms:
        return SlotStatus.NOT_REQUIRED, f"not given in the {arm_name} arm"
    if death_date is not None and date > death_date:
        return SlotStatus.NOT_REQUIRED, f"after death on {death_date.isoformat()}"
    if a.form == "msc_infusion" and ("msc_not_given", None) in done:
        return SlotStatus.NOT_REQUIRED, "MSC dose recorded as not given"
    if today < date - dt.timedelta(days=a.window_days):
        return SlotStatus.UPCOMING, f"from {(date - dt.timedelta(days=a.window_days))}"
    last = date + dt.timedelta(days=a.window_days + grace_days)
    if today <= last:
        return SlotStatus.DUE, f"until {last.isoformat()}"
    return SlotStatus.OVERDUE, f"was due by {last.isoformat()}"
