"""Template filters: show a UTC instant in a site's time zone."""

from __future__ import annotations

from django import template

from trialdesk.clinical.timeutil import format_local

register = template.Library()


@register.filter
def site_time(value, zone: str) -> str:
    """``{{ t|site_time:site.timezone }}`` → ``2026-03-01 02:15 MSK (UTC+03:00)``."""
    return format_local(value, zone) if value else ""
