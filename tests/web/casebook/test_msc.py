"""The lab records the MSC product and infusion; deviations appear by themselves.

Patients are randomized 5 days ago with septic-shock onset 4 h before randomization
(conftest), so an infusion 5 h after randomization is 9 h after onset (on time) and
one 7 h after randomization is 11 h after onset: 1 h after the 10-h deadline.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from tests.web.casebook.conftest import browser
from trialdesk.web.casebook.models import Deviation, DeviationStatus, FormRecord
from trialdesk.web.casebook.services import save_form

pytestmark = pytest.mark.django_db

PRODUCT = {"product_id": "MSC-2026-001", "donor_id": "D-17", "passage": "3",
           "viable_cells_total": "100000000", "viability_percent": "92",
           "concentration_cells_per_ml": "1000000", "volume_ml": "100",
           "sterility": "no_growth", "endotoxin_eu_per_ml": "0.1", "mycoplasma": "negative",
           "identity": "pass", "released_by": "Dr Kuzmina"}


def _local(allocation, hours_after_randomization: float) -> str:
    """A browser's datetime-local value (site time, no offset)."""
    t = allocation.randomized_at + dt.timedelta(hours=hours_after_randomization)
    return t.astimezone(dt.timezone(dt.timedelta(hours=3))).strftime("%Y-%m-%dT%H:%M")


def _infusion(allocation, hours_after_randomization: float, **changes) -> dict[str, str]:
    return {"infusion_start_at": _local(allocation, hours_after_randomization),
            "weight_kg": "70", "weight_basis": "actual", "cells_infused": "70000000",
            **changes}


def _record_msc(client, allocation, infusion: dict[str, str]):
    product = client.post(reverse("casebook:msc_product", args=[allocation.subject_id]),
                          PRODUCT)
    response = client.post(reverse("casebook:msc_infusion", args=[allocation.subject_id]),
                           infusion)
    return product, response


def test_lab_records_a_late_infusion_and_sees_it_flagged(lab_user, msc_patient):
    client = browser(lab_user)
    product, infusion = _record_msc(client, msc_patient, _infusion(msc_patient, 7))
    assert (product.status_code, infusion.status_code) == (302, 302)
    record = FormRecord.objects.get(allocation=msc_patient, form_id="msc_infusion", day=0)
    assert record.derived["hours_after_onset"] == pytest.approx(11.0)
    assert record.derived["late"] is True
    assert record.derived["dose"]["dose_cells_per_kg"] == pytest.approx(1e6)
    [deviation] = Deviation.objects.filter(allocation=msc_patient)
    assert (deviation.code, deviation.status) == ("INFUSION_LATE", DeviationStatus.OPEN)
    assert "1 h 00 min after the 10-h deadline" in deviation.message
    page = client.get(reverse("casebook:msc_infusion", args=[msc_patient.subject_id]))
    assert 'id="late-flag"' in page.content.decode()
    lab = client.get(reverse("casebook:lab")).content.decode()
    assert 'class="late late-flag">LATE' in lab


def test_on_time_infusion_at_target_dose_has_no_deviation(lab_user, msc_patient):
    client = browser(lab_user)
    _record_msc(client, msc_patient, _infusion(msc_patient, 5))
    record = FormRecord.objects.get(allocation=msc_patient, form_id="msc_infusion")
    assert record.derived["late"] is False
    assert "within the protocol range" in record.derived["dose"]["message"]
    assert not Deviation.objects.filter(allocation=msc_patient).exists()
    product = FormRecord.objects.get(allocation=msc_patient, form_id="msc_product")
    assert product.day is None and product.derived["release"]["released"] is True


def test_a_low_dose_is_a_deviation_seen_by_investigator_and_data_manager(
        lab_user, investigator, data_manager, msc_patient):
    _record_msc(browser(lab_user), msc_patient,
                _infusion(msc_patient, 5, cells_infused="", volume_infused_ml="56"))
    record = FormRecord.objects.get(allocation=msc_patient, form_id="msc_infusion")
    assert record.derived["dose"]["dose_cells_per_kg"] == pytest.approx(0.8e6)  # 56e6 / 70
    [deviation] = Deviation.objects.filter(allocation=msc_patient)
    assert deviation.code == "DOSE_BELOW_RANGE"
    casebook = browser(investigator).get(reverse("casebook:detail",
                                                 args=[msc_patient.subject_id]))
    assert "DOSE_BELOW_RANGE" in casebook.content.decode()
    listing = browser(data_manager).get(reverse("casebook:deviations")).content.decode()
    assert msc_patient.subject_id in listing and "DOSE_BELOW_RANGE" in listing


def test_infusion_in_the_control_arm_needs_confirming_and_is_a_deviation(
        rumcess, lab_user, control_patient):
    client = browser(lab_user)
    url = reverse("casebook:msc_infusion", args=[control_patient.subject_id])
    refused = client.post(url, _infusion(control_patient, 5))
    assert refused.status_code == 400 and "WRONG_ARM" in refused.content.decode()
    client.post(url, {**_infusion(control_patient, 5), "confirm": "WRONG_ARM:"})
    assert {d.code for d in Deviation.objects.filter(allocation=control_patient)} == {
        "MSC_IN_NON_MSC_ARM"}


