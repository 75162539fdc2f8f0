"""The safety dashboard in a real browser (headless Chromium): a serious adverse event
whose report to the sponsor is overdue (the site learned of it more than 24 h ago) is
listed first and highlighted; one still within its 24 h follows, plainly.

Screenshots of each step: ``var/screenshots/<test-name>-<step>.png``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.web.conftest import member
from tests.web.datamgmt.patients import randomized_patient, seal_list
from trialdesk.clinical.timeutil import utcnow
from trialdesk.web.safety.services import report_ae

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "safety in the browser 9"


@pytest.fixture
def ivan(django_user_model, nrch):
    return member(django_user_model.objects.create_user(
        "ivan", password=PASSWORD, first_name="Ivan", last_name="Petrov"), "investigator", nrch)


def _sae(term: str, aware_hours_ago: float) -> dict:
    """A serious (hospitalisation), expected, unrelated event: only the 24-h sponsor report
    is owed (ICH E2A; not a SUSAR)."""
    now = utcnow()
    return {"term": term, "onset": (now - dt.timedelta(hours=aware_hours_ago + 1)).isoformat(),
            "awareness": (now - dt.timedelta(hours=aware_hours_ago)).isoformat(),
            "seriousness": ["hospitalisation"], "severity_grade": "3",
            "causality": "unrelated", "expectedness": "expected", "outcome": "not_recovered"}


@pytest.fixture
def events(rumcess, nrch, ivan):
    """Two SAEs of two patients: the one still in time is recorded first, then the one
    the site learned of 30 h ago (sponsor report 6 h overdue)."""
    seal_list(rumcess, ivan)
    first, second = (randomized_patient(nrch, ivan, rumcess) for _ in range(2))
    in_time = report_ae(first, ivan, _sae("catheter-related bloodstream infection", 2),
                        protocol=rumcess)
    overdue = report_ae(second, ivan, _sae("acute kidney injury requiring dialysis", 30),
                        protocol=rumcess)
    return in_time, overdue


def test_an_overdue_sae_report_tops_the_safety_dashboard_highlighted(
        page, live_server, shot, events):
    in_time, overdue = events
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "ivan")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator("header.top nav").get_by_role("link", name="Safety", exact=True).click()
    expect(page.locator("#overdue-count")).to_contain_text("1 report overdue")
    # RUMCESS names no reporting zone: the coordinating centre's applies (docs/conventions.md)
    expect(page.locator("main")).to_contain_text("counted in Europe/Moscow.")
    rows = page.locator("#pending tr:has(td)")
    expect(rows).to_have_count(2)
    top = rows.nth(0)
    expect(top).to_contain_text(overdue.term)
    expect(top).to_contain_text(overdue.allocation.subject_id)
    expect(top).to_contain_text("OVERDUE")
    expect(top).to_contain_text("late")
    expect(top).to_have_class(re.compile(r"(^|\s)escalated(\s|$)"))
    expect(rows.nth(1)).to_contain_text(in_time.term)
    expect(rows.nth(1)).not_to_have_class(re.compile("escalated"))
    expect(rows.nth(1)).not_to_contain_text("OVERDUE")
    shot("01-dashboard-overdue-first")
    top.get_by_role("link", name=overdue.term).click()
    expect(page.locator("main")).to_contain_text(overdue.term)
    shot("02-overdue-event")
