"""The JSON API as a client uses it: tokens, log a screening, read its eligibility and
clock, correct it with a reason, consent, randomize (once), read the allocation — and
the refusals, each with its stable code in one error shape."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client
from ninja.errors import AuthenticationError, ValidationError

from tests.web.conftest import eligible_record, make_screening, member
from trialdesk import errors as te
from trialdesk.randomization import generate_list
from trialdesk.web.api.api import api
from trialdesk.web.api.auth import PERMISSION_KEY
from trialdesk.web.api.errors import error_body
from trialdesk.web.api.models import ApiToken
from trialdesk.web.api.services import create_token, revoke_token
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import import_list
from trialdesk.web.screening.models import Screening, ScreeningStatus
from trialdesk.web.sites.models import Site

pytestmark = pytest.mark.django_db
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _ago(hours: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).isoformat()


def _client(plaintext: str | None) -> Client:
    headers = {"Authorization": f"Bearer {plaintext}"} if plaintext else {}
    return Client(HTTP_HOST="localhost", headers=headers)


class Api:
    """A JSON client for /api/ with one token."""

    def __init__(self, plaintext: str | None):
        self.client = _client(plaintext)

    def get(self, path: str, **params):
        return self.client.get(f"/api{path}", params)

    def post(self, path: str, body: dict | None = None):
        return self.client.post(f"/api{path}", body or {}, content_type="application/json")

    def put(self, path: str, body: dict):
        return self.client.put(f"/api{path}", body, content_type="application/json")


@pytest.fixture
def token(alice, nrch):
    member(alice, "coordinator", nrch)
    return create_token(alice, "bedside tablet")


@pytest.fixture
def api_client(token) -> Api:
    return Api(token[1])


@pytest.fixture
def sealed(rumcess, alice, nrch):
    alist = generate_list(rumcess, seed="api", size_per_stratum=8)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice)
    return alist


def _error(response, status: int, code: str, field: str | None = "-") -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "field", "message"}
    assert body["error"]["code"] == code, body
    if field != "-":
        assert body["error"]["field"] == field, body
    assert body["error"]["message"]
    return body["error"]


def _log(api_client: Api, **changes) -> dict:
    record = eligible_record(dt.datetime.now(dt.UTC) - dt.timedelta(hours=3), **changes)
    response = api_client.post("/screenings", {"site": "nrch", "record": record})
    assert response.status_code == 201, response.content
    return response.json()


# --- tokens ---------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_sha256(alice):
    token, plaintext = create_token(alice, "EHR bridge")
    assert plaintext.startswith("td_") and len(plaintext) > 40
    row = ApiToken.objects.get()
    assert row.key_sha256 == hashlib.sha256(plaintext.encode()).hexdigest()
    assert row.prefix == plaintext[:10] and plaintext[10:] not in str(vars(row))
    assert row.last_used_at is None and row.revoked_at is None
    with pytest.raises(PermissionError):
        token.delete()
    assert ApiToken.objects.count() == 1


def test_a_token_needs_a_name(alice):
    with pytest.raises(te.InputRejected) as exc:
        create_token(alice, "  ")
    assert exc.value.field == "name"


def test_using_a_token_records_when(token, api_client):
    assert api_client.get("/screenings").status_code == 200
    token[0].refresh_from_db()
    assert token[0].last_used_at is not None


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer td_not-a-real-token",
                                    "Basic YWxpY2U6c2VjcmV0", "td_no-scheme"])
def test_no_valid_token_is_401(token, header):
    client = Client(HTTP_HOST="localhost", headers={"Authorization": header} if header else {})
    response = client.get("/api/screenings")
    _error(response, 401, "NOT_AUTHENTICATED", None)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_is_401_at_once(token, api_client):
    assert api_client.get("/screenings").status_code == 200
    revoke_token(token[0])
    _error(api_client.get("/screenings"), 401, "NOT_AUTHENTICATED")
    assert ApiToken.objects.get().revoked_at is not None  # kept, not deleted


def test_an_inactive_users_token_is_401(token, api_client, alice):
    alice.is_active = False
    alice.save()
    _error(api_client.get("/screenings"), 401, "NOT_AUTHENTICATED")


def test_a_token_without_the_role_is_403_before_the_body_is_read(token, django_user_model):
    lab = django_user_model.objects.create_user("lena")
    member(lab, "lab", Site.objects.get(code="nrch"))
    lab_api = Api(create_token(lab, "lab")[1])
    _error(lab_api.get("/screenings"), 403, "PERMISSION_DENIED")
    _error(lab_api.post("/screenings", {"not": "a screening"}), 403, "PERMISSION_DENIED")


# --- screenings ------------------------------------------------------------------------


def test_log_a_screening_and_read_its_eligibility_and_clock(api_client, rumcess, alice):
    created = _log(api_client)
    assert created["screening_number"] == "S-NRCH-0001" and created["status"] == "open"
    assert created["created_by"] == "alice" and created["site"] == "nrch"
    assert created["record"]["neutrophils"] == {"value": 0.3, "unit": "10^9/L"}
    screening = Screening.objects.get()
    assert screening.history.first().history_user == alice

    body = api_client.get(f"/screenings/{screening.pk}").json()
    eligibility = body["eligibility"]
    assert eligibility["decision"] == "eligible" and eligibility["failing"] == []
    assert eligibility["protocol"] == {"id": "rumcess", "version": "1.0",
                                       "sha256": rumcess.content_sha256}
    statuses = {c["id"]: c["status"] for c in eligibility["criteria"]}
    assert statuses == {"I1": "met", "I2": "met", "I3": "met", "I4": "met", "I5": "met",
                        "E1": "not_met", "E2": "not_met", "E3": "not_met", "E4": "not_met"}
    clock = body["clock"]
    assert clock["hours_elapsed"] == pytest.approx(3.0, abs=0.05)
    assert clock["hours_left"] == pytest.approx(7.0, abs=0.05)
    assert clock["deadline_hours"] == 10 and clock["is_open"] and clock["urgency"] == "ok"
    assert "MSK (UTC+03:00)" in clock["deadline_local"]
    for value in (body["created_at"], body["onset_at"], clock["deadline_at"],
                  eligibility["evaluated_at"]):
        assert ISO_WITH_OFFSET.match(value), value
    assert body["subject_id"] is None and body["consents"] == []


def test_the_list_shows_only_your_sites_and_filters_by_status(api_client, alice, nrch):
    mine = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    closed = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    Screening.objects.filter(pk=closed.pk).update(status=ScreeningStatus.NOT_ENROLLED)
    elsewhere = Site.objects.create(code="other", name="Other ICU", timezone="Europe/Berlin")
    make_screening(elsewhere, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    assert {s["id"] for s in api_client.get("/screenings").json()} == {mine.pk, closed.pk}
    assert [s["id"] for s in api_client.get("/screenings", status="open").json()] == [mine.pk]
    _error(api_client.get("/screenings", status="maybe"), 422, "INPUT_REJECTED", "status")


def test_a_wrong_unit_is_saved_as_entered_and_flagged(api_client):
    body = _log(api_client, neutrophils={"value": 500, "unit": "10^9/L"})
    problems = body["eligibility"]["input_problems"]
    assert [(p["code"], p["field"]) for p in problems] == [("LIKELY_WRONG_UNIT", "neutrophils")]
    assert "cells/uL" in problems[0]["message"]
    i3 = next(c for c in body["eligibility"]["criteria"] if c["id"] == "I3")
    assert (i3["status"], i3["error_code"]) == ("unknown", "LIKELY_WRONG_UNIT")
    assert Screening.objects.get().record["neutrophils"]["value"] == 500


def test_an_onset_in_the_future_is_flagged_and_has_no_clock(api_client):
    body = _log(api_client, septic_shock_onset=_ago(-2))
    codes = {p["code"] for p in body["eligibility"]["input_problems"]}
    assert codes == {"FUTURE_TIME"} and body["clock"] is None
    assert body["eligibility"]["decision"] == "incomplete"


def test_a_record_that_is_not_an_object_is_422(api_client):
    response = api_client.post("/screenings", {"site": "nrch", "record": [1, 2]})
    _error(response, 422, "INPUT_REJECTED", "record")
    bad_json = api_client.client.post("/api/screenings", "{not json",
                                      content_type="application/json")
    _error(bad_json, 400, "INPUT_REJECTED", None)


def test_an_unknown_site_is_422(api_client):
    response = api_client.post("/screenings", {"site": "atlantis", "record": {}})
    assert "nrch" in _error(response, 422, "INPUT_REJECTED", "site")["message"]


def test_a_correction_needs_a_reason_and_is_audited(api_client):
    screening_id = _log(api_client)["id"]
    record = eligible_record(dt.datetime.now(dt.UTC) - dt.timedelta(hours=3),
                             neutrophils={"value": 0.4, "unit": "10^9/L"})
    _error(api_client.put(f"/screenings/{screening_id}", {"record": record}),
           422, "INPUT_REJECTED", "reason")
    _error(api_client.put(f"/screenings/{screening_id}", {"record": record, "reason": " "}),
           422, "INPUT_REJECTED", "reason")
    assert Screening.objects.get().record["neutrophils"]["value"] == 0.3  # nothing changed
    fixed = api_client.put(f"/screenings/{screening_id}", {"record": record,
                                                           "reason": "lab re-run"})
    assert fixed.status_code == 200
    assert fixed.json()["record"]["neutrophils"]["value"] == 0.4
    assert Screening.objects.get().history.first().history_change_reason == "lab re-run"


def test_consent_is_recorded_and_refused_in_the_future_or_without_offset(api_client):
    screening_id = _log(api_client, consent_signed=None)["id"]
    consent = {"consent_type": "legal_representative", "document_version": "2.0",
               "obtained_by": "Dr Petrova", "signed_by": "Husband"}
    _error(api_client.post(f"/screenings/{screening_id}/consent",
                           {**consent, "obtained_at": _ago(-3)}),
           422, "FUTURE_TIME", "obtained_at")
    _error(api_client.post(f"/screenings/{screening_id}/consent",
                           {**consent, "obtained_at": "2026-03-01T02:15:00"}),
           422, "TIMEZONE_REQUIRED", "obtained_at")
    _error(api_client.post(f"/screenings/{screening_id}/consent",
                           {**consent, "consent_type": "verbal", "obtained_at": _ago(1)}),
           422, "INPUT_REJECTED", "consent_type")
    response = api_client.post(f"/screenings/{screening_id}/consent",
                               {**consent, "obtained_at": _ago(1)})
    assert response.status_code == 201, response.content
    assert response.json()["recorded_by"] == "alice"
    body = api_client.get(f"/screenings/{screening_id}").json()
    assert body["record"]["consent_signed"] is True and len(body["consents"]) == 1


def test_closing_a_screening_records_the_reason_and_closes_it(api_client):
    screening_id = _log(api_client)["id"]
    _error(api_client.post(f"/screenings/{screening_id}/close", {"reason_code": "bored"}),
           422, "INPUT_REJECTED", "reason_code")
    body = api_client.post(f"/screenings/{screening_id}/close",
                           {"reason_code": "declined", "detail": "family declined"}).json()
    assert (body["status"], body["not_enrolled_reason"]) == ("not_enrolled",
                                                            "declined: family declined")
    _error(api_client.post(f"/screenings/{screening_id}/close", {"reason_code": "other"}),
           422, "INPUT_REJECTED")


def test_an_unknown_screening_is_404(api_client):
    _error(api_client.get("/screenings/999999"), 404, "NOT_FOUND", None)
    _error(api_client.get("/screenings/abc"), 422, "INPUT_REJECTED", "screening_id")


# --- randomization ---------------------------------------------------------------------


def test_randomize_once_and_a_replay_returns_the_same_allocation(api_client, rumcess, sealed):
    screening_id = _log(api_client)["id"]
    first = api_client.post(f"/screenings/{screening_id}/randomize", {"request_id": "rq-1"})
    assert first.status_code == 201, first.content
    body = first.json()
    allocation = Allocation.objects.get()
    assert body["subject_id"] == allocation.subject_id == "RUMCESS-NRCH-001"
    assert body["arm"] == allocation.arm and body["arm_label"] == rumcess.arm(body["arm"]).label
    assert body["protocol"] == {"id": "rumcess", "version": "1.0",
                                "sha256": rumcess.content_sha256}
    assert body["replayed"] is False and ISO_WITH_OFFSET.match(body["randomized_at"])
    assert body["levels"] == {"neutropenia_cause": "post_chemotherapy"}
    assert "sequence" not in body and "method_state" not in body  # allocation concealment

    again = api_client.post(f"/screenings/{screening_id}/randomize", {"request_id": "rq-1"})
    assert again.status_code == 200
    assert again.json() == {**body, "replayed": True}
    assert Allocation.objects.count() == 1

    _error(api_client.post(f"/screenings/{screening_id}/randomize", {"request_id": "rq-2"}),
           409, "ALREADY_RANDOMIZED")
    read = api_client.get(f"/allocations/{body['subject_id']}")
    assert read.status_code == 200
    assert read.json() == {k: v for k, v in body.items() if k != "replayed"}
    assert api_client.get(f"/screenings/{screening_id}").json()["subject_id"] == \
        body["subject_id"]


def test_an_ineligible_patient_is_refused_with_409_not_eligible(api_client, sealed):
    screening_id = _log(api_client, neutrophils={"value": 2.5, "unit": "10^9/L"})["id"]
    error = _error(api_client.post(f"/screenings/{screening_id}/randomize",
                                   {"request_id": "x1"}), 409, "NOT_ELIGIBLE")
    assert "I3" in error["message"]
    assert Allocation.objects.count() == 0


def test_randomize_without_a_list_is_409_and_without_request_id_422(api_client):
    screening_id = _log(api_client)["id"]
    _error(api_client.post(f"/screenings/{screening_id}/randomize", {"request_id": "x1"}),
           409, "ALLOCATION_ERROR")
    _error(api_client.post(f"/screenings/{screening_id}/randomize", {}),
           422, "INPUT_REJECTED", "request_id")
    _error(api_client.post(f"/screenings/{screening_id}/randomize", {"request_id": ""}),
           422, "INPUT_REJECTED", "request_id")


def test_an_unknown_subject_is_404(api_client):
    _error(api_client.get("/allocations/RUMCESS-NRCH-999"), 404, "NOT_FOUND")


# --- the one error mapping ----------------------------------------------------------------


@pytest.mark.parametrize(("exc", "status", "code"), [
    (te.LikelyWrongUnit("x", field="neutrophils"), 422, "LIKELY_WRONG_UNIT"),
    (te.FutureTime("x"), 422, "FUTURE_TIME"),
    (te.UnknownStratum("x"), 422, "UNKNOWN_STRATUM"),
    (te.NotEligible("x"), 409, "NOT_ELIGIBLE"),
    (te.RequestIdReused("x"), 409, "REQUEST_ID_REUSED"),
    (te.ListExhausted("x"), 409, "LIST_EXHAUSTED"),
    (te.AllocationError("x"), 409, "ALLOCATION_ERROR"),
    (te.ProtocolNotFound("x"), 500, "PROTOCOL_NOT_FOUND"),
    (te.TrialError("x"), 400, "TRIAL_ERROR"),
    (PermissionDenied("x"), 403, "PERMISSION_DENIED"),
    (Http404("x"), 404, "NOT_FOUND"),
    (AuthenticationError(), 401, "NOT_AUTHENTICATED"),
    (ValidationError([{"loc": ("body", "payload", "reason"), "msg": "Field required"}]),
     422, "INPUT_REJECTED"),
])
def test_each_exception_class_has_one_status_and_the_one_shape(exc, status, code):
    got_status, body = error_body(exc)
    assert got_status == status
    assert body["error"]["code"] == code and set(body["error"]) == {"code", "field", "message"}


def test_a_validation_error_names_the_field_inside_the_body():
    _, body = error_body(ValidationError([
        {"loc": ("body", "payload", "record", "neutrophils"), "msg": "bad"},
        {"loc": ("body", "payload", "reason"), "msg": "Field required"}]))
    assert body["error"]["field"] == "record.neutrophils"
    assert body["error"]["message"] == "record.neutrophils: bad; reason: Field required"


# --- OpenAPI ------------------------------------------------------------------------------

ROUTES = {
    ("post", "/api/fhir"),
    ("get", "/api/screenings"), ("post", "/api/screenings"),
    ("get", "/api/screenings/{screening_id}"), ("put", "/api/screenings/{screening_id}"),
    ("post", "/api/screenings/{screening_id}/consent"),
    ("post", "/api/screenings/{screening_id}/close"),
    ("post", "/api/screenings/{screening_id}/randomize"),
    ("get", "/api/allocations/{subject_id}"),
    ("get", "/api/casebooks/{subject_id}"),
    ("put", "/api/casebooks/{subject_id}/forms/{form_id}/{day}"),
    ("put", "/api/casebooks/{subject_id}/msc/{form_id}"),
    ("post", "/api/casebooks/{subject_id}/forms/{form_id}/{day}/entered-in-error"),
    ("get", "/api/allocations/{subject_id}/adverse-events"),
    ("post", "/api/allocations/{subject_id}/adverse-events"),
    ("get", "/api/adverse-events/{ae_id}"), ("put", "/api/adverse-events/{ae_id}"),
    ("post", "/api/adverse-events/{ae_id}/sponsor-report"),
    ("post", "/api/adverse-events/{ae_id}/regulator-report"),
    ("post", "/api/adverse-events/{ae_id}/entered-in-error"),
    ("get", "/api/safety/obligations"),
    ("get", "/api/queries"), ("post", "/api/queries"), ("get", "/api/queries/{query_id}"),
    ("post", "/api/queries/{query_id}/answer"), ("post", "/api/queries/{query_id}/close"),
    ("post", "/api/queries/{query_id}/reopen"), ("post", "/api/queries/{query_id}/withdraw"),
}


def test_openapi_json_and_docs_are_public_and_list_every_route():
    client = Client(HTTP_HOST="localhost")
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"] == {**schema["info"], "title": "TrialDesk API", "version": "1"}
    listed = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert listed == ROUTES
    assert listed == {(m.lower(), p) for p, ops in api.get_openapi_schema()["paths"].items()
                      for m in ops}
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert op["security"] == [{"TokenAuth": []}], (method, path)
            assert op[PERMISSION_KEY], (method, path)
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/").status_code == 404  # ninja's pointer to the docs


def test_docs_api_md_lists_every_route_with_its_permission():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text("utf-8")
    for path, ops in api.get_openapi_schema()["paths"].items():
        for method, op in ops.items():
            row = f"| `{method.upper()}` | `{path}` | `{op[PERMISSION_KEY]}` |"
            assert row in text, f"docs/api.md lacks the row starting {row}"


def test_a_route_that_declares_no_permission_is_refused(token):
    from django.test import RequestFactory

    from trialdesk.web.api.auth import TokenAuth

    request = RequestFactory().get("/api/x", headers={"Authorization": f"Bearer {token[1]}"})
    with pytest.raises(PermissionDenied, match="declares no permission"):
        TokenAuth()(request)
    with pytest.raises(KeyError):
        TokenAuth("screening.delete")
