"""The casebook API: same service, same checks, same permissions as the pages."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.web.casebook.test_daily_forms import WORKED_DAY, _core
from trialdesk.web.api.services import create_token
from trialdesk.web.casebook.models import FormRecord

pytestmark = pytest.mark.django_db

SOFA_DAY = {k: (v if k == "respiratory_support" else float(v)) for k, v in WORKED_DAY.items()}


def api(user):
    token = create_token(user, "tests")[1]
    return Client(HTTP_HOST="localhost", headers={"Authorization": f"Bearer {token}"})


def put(client, path, body):
    return client.put(path, data=json.dumps(body), content_type="application/json")


def test_save_a_day_and_read_the_casebook(investigator, msc_patient):
    client = api(investigator)
    base = f"/api/casebooks/{msc_patient.subject_id}"
    created = put(client, f"{base}/forms/sofa/1", {"data": SOFA_DAY})
    assert created.status_code == 201, created.content
    assert created.json()["derived"]["sofa"]["total"] == _core(WORKED_DAY).total
    same = put(client, f"{base}/forms/sofa/1", {"data": SOFA_DAY})
    assert (same.status_code, same.json()["changed"]) == (200, False)
    book = client.get(base).json()
    assert book["sofa_by_day"]["1"]["total"] == 17
    slot = next(s for s in book["schedule"]["slots"] if (s["form"], s["day"]) == ("sofa", 1))
    assert slot["status"] == "done"


def test_refusals_carry_every_problem(investigator, msc_patient):
    client = api(investigator)
    path = f"/api/casebooks/{msc_patient.subject_id}/forms/sofa/0"
    bad = put(client, path, {"data": {**SOFA_DAY, "fio2_fraction": 40, "gcs": 2}})
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "EDIT_CHECK_FAILED"
    assert {p["field"] for p in error["problems"] if p["severity"] == "error"} == {
        "fio2_fraction", "gcs"}
    unusual = put(client, path, {"data": {**SOFA_DAY, "map_mmhg": 30}})
    assert unusual.json()["error"]["code"] == "CONFIRMATION_REQUIRED"
    ok = put(client, path, {"data": {**SOFA_DAY, "map_mmhg": 30},
                            "confirm": ["UNUSUAL_VALUE:map_mmhg"]})
    assert ok.status_code == 201
    change = put(client, path, {"data": SOFA_DAY})
    assert (change.status_code, change.json()["error"]["field"]) == (422, "reason")
    assert FormRecord.objects.get(allocation=msc_patient, day=0).data["map_mmhg"] == 30


def test_msc_forms_only_through_the_lab_route(investigator, lab_user, msc_patient):
    base = f"/api/casebooks/{msc_patient.subject_id}"
    assert put(api(investigator), f"{base}/msc/msc_product",
               {"data": {"product_id": "A", "donor_id": "D"}}).status_code == 403
    lab = api(lab_user)
    assert put(lab, f"{base}/msc/msc_product",
               {"data": {"product_id": "A", "donor_id": "D"}}).status_code == 201
    assert put(lab, f"{base}/msc/sofa", {"data": {}}).status_code == 422
    assert put(api(investigator), f"{base}/forms/msc_infusion/0",
               {"data": {}}).status_code == 422
