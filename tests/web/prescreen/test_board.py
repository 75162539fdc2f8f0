"""The candidate board and the one-click screening, through the real database.

A coordinator at NRCH sees the candidates and possibles of NRCH only, soonest deadline
first, each with onset, deadline (site time, Moscow = UTC+3) and time left; one click
opens a screening pre-filled with the data the detector used, each value with its
source and time. Expected values are worked out by hand from the posted resources.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from tests.web.conftest import member
from tests.web.prescreen.conftest import Shock, feed_for
from trialdesk.eligibility import evaluate
from trialdesk.web.prescreen.models import PrescreenPatient, ScreeningReferral
from trialdesk.web.screening.models import Screening
from trialdesk.web.sites.models import Site

pytestmark = pytest.mark.django_db
MSK = dt.timezone(dt.timedelta(hours=3))


def board_rows(client: Client) -> list[tuple[str, str]]:
    html = client.get("/candidates/", headers={"HX-Request": "true"}).content.decode()
    return re.findall(r'data-patient="([^"]+)" data-status="([^"]+)"', html)


def test_a_candidate_appears_on_the_board_with_its_clock(feed, shock, coordinator_client):
    assert board_rows(coordinator_client) == []
    for resource in (shock.patient(), shock.map(), shock.pressor()):
        feed.post(resource)
    assert board_rows(coordinator_client) == [(shock.pid, "possible")]
    feed.post(shock.anc())
    assert board_rows(coordinator_client) == [(shock.pid, "candidate")]
    html = coordinator_client.get("/candidates/", headers={"HX-Request": "true"}).content
    html = html.decode()
    onset_msk = shock.onset.astimezone(MSK)
    deadline_msk = onset_msk + dt.timedelta(hours=10)
    assert onset_msk.strftime("%Y-%m-%d %H:%M") in html
    assert deadline_msk.strftime("%Y-%m-%d %H:%M") in html
    # onset 3 h ago: 7 h left (the page may be rendered a minute later)
    assert re.search(r"clock-ok\">(7 h 0 min|6 h 59 min)<", html)
    assert "ANC 0.6 ×10^9/L" in html  # the neutropenia reason, in 10^9/L


def test_the_board_page_polls_every_few_seconds(coordinator_client):
    html = coordinator_client.get("/candidates/").content.decode()
    assert 'hx-trigger="every 5s"' in html
    assert 'href="/candidates/"' in html  # the Candidates link in the navigation


def test_sorted_by_deadline_and_only_the_own_site(feed, now, nrch, coordinator_client,
                                                  django_user_model):
    late = Shock("late", now - dt.timedelta(hours=1))  # deadline in 9 h
    soon = Shock("soon", now - dt.timedelta(hours=8))  # deadline in 2 h
    for p in (late, soon):
        for resource in p.all():
            feed.post(resource)
    Site.objects.create(code="berlin", name="Berlin ICU", timezone="Europe/Berlin")
    berlin_feed = feed_for(member(django_user_model.objects.create_user("network-feed"),
                                  "integration"))
    elsewhere = Shock("elsewhere", now - dt.timedelta(hours=5))
    for resource in elsewhere.all():
        berlin_feed.post(resource, site="berlin")
    assert board_rows(coordinator_client) == [("soon", "candidate"), ("late", "candidate")]


def test_after_the_deadline_a_candidate_moves_to_closed_and_a_possible_drops_off(
        feed, now, coordinator_client):
    missed = Shock("missed", now - dt.timedelta(hours=11))  # deadline passed 1 h ago
    for resource in missed.all():  # complete in time: a candidate nobody enrolled
        feed.post(resource)
    late = Shock("late", now - dt.timedelta(hours=11))
    for resource in (late.patient(), late.map(), late.pressor()):  # ANC never came
        feed.post(resource)
    html = coordinator_client.get("/candidates/", headers={"HX-Request": "true"}).content
    window, closed = html.decode().split("Window closed in the last 24 h")
    assert 'data-patient="missed"' in closed and 'data-patient="missed"' not in window
    assert 'data-patient="late"' not in window + closed
    p = PrescreenPatient.objects.get(patient_id="late")
    assert p.status == "no"
    assert next(c for c in p.reasons if c["id"] == "window")["reason"].startswith(
        "deadline ") and "passed before the data were complete" in str(p.reasons)


def test_one_click_opens_a_prefilled_screening_with_provenance(feed, shock,
                                                               coordinator_client, rumcess):
    for resource in shock.all():
        feed.post(resource)
    p = PrescreenPatient.objects.get(patient_id=shock.pid)
    response = coordinator_client.post(f"/candidates/{p.pk}/open-screening")
    assert response.status_code == 302
    screening = Screening.objects.get()
    onset_msk = shock.onset.astimezone(MSK)
    assert screening.record == {
        "septic_shock_onset": onset_msk.isoformat(), "septic_shock": True,
        "neutrophils": {"value": 0.6, "unit": "10^9/L"},  # 600 cells/µL
        "birth_date": "1970-05-01", "sex": "female"}
    assert screening.onset_utc == shock.onset
    assert screening.site.code == "nrch"
    # the protocol's criteria the ICU data decide are met; consent is not known yet
    result = evaluate(rumcess, screening.record, site_id="nrch")
    status = {c.id: c.status.value for c in result.criteria}
    assert {k: status[k] for k in ("I1", "I2", "I3", "I4")} == dict.fromkeys(
        ("I1", "I2", "I3", "I4"), "met")
    assert status["E3"] == "not_met"  # the exclusion "age > 75" does not apply
    assert status["I5"] == "unknown"  # consent: the coordinator's part
    prov = ScreeningReferral.objects.get(screening=screening).provenance
    assert prov["neutrophils"]["source"] == f"Observation/{shock.pid}-anc"
    assert prov["neutrophils"]["unit"] == "10^9/L"
    assert prov["neutrophils"]["at_utc"] == (shock.onset - dt.timedelta(hours=2)).isoformat()
    assert prov["neutrophils"]["received_at"] is not None
    assert prov["septic_shock_onset"]["source"] == f"MedicationAdministration/{shock.pid}-ne"
    assert prov["birth_date"]["source"] == f"Patient/{shock.pid}"
    assert prov["birth_date"]["note"] == "age 56 years at onset"
    # the coordinator sees each value with its source and time
    page = coordinator_client.get(response["Location"]).content.decode()
    assert screening.screening_number in page
    assert f"Observation/{shock.pid}-anc" in page
    assert (shock.onset - dt.timedelta(hours=2)).isoformat() in page
    # a second click does not open a second screening; the board links to the first
    coordinator_client.post(f"/candidates/{p.pk}/open-screening")
    assert Screening.objects.count() == 1
    board = coordinator_client.get("/candidates/", headers={"HX-Request": "true"}).content
    assert screening.screening_number in board.decode()
    assert screening.history.first().history_change_reason == "screening logged"
