"""The screening pages as a coordinator uses them: log, live criteria, clock, consent,
correct with a reason, randomize, confirmation, audit — and refusals with reasons."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from tests.web.conftest import eligible_record, make_screening, member
from trialdesk.randomization import generate_list
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import import_list
from trialdesk.web.screening.models import Screening, ScreeningStatus

pytestmark = pytest.mark.django_db
MOSCOW = ZoneInfo("Europe/Moscow")


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _local(hours_ago: float) -> str:
    return (dt.datetime.now(MOSCOW) - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


def _form(hours_ago: float = 2.0, **changes: str) -> dict[str, str]:
    form = {
        "site": "nrch", "birth_date": "1980-05-17", "sex": "female", "pregnant": "false",
        "septic_shock": "true", "septic_shock_onset": _local(hours_ago),
        "neutrophils": "0.3", "neutrophils__unit": "10^9/L", "consent_signed": "",
        "chemoresistant_oncohematological": "false", "neutropenia_cause": "post_chemotherapy",
    }
    form.update(changes)
    return form


@pytest.fixture
def sealed(rumcess, alice, nrch):
    alist = generate_list(rumcess, seed="pages", size_per_stratum=8)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice)
    return alist


def _consent(client, screening) -> None:
    response = client.post(f"/screening/{screening.pk}/consent", {
        "consent_type": "legal_representative", "document_version": "2.0",
        "obtained_at": _local(0.5), "obtained_by": "Dr Petrova", "signed_by": "Husband"})
    assert response.status_code == 302, _text(response)


def test_logging_a_screening_saves_it_and_shows_the_clock(coordinator_client):
    response = coordinator_client.post("/screening/new", _form(hours_ago=3))
    assert response.status_code == 302
    screening = Screening.objects.get()
    assert screening.record["neutrophils"] == {"value": 0.3, "unit": "10^9/L"}
    text = _text(coordinator_client.get(response["Location"]))
    # onset entered to the minute 3 h ago; a clock never shows more time than is left
    assert re.search(r"3 h [01] min since onset", text), text
    assert re.search(r"(7 h 0|6 h 59) min left", text), text
    assert "INCOMPLETE" in text  # consent not yet recorded


def test_a_wrong_unit_is_saved_as_entered_and_flagged(coordinator_client):
    response = coordinator_client.post("/screening/new", _form(neutrophils="500"))
    assert response.status_code == 302
    text = _text(coordinator_client.get(response["Location"]))
    assert "LIKELY_WRONG_UNIT" in text and "cells/uL" in text
    assert Screening.objects.get().record["neutrophils"]["value"] == 500


def test_live_eligibility_returns_the_criteria_table(coordinator_client):
    response = coordinator_client.post("/screening/eligibility", _form(consent_signed="true"))
    text = _text(response)
    assert response.status_code == 200
    assert "ELIGIBLE" in text and "INELIGIBLE" not in text
    assert 'data-criterion="I3"' in response.content.decode()


def test_dashboard_lists_open_screenings_by_time_left(coordinator_client, alice, nrch):
    later = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    urgent = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=9.5)))
    html = coordinator_client.get("/screening/").content.decode()
    assert html.index(urgent.screening_number) < html.index(later.screening_number)
    assert "urgency-urgent" in html


def test_a_correction_needs_a_reason_and_is_audited(coordinator_client, alice, nrch):
    coordinator_client.post("/screening/new", _form())
    screening = Screening.objects.get()
    no_reason = coordinator_client.post(f"/screening/{screening.pk}/edit",
                                        _form(neutrophils="0.4"))
    assert no_reason.status_code == 400
    assert Screening.objects.get().record["neutrophils"]["value"] == 0.3  # nothing lost
    fixed = coordinator_client.post(f"/screening/{screening.pk}/edit",
                                    {**_form(neutrophils="0.4"), "reason": "lab re-run"})
    assert fixed.status_code == 302
    member(alice, "data_manager", nrch)
    text = _text(coordinator_client.get(f"/screening/{screening.pk}/audit"))
    assert "lab re-run" in text and "alice" in text and "0.3" in text and "0.4" in text


def test_consent_in_the_future_is_refused_with_a_message(coordinator_client, alice, nrch):
    screening = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), consent_signed=None))
    response = coordinator_client.post(f"/screening/{screening.pk}/consent", {
        "consent_type": "patient", "document_version": "2.0", "obtained_at": _local(-3),
        "obtained_by": "Dr Petrova"})
    assert response.status_code == 400
    assert "FUTURE_TIME" in _text(response)
    assert screening.consents.count() == 0


def test_coordinator_consents_randomizes_and_sees_the_confirmation(
        coordinator_client, rumcess, sealed):
    coordinator_client.post("/screening/new", _form())
    screening = Screening.objects.get()
    _consent(coordinator_client, screening)
    page = coordinator_client.get(f"/screening/{screening.pk}/").content.decode()
    request_id = re.search(r'name="request_id" value="(\w+)"', page).group(1)
    response = coordinator_client.post(f"/screening/{screening.pk}/randomize",
                                       {"request_id": request_id})
    assert response.status_code == 302
    allocation = Allocation.objects.get()
    confirmation = _text(coordinator_client.get(response["Location"]))
    assert allocation.subject_id in confirmation
    assert rumcess.arm(allocation.arm).label in confirmation
    assert "v1.0" in confirmation
    # the same button pressed twice (double click, retry) gives the same allocation
    again = coordinator_client.post(f"/screening/{screening.pk}/randomize",
                                    {"request_id": request_id})
    assert again.status_code == 302 and Allocation.objects.count() == 1


def test_an_ineligible_patient_cannot_be_randomized_and_sees_why(
        coordinator_client, alice, nrch, sealed):
    screening = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
        neutrophils={"value": 2.5, "unit": "10^9/L"}))
    response = coordinator_client.post(f"/screening/{screening.pk}/randomize",
                                       {"request_id": "x1"})
    assert response.status_code == 409
    text = _text(response)
    assert "NOT_ELIGIBLE" in text and "I3" in text
    assert Allocation.objects.count() == 0


def test_closing_a_screening_records_the_reason(coordinator_client, alice, nrch):
    screening = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
    coordinator_client.post(f"/screening/{screening.pk}/close",
                            {"reason_code": "declined", "detail": "family declined"})
    screening.refresh_from_db()
    assert screening.status == ScreeningStatus.NOT_ENROLLED
    assert screening.not_enrolled_reason == "declined: family declined"


def test_another_sites_screening_is_not_visible(coordinator_client, rumcess, alice):
    from trialdesk.web.sites.models import Site

    elsewhere = Site.objects.create(code="other", name="Other ICU", timezone="Europe/Berlin")
    screening = make_screening(elsewhere, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
    assert coordinator_client.get(f"/screening/{screening.pk}/").status_code == 403
    assert screening.screening_number not in coordinator_client.get("/screening/").content \
        .decode()


def test_the_lab_sees_msc_allocations_with_the_infusion_deadline(
        coordinator_client, rumcess, alice, nrch, django_user_model, sealed):
    from trialdesk.web.randomization.services import randomize

    for _ in range(4):
        s = make_screening(nrch, alice, eligible_record(
            dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
        randomize(s.pk, user=alice, request_id=f"r{s.pk}", protocol=rumcess)
    lab = django_user_model.objects.create_user("lena", password="x" * 16)
    member(lab, "lab", nrch)
    client = Client(HTTP_HOST="localhost")
    client.force_login(lab)
    html = client.get("/allocation/lab/").content.decode()
    for a in Allocation.objects.all():
        assert (a.subject_id in html) == (a.arm == "msc")
