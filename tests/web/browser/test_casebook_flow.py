"""The casebook in a real browser (headless Chromium): the cell-therapy lab records a
product and a late infusion and sees it flagged; an investigator enters day-1 SOFA values
and watches the score computed as they type.

Screenshots of each step: ``var/screenshots/<test-name>-<step>.png``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest

from tests.web.conftest import eligible_record, make_screening, member
from trialdesk.clinical.sofa import SofaInputs, compute_sofa
from trialdesk.clinical.timeutil import utcnow
from trialdesk.randomization import generate_list
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import import_list, randomize
from trialdesk.web.screening.models import Screening

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "casebook in the browser 5"


@pytest.fixture
def people(django_user_model, nrch):
    lab = member(django_user_model.objects.create_user("lena", password=PASSWORD), "lab", nrch)
    investigator = member(django_user_model.objects.create_user("ivan", password=PASSWORD),
                          "investigator", nrch)
    return lab, investigator


@pytest.fixture
def msc_patient(rumcess, nrch, people):
    """An MSC-arm patient randomized 3 days ago, septic shock 4 h before randomization."""
    _, investigator = people
    alist = generate_list(rumcess, seed="browser-casebook", size_per_stratum=8)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=investigator)
    for _ in range(4):
        screening = make_screening(nrch, investigator,
                                   eligible_record(utcnow() - dt.timedelta(hours=2)))
        allocation = randomize(screening.pk, user=investigator, request_id=uuid.uuid4().hex,
                               protocol=rumcess).allocation
        if allocation.arm == "msc":
            randomized = (utcnow() - dt.timedelta(days=3)).replace(second=0, microsecond=0)
            Allocation.objects.filter(pk=allocation.pk).update(randomized_at=randomized)
            Screening.objects.filter(pk=screening.pk).update(
                onset_utc=randomized - dt.timedelta(hours=4))
            return Allocation.objects.get(pk=allocation.pk)
    raise AssertionError("no MSC allocation in four patients")


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.top form.who")).to_contain_text(username)


def test_lab_records_product_and_a_late_infusion_and_sees_it_flagged(
        page, live_server, shot, msc_patient):
    _log_in(page, live_server.url, "lena")
    page.locator("header.top nav").get_by_role("link", name="MSC records").click()
    row = page.locator(f'#lab-rows tr[data-subject="{msc_patient.subject_id}"]')
    expect(row).to_be_visible()
    shot("01-lab-list")
    row.get_by_role("link", name="record").first.click()  # the product
    for field, value in (("product_id", "MSC-2026-007"), ("donor_id", "D-17"),
                         ("viability_percent", "91"), ("concentration_cells_per_ml", "1000000"),
                         ("endotoxin_eu_per_ml", "0.1"), ("released_by", "Dr Kuzmina")):
        page.fill(f"#id_{field}", value)
    for field, value in (("sterility", "no_growth"), ("mycoplasma", "negative"),
                         ("identity", "pass")):
        page.select_option(f"#id_{field}", value)
    shot("02-product")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#release")).to_contain_text("released")
    shot("03-product-released")

    page.goto(f"{live_server.url}/casebook/{msc_patient.subject_id}/msc/infusion/")
    start = (msc_patient.randomized_at + dt.timedelta(hours=7)).astimezone(
        ZoneInfo("Europe/Moscow")).strftime("%Y-%m-%dT%H:%M")
    page.fill("#id_infusion_start_at", start)  # onset + 11 h
    page.fill("#id_weight_kg", "70")
    page.select_option("#id_weight_basis", "actual")
    page.fill("#id_cells_infused", "70000000")
    shot("04-infusion")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#late-flag")).to_contain_text("LATE")
    expect(page.locator("#dose")).to_contain_text("within the protocol range")
    expect(page.locator('.deviation[data-code="INFUSION_LATE"]')).to_be_visible()
    shot("05-late-infusion-flagged")
    page.locator("header.top nav").get_by_role("link", name="MSC records").click()
    expect(row.locator(".late-flag")).to_have_text("LATE")
    shot("06-lab-list-late")


def test_investigator_enters_day_1_and_sees_sofa_computed(page, live_server, shot,
                                                         msc_patient):
    worked = {"pao2_mmhg": 70, "fio2_fraction": 0.5, "platelets_10e9_per_l": 35,
              "bilirubin_umol_l": 40, "map_mmhg": 62, "norepinephrine_ug_kg_min": 0.25,
              "gcs": 11, "creatinine_umol_l": 180, "urine_ml_per_day": 350}
    core = compute_sofa(SofaInputs.from_mapping({**worked, "respiratory_support": "invasive"}))
    _log_in(page, live_server.url, "ivan")
    page.locator("header.top nav").get_by_role("link", name="Casebooks").click()
    page.get_by_role("link", name=msc_patient.subject_id).click()
    expect(page.locator("#schedule")).to_be_visible()
    shot("01-casebook")
    page.locator('#schedule a[data-form="sofa"][data-day="1"]').click()
    page.select_option("#id_respiratory_support", "invasive")
    for field, value in worked.items():
        page.fill(f"#id_{field}", str(value))
    expect(page.locator("#sofa-live #sofa-total")).to_have_text(str(core.total))
    expect(page.locator("#sofa-live #sofa-total-wo-coag")).to_have_text(
        str(core.total_without_coagulation))
    shot("02-live-sofa")
    page.fill("#id_fio2_fraction", "50")
    expect(page.locator("#sofa-error")).to_contain_text("enter 0.50")
    shot("03-fio2-as-percent")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#error")).to_contain_text("EDIT_CHECK_FAILED")
    expect(page.locator("#id_fio2_fraction")).to_have_value("50")  # the input is kept
    page.fill("#id_fio2_fraction", "0.5")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_contain_text("Saved")
    page.get_by_role("link", name=msc_patient.subject_id).click()
    expect(page.locator("#sofa-row")).to_contain_text(str(core.total))
    shot("04-casebook-with-sofa")
