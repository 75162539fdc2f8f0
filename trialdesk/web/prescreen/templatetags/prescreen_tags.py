"""Template filters of the pre-screening pages: provenance times are stored as ISO-8601
UTC strings (JSON); show them in the site's time zone like every other time."""

from __future__ import annotations

from django import template

from trialdesk.clinical.timeutil import format_local, parse_aware
from trialdesk.errors import TrialError

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
