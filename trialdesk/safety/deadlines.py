"""Expedited-reporting obligations of one adverse event, with due times in UTC.

Rules (domain.md §7.5; the numbers come from the protocol's ``safety`` section):

* **SAE, investigator → sponsor**: within ``sae_to_sponsor_hours`` (24) real hours of the
  site's awareness. Exactly 24 h after awareness is still in time (as the enrolment
  window: "within" includes its end); durations are real hours, so a daylight-saving
  change inside the interval does not move the due time.
* **SUSAR, sponsor → regulators**: within 7 calendar days when fatal or life-threatening,
  else 15. Day 0 is the calendar date of the sponsor's first knowledge in the sponsor's
  zone (``reporting_timezone``); the report is in time until the end of day 7 (or 15),
  i.e. up to 23:59:59.999999 local time. Calendar days, not business days, and not
  7 × 24 h: across a daylight-saving change day 7 ends at local midnight all the same.
* The sponsor's first knowledge is the time the site reported the SAE to the sponsor.
  Until the site has reported, the clock is started at the site's awareness: the sponsor
  cannot learn of the event before the site does, so this due time is never later than
  the true one (``clock_start_basis`` says which was used).
* A pre-specified disease-related event (``exempt``) and a non-serious event have no
  expedited obligation: their obligations are ``not_due``, with the reason.

Status at a moment ``at``: ``met`` (reported at or before the due time), ``met_late``
(reported after it), ``due`` (not reported, due time not passed), ``overdue`` (not
reported, due time passed), ``not_due`` (no obligation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from trialdesk.clinical.timeutil import ensure_aware, site_zone
from trialdesk.errors import TimeOrderError
from trialdesk.safety.classification import Classification, EventFacts, classify


class ObligationKind(StrEnum):
    SAE_TO_SPONSOR = "sae_to_sponsor"
    SUSAR_TO_REGULATOR = "susar_to_regulator"

    @property
    def label(self) -> str:
        return {ObligationKind.SAE_TO_SPONSOR: "SAE report, investigator → sponsor",
                ObligationKind.SUSAR_TO_REGULATOR: "SUSAR report, sponsor → regulators"}[self]


class ObligationStatus(StrEnum):
    NOT_DUE = "not_due"
    DUE = "due"
    MET = "met"
    MET_LATE = "met_late"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class ReportingRules:
    """The protocol's timelines (``Protocol.safety``), with ICH E2A/EU CTR defaults.

    Calendar days are counted in ``safety.reporting_timezone``, by default the zone of the
    protocol's first site (the coordinating centre, where the sponsor sits).
    """

    sae_to_sponsor_hours: int = 24
    susar_fatal_or_life_threatening_days: int = 7
    susar_other_days: int = 15
    reporting_timezone: str = "UTC"
    exempt_event_ids: frozenset[str] = frozenset()
    exempt_unless_related: bool = True

    @classmethod
    def from_protocol(cls, protocol: Any) -> ReportingRules:
        s = protocol.safety
        return cls(sae_to_sponsor_hours=s.sae_to_sponsor_hours,
                   susar_fatal_or_life_threatening_days=s.susar_fatal_or_life_threatening_days,
                   susar_other_days=s.susar_other_days,
                   reporting_timezone=s.reporting_timezone or protocol.sites[0].timezone,
                   exempt_event_ids=frozenset(e.id for e in s.exempt_events),
                   exempt_unless_related=s.exempt_unless_related)


@dataclass(frozen=True)
class Obligation:
    """One report that is (or is not) owed, its due time and its status at ``as_of``."""

    kind: ObligationKind
    status: ObligationStatus
    due_utc: datetime | None
    clock_start_utc: datetime | None
    clock_start_basis: str
    reported_utc: datetime | None
    as_of_utc: datetime
    rule: str
    reason: str

    @property
    def required(self) -> bool:
        return self.status is not ObligationStatus.NOT_DUE

    @property
    def time_left(self) -> timedelta | None:
        """Time until the due time at ``as_of`` (negative when overdue); None when settled."""
        if self.due_utc is None or self.status not in (ObligationStatus.DUE,
                                                       ObligationStatus.OVERDUE):
            return None
        return self.due_utc - self.as_of_utc

    @property
    def lateness(self) -> timedelta | None:
        """How late the report was (met late) or is (overdue)."""
        if self.due_utc is None:
            return None
        if self.status is ObligationStatus.MET_LATE and self.reported_utc is not None:
            return self.reported_utc - self.due_utc
        if self.status is ObligationStatus.OVERDUE:
            return self.as_of_utc - self.due_utc
        return None


def end_of_calendar_day(day0_utc: datetime, days: int, tz_name: str) -> datetime:
    """The last instant (µs) of calendar day ``days`` after day 0, in ``tz_name``, as UTC.

    Day 0 is the local date of ``day0_utc``; the result is local midnight starting day
    ``days + 1`` minus one microsecond, converted to UTC (so it follows daylight saving).
    """
    zone = site_zone(tz_name)
    local_date = ensure_aware(day0_utc, field="day0").astimezone(zone).date()
    next_midnight = datetime.combine(local_date + timedelta(days=days + 1), time(0), zone)
    return (next_midnight - timedelta(microseconds=1)).astimezone(UTC)


def _status(due: datetime, reported: datetime | None, at: datetime) -> ObligationStatus:
    if reported is not None and reported <= at:
        return ObligationStatus.MET if reported <= due else ObligationStatus.MET_LATE
    return ObligationStatus.DUE if at <= due else ObligationStatus.OVERDUE


def obligations(facts: EventFacts, *, awareness: datetime, at: datetime,
                rules: ReportingRules | None = None,
                reported_to_sponsor: datetime | None = None,
                reported_to_regulator: datetime | None = None,
                ) -> tuple[Classification, tuple[Obligation, ...]]:
    """The classification and the two expedited obligations of an event at moment ``at``.

    All times must carry a UTC offset; a report before the awareness time is refused
    (``TIME_ORDER``). A report recorded after ``at`` is ignored (status as of ``at``).
    """
    rules = rules or ReportingRules()
    aware = ensure_aware(awareness, field="awareness")
    at = ensure_aware(at, field="at")
    to_sponsor = ensure_aware(reported_to_sponsor, field="reported_to_sponsor") \
        if reported_to_sponsor is not None else None
    to_regulator = ensure_aware(reported_to_regulator, field="reported_to_regulator") \
        if reported_to_regulator is not None else None
    for name, t in (("reported_to_sponsor", to_sponsor),
                    ("reported_to_regulator", to_regulator)):
        if t is not None and t < aware:
            raise TimeOrderError(f"{name.replace('_', ' ')}: the report cannot be earlier "
                                 "than the site's awareness of the event.", field=name)
    cls = classify(facts, exempt_event_ids=rules.exempt_event_ids,
                   exempt_unless_related=rules.exempt_unless_related)

    hours = rules.sae_to_sponsor_hours
    sae_rule = f"within {hours} h of the site's awareness"
    if cls.serious and not cls.exempt:
        due = aware + timedelta(hours=hours)
        sae = Obligation(ObligationKind.SAE_TO_SPONSOR, _status(due, to_sponsor, at), due,
                         aware, "site awareness", to_sponsor, at, sae_rule,
                         "serious adverse event")
    else:
        why = "exempt: pre-specified disease-related event" if cls.exempt else "not serious"
        sae = Obligation(ObligationKind.SAE_TO_SPONSOR, ObligationStatus.NOT_DUE, None, None,
                         "", to_sponsor, at, sae_rule, why)

    days = rules.susar_fatal_or_life_threatening_days if cls.fatal_or_life_threatening \
        else rules.susar_other_days
    kind = "fatal or life-threatening" if cls.fatal_or_life_threatening else "other"
    susar_rule = (f"{kind} SUSAR: within {days} calendar days of the sponsor's first "
                  f"knowledge (day 0), counted in {rules.reporting_timezone}")
    if cls.susar:
        if to_sponsor is not None and to_sponsor <= at:
            start, basis = to_sponsor, "sponsor's first knowledge (report from the site)"
        else:
            start, basis = aware, "site awareness (the sponsor has not been informed yet)"
        due = end_of_calendar_day(start, days, rules.reporting_timezone)
        susar = Obligation(ObligationKind.SUSAR_TO_REGULATOR, _status(due, to_regulator, at),
                           due, start, basis, to_regulator, at, susar_rule,
                           "serious, related to the MSC infusion and unexpected")
    else:
        if not cls.serious:
            why = "not serious"
        elif cls.exempt:
            why = "exempt: pre-specified disease-related event"
        elif not cls.related:
            why = "not related to the MSC infusion"
        else:
            why = "expected (listed in the reference safety information)"
        susar = Obligation(ObligationKind.SUSAR_TO_REGULATOR, ObligationStatus.NOT_DUE, None,
                           None, "", to_regulator, at, susar_rule, why)
    return cls, (sae, susar)
