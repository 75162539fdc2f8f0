"""Queries, source-data verification, signatures and locks on the real database.

The target record is an adverse event (any record with an ``allocation`` works the same
way through contenttypes).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from tests.web.datamgmt.conftest import PASSWORD
from trialdesk.clinical.timeutil import utcnow
from trialdesk.errors import InputRejected, QueryTransitionRefused, RecordLocked
from trialdesk.web.audit.chain import verify_chain
from trialdesk.web.audit.models import ChainLink
from trialdesk.web.datamgmt import locks
from trialdesk.web.datamgmt.models import DataLock, Query, Signature, SignatureRefusal
from trialdesk.web.datamgmt.services import (
    answer_query,
    close_query,
    mark_sdv,
    raise_query,
    reopen_query,
    sdv_of,
    sign,
    signatures_of,
)
from trialdesk.web.safety.services import report_ae, update_ae

pytestmark = pytest.mark.django_db


def entry(**changes):
    now = utcnow()
    e = {"term": "Fever after infusion", "onset": (now - dt.timedelta(hours=3)).isoformat(),
         "awareness": (now - dt.timedelta(hours=2)).isoformat(), "severity_grade": 2,
         "causality": "possible", "expectedness": "expected", "outcome": "recovering"}
    e.update(changes)
    return e


@pytest.fixture
def ae(patient, ivan, rumcess):
    return report_ae(patient, ivan, entry(), protocol=rumcess)


def client_for(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def record_url(ae) -> str:
    return f"/data/record/safety.adverseevent/{ae.pk}/"


# --- queries ----------------------------------------------------------------------------------


def test_query_open_answered_closed_with_its_history(ae, dora, alice):
    q = raise_query(ae, dora, text="Grade 2 fever: what was the maximum temperature?",
                    field="severity_grade")
    assert q.state == "open" and q.allocation == ae.allocation
    q = answer_query(q, alice, text="39.1 °C at 14:00, grade 2 confirmed from the ICU chart.")
    assert q.state == "answered"
    q = close_query(q, dora, text="Verified.")
    assert q.state == "closed"
    thread = list(q.messages.values_list("action", "state_after", "author__username"))
    assert thread == [("raise", "open", "dora"), ("answer", "answered", "alice"),
                      ("close", "closed", "dora")]
    history = list(q.history.order_by("history_date").values_list("state", "history_user__"
                                                                  "username"))
    assert history == [("open", "dora"), ("answered", "alice"), ("closed", "dora")]
    assert ChainLink.objects.filter(history_model="datamgmt.HistoricalQuery").count() == 3
    assert verify_chain().ok


def test_a_closed_query_is_final_until_a_reviewer_reopens_it(ae, dora, alice, monty):
    q = raise_query(ae, dora, text="Onset time?")
    q = answer_query(q, alice, text="Onset 10:00, as entered.")
    q = close_query(q, dora, text="OK.")
    with pytest.raises(QueryTransitionRefused, match="closed"):
        answer_query(q, alice, text="One more thing.")
    q = reopen_query(q, monty, text="Source shows 09:30.")
    q = answer_query(q, alice, text="Corrected to 09:30.")
    assert q.state == "answered"


def test_a_query_on_a_field_the_record_does_not_have_is_refused(ae, dora):
    with pytest.raises(InputRejected) as exc:
        raise_query(ae, dora, text="?", field="temperature_c")
    assert exc.value.field == "field"
    assert not Query.objects.exists()


def test_query_pages_data_manager_raises_coordinator_answers(ae, dora, alice):
    dm, site = client_for(dora), client_for(alice)
    assert dm.post(record_url(ae) + "query/", {"field": "outcome",
                                               "text": "Outcome at day 7?"}).status_code == 302
    q = Query.objects.get()
    to_answer = site.get("/data/queries/to-answer/").content.decode()
    assert ae.allocation.subject_id in to_answer and "outcome" in to_answer
    assert site.post(f"/data/query/{q.pk}/answer/", {"text": "Recovered on day 5."}) \
        .status_code == 302
    assert ae.allocation.subject_id not in site.get("/data/queries/to-answer/") \
        .content.decode()
    # the site cannot close; the data manager can
    assert site.post(f"/data/query/{q.pk}/close/", {"text": "done"}).status_code == 403
    dm.post(f"/data/query/{q.pk}/close/", {"text": "Verified against the chart."})
    q.refresh_from_db()
    assert q.state == "closed"
    thread = dm.get(record_url(ae)).content.decode()
    assert "Recovered on day 5." in thread and "Verified against the chart." in thread
    assert "closed" in dm.get("/data/queries/").content.decode()


# --- locks ------------------------------------------------------------------------------------


def test_a_locked_patient_refuses_query_answers(ae, dora, alice):
    q = raise_query(ae, dora, text="Onset time?")
    locks.lock_patient(ae.allocation, dora, reason="patient data clean")
    with pytest.raises(RecordLocked):
        answer_query(q, alice, text="10:00")
    client_for(alice).post(f"/data/query/{q.pk}/answer/", {"text": "10:00"})
    q.refresh_from_db()
    assert q.state == "open"


def test_a_trial_lock_stops_every_patient(patient, dora):
    locks.lock_trial(dora, reason="final database lock")
    with pytest.raises(RecordLocked, match="trial database is locked"):
        locks.assert_unlocked(patient)


def test_unlock_needs_a_reason_and_is_in_the_audit_trail(patient, dora):
    locks.assert_unlocked(patient)
    locks.lock_patient(patient, dora, reason="casebook complete")
    with pytest.raises(InputRejected) as exc:
        locks.unlock_patient(patient, dora, reason="  ")
    assert exc.value.field == "reason"
    with pytest.raises(RecordLocked):
        locks.assert_unlocked(patient)
    locks.unlock_patient(patient, dora, reason="query on day-3 SOFA needs a correction")
    locks.assert_unlocked(patient)
    row = DataLock.objects.get(allocation=patient)
    trail = list(row.history.order_by("history_date").values_list(
        "locked", "history_user__username", "history_change_reason"))
    assert trail == [(True, "dora", "locked: casebook complete"),
                     (False, "dora", "unlocked: query on day-3 SOFA needs a correction")]
    assert ChainLink.objects.filter(history_model="datamgmt.HistoricalDataLock").count() == 2


def test_unlocking_what_is_not_locked_is_refused(patient, dora):
    with pytest.raises(InputRejected, match="already unlocked"):
        locks.unlock_patient(patient, dora, reason="by mistake")
    assert not DataLock.objects.exists()


def test_lock_page_only_for_the_data_manager_and_needs_a_reason(patient, dora, ivan):
    url = f"/data/patient/{patient.subject_id}/lock/"
    assert client_for(ivan).post(url, {"locked": "1", "reason": "x"}).status_code == 403
    page = client_for(dora).post(url, {"locked": "1", "reason": ""})
    assert "Give a reason" in page.content.decode()
    assert not locks.lock_state(patient).locked
    client_for(dora).post(url, {"locked": "1", "reason": "casebook complete"})
    assert locks.lock_state(patient).patient_locked
    assert "locked: casebook complete" in client_for(dora).get(url).content.decode()


# --- source-data verification ------------------------------------------------------------------


def test_monitor_marks_sdv_and_a_later_change_shows(ae, monty, ivan, alice, rumcess):
    assert client_for(alice).post(record_url(ae) + "sdv/").status_code == 403
    client_for(monty).post(record_url(ae) + "sdv/", {"verified": "1"})
    assert sdv_of(ae).verified and not sdv_of(ae).changed_since(ae)
    update_ae(ae, ivan, entry(outcome="recovered"), reason="follow-up", protocol=rumcess)
    ae.refresh_from_db()
    assert sdv_of(ae).changed_since(ae)
    assert "changed after verification" in client_for(monty).get(record_url(ae)) \
        .content.decode()
    with pytest.raises(InputRejected):
        mark_sdv(ae, monty, verified=False, note="")


# --- signatures -------------------------------------------------------------------------------


def test_a_signature_with_a_wrong_password_is_refused_and_audited(ae, ivan):
    response = client_for(ivan).post(record_url(ae) + "sign/",
                                     {"password": "wrong", "meaning": "responsibility"})
    assert response.status_code == 422
    assert "SIGNATURE_REFUSED" in response.content.decode()
    assert not Signature.objects.exists()
    refusal = SignatureRefusal.objects.get()
    assert refusal.user == ivan and refusal.reason == "wrong password"
    assert refusal.object_id == ae.pk
    assert ChainLink.objects.filter(history_model="datamgmt.HistoricalSignatureRefusal") \
        .count() == 1


def test_signature_records_printed_name_time_meaning_and_digest(ae, ivan):
    before = utcnow()
    s = sign(ae, ivan, password=PASSWORD, meaning="responsibility")
    assert (s.printed_name, s.meaning, s.signer) == ("Ivan Petrov", "responsibility", ivan)
    assert before <= s.signed_at <= utcnow()
    assert len(s.digest) == 64
    page = client_for(ivan).get(record_url(ae)).content.decode()
    assert "Signed by Ivan Petrov" in page and "responsibility" in page
    assert "INVALIDATED" not in page


def test_editing_a_signed_record_shows_the_signature_invalidated(ae, ivan, rumcess):
    sign(ae, ivan, password=PASSWORD, meaning="approval")
    assert [v.valid for v in signatures_of(ae)] == [True]
    update_ae(ae, ivan, entry(severity_grade=3), reason="grade corrected after query",
              protocol=rumcess)
    ae.refresh_from_db()
    assert [v.valid for v in signatures_of(ae)] == [False]
    page = client_for(ivan).get(f"/safety/ae/{ae.pk}/").content.decode()
    assert "INVALIDATED" in page


def test_only_the_investigator_may_sign(ae, alice, dora):
    for user in (alice, dora):
        assert client_for(user).post(record_url(ae) + "sign/", {
            "password": PASSWORD, "meaning": "review"}).status_code == 403
    assert not Signature.objects.exists()


def test_casebook_signature_covers_every_record_of_the_patient(ae, patient, ivan, rumcess):
    response = client_for(ivan).post(f"/data/patient/{patient.subject_id}/sign/",
                                     {"password": PASSWORD, "meaning": "responsibility"})
    assert response.status_code == 302
    assert [v.valid for v in signatures_of(patient)] == [True]
    report_ae(patient, ivan, entry(term="Rash"), protocol=rumcess)  # a new record
    assert [v.valid for v in signatures_of(patient)] == [False]


def test_an_unknown_meaning_is_refused(ae, ivan):
    from trialdesk.errors import SignatureRefused

    with pytest.raises(SignatureRefused) as exc:
        sign(ae, ivan, password=PASSWORD, meaning="witness")
    assert exc.value.field == "meaning"
