"""The lab records that an MSC-arm patient's dose was not given, and why.

The record closes the dose: a major protocol deviation MSC_NOT_GIVEN opens by itself,
the lab's queue stops asking for the dose, and an infusion can no longer be recorded
beside it (nor the record beside an infusion). Patients are randomized 5 days ago
(conftest).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from tests.web.casebook.conftest import browser
from tests.web.casebook.test_msc import _infusion, _local
from trialdesk.errors import EditCheckFailed
from trialdesk.web.casebook.models import Deviation, DeviationStatus, FormRecord
from trialdesk.web.casebook.services import mark_form_entered_in_error, save_form

pytestmark = pytest.mark.django_db


def _not_given(allocation, hours_after_randomization: float = 2, **changes) -> dict[str, str]:
    return {"reason": "patient_unstable",
            "decided_at": _local(allocation, hours_after_randomization), **changes}


def _iso(allocation, hours_after_randomization: float) -> str:
    """A time as the service and the API take it (ISO 8601 with its offset)."""
    return (allocation.randomized_at + dt.timedelta(hours=hours_after_randomization)
            ).isoformat()


def _url(allocation, name: str = "msc_not_given") -> str:
    return reverse(f"casebook:{name}", args=[allocation.subject_id])


def test_dose_not_given_opens_a_major_deviation_and_leaves_the_lab_queue(lab_user,
                                                                          msc_patient):
    client = browser(lab_user)
    queue_url = reverse("randomization:lab_dashboard")
    assert msc_patient.subject_id in client.get(queue_url).content.decode()
    lab_page = client.get(reverse("casebook:lab")).content.decode()
    assert _url(msc_patient) in lab_page and "record not given" in lab_page
    response = client.post(_url(msc_patient), _not_given(msc_patient))
    assert response.status_code == 302
    record = FormRecord.objects.get(allocation=msc_patient, form_id="msc_not_given")
    assert record.day is None and record.data["reason"] == "patient_unstable"
    [deviation] = Deviation.objects.filter(allocation=msc_patient)
    assert (deviation.code, deviation.severity, deviation.status) == (
        "MSC_NOT_GIVEN", "major", DeviationStatus.OPEN)
    assert deviation.message == ("The allocated MSC dose was not given: Patient too unstable "
                                 "for the infusion.")
    assert deviation.source == record
    after = client.get(queue_url).content.decode()
    assert msc_patient.subject_id not in after
    assert "1 MSC dose recorded as not given" in after
    lab_page = client.get(reverse("casebook:lab")).content.decode()
    assert "not given: Patient too unstable for the infusion" in lab_page
    assert "record not given" not in lab_page


def test_the_infusion_slot_is_closed_by_the_not_given_record(rumcess, lab_user, msc_patient):
    from trialdesk.web.casebook.services import casebook

    save_form(rumcess, msc_patient, "msc_not_given", None,
              {"reason": "died_before_infusion",
               "decided_at": _iso(msc_patient, 3)}, user=lab_user)
    slot = casebook(rumcess, msc_patient).schedule.slot("msc_infusion", 0)
    assert (slot.status.value, slot.reason) == ("not_required", "MSC dose recorded as not given")


def test_an_infusion_and_a_not_given_record_refuse_each_other(rumcess, lab_user,
                                                              msc_patient, randomize_into):
    client = browser(lab_user)
    # infusion first: the not-given record is refused, nothing saved
    assert client.post(_url(msc_patient, "msc_infusion"),
                       _infusion(msc_patient, 5)).status_code == 302
    refused = client.post(_url(msc_patient), _not_given(msc_patient))
    page = refused.content.decode()
    assert refused.status_code == 400 and "MSC_GIVEN_AND_NOT_GIVEN" in page
    assert "An MSC infusion is recorded for this patient" in page
    assert not FormRecord.objects.filter(form_id="msc_not_given").exists()
    # not given first: the infusion is refused (through the service as the API uses it)
    other = randomize_into("msc")
    save_form(rumcess, other, "msc_not_given", None,
              {"reason": "consent_withdrawn", "decided_at": _iso(other, 1)}, user=lab_user)
    with pytest.raises(EditCheckFailed) as refusal:
        save_form(rumcess, other, "msc_infusion", 0,
                  {"infusion_start_at": _iso(other, 5), "weight_kg": 70,
                   "weight_basis": "actual", "cells_infused": 7e7}, user=lab_user)
    assert "recorded as not given" in refusal.value.message
    assert not FormRecord.objects.filter(allocation=other, form_id="msc_infusion").exists()


def test_other_needs_its_detail(lab_user, msc_patient):
    client = browser(lab_user)
    refused = client.post(_url(msc_patient), _not_given(msc_patient, reason="other"))
    assert refused.status_code == 400
    assert "The reason is &#x27;Other&#x27;: say what it was" in refused.content.decode()
    assert not FormRecord.objects.filter(allocation=msc_patient).exists()
    saved = client.post(_url(msc_patient), _not_given(
        msc_patient, reason="other", reason_detail="no venous access for 12 h"))
    assert saved.status_code == 302
    deviation = Deviation.objects.get(allocation=msc_patient, code="MSC_NOT_GIVEN")
    assert deviation.message.endswith("Other (no venous access for 12 h).")


def test_a_decision_in_the_future_or_before_randomization_is_refused(lab_user, msc_patient):
    client = browser(lab_user)
    future = client.post(_url(msc_patient), _not_given(msc_patient, 6 * 24))  # tomorrow
    assert future.status_code == 400 and "FUTURE_TIME" in future.content.decode()
    early = client.post(_url(msc_patient), _not_given(msc_patient, -1))
    assert early.status_code == 400 and "TIME_ORDER" in early.content.decode()
    assert "before randomization" in early.content.decode()
    assert not FormRecord.objects.filter(allocation=msc_patient).exists()
    assert not Deviation.objects.filter(allocation=msc_patient).exists()


def test_control_arm_has_no_dose_to_withhold(lab_user, control_patient):
    client = browser(lab_user)
    assert control_patient.subject_id not in client.get(reverse("casebook:lab")
                                                        ).content.decode()
    refused = client.post(_url(control_patient),
                          {**_not_given(control_patient), "confirm": "WRONG_ARM:"})
    assert refused.status_code == 400 and "NOT_IN_MSC_ARM" in refused.content.decode()
    # the message names the arms as the protocol labels them (rumcess.yaml), not by id
    assert ("in the Standard therapy arm, which receives no MSC (MSC + standard therapy arm "
            "only)") in refused.content.decode().replace("&#x27;", "'")
    assert not FormRecord.objects.filter(allocation=control_patient).exists()
    assert not Deviation.objects.filter(allocation=control_patient).exists()


def test_entered_in_error_resolves_the_deviation_and_puts_the_dose_back(
        rumcess, lab_user, investigator, msc_patient):
    client = browser(lab_user)
    client.post(_url(msc_patient), _not_given(msc_patient))
    mark_form_entered_in_error(rumcess, msc_patient, "msc_not_given", None, investigator,
                               reason="wrong patient")
    deviation = Deviation.objects.get(allocation=msc_patient, code="MSC_NOT_GIVEN")
    assert deviation.status == DeviationStatus.RESOLVED
    queue = client.get(reverse("randomization:lab_dashboard")).content.decode()
    assert msc_patient.subject_id in queue and "recorded as not given" not in queue
    # the dose can now be recorded as given
    assert client.post(_url(msc_patient, "msc_infusion"),
                       _infusion(msc_patient, 5)).status_code == 302


def test_only_the_lab_records_the_dose_not_given(investigator, msc_patient):
    assert browser(investigator).get(_url(msc_patient)).status_code == 403
