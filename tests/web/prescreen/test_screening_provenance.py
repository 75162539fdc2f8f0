"""A screening opened from the candidate board shows, on its own page, where each
pre-filled value came from: source resource, FHIR message, clinical time and receipt
time in the site's time zone (NRCH: Moscow, UTC+3). Expected times are worked out by
hand from the posted resources."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.web.conftest import eligible_record, make_screening
from trialdesk.web.prescreen.models import FhirMessage, PrescreenPatient
from trialdesk.web.screening.models import Screening

pytestmark = pytest.mark.django_db
MSK = dt.timezone(dt.timedelta(hours=3))


def msk(t: dt.datetime) -> str:
    """Moscow time as the site shows it (seconds only when not zero)."""
    local = t.astimezone(MSK)
    seconds = ":%S" if local.second or local.microsecond else ""
    return local.strftime("%Y-%m-%d %H:%M" + seconds) + " MSK (UTC+03:00)"


def _row(html: str, field: str) -> str:
    match = re.search(rf'<tr data-field="{field}">(.*?)</tr>', html, re.S)
    assert match, f"no provenance row for {field}"
    return match.group(1)


def test_one_click_lands_on_the_screening_which_shows_each_values_source_and_time(
        feed, shock, coordinator_client):
    for resource in shock.all():  # Patient, MAP, norepinephrine, ANC: messages 1–4
        feed.post(resource)
    p = PrescreenPatient.objects.get(patient_id=shock.pid)
    response = coordinator_client.post(f"/candidates/{p.pk}/open-screening")
    screening = Screening.objects.get()
    assert response["Location"] == f"/screening/{screening.pk}/"
    html = coordinator_client.get(response["Location"]).content.decode()
    assert 'id="referral"' in html and "Pre-filled from the ICU data" in html
    assert f'href="/candidates/{p.pk}/"' in html  # back to the ICU patient's page

    anc = _row(html, "neutrophils")
    assert "0.6 10^9/L" in anc  # 600 cells/µL
    assert f"Observation/{shock.pid}-anc" in anc
    anc_message = FhirMessage.objects.order_by("id")[3]
    assert f"message #{anc_message.pk}" in anc
    assert msk(shock.onset - dt.timedelta(hours=2)) in anc  # drawn 2 h before onset
    assert msk(anc_message.received_at) in anc

    onset = _row(html, "septic_shock_onset")
    assert f"MedicationAdministration/{shock.pid}-ne" in onset
    assert msk(shock.onset) in onset

    birth = _row(html, "birth_date")
    assert f"Patient/{shock.pid}" in birth and "1970-05-01" in birth
    assert "age 56 years at onset" in birth  # 1970-05-01 → 56 on the onset day (2026)
    assert "_patient" not in html  # the bookkeeping entry is not a field


def test_a_screening_logged_by_hand_has_no_ICU_provenance(nrch, alice, coordinator_client):
    screening = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
    html = coordinator_client.get(f"/screening/{screening.pk}/").content.decode()
    assert screening.screening_number in html
    assert 'id="referral"' not in html and 'id="provenance"' not in html
