"""Template filters of the pre-screening pages: provenance times and the times cited by
each criterion's reason are stored as ISO-8601 UTC strings (JSON); show them in the
site's time zone like every other time."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django import template

from trialdesk.clinical.timeutil import format_local, parse_aware
from trialdesk.errors import TrialError
from trialdesk.prescreen.results import render_reason

register = template.Library()


@register.filter
def iso_site_time(value: str | None, zone: str) -> str:
    """``{{ "2026-03-01T00:15:00+00:00"|iso_site_time:"Europe/Moscow" }}`` →
    ``2026-03-01 03:15 MSK (UTC+03:00)``; empty for no time. A stored value that is not
    an ISO date-time with an offset is shown as stored rather than hidden."""
    if not value:
        return ""
    try:
        return format_local(parse_aware(value, field="time"), zone)
    except TrialError:
        return str(value)


@lru_cache(maxsize=4096)
def _reason(template: str, times: tuple[tuple[str, str], ...], zone: str) -> str:
    parsed = tuple((name, parse_aware(iso, field="time")) for name, iso in times)
    return render_reason(template, parsed, zone)


def site_reason(check: dict[str, Any], zone: str) -> str:
    """A stored check's reason with its times in the site's zone (the board and the
    patient page show site time). Checks stored before reasons carried structured times
    (no ``template``), or with a time that does not parse, show the stored UTC text."""
    template, times = check.get("template"), check.get("times")
    if not isinstance(template, str) or not isinstance(times, dict):
        return str(check.get("reason", ""))
    try:
        return _reason(template, tuple(sorted(times.items())), zone)
    except (TrialError, TypeError):
        return str(check.get("reason", ""))


@register.filter
def reason_site_time(check: dict[str, Any], zone: str) -> str:
    """``{{ c|reason_site_time:p.site.timezone }}``: :func:`site_reason`."""
    return site_reason(check, zone)
