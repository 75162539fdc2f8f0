"""Result objects of pre-screening: per-criterion checks and the per-patient assessment.

A check's reason is a **template with structured times**: ``"norepinephrine started
{start} after MAP 57 mmHg at {hypotension}"`` plus ``times`` = (("start", UTC datetime),
…). :func:`render_reason` writes each time in UTC ("2116-03-03 12:00 UTC", what the CLI
and the JSON ``reason`` show) or in a site's zone ("2116-03-03 15:00 MSK (UTC+03:00)",
what the web pages show next to the site-time onset and deadline), so no page shows
UTC reasons beside site-time clocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trialdesk.clinical.onset import WindowStatus
from trialdesk.clinical.timeutil import format_duration, format_local, format_utc
from trialdesk.eligibility.results import CriterionStatus


class Status(StrEnum):
    """``candidate``: every pre-screening criterion met in time; ``possible``: none fails
    but some cannot be decided yet; ``no``: at least one fails."""

    CANDIDATE = "candidate"
    POSSIBLE = "possible"
    NO = "no"


@dataclass(frozen=True)
class DataPoint:
    """A value a decision used, with its unit, clinical time and source message."""

    label: str
    value: float | str
    unit: str
    at_utc: dt.datetime | None
    source: str

    def __str__(self) -> str:
        value = f"{self.value:g}" if isinstance(self.value, float) else str(self.value)
        when = f" at {format_utc(self.at_utc)}" if self.at_utc else ""
        return f"{self.label} {value} {self.unit}{when} ({self.source})".replace("  ", " ")

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "value": self.value, "unit": self.unit,
                "at_utc": self.at_utc.isoformat() if self.at_utc else None,
                "source": self.source}


def render_reason(template: str, times: Iterable[tuple[str, dt.datetime]],
                  zone: str | None = None) -> str:
    """``template`` with each ``{name}`` replaced by its time: in UTC ("… UTC") when
    ``zone`` is None, else in that IANA zone with its offset. Only the named
    placeholders are replaced (plain text replacement, no ``str.format``), so braces
    elsewhere in the text are left alone."""
    text = template
    for name, t in times:
        text = text.replace("{" + name + "}",
                            format_utc(t) if zone is None else format_local(t, zone))
    return text


@dataclass(frozen=True)
class Check:
    """One pre-screening criterion: ``met`` means it does not stand in the way.

    ``template`` is the reason with ``{name}`` placeholders for the ``times`` (UTC) it
    cites; :attr:`reason` is it rendered in UTC, :meth:`reason_in` in a site's zone.
    """

    id: str
    label: str
    status: CriterionStatus
    template: str
    data_used: tuple[DataPoint, ...] = ()
    times: tuple[tuple[str, dt.datetime], ...] = ()

    @property
    def reason(self) -> str:
        return render_reason(self.template, self.times)

    def reason_in(self, zone: str) -> str:
        return render_reason(self.template, self.times, zone)

    def __str__(self) -> str:
        return f"{self.label}: {self.status.value} — {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """``reason`` in UTC (as before) plus ``template`` and ``times`` (ISO 8601 UTC),
        from which the web pages render the reason in site time."""
        return {"id": self.id, "label": self.label, "status": self.status.value,
                "reason": self.reason, "template": self.template,
                "times": {name: t.isoformat() for name, t in self.times},
                "data_used": [d.to_dict() for d in self.data_used]}


@dataclass(frozen=True)
class PatientAssessment:
    """Where one patient stands: status, checks, onset, deadline and (live) time left.

    ``detectable_utc`` is the earliest moment all criteria were met with the data
    available then (a lab counts from its result time); ``hours_to_detection`` is that
    minus the onset. ``window`` is set for a live evaluation (``evaluated_at_utc``).
    """

    patient_id: str
    status: Status
    checks: tuple[Check, ...]
    onset_utc: dt.datetime | None
    deadline_utc: dt.datetime | None
    detectable_utc: dt.datetime | None
    evaluated_at_utc: dt.datetime | None
    window: WindowStatus | None
    onset_evidence: tuple[str, ...] = ()

    @property
    def hours_to_detection(self) -> float | None:
        if self.detectable_utc is None or self.onset_utc is None:
            return None
        return (self.detectable_utc - self.onset_utc) / dt.timedelta(hours=1)

    @property
    def hours_left(self) -> float | None:
        return None if self.window is None else self.window.hours_left

    @property
    def reasons(self) -> list[str]:
        return [str(c) for c in self.checks]

    def check(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)

    def data_used(self) -> list[DataPoint]:
        return [d for c in self.checks for d in c.data_used]

    def __str__(self) -> str:
        head = f"patient {self.patient_id}: {self.status.value}"
        if self.onset_utc:
            head += f", onset {format_utc(self.onset_utc)}"
        if self.deadline_utc:
            head += f", deadline {format_utc(self.deadline_utc)}"
        if self.window is not None:
            head += f", {self.window}"
        elif self.hours_to_detection is not None:
            head += (f", detectable {format_duration(self.detectable_utc - self.onset_utc)}"
                     " after onset")
        return head + "".join(f"\n  - {r}" for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        iso = (lambda t: t.isoformat() if t else None)  # noqa: E731
        return {
            "subject_id": self.patient_id,
            "status": self.status.value,
            "onset": iso(self.onset_utc),
            "deadline": iso(self.deadline_utc),
            "detectable_at": iso(self.detectable_utc),
            "hours_to_detection": self.hours_to_detection,
            "hours_left": self.hours_left,
            "evaluated_at": iso(self.evaluated_at_utc),
            "reasons": self.reasons,
            "criteria": [c.to_dict() for c in self.checks],
            "onset_evidence": list(self.onset_evidence),
        }
