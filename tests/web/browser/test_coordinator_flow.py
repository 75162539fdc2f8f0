"""A research coordinator at the bedside, in a real browser (headless Chromium).

Logs in, logs a new screening field by field while the live criteria table follows,
records consent, randomizes and reads the confirmation; is refused with the reason for
an ineligible patient; is warned about a neutrophil count typed in the wrong unit.

Each step is saved as a screenshot in ``var/screenshots/<test-name>-<step>.png``
(see ``conftest.py``): the artifacts to look at when a flow breaks or the layout moves.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from tests.web.conftest import eligible_record, make_screening, member
from trialdesk.randomization import generate_list
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import import_list

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "bedside coordinator 7"


@pytest.fixture
def coordinator(django_user_model, nrch):
    """Carla, research coordinator at NRCH, who signs in with a password."""
    user = django_user_model.objects.create_user("carla", password=PASSWORD)
    return member(user, "coordinator", nrch)


@pytest.fixture
def sealed(rumcess, coordinator):
    alist = generate_list(rumcess, seed="browser", size_per_stratum=8)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=coordinator)
    return alist


def _local(zone: str, hours_ago: float) -> str:
    """A datetime-local input value, ``hours_ago`` before now in the site's time zone."""
    return (dt.datetime.now(ZoneInfo(zone)) - dt.timedelta(hours=hours_ago)) \
        .strftime("%Y-%m-%dT%H:%M")


def _has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def _criterion(page, criterion_id: str):
    return page.locator(f'#eligibility tr[data-criterion="{criterion_id}"]')


def _expect_criterion(page, criterion_id: str, status: str) -> None:
    """Wait for the htmx swap that shows ``criterion_id`` with ``status``."""
    expect(_criterion(page, criterion_id)).to_have_class(_has_class(f"criterion-{status}"))


def _radio(page, name: str, value: str):
    return page.locator(f'input[type=radio][name="{name}"][value="{value}"]')


def _log_in(page, base_url: str, shot=None) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", "carla")
    page.fill("#id_password", PASSWORD)
    if shot:
        shot("01-login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.top form.who")).to_contain_text("carla")


def _open_new_screening(page) -> None:
    page.locator("header.top nav").get_by_role("link", name="Screening").click()
    expect(page.locator("#open-screenings")).to_be_visible()
    page.get_by_role("link", name="+ New screening").click()
    expect(page.get_by_role("heading", name="New screening")).to_be_visible()


def test_coordinator_logs_consents_randomizes_and_reads_the_confirmation(
        page, shot, live_server, rumcess, nrch, coordinator, sealed):
    _log_in(page, live_server.url, shot)
    shot("02-signed-in")
    _open_new_screening(page)
    expect(page.locator("#eligibility")).to_contain_text("Start entering data")
    shot("03-new-screening-empty")

    page.fill("#id_birth_date", "1980-05-17")
    _expect_criterion(page, "I4", "met")          # ≥ 17 years
    _expect_criterion(page, "E3", "not_met")      # not > 75 years
    page.select_option("#id_sex", "female")
    _radio(page, "pregnant", "false").check()
    _expect_criterion(page, "E4", "not_met")      # not pregnant
    _radio(page, "septic_shock", "true").check()
    page.fill("#id_septic_shock_onset", _local(nrch.timezone, 2))
    _expect_criterion(page, "I1", "met")          # septic shock, onset recorded
    _expect_criterion(page, "I2", "met")          # within 10 h of onset
    shot("04-age-and-shock")

    neutrophils = page.locator("#id_neutrophils")
    neutrophils.press_sequentially("0.3")         # keyup drives the live check
    expect(page.locator("#id_neutrophils__unit")).to_have_value("10^9/L")
    _expect_criterion(page, "I3", "met")          # severe neutropenia
    _radio(page, "chemoresistant_oncohematological", "false").check()
    _expect_criterion(page, "E1", "not_met")
    page.select_option("#id_neutropenia_cause", "post_chemotherapy")
    _expect_criterion(page, "I5", "unknown")      # consent comes later, on the record
    expect(page.locator("#eligibility .decision")).to_have_text("INCOMPLETE")
    shot("05-form-filled")

    page.get_by_role("button", name="Save screening").click()
    clock = page.locator("#clock")
    expect(clock).to_contain_text(re.compile(r"\d+ h \d+ min left"))
    expect(clock).to_contain_text(re.compile(r"\d+ h \d+ min since onset"))
    expect(page.locator(".notice")).to_contain_text("logged")
    expect(page).to_have_url(re.compile(r"/screening/\d+/$"))  # a reload stays here
    shot("06-screening-saved")

    page.select_option("#id_consent_type", "legal_representative")
    page.fill("#id_document_version", "2.0")
    page.fill("#id_obtained_at", _local(nrch.timezone, 0.5))
    page.fill("#id_obtained_by", "Dr Petrova")
    page.fill("#id_signed_by", "Husband")
    shot("07-consent-form")
    page.get_by_role("button", name="Record consent").click()
    expect(page.locator(".notice")).to_contain_text("Consent recorded")
    expect(page.get_by_text("Legal representative · document v2.0")).to_be_visible()
    _expect_criterion(page, "I5", "met")
    expect(page.locator("#eligibility .decision")).to_have_text("ELIGIBLE")
    shot("08-consent-recorded")

    page.locator("#randomize").click()
    confirmation = page.locator("#confirmation")
    expect(confirmation).to_be_visible()
    allocation = Allocation.objects.get()
    expect(confirmation).to_contain_text(allocation.subject_id)
    expect(confirmation).to_contain_text(rumcess.arm(allocation.arm).label)
    expect(confirmation).to_contain_text("carla")
    shot("09-confirmation")


def test_an_ineligible_patient_is_refused_with_the_failing_criterion(
        page, shot, live_server, nrch, coordinator, sealed):
    screening = make_screening(nrch, coordinator, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
        neutrophils={"value": 2.5, "unit": "10^9/L"}))
    _log_in(page, live_server.url)
    page.goto(f"{live_server.url}/screening/{screening.pk}/")
    _expect_criterion(page, "I3", "not_met")
    expect(page.locator("#eligibility .decision")).to_have_text("INELIGIBLE")
    shot("01-screening")

    page.locator("#randomize").click()
    error = page.locator("#error")
    expect(error).to_contain_text("NOT_ELIGIBLE")
    expect(error).to_contain_text("I3")
    expect(page.locator("#confirmation")).to_have_count(0)
    shot("02-refused")
    assert Allocation.objects.count() == 0


def test_a_neutrophil_count_in_cells_per_microlitre_is_flagged_live(
        page, shot, live_server, nrch, coordinator):
    _log_in(page, live_server.url)
    page.goto(f"{live_server.url}/screening/new")
    page.locator("#id_neutrophils").press_sequentially("500")
    warning = page.locator("#eligibility .warning", has_text="LIKELY_WRONG_UNIT")
    expect(warning).to_contain_text("cells/uL")
    _expect_criterion(page, "I3", "unknown")
    shot("01-wrong-unit-warning")

    page.select_option("#id_neutrophils__unit", "cells/uL")  # the fix the warning suggests
    _expect_criterion(page, "I3", "met")
    expect(page.locator("#eligibility")).not_to_contain_text("LIKELY_WRONG_UNIT")
    shot("02-unit-corrected")
