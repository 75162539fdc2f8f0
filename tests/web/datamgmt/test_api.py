"""Adverse events and queries through the JSON API: same services, same refusals."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from trialdesk.clinical.timeutil import utcnow
from trialdesk.web.api.services import create_token
from trialdesk.web.datamgmt.locks import lock_patient

pytestmark = pytest.mark.django_db


def api(user):
    token = create_token(user, "test")[1]
    client = Client(HTTP_HOST="localhost", headers={"Authorization": f"Bearer {token}"})

    def call(method, path, body=None):
        response = client.generic(method, "/api" + path, data=json.dumps(body or {}),
                                  content_type="application/json")
        return response.status_code, response.json()
    return call


def ae_body(**changes):
    now = utcnow()
    body = {"term": "Acute liver failure", "onset": (now - dt.timedelta(hours=31)).isoformat(),
            "awareness": (now - dt.timedelta(hours=30)).isoformat(),
            "seriousness": ["life_threatening"], "severity_grade": 4, "causality": "possible",
            "expectedness": "unexpected", "outcome": "recovering"}
    body.update(changes)
    return body


def test_an_overdue_susar_reported_through_the_api(patient, ivan, dora):
    status, ae = api(ivan)("POST", f"/allocations/{patient.subject_id}/adverse-events",
                           ae_body())
    assert status == 201 and ae["category"] == "SUSAR"
    sae, susar = ae["obligations"]
    assert sae["kind"] == "sae_to_sponsor" and sae["status"] == "overdue"
    assert sae["seconds_left"] < 0
    assert susar["status"] == "due" and "site awareness" in susar["clock_start_basis"]
    status, owed = api(dora)("GET", "/safety/obligations")
    assert status == 200 and owed[0]["status"] == "overdue" and owed[0]["ae_id"] == ae["id"]


def test_naive_time_and_missing_reason_are_refused(patient, ivan):
    call = api(ivan)
    status, body = call("POST", f"/allocations/{patient.subject_id}/adverse-events",
                        ae_body(onset="2026-03-01T10:00:00"))
    assert status == 422 and body["error"]["code"] == "TIMEZONE_REQUIRED"
    _, ae = call("POST", f"/allocations/{patient.subject_id}/adverse-events", ae_body())
    status, body = call("PUT", f"/adverse-events/{ae['id']}", {**ae_body(), "reason": ""})
    assert status == 422 and body["error"]["field"] == "reason"


def test_query_round_trip_and_refusals(patient, ivan, alice, dora):
    _, ae = api(ivan)("POST", f"/allocations/{patient.subject_id}/adverse-events", ae_body())
    dm, site = api(dora), api(alice)
    status, q = dm("POST", "/queries", {"target": "safety.adverseevent",
                                        "object_id": ae["id"], "field": "causality",
                                        "text": "Causality 'possible': on what basis?"})
    assert status == 201 and q["state"] == "open"
    status, body = dm("POST", f"/queries/{q['id']}/close", {"text": "premature"})
    assert status == 409 and body["error"]["code"] == "QUERY_TRANSITION_REFUSED"
    status, _ = site("POST", f"/queries/{q['id']}/close", {"text": "x"})
    assert status == 403
    status, q = site("POST", f"/queries/{q['id']}/answer", {"text": "Temporal relation."})
    assert status == 200 and q["state"] == "answered"
    status, q = dm("POST", f"/queries/{q['id']}/close", {"text": "Accepted."})
    assert [m["action"] for m in q["messages"]] == ["raise", "answer", "close"]
    q2 = dm("POST", "/queries", {"target": "safety.adverseevent", "object_id": ae["id"],
                                 "text": "Outcome?"})[1]
    lock_patient(patient, dora, reason="clean")
    status, body = site("POST", f"/queries/{q2['id']}/answer", {"text": "Recovered."})
    assert status == 409 and body["error"]["code"] == "RECORD_LOCKED"
