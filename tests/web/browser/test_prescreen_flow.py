"""The live candidate board, in a real browser (headless Chromium).

Carla, research coordinator at NRCH, has **Candidates** open. The ICU's FHIR bridge
posts a new patient's resources to ``/api/fhir`` over HTTP with its API token: first the
Patient, a MAP of 62 mmHg and norepinephrine started 3 h ago (a *possible*: no
neutrophil count yet), then a neutrophil count of 600 cells/µL. Without a reload the
board's polling shows the patient, then the candidate with onset and deadline in Moscow
time (NRCH, UTC+3) and about 7 h left. One click opens a screening record pre-filled
with the values used, each shown with its source and time.

Expected values are worked out by hand from the posted resources. Screenshots of each
step: ``var/screenshots/prescreen-<step>.png``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.web.browser.conftest import SCREENSHOTS
from tests.web.conftest import member
from tests.web.prescreen.conftest import Shock
from trialdesk.web.api.services import create_token
from trialdesk.web.prescreen.models import ScreeningReferral
from trialdesk.web.screening.models import Screening

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "bedside coordinator 7"
MSK = dt.timezone(dt.timedelta(hours=3))
#: the board polls every 5 s; a change must show within two polls (plus the render)
POLL_WAIT_MS = 12_000


@pytest.fixture
def coordinator(django_user_model, nrch):
    """Carla, research coordinator at NRCH, who signs in with a password."""
    user = django_user_model.objects.create_user("carla", password=PASSWORD)
    return member(user, "coordinator", nrch)


@pytest.fixture
def bridge_token(django_user_model, nrch) -> str:
    """The API token of the ICU's FHIR bridge (an integration account at NRCH)."""
    bridge = member(django_user_model.objects.create_user("fhir-bridge"), "integration",
                    nrch)
    return create_token(bridge, "ICU FHIR bridge")[1]


@pytest.fixture
def snap(page):
    """``snap("step")`` saves a full-page screenshot as var/screenshots/prescreen-<step>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(step: str) -> Path:
        path = SCREENSHOTS / f"prescreen-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def post_fhir(base_url: str, token: str, resource: dict) -> dict:
    """POST one resource to the live server as the ICU feed does (HTTP, Bearer token)."""
    request = urllib.request.Request(
        f"{base_url}/api/fhir", data=json.dumps(resource).encode(), method="POST",
        headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.load(response)


def _log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", "carla")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.top form.who")).to_contain_text("carla")


def test_a_new_icu_patient_appears_live_and_one_click_opens_a_prefilled_screening(
        page, snap, live_server, rumcess, nrch, coordinator, bridge_token):
    onset = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=3)
    shock = Shock("icu-42", onset)
    _log_in(page, live_server.url)
    page.locator("header.top nav").get_by_role("link", name="Candidates").click()
    board = page.locator("#candidate-board")
    expect(board).to_contain_text("No candidate in the window.")
    snap("01-empty-board")

    # the feed sends the patient, the blood pressure and the vasopressor: a possible
    for resource in (shock.patient(), shock.map(), shock.pressor()):
        post_fhir(live_server.url, bridge_token, resource)
    row = page.locator(f'#candidate-board tr[data-patient="{shock.pid}"]')
    expect(row).to_have_attribute("data-status", "possible", timeout=POLL_WAIT_MS)
    expect(row).to_contain_text("Possible")
    snap("02-possible")

    # the neutrophil count arrives: 600 cells/µL = 0.6 × 10^9/L ≤ 1 → a candidate
    post_fhir(live_server.url, bridge_token, shock.anc())
    expect(row).to_have_attribute("data-status", "candidate", timeout=POLL_WAIT_MS)
    onset_msk = onset.astimezone(MSK)
    deadline_msk = onset_msk + dt.timedelta(hours=10)  # the protocol's 10 h window
    expect(row.locator(".onset")).to_contain_text(onset_msk.strftime("%Y-%m-%d %H:%M"))
    expect(row.locator(".onset")).to_contain_text("MSK")
    expect(row.locator(".deadline")).to_contain_text(deadline_msk.strftime("%Y-%m-%d %H:%M"))
    # onset 3 h ago: 7 h left (6 h 5x min once a minute has passed)
    expect(row.locator(".clock")).to_have_text(re.compile(r"^\s*(7 h 0 min|6 h 5\d min)\s*$"))
    expect(row).to_contain_text("ANC 0.6 ×10^9/L")
    snap("03-candidate")

    # one click: the screening record, pre-filled, with the source and time of each value
    row.get_by_role("button", name="Open screening").click()
    expect(page).to_have_url(re.compile(r"/screening/\d+/$"))
    screening = Screening.objects.get()
    expect(page.locator("h1")).to_contain_text(screening.screening_number)
    provenance = page.locator("#provenance")
    expect(provenance).to_be_visible()
    anc_row = provenance.locator('tr[data-field="neutrophils"]')
    expect(anc_row).to_contain_text("0.6 10^9/L")
    expect(anc_row).to_contain_text(f"Observation/{shock.pid}-anc")
    anc_at = (onset - dt.timedelta(hours=2)).astimezone(MSK)
    expect(anc_row).to_contain_text(anc_at.strftime("%Y-%m-%d %H:%M"))
    onset_row = provenance.locator('tr[data-field="septic_shock_onset"]')
    expect(onset_row).to_contain_text(f"MedicationAdministration/{shock.pid}-ne")
    expect(onset_row).to_contain_text(onset_msk.strftime("%Y-%m-%d %H:%M"))
    expect(provenance.locator('tr[data-field="birth_date"]')).to_contain_text(
        f"Patient/{shock.pid}")
    expect(page.locator("#clock")).to_contain_text(re.compile(r"(7 h 0|6 h 5\d) min left"))
    assert screening.record["neutrophils"] == {"value": 0.6, "unit": "10^9/L"}
    assert ScreeningReferral.objects.get().screening == screening
    snap("04-screening-with-provenance")
    page.locator("#referral").screenshot(path=str(SCREENSHOTS / "prescreen-04b-provenance.png"))

    # back on the board, the row links to that screening instead of opening another
    page.goto(f"{live_server.url}/candidates/")
    expect(row.get_by_role("link", name=screening.screening_number)).to_be_visible()
    expect(row.get_by_role("button", name="Open screening")).to_have_count(0)
    snap("05-board-links-the-screening")
