"""The safety pages show reporting clocks in days, hours and minutes ("40 d 11 h late"),
never as a pile of hours ("971 h late").

Reference: an SAE owes the sponsor a report within 24 h of the site's awareness
(docs/conventions.md); an unrelated SAE owes nothing else. Awareness 24 h + 971 h 30 min
ago → 971 h 30 min overdue = 40 d 11 h 30 min, shown truncated as "40 d 11 h late".
Awareness 18 h 39 min 10 s ago → 5 h 20 min 50 s left, shown as "5 h 20 min left".
"""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.clinical.timeutil import utcnow
from trialdesk.web.safety.services import record_report, report_ae

from .test_adverse_events import client_for, sae_entry

pytestmark = pytest.mark.django_db


def _unrelated_sae(term: str, aware_ago: dt.timedelta) -> dict:
    return sae_entry(aware_ago / dt.timedelta(hours=1), term=term, causality="unrelated",
                     seriousness=["hospitalisation"], severity_grade=3)


@pytest.fixture
def two_saes(patient, ivan, rumcess):
    late = report_ae(patient, ivan, _unrelated_sae(
        "Acute liver failure", dt.timedelta(hours=24 + 971, minutes=30)), protocol=rumcess)
    soon = report_ae(patient, ivan, _unrelated_sae(
        "Pulmonary embolism", dt.timedelta(hours=18, minutes=39, seconds=10)),
        protocol=rumcess)
    return late, soon


def _row(html: str, term: str) -> str:
    start = html.rindex("<tr", 0, html.index(term))
    return html[start:html.index("</tr>", start)]


def test_dashboard_shows_days_and_hours_late_and_hours_and_minutes_left(two_saes, ivan):
    html = client_for(ivan).get("/safety/").content.decode()
    pending = html[html.index('id="pending"'):html.index('id="settled"')]
    assert "40 d 11 h late" in _row(pending, "Acute liver failure")
    assert "5 h 20 min left" in _row(pending, "Pulmonary embolism")
    assert "971 h" not in html and " h late" not in html.replace("11 h late", "")


def test_event_page_shows_the_same_readable_clock(two_saes, ivan):
    late, soon = two_saes
    client = client_for(ivan)
    late_html = client.get(f"/safety/ae/{late.pk}/").content.decode()
    assert "— 40 d 11 h late" in late_html and "971 h" not in late_html
    soon_html = client.get(f"/safety/ae/{soon.pk}/").content.decode()
    assert "— 5 h 20 min left" in soon_html


def test_a_report_made_late_says_how_late_in_days_and_hours(two_saes, ivan):
    late, _ = two_saes
    record_report(late, ivan, recipient="sponsor",
                  reported_at=utcnow() - dt.timedelta(hours=1))
    html = client_for(ivan).get("/safety/").content.decode()
    settled = html[html.index('id="settled"'):]
    # reported 971 h 30 min − 1 h = 970 h 30 min after the due time = 40 d 10 h 30 min
    assert "late by 40 d 10 h" in _row(settled, "Acute liver failure")


def test_the_event_page_shows_when_a_report_was_made_in_site_time(two_saes, ivan):
    """The 'Made' column sits beside 'Due' (site time), so it is in site time too."""
    late, _ = two_saes
    made_utc = (utcnow() - dt.timedelta(days=2)).replace(hour=23, minute=30, second=0,
                                                         microsecond=0)
    record_report(late, ivan, recipient="sponsor", reported_at=made_utc)
    html = client_for(ivan).get(f"/safety/ae/{late.pk}/").content.decode()
    # the patient's site is in Moscow (UTC+3, no DST): 23:30 UTC is 02:30 the next day
    moscow = made_utc + dt.timedelta(hours=3)
    assert f"{moscow:%Y-%m-%d} 02:30 MSK" in html
    assert f"{made_utc:%Y-%m-%d} 23:30 UTC" not in html
