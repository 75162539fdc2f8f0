"""FHIR R4 messages posted to /api/fhir, through the real database, into the patient's state.

Expectations come from the RUMCESS protocol (SSC 2012 onset = vasopressor start after
SBP < 90 or MAP < 70 mmHg in the 6 h before; ANC ≤ 1 × 10^9/L; deadline onset + 10 h;
age 17–75) and the FHIR rules of docs/prescreen.md, worked out by hand per test.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.prescreen.fhir_builders import transaction
from tests.web.conftest import member
from tests.web.prescreen.conftest import feed_for, iso
from trialdesk.web.audit.chain import verify_chain
from trialdesk.web.prescreen.models import (
    EventState,
    FhirMessage,
    IngestedEvent,
    PrescreenPatient,
)
from trialdesk.web.sites.models import Site

pytestmark = pytest.mark.django_db


def state(pid: str) -> PrescreenPatient:
    return PrescreenPatient.objects.get(patient_id=pid)


def test_sequence_of_single_resources_makes_a_candidate(feed, shock):
    first = feed.post(shock.patient())
    assert first.status_code == 200, first.content
    assert first.json()["resourceType"] == "OperationOutcome"
    for resource in (shock.map(), shock.pressor()):
        assert feed.post(resource).status_code == 200
    # shock onset known, no neutrophil count yet: possible, clock running
    p = state(shock.pid)
    assert p.status == "possible"
    assert p.onset_utc == shock.onset
    assert p.deadline_utc == shock.onset + dt.timedelta(hours=10)
    body = feed.post(shock.anc()).json()
    assert body["counts"]["values_added"] == 1
    assert body["patients"] == [{
        "patient_id": shock.pid, "site": "nrch", "status": "candidate",
        "onset_at": shock.onset.isoformat(),
        "deadline_at": (shock.onset + dt.timedelta(hours=10)).isoformat(),
        "detectable_at": shock.onset.isoformat()}]
    p = state(shock.pid)
    assert p.status == "candidate"
    assert {c["id"]: c["status"] for c in p.reasons} == {
        "shock_onset": "met", "window": "met", "neutropenia": "met", "age:I4": "met",
        "age:E3": "met"}
    neutro = next(c for c in p.reasons if c["id"] == "neutropenia")
    # 600 cells/µL is 0.6 × 10^9/L
    assert neutro["data_used"][0]["value"] == pytest.approx(0.6)
    assert neutro["data_used"][0]["source"] == f"Observation/{shock.pid}-anc"


def test_each_value_is_stored_with_its_source_and_receipt_time(feed, shock):
    feed.post(shock.map())
    row = IngestedEvent.objects.get()
    assert (row.resource_type, row.resource_id, row.source) == (
        "Observation", f"{shock.pid}-map", f"Observation/{shock.pid}-map")
    assert (row.kind, row.value, row.unit) == ("map", 62.0, "mmHg")
    assert row.at_utc == shock.onset - dt.timedelta(minutes=30)
    assert row.received_at == row.message.received_at
    assert row.received_at.utcoffset() == dt.timedelta(0)
    assert row.state == EventState.ACTIVE
    assert row.history.count() == 1


def test_a_transaction_bundle_is_taken_whole(feed, shock):
    encounter = {"resourceType": "Encounter", "id": "enc-1", "status": "in-progress",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                           "code": "IMP"},
                 "subject": {"reference": f"Patient/{shock.pid}"},
                 "serviceProvider": {"reference": "Organization/nrch"},
                 "period": {"start": iso(shock.onset - dt.timedelta(hours=12))}}
    response = feed.post(transaction(*shock.all(), encounter))
    assert response.status_code == 200, response.content
    counts = response.json()["counts"]
    assert counts["resources"] == 6  # the Bundle and five entries
    assert counts["values_received"] == counts["values_added"] == 3
    assert state(shock.pid).status == "candidate"


def test_order_of_arrival_does_not_matter(feed, shock, now):
    from tests.web.prescreen.conftest import Shock

    other = Shock("icu-18", shock.onset)
    for resource in (shock.anc(), shock.pressor(), shock.patient(), shock.map()):
        feed.post(resource)
    for resource in other.all():
        feed.post(resource)
    a, b = state(shock.pid), state(other.pid)
    assert (a.status, a.onset_utc, a.deadline_utc) == (b.status, b.onset_utc, b.deadline_utc)
    assert a.status == "candidate"
    assert json.dumps(a.reasons) == json.dumps(b.reasons).replace("icu-18", "icu-17")


def test_a_duplicate_message_changes_nothing(feed, shock):
    for resource in shock.all():
        feed.post(resource)
    before = state(shock.pid)
    history = before.history.count()
    body = feed.post(shock.anc()).json()
    assert body["counts"]["duplicates"] == 1 and body["counts"]["values_added"] == 0
    after = state(shock.pid)
    assert (after.status, after.reasons) == (before.status, before.reasons)
    assert after.history.count() == history  # no new audit row: nothing changed
    rows = IngestedEvent.objects.filter(source=f"Observation/{shock.pid}-anc")
    assert [r.state for r in rows] == [EventState.ACTIVE, EventState.DUPLICATE]


def test_a_corrected_result_replaces_the_old_one_and_a_late_old_version_is_ignored(feed, shock):
    feed.post(shock.patient())
    feed.post(shock.map())
    feed.post(shock.pressor())
    feed.post(shock.anc(600, updated="2026-01-01T10:00:00Z"))
    assert state(shock.pid).status == "candidate"
    # the lab corrects the count to 1500 cells/µL = 1.5 × 10^9/L > 1: not neutropenic
    body = feed.post(shock.anc(1500, updated="2026-01-01T11:00:00Z")).json()
    assert body["counts"]["replaced"] == 1
    assert state(shock.pid).status == "no"
    # the first version arrives again, late (a retry): older than what we have, ignored
    body = feed.post(shock.anc(600, updated="2026-01-01T10:00:00Z")).json()
    assert body["counts"]["stale"] == 1
    assert state(shock.pid).status == "no"
    rows = IngestedEvent.objects.filter(source=f"Observation/{shock.pid}-anc")
    assert [r.state for r in rows] == [EventState.SUPERSEDED, EventState.ACTIVE,
                                       EventState.STALE]


def test_entered_in_error_withdraws_the_value_without_deleting_it(feed, shock):
    for resource in shock.all():
        feed.post(resource)
    body = feed.post(shock.anc(status="entered-in-error")).json()
    assert body["counts"]["retracted"] == 1
    p = state(shock.pid)
    assert p.status == "possible"  # no neutrophil count any more: undecided
    assert IngestedEvent.objects.get(source=f"Observation/{shock.pid}-anc").state == \
        EventState.RETRACTED


def test_unknown_codes_and_units_are_reported_not_used(feed, shock):
    heart_rate = {**shock.map(), "id": "hr-1",
                  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}}
    body = feed.post(transaction(heart_rate, shock.anc(0.6, "g/dL"))).json()
    assert body["counts"]["values_received"] == 0
    assert body["report"]["unknown_codes"] == {"loinc:8867-4": 1}
    assert body["report"]["unknown_units"] == {"anc:g/dL": 1}
    assert {i["severity"] for i in body["issue"]} == {"warning"}
    assert FhirMessage.objects.get().outcome == "accepted"  # kept, with its report


def test_an_invalid_resource_is_refused_and_nothing_is_lost(feed, shock):
    for resource in shock.all():
        feed.post(resource)
    before = state(shock.pid)
    events = IngestedEvent.objects.count()
    bad = shock.map(55.0)
    bad["effectiveDateTime"] = "2026-03-01T08:00:00"  # a time without a UTC offset
    response = feed.post(transaction(bad, {**shock.anc(1500), "id": "another-anc"}))
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "INGEST_INVALID"
    assert "not valid FHIR R4" in body["error"]["message"]
    assert "entry.0.resource" in body["error"]["message"]  # where the problem is
    assert "2026-03-01T08:00:00" in body["error"]["message"]
    assert body["issue"][0]["severity"] == "error"
    # nothing of the bundle is used, not even its valid entry; the message is kept
    assert IngestedEvent.objects.count() == events
    after = state(shock.pid)
    assert (after.status, after.reasons) == (before.status, before.reasons)
    rejected = FhirMessage.objects.get(outcome="rejected")
    assert json.loads(rejected.content)["entry"][0]["resource"]["effectiveDateTime"] == \
        "2026-03-01T08:00:00"


def test_a_body_that_is_not_json_is_refused(feed):
    response = feed.post(None, raw=b"{not json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INGEST_INVALID"
    assert FhirMessage.objects.get().content == "{not json"


def test_an_organization_that_is_not_a_site_is_refused(feed, shock):
    person = {**shock.patient(), "managingOrganization": {"reference": "Organization/xyz"}}
    response = feed.post(person)
    assert response.status_code == 422
    assert "Organization 'xyz' is not a trial site" in response.json()["error"]["message"]
    assert not PrescreenPatient.objects.exists()


def test_site_comes_from_the_encounter_then_the_parameter_then_the_protocol(
        feed, shock, nrch, django_user_model):
    berlin = Site.objects.create(code="berlin", name="Berlin ICU", timezone="Europe/Berlin")
    network = member(django_user_model.objects.create_user("network-feed"), "integration")
    trial_feed = feed_for(network)  # trial-wide: may feed every site
    trial_feed.post({**shock.patient(), "id": "a",
                     "managingOrganization": {"display": "Berlin ICU"}})
    trial_feed.post(shock.map() | {"subject": {"reference": "Patient/b"}}, site="berlin")
    trial_feed.post(shock.map() | {"subject": {"reference": "Patient/c"}})
    # a later message without an organization keeps the patient's site
    trial_feed.post(shock.pressor() | {"subject": {"reference": "Patient/a"}})
    assert {p.patient_id: p.site.code for p in PrescreenPatient.objects.all()} == {
        "a": "berlin", "b": "berlin", "c": "nrch"}
    assert berlin.pk  # the site exists only in this test


def test_the_feed_may_only_send_data_of_its_own_site(feed, shock):
    Site.objects.create(code="berlin", name="Berlin ICU", timezone="Europe/Berlin")
    response = feed.post({**shock.patient(),
                          "managingOrganization": {"reference": "Organization/berlin"}})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "PERMISSION_DENIED"
    assert not FhirMessage.objects.exists() and not PrescreenPatient.objects.exists()


def test_site_staff_tokens_cannot_feed_data(nrch, django_user_model, shock):
    coordinator = feed_for(member(django_user_model.objects.create_user("carol"),
                                  "coordinator", nrch))
    assert coordinator.post(shock.map()).status_code == 403
    assert not FhirMessage.objects.exists()


def test_every_change_is_audited_in_the_hash_chain(feed, shock):
    for resource in shock.all():
        feed.post(resource)
    feed.post(shock.anc(status="entered-in-error"))
    p = state(shock.pid)
    reasons = [h.history_change_reason for h in p.history.order_by("history_id")]
    assert reasons[0].startswith("first message for the patient")
    assert reasons[-1].endswith(": possible")
    assert verify_chain().ok
    with pytest.raises(PermissionError):
        IngestedEvent.objects.first().delete()


@pytest.mark.django_db(transaction=True)
def test_first_messages_for_one_new_patient_arriving_together_all_succeed(feed, shock):
    """Four parts of a new patient's record posted at the same instant: each is stored, the
    patient exists once, and the state uses all of them (none is refused or lost)."""
    import threading

    from django.db import connections

    resources = shock.all()
    barrier = threading.Barrier(len(resources))
    statuses: list[int] = []

    def post(resource) -> None:
        try:
            barrier.wait(timeout=30)
            statuses.append(feed.post(resource).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(r,)) for r in resources]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert statuses == [200] * len(resources)
    assert PrescreenPatient.objects.filter(patient_id=shock.pid).count() == 1
    assert FhirMessage.objects.count() == len(resources)
    assert state(shock.pid).status == "candidate"
