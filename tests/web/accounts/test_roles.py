"""The three roles added for GCP practice, request by request (docs/permissions.md).

- The trial statistician stays blind: the closed (arm-level) report is refused; the
  unblinded statistician (``dmc_statistician``) generates it for the DMC.
- The sponsor oversees: the safety dashboard and a patient's adverse events open, and it
  records its own expedited report to the regulator; it never edits a casebook form,
  reports an adverse event or randomizes, on the pages or through the API.
- The ICU data feed is a machine account (``integration``): refused at the web sign-in
  even with the right password, while its token posts FHIR to ``/api/fhir``; an
  administrator's token no longer may.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from tests.web.conftest import eligible_record, member
from trialdesk.randomization import generate_list
from trialdesk.web.accounts.models import AccessEvent
from trialdesk.web.accounts.services import create_user
from trialdesk.web.api.services import create_token
from trialdesk.web.prescreen.models import PrescreenPatient
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import import_list, randomize
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.screening.services import create_screening, record_consent

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery 1"
API_ONLY = "system account for the ICU data feed"


def signed_in(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def api(user) -> Client:
    return Client(HTTP_HOST="localhost",
                  headers={"Authorization": f"Bearer {create_token(user, 'tests')[1]}"})


def person(django_user_model, username: str, role: str, site=None):
    return member(django_user_model.objects.create_user(username, password=PASSWORD), role,
                  site)


# --- blinded and unblinded statistics ------------------------------------------------------


def test_the_trial_statistician_cannot_open_the_closed_report(rumcess, django_user_model):
    stan = signed_in(person(django_user_model, "stan", "statistician"))
    assert stan.get(reverse("reports:index")).status_code == 200  # the open report: yes
    assert stan.post(reverse("reports:generate_closed")).status_code == 403
    assert stan.get(reverse("reports:closed_html")).status_code == 403
    assert stan.get(reverse("reports:closed_pdf")).status_code == 403


def test_the_unblinded_statistician_can_generate_the_closed_report(rumcess, django_user_model):
    ursula = signed_in(person(django_user_model, "ursula", "dmc_statistician"))
    index = ursula.get(reverse("reports:index")).content.decode()
    assert 'id="generate-closed"' in index
    # allowed: with no patient randomized yet the answer is a message, not a refusal
    response = ursula.post(reverse("reports:generate_closed"), follow=True)
    assert response.status_code == 200
    assert "no subjects randomized yet" in response.content.decode()


# --- the sponsor ---------------------------------------------------------------------------


@pytest.fixture
def trial(rumcess, nrch, alice, django_user_model):
    """A sealed list loaded by the unblinded statistician; Alice (coordinator) randomizes
    one patient and has a second one consented and waiting; the first has a serious
    adverse event the site has already reported to the sponsor."""
    member(alice, "coordinator", nrch)
    keeper = person(django_user_model, "ursula", "dmc_statistician")
    alist = generate_list(rumcess, seed="roles-tests", size_per_stratum=8)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=keeper)
    now = dt.datetime.now(dt.UTC)

    def consented():
        screening = create_screening(rumcess, nrch, alice, eligible_record(
            now - dt.timedelta(hours=2))).screening
        record_consent(rumcess, screening, alice, consent_type="patient",
                       document_version="1.0", obtained_at=now - dt.timedelta(hours=1),
                       obtained_by="Dr Petrova")
        return screening

    allocation = randomize(consented().pk, user=alice, request_id="roles-1",
                           protocol=rumcess).allocation
    waiting = consented()
    ae = AdverseEvent.objects.create(
        allocation=allocation, term="Hypotension during infusion",
        onset_at=now - dt.timedelta(minutes=50), awareness_at=now - dt.timedelta(minutes=40),
        reported_to_sponsor_at=now - dt.timedelta(minutes=30),
        seriousness=["life_threatening"], severity_grade=4, causality="probable",
        expectedness="unexpected", outcome="recovering", serious=True, created_by=alice)
    return allocation, waiting, ae


def test_the_sponsor_sees_the_safety_dashboard_and_the_adverse_events(trial,
                                                                     django_user_model):
    allocation, _, ae = trial
    sponsor = signed_in(person(django_user_model, "sam", "sponsor"))
    dashboard = sponsor.get(reverse("safety:dashboard"))
    assert dashboard.status_code == 200
    assert allocation.subject_id in dashboard.content.decode()
    assert sponsor.get(reverse("safety:event", kwargs={"ae_id": ae.pk})).status_code == 200
    assert sponsor.get(reverse("casebook:deviations")).status_code == 200
    assert sponsor.get(reverse("exports:index")).status_code == 200  # the whole record


def test_the_sponsor_cannot_edit_a_form_report_an_adverse_event_or_randomize(
        trial, rumcess, django_user_model):
    allocation, waiting, _ = trial
    sam = person(django_user_model, "sam", "sponsor")
    subject = {"subject_id": allocation.subject_id}
    form = {**subject, "form_id": "sofa", "day": "0"}
    pages = signed_in(sam)
    refused = {
        "casebook form": pages.get(reverse("casebook:form", kwargs=form)),
        "casebook form saved": pages.post(reverse("casebook:form", kwargs=form), {}),
        "new adverse event": pages.get(reverse("safety:new_event", kwargs=subject)),
        "randomize": pages.post(reverse("screening:randomize", kwargs={"pk": waiting.pk}),
                                {"request_id": "sponsor"}),
        "casebook (patient data)": pages.get(reverse("casebook:detail", kwargs=subject)),
        "screening log": pages.get(reverse("screening:dashboard")),
    }
    token = api(sam)
    now = dt.datetime.now(dt.UTC)
    refused |= {
        "API form save": token.put(reverse("api:casebook_form_save", kwargs=form),
                                   data=json.dumps({"data": {}, "reason": "sponsor"}),
                                   content_type="application/json"),
        "API adverse event": token.post(
            reverse("api:ae_create", kwargs=subject), content_type="application/json",
            data=json.dumps({"term": "Rash", "onset": (now - dt.timedelta(hours=1))
                             .isoformat(), "awareness": now.isoformat(),
                             "severity_grade": 1})),
        "API randomize": token.post(reverse("api:screening_randomize",
                                            kwargs={"screening_id": waiting.pk}),
                                    data=json.dumps({"request_id": "sponsor"}),
                                    content_type="application/json"),
    }
    assert {what: r.status_code for what, r in refused.items()} == {
        what: 403 for what in refused}
    assert Allocation.objects.count() == 1 and AdverseEvent.objects.count() == 1


def test_the_sponsor_records_its_expedited_report_to_the_regulator(trial, django_user_model):
    _, _, ae = trial
    sam = person(django_user_model, "sam", "sponsor")
    sent = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    response = api(sam).post(reverse("api:ae_regulator_report", kwargs={"ae_id": ae.pk}),
                             data=json.dumps({"reported_at": sent.isoformat()}),
                             content_type="application/json")
    assert response.status_code == 200, response.content
    ae.refresh_from_db()
    assert ae.reported_to_regulator_at == sent
    latest = ae.history.first()
    assert latest.history_user == sam  # audited as the sponsor's act


# --- the ICU data feed ---------------------------------------------------------------------


def _fhir_patient(pid: str) -> str:
    return json.dumps({"resourceType": "Patient", "id": pid, "birthDate": "1970-05-01",
                       "gender": "female",
                       "managingOrganization": {"reference": "Organization/nrch"}})


def _feed_post(client: Client, pid: str):
    return client.post("/api/fhir", data=_fhir_patient(pid),
                       content_type="application/fhir+json")


@override_settings(TRIALDESK_LOCKOUT_FAILURES=3)
def test_an_integration_account_cannot_log_in_but_its_token_posts_to_the_fhir_feed(nrch):
    feed = create_user("icu-feed", PASSWORD, role="integration", site_code="nrch")
    browser = Client(HTTP_HOST="localhost")
    for _ in range(4):  # the right password, refused each time, never locking the account
        page = browser.post("/accounts/login/", {"username": "icu-feed",
                                                 "password": PASSWORD})
        assert page.status_code == 200 and API_ONLY in page.content.decode()
    assert browser.get("/").status_code == 302  # not signed in: sent to the login page
    kinds = list(AccessEvent.objects.filter(username="icu-feed")
                 .values_list("kind", flat=True))
    assert kinds == ["api_only_refused"] * 4
    response = _feed_post(api(feed), "icu-21")
    assert response.status_code == 200, response.content
    assert PrescreenPatient.objects.filter(patient_id="icu-21", site=nrch).exists()


def test_a_wrong_password_on_an_integration_account_is_an_ordinary_failure(nrch):
    create_user("icu-feed", PASSWORD, role="integration", site_code="nrch")
    page = Client(HTTP_HOST="localhost").post("/accounts/login/", {
        "username": "icu-feed", "password": "wrong password"})
    assert API_ONLY not in page.content.decode()  # says nothing about the account
    assert list(AccessEvent.objects.values_list("kind", flat=True)) == ["login_failed"]


def test_a_person_who_also_holds_the_integration_role_signs_in(nrch, alice):
    member(alice, "integration", nrch)
    member(alice, "coordinator", nrch)
    client = Client(HTTP_HOST="localhost")
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert client.get("/").status_code == 200


def test_an_administrator_token_can_no_longer_post_to_the_fhir_feed(nrch, django_user_model):
    admin = person(django_user_model, "ada", "administrator")
    response = _feed_post(api(admin), "icu-22")
    assert response.status_code == 403
    assert not PrescreenPatient.objects.exists()


def test_the_demo_feed_account_works_by_its_token_and_the_list_is_the_unblinded_one(
        rumcess, settings):
    from trialdesk.web.demo import setup_demo
    from trialdesk.web.randomization.models import RandomizationList

    settings.DEMO = True
    report = setup_demo(rumcess)
    feed = Client(HTTP_HOST="localhost",
                  headers={"Authorization": f"Bearer {report.tokens['integration']}"})
    assert _feed_post(feed, "icu-demo").status_code == 200
    assert PrescreenPatient.objects.filter(patient_id="icu-demo").exists()
    assert not Client(HTTP_HOST="localhost").login(username="integration", password="")
    assert {r.imported_by.username for r in RandomizationList.objects.all()} == {
        "dmcstatistician"}
