"""Template filters: a UTC instant in a site's time zone, a unit code as people read it,
a cell count in scientific notation, a clock in hours as "6 h 48 min"."""

from __future__ import annotations

from django import template

from trialdesk.clinical.timeutil import format_local
from trialdesk.crf.forms import display_unit
from trialdesk.safety.durations import SECONDS_PER_HOUR, describe_duration

register = template.Library()


@register.filter
def site_time(value, zone: str) -> str:
    """``{{ t|site_time:site.timezone }}`` → ``2026-03-01 02:15 MSK (UTC+03:00)``."""
    return format_local(value, zone) if value else ""


@register.filter
def unit(code: str | None) -> str:
    """``{{ "umol/L"|unit }}`` → ``µmol/L``: a stored unit code as people read it."""
    return display_unit(code)


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


@register.filter
def cells(value: float | None) -> str:
    """``{{ 1.5e6|cells }}`` → ``1.5 × 10⁶``: cell counts as a cell-therapy lab writes them."""
    if value is None:
        return ""
    mantissa, exponent = f"{float(value):e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    power = str(int(exponent)).translate(_SUPERSCRIPT)
    return f"{mantissa} × 10{power}"


@register.filter
def hours_as_duration(hours: float | None) -> str:
    """``{{ 6.8|hours_as_duration }}`` → ``6 h 48 min``: a clock in hours as people read it
    (the safety core's formatter, truncated so a deadline never shows more time than left)."""
    if hours is None:
        return ""
    return describe_duration(float(hours) * SECONDS_PER_HOUR)
