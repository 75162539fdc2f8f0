"""A casebook form saved by mistake is marked entered in error: kept, audited with the
reason, gone from the schedule, SOFA and the analysis export, and the slot re-enterable.

SOFA reference (Vincent 1996, docs/conventions.md: missing components score 0): a day
with only GCS 8 scores CNS 3 (GCS 6–9), total 3; GCS 14 scores 1 (13–14), total 1.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.web.casebook.conftest import browser
from trialdesk.crf.schedule import day_date
from trialdesk.errors import InputRejected, RecordLocked
from trialdesk.web.api.services import create_token
from trialdesk.web.casebook.models import FormRecord
from trialdesk.web.casebook.services import mark_form_entered_in_error, save_form
from trialdesk.web.datamgmt.locks import lock_patient, lock_trial
from trialdesk.web.reports.export import export_tables

pytestmark = pytest.mark.django_db

REASON = "entered on the wrong patient"


def in_error_url(allocation, form_id="sofa", day="1") -> str:
    return reverse("casebook:entered_in_error", args=[allocation.subject_id, form_id, day])


def casebook_page(user, allocation, show: str = "") -> str:
    url = reverse("casebook:detail", args=[allocation.subject_id])
    return browser(user).get(url + (f"?show={show}" if show else "")).content.decode()


def test_a_form_entered_in_error_is_kept_audited_and_leaves_the_schedule_and_sofa(
        rumcess, investigator, msc_patient):
    saved = save_form(rumcess, msc_patient, "sofa", 1, {"gcs": 8}, user=investigator).record
    page = casebook_page(investigator, msc_patient)
    assert 'data-form="sofa" data-day="1" data-status="done"' in page
    assert 'data-sofa-total="3"' in page

    response = browser(investigator).post(in_error_url(msc_patient), {"reason": REASON})
    assert response.status_code == 302
    saved.refresh_from_db()
    assert saved.entered_in_error and saved.entered_in_error_reason == REASON
    assert saved.data == {"gcs": 8}  # nothing deleted, nothing changed but the mark
    last = saved.history.order_by("-history_id").first()
    assert (last.history_user, last.history_change_reason) == (
        investigator, f"entered in error: {REASON}")
    assert last.entered_in_error

    page = casebook_page(investigator, msc_patient)
    assert 'data-form="sofa" data-day="1" data-status="done"' not in page
    assert 'data-sofa-total="3"' not in page
    assert REASON not in page and "Show entered in error (1)" in page
    shown = casebook_page(investigator, msc_patient, show="entered_in_error")
    assert REASON in shown and 'data-form="sofa" data-day="1"' in shown


def test_the_slot_of_a_form_entered_in_error_can_be_entered_again(
        rumcess, investigator, msc_patient):
    first = save_form(rumcess, msc_patient, "sofa", 1, {"gcs": 8}, user=investigator).record
    mark_form_entered_in_error(rumcess, msc_patient, "sofa", 1, investigator, reason=REASON)
    again = save_form(rumcess, msc_patient, "sofa", 1, {"gcs": 14}, user=investigator)
    assert again.created and again.record.pk != first.pk  # a new record, no reason needed
    assert again.record.derived["sofa"]["total"] == 1
    rows = FormRecord.objects.filter(allocation=msc_patient, form_id="sofa", day=1)
    assert sorted(rows.values_list("entered_in_error", flat=True)) == [False, True]
    assert 'data-sofa-total="1"' in casebook_page(investigator, msc_patient)
    with pytest.raises(InputRejected, match="No sofa form for day 2"):
        mark_form_entered_in_error(rumcess, msc_patient, "sofa", 2, investigator,
                                   reason=REASON)


def test_the_reason_is_required_and_a_refusal_changes_nothing(
        rumcess, investigator, msc_patient):
    record = save_form(rumcess, msc_patient, "sofa", 1, {"gcs": 8}, user=investigator).record
    with pytest.raises(InputRejected) as exc:
        mark_form_entered_in_error(rumcess, msc_patient, "sofa", 1, investigator, reason="  ")
    assert exc.value.field == "reason"
    browser(investigator).post(in_error_url(msc_patient), {"reason": ""})
    record.refresh_from_db()
    assert not record.entered_in_error and record.history.count() == 1


@pytest.mark.parametrize("lock", ["patient", "trial"])
def test_a_locked_form_cannot_be_marked(rumcess, investigator, data_manager, msc_patient,
                                        lock):
    record = save_form(rumcess, msc_patient, "sofa", 1, {"gcs": 8}, user=investigator).record
    if lock == "patient":
        lock_patient(msc_patient, data_manager, reason="casebook complete")
    else:
        lock_trial(data_manager, reason="final database lock")
    with pytest.raises(RecordLocked):
        mark_form_entered_in_error(rumcess, msc_patient, "sofa", 1, investigator,
                                   reason=REASON)
    record.refresh_from_db()
    assert not record.entered_in_error and record.history.count() == 1


def test_the_analysis_export_leaves_out_a_death_entered_in_error(
        rumcess, investigator, msc_patient):
    death_day = 3  # died on study day 3: event 1 at time 3 days (28-day mortality)
    date = day_date(death_day, msc_patient.randomized_at, msc_patient.site.timezone)
    save_form(rumcess, msc_patient, "end_of_study", None,
              {"status": "died", "date": date.isoformat()}, user=investigator)
    save_form(rumcess, msc_patient, "sofa", 0, {"gcs": 8}, user=investigator)

    def subject() -> dict:
        (row,) = [r for r in export_tables(rumcess).tables["subjects"]
                  if r["subject_id"] == msc_patient.subject_id]
        return row

    assert (subject()["event"], subject()["time"], subject()["sofa_total_day0"]) == (1, 3.0, 3)
    mark_form_entered_in_error(rumcess, msc_patient, "end_of_study", None, investigator,
                               reason="death recorded on the wrong patient")
    mark_form_entered_in_error(rumcess, msc_patient, "sofa", 0, investigator, reason=REASON)
    # alive, censored at the last day known alive (day 0: no other visit); no day-0 SOFA
    assert (subject()["event"], subject()["time"], subject()["sofa_total_day0"]) == (
        0, 0.0, None)


def test_the_api_marks_a_form_and_lists_it_apart(rumcess, investigator, lab_user,
                                                 msc_patient, client):
    save_form(rumcess, msc_patient, "sofa", 1, {"gcs": 8}, user=investigator)
    headers = {"Authorization": f"Bearer {create_token(investigator, 'test')[1]}"}
    url = f"/api/casebooks/{msc_patient.subject_id}/forms/sofa/1/entered-in-error"
    refused = client.post(url, {"reason": ""}, content_type="application/json",
                          headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "reason"
    lab = {"Authorization": f"Bearer {create_token(lab_user, 'test')[1]}"}
    assert client.post(url, {"reason": REASON}, content_type="application/json",
                       headers=lab).status_code == 403
    done = client.post(url, {"reason": REASON}, content_type="application/json",
                       headers=headers)
    assert done.status_code == 200
    assert (done.json()["entered_in_error"], done.json()["entered_in_error_reason"]) == (
        True, REASON)
    book = client.get(f"/api/casebooks/{msc_patient.subject_id}", headers=headers).json()
    assert book["records"] == []
    assert [(r["form_id"], r["day"]) for r in book["entered_in_error"]] == [("sofa", 1)]
    assert "1" not in book["sofa_by_day"]
    again = client.post(url, {"reason": REASON}, content_type="application/json",
                        headers=headers)
    assert again.status_code == 422  # nothing in use left to mark


def test_an_infusion_entered_in_error_takes_its_deviation_with_it(
        rumcess, investigator, lab_user, msc_patient):
    # onset 4 h before randomization (conftest): an infusion 7 h after randomization is
    # 11 h after onset, 1 h past the 10-h deadline: INFUSION_LATE
    from tests.web.casebook.test_msc import PRODUCT, _infusion
    from trialdesk.web.casebook.models import Deviation, DeviationStatus

    client = browser(lab_user)
    client.post(reverse("casebook:msc_product", args=[msc_patient.subject_id]), PRODUCT)
    client.post(reverse("casebook:msc_infusion", args=[msc_patient.subject_id]),
                _infusion(msc_patient, 7))
    (deviation,) = Deviation.objects.filter(allocation=msc_patient)
    assert (deviation.code, deviation.status) == ("INFUSION_LATE", DeviationStatus.OPEN)
    late_flag = 'class="late late-flag">LATE'
    assert late_flag in browser(lab_user).get(reverse("casebook:lab")).content.decode()
    response = browser(investigator).post(in_error_url(msc_patient, "msc_infusion", "0"),
                                          {"reason": "infusion of another patient"})
    assert response.status_code == 302
    deviation.refresh_from_db()
    assert deviation.status == DeviationStatus.RESOLVED
    lab_page = browser(lab_user).get(reverse("casebook:lab")).content.decode()
    assert late_flag not in lab_page  # the lab sees no infusion recorded any more
    # the lab records the right infusion (5 h after randomization: 9 h, on time)
    client.post(reverse("casebook:msc_infusion", args=[msc_patient.subject_id]),
                _infusion(msc_patient, 5))
    current = FormRecord.objects.active().get(allocation=msc_patient, form_id="msc_infusion")
    assert current.derived["late"] is False
    deviation.refresh_from_db()
    assert deviation.status == DeviationStatus.RESOLVED
