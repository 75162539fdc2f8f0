"""What the candidate board shows for each row, prepared once in Python.

The board lists every candidate and possible of the user's sites (hundreds in a
network) and is re-fetched by every open browser every few seconds. Rendering each
criterion of each row through template loops, ``{% url %}`` and ``{% csrf_token %}``
cost ~1 ms per row (bench/prescreen_bench.py, part c); here the criteria list is built
in one pass (escaped as the template would), the links from one ``reverse()`` per URL
name, and the CSRF field once per page. The HTML is the same as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from typing import Any

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from trialdesk.web.prescreen.services import BoardRow
from trialdesk.web.prescreen.templatetags.prescreen_tags import site_reason

#: how a criterion's status reads on the board (an exclusion that is "met" by the
#: pre-screening rules means the patient passes it, so the words say pass/fail)
CHECK_WORDS = {"met": "✓ passes", "not_met": "✗ fails"}
UNKNOWN_WORDS = "? data missing"
_CHECK = ('<li><span class="status-{}" title="{}">{}</span> <strong>{}</strong> — {}</li>')
_SENTINEL = 2_147_483_647


def url_maker(name: str) -> Callable[[int], str]:
    """``url_maker("prescreen:patient")(17)`` == ``reverse("prescreen:patient", args=[17])``,
    reversing once instead of once per row."""
    prefix, _, suffix = reverse(name, args=[_SENTINEL]).partition(str(_SENTINEL))
    return lambda pk: f"{prefix}{pk}{suffix}"


def criteria_html(checks: Iterable[dict[str, Any]], zone: str) -> SafeString:
    """The ``<li>`` items of one row's criteria (status words, label, reason with its
    times in the site's ``zone``, like the onset and deadline columns).

    Escaped with the standard library's ``html.escape`` — what Django's ``escape``
    calls, without its lazy-string wrapper, which was the slowest part of this loop."""
    items = []
    for c in checks:
        status = escape(str(c.get("status", "")))
        items.append(_CHECK.format(status, status,
                                   CHECK_WORDS.get(c.get("status", ""), UNKNOWN_WORDS),
                                   escape(str(c.get("label", ""))),
                                   escape(site_reason(c, zone))))
    return mark_safe("".join(items))  # noqa: S308 (every value escaped above)


@dataclass(frozen=True)
class BoardLine:
    """One row of the board as shown: the service's row plus its display strings."""

    row: BoardRow
    patient_id: str
    status: str
    status_label: str
    status_class: str
    site_code: str
    patient_url: str
    open_url: str
    screening_url: str
    screening_number: str
    criteria: SafeString


def board_lines(sections: dict[str, list[BoardRow]]) -> dict[str, list[BoardLine]]:
    """Every section of :func:`~trialdesk.web.prescreen.services.board`, ready to show."""
    patient_url = url_maker("prescreen:patient")
    open_url = url_maker("prescreen:open_screening")
    screening_url = url_maker("screening:detail")

    def line(r: BoardRow) -> BoardLine:
        p = r.patient
        return BoardLine(
            r, p.patient_id, p.status, p.get_status_display(),
            "status-met" if p.status == "candidate" else "status-unknown", p.site.code,
            patient_url(p.pk), open_url(p.pk),
            screening_url(r.screening.pk) if r.screening else "",
            r.screening.screening_number if r.screening else "",
            criteria_html(r.checks, p.site.timezone))

    return {name: [line(r) for r in rows] for name, rows in sections.items()}


def csrf_field(token: str) -> SafeString:
    """The hidden CSRF input of every row's form, built once per page."""
    return format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)