def test_correcting_the_time_resolves_the_deviation_with_history(
        rumcess, lab_user, investigator, msc_patient):
    client = browser(lab_user)
    _record_msc(client, msc_patient, _infusion(msc_patient, 7))
    url = reverse("casebook:msc_infusion", args=[msc_patient.subject_id])
    client.post(url, {**_infusion(msc_patient, 5), "reason": "time copied from the wrong chart"})
    deviation = Deviation.objects.get(allocation=msc_patient, code="INFUSION_LATE")
    assert deviation.status == DeviationStatus.RESOLVED
    assert [h.history_change_reason for h in deviation.history.order_by("history_id")] == [
        "detected automatically", "no longer shown by the data (corrected)"]
    infusion = FormRecord.objects.get(allocation=msc_patient, form_id="msc_infusion")
    assert infusion.history.first().history_change_reason == "time copied from the wrong chart"


def test_investigator_acknowledges_a_deviation(lab_user, investigator, msc_patient):
    _record_msc(browser(lab_user), msc_patient, _infusion(msc_patient, 7))
    deviation = Deviation.objects.get(allocation=msc_patient)
    browser(investigator).post(reverse("casebook:acknowledge", args=[msc_patient.subject_id]),
                               {"deviation": deviation.pk, "comment": "lab informed"})
    deviation.refresh_from_db()
    assert deviation.status == DeviationStatus.ACKNOWLEDGED
    assert deviation.history.first().history_change_reason == "acknowledged: lab informed"


def test_an_infusion_before_randomization_is_refused(rumcess, lab_user, msc_patient):
    response = browser(lab_user).post(
        reverse("casebook:msc_infusion", args=[msc_patient.subject_id]),
        _infusion(msc_patient, -1))
    assert response.status_code == 400
    assert "INFUSION_BEFORE_RANDOMIZATION" in response.content.decode()
    assert not FormRecord.objects.filter(allocation=msc_patient).exists()


def test_site_staff_cannot_record_msc_forms_and_the_lab_no_daily_forms(
        investigator, lab_user, msc_patient):
    assert browser(investigator).get(
        reverse("casebook:msc_infusion", args=[msc_patient.subject_id])).status_code == 403
    assert browser(lab_user).get(reverse("casebook:form", args=[
        msc_patient.subject_id, "sofa", "0"])).status_code == 403
    # and the daily-form page does not take the lab's forms
    assert browser(investigator).get(reverse("casebook:form", args=[
        msc_patient.subject_id, "msc_infusion", "0"])).status_code == 404


def test_save_form_service_keeps_the_product_once_per_patient(rumcess, lab_user, msc_patient):
    first = save_form(rumcess, msc_patient, "msc_product", None,
                      {"product_id": "A", "donor_id": "D"}, user=lab_user)
    again = save_form(rumcess, msc_patient, "msc_product", None,
                      {"product_id": "B", "donor_id": "D"}, user=lab_user, reason="relabelled")
    assert first.record.pk == again.record.pk and again.record.data["product_id"] == "B"


def test_a_saved_form_reopened_and_resaved_is_unchanged(lab_user, msc_patient):
    """What the page shows for saved data reads back as the same data: nothing is lost."""
    from trialdesk.crf.forms import FORMS, parse_entry
    from trialdesk.web.casebook.views import raw_from_data

    client = browser(lab_user)
    _record_msc(client, msc_patient, _infusion(msc_patient, 5, weight_kg="154.3",
                                               weight_kg__unit="lb",
                                               cells_infused="70123456"))
    zone = msc_patient.site.timezone
    for record in FormRecord.objects.filter(allocation=msc_patient):
        definition = FORMS[record.form_id]
        shown = raw_from_data(definition, record.data, zone)
        assert parse_entry(definition, shown, zone) == (record.data, ())
    url = reverse("casebook:msc_infusion", args=[msc_patient.subject_id])
    infusion = FormRecord.objects.get(allocation=msc_patient, form_id="msc_infusion")
    assert infusion.data["weight_kg"] == {"value": 154.3, "unit": "lb"}
    assert infusion.derived["dose"]["weight_kg"] == pytest.approx(154.3 * 0.45359237)
    resent = client.post(url, raw_from_data(FORMS["msc_infusion"], infusion.data, zone))
    assert resent.status_code == 302 and infusion.history.count() == 1


def test_a_patient_leaves_the_doses_to_prepare_once_the_infusion_is_recorded(
        lab_user, msc_patient):
    """At 3 a.m. the lab's list holds only the doses still to give."""
    client = browser(lab_user)
    before = client.get(reverse("randomization:lab_dashboard")).content.decode()
    assert msc_patient.subject_id in before and "record infusion" in before
    _record_msc(client, msc_patient, _infusion(msc_patient, 5))
    after = client.get(reverse("randomization:lab_dashboard")).content.decode()
    assert msc_patient.subject_id not in after
    assert "No MSC dose is waiting" in after and "1 patient with the infusion recorded" in after


def test_the_lab_is_not_asked_for_a_dose_for_a_patient_who_left_the_study(
        rumcess, lab_user, investigator, msc_patient):
    """A patient withdrawn (or dead) before the infusion can no longer receive a dose."""
    queue_url = reverse("randomization:lab_dashboard")
    before = browser(lab_user).get(queue_url).content.decode()
    assert msc_patient.subject_id in before
    save_form(rumcess, msc_patient, "end_of_study", None,
              {"status": "withdrawn", "date": dt.date.today().isoformat(),
               "reason": "consent withdrawn by the patient's representative"},
              user=investigator)
    after = browser(lab_user).get(queue_url).content.decode()
    assert msc_patient.subject_id not in after
    assert "1 MSC-arm patient died or left the study before an infusion" in after
