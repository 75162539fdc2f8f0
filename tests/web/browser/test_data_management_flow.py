"""Data management in a real browser (headless Chromium): an investigator enters day-1
SOFA values, sees the score, and signs the form by re-entering the password (a wrong
password is refused); a data manager queries a value of that form, the research
coordinator answers it from 'Queries to answer', the data manager closes it, and the
thread keeps every step.

Screenshots of each step: ``var/screenshots/<test-name>-<step>.png``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.web.conftest import member
from tests.web.datamgmt.patients import randomized_patient, seal_list
from trialdesk.clinical.sofa import SofaInputs, compute_sofa
from trialdesk.clinical.timeutil import utcnow
from trialdesk.web.casebook.models import FormRecord
from trialdesk.web.casebook.services import save_form
from trialdesk.web.datamgmt.models import Query, Signature
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.screening.models import Screening

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "data management in the browser 3"

#: Day-1 worst values, scored by hand from Vincent 1996 (the SOFA table, domain.md S3):
#: PaO2/FiO2 = 80/0.40 = 200 mmHg, room air -> respiration 2 (< 300, not < 200);
#: platelets 120 -> 1; bilirubin 25 umol/L -> 1 (20-32); noradrenaline 0.08 ug/kg/min
#: (<= 0.1) -> cardiovascular 3; GCS 14 -> 1; creatinine 120 umol/L -> 1 (110-170).
DAY1 = {"pao2_mmhg": 80, "fio2_fraction": 0.4, "platelets_10e9_per_l": 120,
        "bilirubin_umol_l": 25, "map_mmhg": 68, "norepinephrine_ug_kg_min": 0.08,
        "gcs": 14, "creatinine_umol_l": 120, "urine_ml_per_day": 1400}
DAY1_SOFA_BY_HAND = 2 + 1 + 1 + 3 + 1 + 1


@pytest.fixture
def people(django_user_model, nrch):
    """Dr Ivan Petrov (investigator), Carla (coordinator) at NRCH; Dora (data manager)."""
    ivan = member(django_user_model.objects.create_user(
        "ivan", password=PASSWORD, first_name="Ivan", last_name="Petrov"), "investigator", nrch)
    carla = member(django_user_model.objects.create_user("carla", password=PASSWORD),
                   "coordinator", nrch)
    dora = member(django_user_model.objects.create_user("dora", password=PASSWORD),
                  "data_manager")
    return ivan, carla, dora


@pytest.fixture
def patient(rumcess, nrch, people):
    """A patient randomized two days ago, 2 h after septic-shock onset (so study day 1 is
    over and its forms are due)."""
    _, carla, _ = people
    seal_list(rumcess, carla)
    allocation = randomized_patient(nrch, carla, rumcess)
    randomized = (utcnow() - dt.timedelta(days=2)).replace(second=0, microsecond=0)
    Allocation.objects.filter(pk=allocation.pk).update(randomized_at=randomized)
    Screening.objects.filter(pk=allocation.screening_id).update(
        onset_utc=randomized - dt.timedelta(hours=2))
    return Allocation.objects.get(pk=allocation.pk)


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.top form.who")).to_contain_text(username)


def log_out(page) -> None:
    page.locator("header.top form.who").get_by_role("button", name="Sign out").click()
    expect(page.locator("header.top form.who")).to_have_count(0)


def nav(page, name: str) -> None:
    page.locator("header.top nav").get_by_role("link", name=name, exact=True).click()


def open_day1_sofa(page, subject_id: str) -> None:
    nav(page, "Casebooks")
    page.get_by_role("link", name=subject_id).click()
    page.locator('#schedule a[data-form="sofa"][data-day="1"]').click()


def test_investigator_enters_day_1_sees_sofa_and_signs_with_the_password(
        page, live_server, shot, patient):
    core = compute_sofa(SofaInputs.from_mapping({**DAY1, "respiratory_support": "none"}))
    assert core.total == DAY1_SOFA_BY_HAND  # the hand-scored reference agrees with the core
    log_in(page, live_server.url, "ivan")
    open_day1_sofa(page, patient.subject_id)
    page.select_option("#id_respiratory_support", "none")
    for field, value in DAY1.items():
        page.fill(f"#id_{field}", str(value))
    expect(page.locator("#sofa-live #sofa-total")).to_have_text(str(DAY1_SOFA_BY_HAND))
    expect(page.locator("#sofa-live #sofa-total-wo-coag")).to_have_text(
        str(core.total_without_coagulation))
    shot("01-day1-sofa-live")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_contain_text("Saved")
    expect(page.locator("#sofa-live #sofa-total")).to_have_text(str(DAY1_SOFA_BY_HAND))
    shot("02-day1-saved")

    page.locator("#review-link").get_by_role("link").click()
    expect(page.locator("#signatures")).to_contain_text("Not signed")
    page.get_by_role("link", name="Sign this record").click()
    # the meaning of each choice is spelled out, and the signer's printed name is shown
    expect(page.locator("form fieldset")).to_contain_text("I have reviewed these data.")
    expect(page.locator("main")).to_contain_text("Ivan Petrov")
    page.locator('input[name="meaning"][value="review"]').check()
    page.get_by_label("Re-enter your password").fill("not my password")
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.locator("#error")).to_contain_text("SIGNATURE_REFUSED")
    expect(page.locator("#error")).to_contain_text("password is not correct")
    assert not Signature.objects.exists()
    shot("03-wrong-password-refused")

    page.locator('input[name="meaning"][value="review"]').check()
    page.get_by_label("Re-enter your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    signature = Signature.objects.get()
    shown = page.locator("#signatures")
    expect(shown).to_contain_text("Signed by Ivan Petrov")
    expect(shown).to_contain_text(signature.signed_at.astimezone(dt.UTC)
                                  .strftime("%Y-%m-%d %H:%M:%S") + " UTC")
    expect(shown).to_contain_text("meaning: review (I have reviewed these data.)")
    assert (signature.printed_name, signature.meaning) == ("Ivan Petrov", "review")
    shot("04-signed")


@pytest.fixture
def day1(rumcess, patient, people):
    """The day-1 SOFA form as Dr Petrov saved it (through the casebook service)."""
    ivan, _, _ = people
    save_form(rumcess, patient, "sofa", 1, {**DAY1, "respiratory_support": "none"},
              user=ivan)
    return FormRecord.objects.get(allocation=patient, form_id="sofa", day=1)


def test_data_manager_queries_a_value_and_the_coordinator_answers_it(
        page, live_server, shot, patient, day1):
    question = "Platelets 120 on day 1 but 35 at screening: transfusion before the sample?"
    log_in(page, live_server.url, "dora")
    nav(page, "Casebooks")
    page.get_by_role("link", name=patient.subject_id).click()
    # the data manager reads the casebook (no entry form) and opens the form's review page
    page.locator('#recorded-forms details[data-form="sofa"][data-day="1"]').evaluate(
        "d => { d.open = true; }")
    shot("01-casebook-recorded-forms")
    page.locator('#recorded-forms details[data-form="sofa"][data-day="1"] a.review').click()
    expect(page.locator("h1")).to_contain_text(f"{patient.subject_id} sofa day 1")
    page.get_by_label("Field (optional)").fill("platelets_10e9_per_l")
    page.get_by_label("Question").fill(question)
    shot("02-raising-a-query")
    page.get_by_role("button", name="Raise a query").click()
    query = Query.objects.get()
    thread = page.locator(f"#query-{query.pk}")
    expect(thread.locator(".state")).to_have_text("open")
    expect(thread).to_contain_text("platelets_10e9_per_l")
    log_out(page)

    log_in(page, live_server.url, "carla")
    nav(page, "Queries to answer")
    row = page.locator("#queries tr", has_text=patient.subject_id)
    expect(row).to_contain_text("platelets_10e9_per_l")
    expect(row.get_by_role("link")).to_have_text(f"{patient.subject_id} sofa day 1")
    shot("03-coordinator-queries-to-answer")
    row.get_by_role("link").click()
    answer = "Yes: 1 unit of platelets at 06:10, sample at 07:00. Value confirmed in source."
    thread.get_by_label("Answer").fill(answer)
    thread.get_by_role("button", name="Answer").click()
    expect(thread.locator(".state")).to_have_text("answered")
    shot("04-answered")
    nav(page, "Queries to answer")
    expect(page.locator("#queries")).to_contain_text("No queries.")
    log_out(page)

    log_in(page, live_server.url, "dora")
    nav(page, "Queries")
    page.locator("#queries tr", has_text=patient.subject_id).get_by_role("link").first.click()
    thread.get_by_label("Closing note").fill("Explained by the transfusion.")
    thread.get_by_role("button", name="Close").click()
    expect(thread.locator(".state")).to_have_text("closed")
    steps = thread.locator("ol li")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("raise by dora")
    expect(steps.nth(0)).to_contain_text(question)
    expect(steps.nth(1)).to_contain_text("answer by carla")
    expect(steps.nth(1)).to_contain_text(answer)
    expect(steps.nth(2)).to_contain_text("close by dora")
    shot("05-closed-with-history")
    assert list(query.messages.order_by("at", "pk").values_list("action", "state_after")) == [
        ("raise", "open"), ("answer", "answered"), ("close", "closed")]
