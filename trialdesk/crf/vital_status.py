"""Where a subject stands in follow-up: alive, died on study day *n*, withdrawn, completed.

Read from the two forms the protocol uses for it (``trialdesk.crf.forms``):

* **vital status** (scheduled, RUMCESS days 28 and 90): ``status`` alive / dead /
  unknown, ``date_of_death``;
* **end of study** (once per subject, when it happens): ``status`` completed /
  withdrawn / lost_to_follow_up / died, with its ``date``.

Rules (one place for the casebook, the subject matrix and the analysis export):

* **Death** is the earliest date of death on either form (:func:`death_date`); a recorded
  death wins over every other status (a patient withdrawn and later reported dead is
  shown as died). Its study day is calendar days after day 0 (site time), as the
  schedule counts (:mod:`trialdesk.crf.schedule`).
* Otherwise the **end-of-study** status: completed, withdrawn, lost to follow-up.
* Otherwise **unknown** when the latest vital-status form says unknown, else **alive**
  (in follow-up, no death recorded).

A *record* is anything with ``form_id``, ``day`` and ``data`` (the form as entered, a
mapping): the web layer's ``FormRecord`` or a plain tuple of those three. Records
entered in error must be left out by the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

#: forms that record the outcome rather than a visit (they do not prove being alive)
OUTCOME_FORMS = ("vital_status", "end_of_study")
VITAL_STATUS, END_OF_STUDY = OUTCOME_FORMS


class FormLike(Protocol):
    form_id: str
    day: int | None
    data: Mapping[str, Any]


class VitalState(StrEnum):
    ALIVE = "alive"
    DIED = "died"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"
    UNKNOWN = "unknown"


def _date(raw: Any) -> dt.date | None:
    if not isinstance(raw, str):
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


def death_date(records: Iterable[FormLike]) -> dt.date | None:
    """The earliest death recorded on a vital-status or end-of-study form, if any."""
    dates = []
    for r in records:
        raw = None
        if r.form_id == VITAL_STATUS and r.data.get("status") == "dead":
            raw = r.data.get("date_of_death")
        elif r.form_id == END_OF_STUDY and r.data.get("status") == "died":
            raw = r.data.get("date")
        found = _date(raw)
        if found is not None:
            dates.append(found)
    return min(dates) if dates else None


def end_of_study(records: Iterable[FormLike]) -> Mapping[str, Any]:
    """The end-of-study form as entered (empty when none is saved)."""
    return next((r.data for r in records if r.form_id == END_OF_STUDY), {})


@dataclass(frozen=True)
class VitalStatus:
    """A subject's follow-up status; ``day`` is the study day of death or end of study."""

    state: VitalState
    date: dt.date | None = None
    day: int | None = None

    @property
    def label(self) -> str:
        """As the matrix shows it: 'alive', 'died on day 3', 'withdrawn', ..."""
        if self.state is VitalState.DIED:
            return f"died on day {self.day}" if self.day is not None else "died"
        return self.state.value.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "label": self.label, "day": self.day,
                "date": self.date.isoformat() if self.date else None}


def vital_status(records: Iterable[FormLike], day0: dt.date) -> VitalStatus:
    """The subject's status from their saved forms (see the module docstring).

    ``day0`` is the calendar date of study day 0 in the site's zone
    (:func:`trialdesk.crf.schedule.day_zero_date`).
    """
    records = list(records)
    died = death_date(records)
    if died is not None:
        return VitalStatus(VitalState.DIED, died, (died - day0).days)
    end = end_of_study(records)
    status = end.get("status")
    if status in (VitalState.COMPLETED, VitalState.WITHDRAWN, VitalState.LOST_TO_FOLLOW_UP):
        ended = _date(end.get("date"))
        return VitalStatus(VitalState(status), ended,
                           (ended - day0).days if ended is not None else None)
    checks = sorted((r for r in records if r.form_id == VITAL_STATUS and r.day is not None),
                    key=lambda r: r.day)
    if checks and checks[-1].data.get("status") == "unknown":
        return VitalStatus(VitalState.UNKNOWN)
    return VitalStatus(VitalState.ALIVE)
