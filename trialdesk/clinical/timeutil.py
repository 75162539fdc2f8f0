"""Time stamps for clinical events: always aware, stored in UTC, shown in the site's zone.

Why so strict: the enrolment window (≤10 h from septic-shock onset, ``domain.md`` §1.1,
§2.2) is measured between time stamps typed by different people on different devices.
A time without a UTC offset is ambiguous (and wrong by one hour twice a year wherever
clocks change), so it is refused rather than guessed (ICH E6(R3) asks for date/time
"captured unambiguously (e.g. UTC)", ``domain.md`` §7.1). Internally every instant is a
:class:`~datetime.datetime` with ``tzinfo=UTC``; durations are therefore real elapsed
time, never wall-clock differences. Local time is used for display only
(:func:`format_local`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trialdesk.errors import FutureTime, ImplausibleValue, NaiveTime

#: Shown in every message about a time that could not be used.
EXAMPLE = "2026-03-01T02:15:00+03:00"

#: Default allowance for clocks that disagree (bedside device vs server): a time up to
#: this far after "now" is accepted, not refused as being in the future.
CLOCK_SKEW_TOLERANCE = timedelta(minutes=5)


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def is_aware(t: datetime) -> bool:
    """True when ``t`` carries a usable UTC offset (the Python definition of "aware")."""
    return t.tzinfo is not None and t.utcoffset() is not None


def ensure_aware(t: datetime, *, field: str) -> datetime:
    """Return ``t`` converted to UTC; refuse a naive datetime with :class:`NaiveTime`."""
    if not isinstance(t, datetime):
        raise ImplausibleValue(
            f"{field}: expected a date and time such as {EXAMPLE}, got {t!r}.", field=field
        )
    if not is_aware(t):
        raise NaiveTime(
            f"{field}: {t.isoformat()} has no UTC offset; add one, e.g. {EXAMPLE}.",
            field=field,
        )
    return t.astimezone(UTC)


def parse_aware(value: str | datetime, *, field: str) -> datetime:
    """Parse an ISO-8601 date-time with a UTC offset (``Z`` accepted) into an aware UTC datetime.

    A :class:`datetime` is accepted as is when aware (converted to UTC). A string
    without an offset raises :class:`NaiveTime`; a date without a time, or anything
    that is not ISO-8601, raises :class:`ImplausibleValue`; both messages name
    ``field`` and give an example.
    """
    if isinstance(value, datetime):
        return ensure_aware(value, field=field)
    if not isinstance(value, str):
        raise ImplausibleValue(
            f"{field}: expected an ISO-8601 date and time such as {EXAMPLE}, got {value!r}.",
            field=field,
        )
    text = value.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ImplausibleValue(
            f"{field}: '{value}' is not an ISO-8601 date and time; use e.g. {EXAMPLE}.",
            field=field,
        ) from None
    if len(text) <= 10:  # "2026-03-01": a date alone cannot time a clinical event
        raise ImplausibleValue(
            f"{field}: '{value}' is a date without a time; give the time and its UTC "
            f"offset, e.g. {EXAMPLE}.",
            field=field,
        )
    if not is_aware(parsed):
        raise NaiveTime(
            f"{field}: '{value}' has no UTC offset; add one, e.g. {EXAMPLE}.", field=field
        )
    return parsed.astimezone(UTC)


def _clock(t: datetime) -> str:
    """``YYYY-MM-DD HH:MM``, with ``:SS`` only when the seconds are not zero."""
    return t.strftime("%Y-%m-%d %H:%M:%S" if t.second or t.microsecond else "%Y-%m-%d %H:%M")


def format_utc(t: datetime) -> str:
    """An instant as ``2026-02-28 23:15 UTC`` (seconds shown only when not zero)."""
    return f"{_clock(ensure_aware(t, field='time'))} UTC"


def _offset(t: datetime) -> str:
    offset = t.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def site_zone(tz_name: str) -> ZoneInfo:
    """The :class:`ZoneInfo` for an IANA name; an unknown name raises :class:`ImplausibleValue`."""
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ImplausibleValue(
            f"unknown time zone '{tz_name}'; use an IANA name such as Europe/Moscow.",
            field="timezone",
        ) from None


def format_local(t: datetime, tz_name: str) -> str:
    """Show an instant in a site's IANA zone: ``2026-03-01 02:15 MSK (UTC+03:00)``.

    The offset is always printed because abbreviations are ambiguous and change with
    daylight saving time; zones without an abbreviation (tzdata prints ``+04``) show the
    offset only.
    """
    local = ensure_aware(t, field="time").astimezone(site_zone(tz_name))
    abbrev = local.tzname() or ""
    offset = _offset(local)
    if not abbrev or abbrev[0] in "+-":
        return f"{_clock(local)} ({offset})"
    return f"{_clock(local)} {abbrev} ({offset})"


def format_duration(d: timedelta) -> str:
    """A duration as ``9 h 05 min``, ``45 min``, ``-1 min`` or ``30 s`` (seconds below 1 min)."""
    total = int(d.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{sign}{hours} h {minutes:02d} min"
    if minutes:
        return f"{sign}{minutes} min"
    return f"{sign}{seconds} s"


def ensure_not_future(
    t: datetime,
    now: datetime,
    *,
    field: str,
    tolerance: timedelta = CLOCK_SKEW_TOLERANCE,
) -> datetime:
    """Return ``t`` in UTC; raise :class:`FutureTime` if more than ``tolerance`` after ``now``.

    A clinical event cannot have happened after the moment we evaluate it; the small
    tolerance absorbs clocks that disagree by a few minutes.
    """
    t_utc = ensure_aware(t, field=field)
    now_utc = ensure_aware(now, field="now")
    if t_utc > now_utc + tolerance:
        raise FutureTime(
            f"{field}: {format_utc(t_utc)} is in the future (now is {format_utc(now_utc)}, "
            f"{format_duration(t_utc - now_utc)} earlier); check the date, the time and "
            "its UTC offset.",
            field=field,
        )
    return t_utc
