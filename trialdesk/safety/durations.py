"""Reporting-clock durations as a person reads them: "40 d 11 h late", "5 h 20 min left".

A coordinator scanning the safety dashboard needs the order of magnitude first: "971 h
late" has to be divided by 24 in the head. :func:`describe_duration` picks the units by
size, always two units above one hour so a column of them reads alike:

=========================  ==================  ===========================
magnitude                  shown as            examples
=========================  ==================  ===========================
under 1 h                  minutes             ``0 min``, ``59 min``
1 h up to under 48 h       hours and minutes   ``1 h 0 min``, ``47 h 59 min``
48 h and more              days and hours      ``2 d 0 h``, ``40 d 11 h``
=========================  ==================  ===========================

The boundaries belong to the larger unit (exactly 60 min is ``1 h 0 min``, exactly
48 h is ``2 d 0 h``). The value is **truncated** to the smallest unit shown, never
rounded up: 59 min 59 s is ``59 min``, 47 h 59 min 59 s is ``47 h 59 min`` — a deadline
clock never shows more time left than there is. A day is 24 real hours (these are
elapsed durations, not calendar days; the calendar-day rule of the SUSAR clock is in
:mod:`.deadlines`).

:func:`describe_time_left` adds the direction: a positive or zero number of seconds
until a due time is "… left", a negative one (overdue) "… late". Exactly at the due
time the report is still in time ("within" includes its end), so 0 s is "0 min left".
"""

from __future__ import annotations

import math

SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86_400
#: from this many hours on, a duration is shown in days and hours
DAYS_FROM_HOURS = 48


def describe_duration(seconds: float) -> str:
    """|``seconds``| as "M min" (< 1 h), "H h M min" (< 48 h) or "D d H h" (≥ 48 h),
    truncated to the last unit shown. The sign is ignored (see
    :func:`describe_time_left` for "left" / "late")."""
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number of seconds, not {seconds}")
    total = int(abs(seconds))  # truncates toward zero: never more than there is
    if total < SECONDS_PER_HOUR:
        return f"{total // SECONDS_PER_MINUTE} min"
    if total < DAYS_FROM_HOURS * SECONDS_PER_HOUR:
        hours, rest = divmod(total, SECONDS_PER_HOUR)
        return f"{hours} h {rest // SECONDS_PER_MINUTE} min"
    days, rest = divmod(total, SECONDS_PER_DAY)
    return f"{days} d {rest // SECONDS_PER_HOUR} h"


def describe_time_left(seconds_left: float) -> str:
    """Seconds until a due time: "2 d 3 h left" (≥ 0, in time) or "40 d 11 h late" (< 0)."""
    word = "left" if seconds_left >= 0 else "late"
    return f"{describe_duration(seconds_left)} {word}"
