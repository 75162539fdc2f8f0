"""The home page and the bedside calculators: happy path, bad input, security headers."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from trialdesk.protocol import load_protocol

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(coordinator_client) -> Client:
    return coordinator_client


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_home_page_shows_the_protocol_identity_and_every_criterion(client):
    response = client.get("/")
    assert response.status_code == 200
    text = _text(response)
    protocol = load_protocol()
    assert "NCT01849237" in text
    assert protocol.content_sha256 in text
    for _, criterion in protocol.criteria:
        assert criterion.text.replace(">", "&gt;") in text
    assert "28-day all-cause mortality" in text


def test_healthz_is_public_and_reports_the_protocol_hash():
    data = Client(HTTP_HOST="localhost").get("/healthz").json()
    assert data == {"status": "ok", "protocol": "rumcess", "protocol_version": "1.0",
                    "protocol_sha256": load_protocol().content_sha256}


def _eligible_form(onset_local: dt.datetime) -> dict[str, str]:
    return {
        "birth_date": "1980-05-17", "sex": "female", "pregnant": "false",
        "septic_shock": "true", "septic_shock_onset": onset_local.strftime("%Y-%m-%dT%H:%M"),
        "neutrophils": "0.3", "neutrophils__unit": "10^9/L", "consent_signed": "true",
        "chemoresistant_oncohematological": "false", "neutropenia_cause": "post_chemotherapy",
    }


def _moscow_now() -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Europe/Moscow")).replace(second=0, microsecond=0)


def test_eligibility_form_reads_onset_in_site_time_and_finds_the_patient_eligible(client):
    form = _eligible_form(_moscow_now() - dt.timedelta(hours=3))
    response = client.post("/tools/eligibility", form)
    assert response.status_code == 200
    text = _text(response)
    assert "ELIGIBLE" in text and "INELIGIBLE" not in text
    assert re.search(r"3\.0 h since onset of septic shock", text)


def test_eligibility_form_flags_neutrophils_entered_in_the_wrong_unit(client):
    form = _eligible_form(_moscow_now() - dt.timedelta(hours=2))
    form["neutrophils"] = "500"
    response = client.post("/tools/eligibility", form)
    text = _text(response)
    assert "INCOMPLETE" in text
    assert "LIKELY_WRONG_UNIT" in text and "cells/uL" in text


def test_eligibility_form_refuses_an_onset_in_the_future(client):
    form = _eligible_form(_moscow_now() + dt.timedelta(hours=2))
    text = _text(client.post("/tools/eligibility", form))
    assert "FUTURE_TIME" in text and "in the future" in text


def test_eligibility_form_shows_missing_fields_when_nothing_is_known(client):
    text = _text(client.post("/tools/eligibility", {"neutrophils__unit": "10^9/L"}))
    assert "INCOMPLETE" in text and "Still needed:" in text


def test_sofa_calculator_computes_components_and_totals(client):
    response = client.post("/tools/sofa", {
        "pao2_mmhg": "80", "fio2_fraction": "0.5", "respiratory_support": "invasive",
        "platelets_10e9_per_l": "15", "bilirubin_mg_dl": "1.0", "map_mmhg": "60",
        "norepinephrine_ug_kg_min": "0.3", "gcs": "9", "creatinine_umol_l": "200",
    })
    assert response.status_code == 200
    text = _text(response)
    # resp 3 (160 with support) + coag 4 + liver 0 + cardio 4 + cns 3 + renal 2 (µmol/L band)
    assert "Total 16 / 24" in text
    assert "without coagulation 12" in text


def test_sofa_calculator_explains_fio2_given_as_a_percentage(client):
    response = client.post("/tools/sofa", {"pao2_mmhg": "80", "fio2_fraction": "40"})
    assert response.status_code == 400
    assert "percentage" in _text(response)


def test_dose_calculator_gives_cells_range_and_volume(client):
    response = client.post("/tools/dose", {"weight_kg": "70",
                                           "concentration_cells_per_ml": "1000000"})
    text = _text(response)
    assert response.status_code == 200
    assert "70×10^6" in text and "70 mL" in text


def test_dose_calculator_refuses_a_weight_in_grams(client):
    response = client.post("/tools/dose", {"weight_kg": "70000"})
    assert response.status_code == 400
    assert "LIKELY_WRONG_UNIT" in _text(response)


def test_pages_send_security_headers(client):
    response = client.get("/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_forms_refuse_posts_without_a_csrf_token(alice, coordinator_client):
    strict = Client(HTTP_HOST="localhost", enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/tools/sofa", {"gcs": "15"}).status_code == 403


def test_unknown_host_is_refused():
    assert Client(HTTP_HOST="evil.example").get("/").status_code == 400


@pytest.mark.parametrize("method", ["put", "delete"])
def test_calculators_only_accept_get_and_post(client, method):
    assert getattr(client, method)("/tools/sofa").status_code == 405


def test_pages_need_a_signed_in_user():
    anonymous = Client(HTTP_HOST="localhost")
    response = anonymous.get("/tools/sofa")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_user_without_any_role_is_refused(alice):
    nobody = Client(HTTP_HOST="localhost")
    nobody.force_login(alice)
    assert nobody.get("/").status_code == 403


def test_the_protocol_page_writes_doses_and_forms_as_people_read_them(coordinator_client):
    html = coordinator_client.get("/").content.decode()
    assert "1 × 10⁶–2 × 10⁶ cells/kg/day" in html
    assert "Daily SOFA (worst values of the day)" in html and "1000000" not in html
