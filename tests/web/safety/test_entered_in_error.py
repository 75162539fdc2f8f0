"""An adverse event reported by mistake is marked entered in error: kept, audited with the
reason, gone from the patient's list, the safety obligations and the analysis export,
shown on the 'entered in error' view, and final.

Reference: a serious, probably related, unexpected event is a SUSAR (ICH E2A); it owes
the sponsor a report within 24 h of awareness and, life-threatening, the regulators one
within 7 days (docs/conventions.md), so a SUSAR made aware 2 h ago shows both as 'due' on
the dashboard until it is retired.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from trialdesk.clinical.timeutil import utcnow
from trialdesk.errors import InputRejected, RecordLocked
from trialdesk.web.api.services import create_token
from trialdesk.web.datamgmt.locks import lock_patient, lock_trial
from trialdesk.web.datamgmt.services import sign, signatures_of
from trialdesk.web.reports.export import export_tables
from trialdesk.web.safety.services import (
    dashboard_rows,
    mark_ae_entered_in_error,
    record_report,
    report_ae,
    update_ae,
)

pytestmark = pytest.mark.django_db

REASON = "duplicate of the event reported by the night shift"
PASSWORD = "correct horse battery 1"


def sae_entry(**changes):
    now = utcnow()
    entry = {"term": "Anaphylactoid infusion reaction",
             "onset": (now - dt.timedelta(hours=3)).isoformat(),
             "awareness": (now - dt.timedelta(hours=2)).isoformat(),
             "seriousness": ["life_threatening"], "severity_grade": 4, "causality": "probable",
             "expectedness": "unexpected", "outcome": "recovering"}
    entry.update(changes)
    return entry


def client_for(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


@pytest.fixture
def sae(patient, ivan, rumcess):
    return report_ae(patient, ivan, sae_entry(), protocol=rumcess)


def test_marking_keeps_the_event_with_the_reason_in_its_history(sae, ivan):
    response = client_for(ivan).post(f"/safety/ae/{sae.pk}/entered-in-error/",
                                     {"reason": REASON})
    assert response.status_code == 302
    assert response["Location"] == f"/safety/patient/{sae.allocation.subject_id}/"
    sae.refresh_from_db()
    assert sae.entered_in_error and sae.entered_in_error_reason == REASON
    assert sae.term == "Anaphylactoid infusion reaction" and sae.serious
    trail = list(sae.history.order_by("history_id").values_list(
        "history_user__username", "history_change_reason", "entered_in_error"))
    assert trail == [("ivan", "adverse event reported", False),
                     ("ivan", f"entered in error: {REASON}", True)]
    page = client_for(ivan).get(f"/safety/ae/{sae.pk}/").content.decode()
    assert 'id="entered-in-error"' in page and f"entered in error: {REASON}" in page


def test_it_leaves_the_list_the_obligations_and_the_export(sae, patient, ivan, dora,
                                                           rumcess):
    from trialdesk.web.safety.models import AdverseEvent

    other = report_ae(patient, ivan, sae_entry(term="Febrile neutropenia, grade 3",
                                               seriousness=[], severity_grade=3),
                      protocol=rumcess)
    events = AdverseEvent.objects.all()
    # the SUSAR owes the sponsor (24 h) and, life-threatening, the regulators (7 days)
    assert sorted((r.ae.pk, r.obligation.kind.value, r.obligation.status.value)
                  for r in dashboard_rows(events, rumcess)) == [
        (sae.pk, "sae_to_sponsor", "due"), (sae.pk, "susar_to_regulator", "due")]
    exported = {r["ae_id"] for r in export_tables(rumcess).tables["adverse_events"]}
    assert exported == {f"AE-{sae.pk}", f"AE-{other.pk}"}

    mark_ae_entered_in_error(sae, ivan, reason=REASON)
    assert dashboard_rows(AdverseEvent.objects.all(), rumcess) == []
    exported = {r["ae_id"] for r in export_tables(rumcess).tables["adverse_events"]}
    assert exported == {f"AE-{other.pk}"}
    url = f"/safety/patient/{patient.subject_id}/"
    listed = client_for(ivan).get(url).content.decode()
    assert "Febrile neutropenia" in listed and "Anaphylactoid" not in listed
    assert "Show entered in error (1)" in listed
    shown = client_for(ivan).get(url + "?show=entered_in_error").content.decode()
    assert "Anaphylactoid" in shown and REASON in shown and "Febrile" not in shown
    dashboard = client_for(dora).get("/safety/").content.decode()
    assert "Anaphylactoid" not in dashboard


def test_the_reason_is_required_and_the_mark_is_final(sae, ivan, rumcess):
    with pytest.raises(InputRejected) as exc:
        mark_ae_entered_in_error(sae, ivan, reason=" ")
    assert exc.value.field == "reason"
    sae.refresh_from_db()
    assert not sae.entered_in_error and sae.history.count() == 1
    mark_ae_entered_in_error(sae, ivan, reason=REASON)
    with pytest.raises(InputRejected, match="already marked"):
        mark_ae_entered_in_error(sae, ivan, reason="again")
    with pytest.raises(InputRejected, match="entered in error"):
        update_ae(sae, ivan, sae_entry(outcome="recovered"), reason="follow-up",
                  protocol=rumcess)
    with pytest.raises(InputRejected, match="entered in error"):
        record_report(sae, ivan, recipient="sponsor", reported_at=utcnow().isoformat())
    sae.refresh_from_db()
    assert sae.outcome == "recovering" and sae.reported_to_sponsor_at is None


@pytest.mark.parametrize("lock", ["patient", "trial"])
def test_a_locked_event_cannot_be_marked(sae, ivan, dora, lock):
    if lock == "patient":
        lock_patient(sae.allocation, dora, reason="casebook complete")
    else:
        lock_trial(dora, reason="final database lock")
    with pytest.raises(RecordLocked):
        mark_ae_entered_in_error(sae, ivan, reason=REASON)
    client_for(ivan).post(f"/safety/ae/{sae.pk}/entered-in-error/", {"reason": REASON})
    sae.refresh_from_db()
    assert not sae.entered_in_error


def test_marking_invalidates_a_signature_of_the_event_and_of_the_casebook(sae, ivan):
    sign(sae, ivan, password=PASSWORD, meaning="responsibility")
    sign(sae.allocation, ivan, password=PASSWORD, meaning="responsibility")
    mark_ae_entered_in_error(sae, ivan, reason=REASON)
    sae.refresh_from_db()
    assert [v.valid for v in signatures_of(sae)] == [False]
    assert [v.valid for v in signatures_of(sae.allocation)] == [False]


def test_the_api_marks_the_event_and_lists_it_only_on_request(sae, patient, ivan, dora,
                                                              client):
    token = {"Authorization": f"Bearer {create_token(ivan, 'test')[1]}"}
    url = f"/api/adverse-events/{sae.pk}/entered-in-error"
    dm = {"Authorization": f"Bearer {create_token(dora, 'test')[1]}"}
    assert client.post(url, {"reason": REASON}, content_type="application/json",
                       headers=dm).status_code == 403  # the data manager does not report
    response = client.post(url, {"reason": REASON}, content_type="application/json",
                           headers=token)
    assert response.status_code == 200
    body = response.json()
    assert (body["entered_in_error"], body["entered_in_error_reason"], body["obligations"]) \
        == (True, REASON, [])
    listing = f"/api/allocations/{patient.subject_id}/adverse-events"
    assert client.get(listing, headers=token).json() == []
    retired = client.get(listing + "?entered_in_error=true", headers=token).json()
    assert [e["id"] for e in retired] == [sae.pk]
    assert client.get("/api/safety/obligations", headers=dm).json() == []
