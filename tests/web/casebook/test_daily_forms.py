"""Daily forms through the pages and the real database: SOFA shown, refusals, audit."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from tests.web.casebook.conftest import browser
from trialdesk.clinical.sofa import SofaInputs, compute_sofa
from trialdesk.errors import ConfirmationRequired, EditCheckFailed, InputRejected, RecordLocked
from trialdesk.web.casebook.models import FormRecord
from trialdesk.web.casebook.services import save_form

pytestmark = pytest.mark.django_db

#: domain.md §4.1's worked patient (SOFA 17, 14 without coagulation), as typed in the form
WORKED_DAY = {"pao2_mmhg": "70", "fio2_fraction": "0.5", "respiratory_support": "invasive",
              "platelets_10e9_per_l": "35", "bilirubin_umol_l": "40", "map_mmhg": "62",
              "norepinephrine_ug_kg_min": "0.25", "gcs": "11", "creatinine_umol_l": "180",
              "urine_ml_per_day": "350"}

OTHER_DAYS = [
    {"pao2_mmhg": "84", "fio2_fraction": "0.21", "platelets_10e9_per_l": "150",
     "bilirubin_mg_dl": "1.95", "map_mmhg": "70", "gcs": "15", "creatinine_mg_dl": "1.1"},
    {"pao2_mmhg": "55", "fio2_fraction": "0.6", "respiratory_support": "noninvasive",
     "platelets_10e9_per_l": "19", "dopamine_ug_kg_min": "5", "gcs": "5",
     "urine_ml_per_day": "150"},
    {"pao2_mmhg": "60", "fio2_fraction": "0.4", "respiratory_support": "oxygen",
     "dobutamine_ug_kg_min": "4", "creatinine_umol_l": "450"},
]


def _core(form: dict[str, str]):
    """SOFA by trialdesk.clinical.sofa for the same inputs (oxygen alone = no support)."""
    values = {k: (v if k == "respiratory_support" else float(v)) for k, v in form.items()}
    if values.get("respiratory_support") == "oxygen":
        values["respiratory_support"] = "none"
    return compute_sofa(SofaInputs.from_mapping(values))


def _shown(html: str, element_id: str) -> int:
    return int(re.search(rf'id="{element_id}">(\d+)<', html).group(1))


def form_url(allocation, form_id="sofa", day="0"):
    return reverse("casebook:form", args=[allocation.subject_id, form_id, day])


@pytest.mark.parametrize("typed", [WORKED_DAY, *OTHER_DAYS])
def test_live_sofa_shows_the_clinical_cores_scores(typed, investigator, msc_patient):
    response = browser(investigator).post(reverse("casebook:live_sofa"), typed,
                                          HTTP_HX_REQUEST="true")
    html = response.content.decode()
    core = _core(typed)
    assert _shown(html, "sofa-total") == core.total
    assert _shown(html, "sofa-total-wo-coag") == core.total_without_coagulation
    for name, score in core.components.items():
        cell = re.search(rf'data-component="{name}">(.*?)</td>', html).group(1)
        assert cell == ("<span class=\"status-unknown\">missing</span>" if score is None
                        else str(score))


def test_the_worked_patient_scores_17_and_14(investigator, msc_patient):
    html = browser(investigator).post(reverse("casebook:live_sofa"), WORKED_DAY).content.decode()
    assert (_shown(html, "sofa-total"), _shown(html, "sofa-total-wo-coag")) == (17, 14)


def test_live_sofa_names_fio2_given_as_a_percentage(investigator, msc_patient):
    html = browser(investigator).post(reverse("casebook:live_sofa"),
                                      {**WORKED_DAY, "fio2_fraction": "40"}).content.decode()
    assert "LIKELY_WRONG_UNIT" in html and "enter 0.40" in html


def test_saved_day_shows_the_cores_sofa_on_form_and_casebook(investigator, msc_patient):
    client = browser(investigator)
    response = client.post(form_url(msc_patient, day="1"), WORKED_DAY)
    assert response.status_code == 302
    record = FormRecord.objects.get(allocation=msc_patient, form_id="sofa", day=1)
    assert record.data["fio2_fraction"] == 0.5 and record.data["gcs"] == 11
    core = _core(WORKED_DAY)
    assert record.derived["sofa"]["total"] == core.total
    page = client.get(form_url(msc_patient, day="1")).content.decode()
    assert _shown(page, "sofa-total") == core.total
    book = client.get(reverse("casebook:detail", args=[msc_patient.subject_id])).content.decode()
    assert f'data-sofa-total="{core.total}"' in book
    assert 'data-form="sofa" data-day="1" data-status="done"' in book


def test_a_refused_save_keeps_saved_data_and_returns_the_input(investigator, msc_patient):
    client = browser(investigator)
    client.post(form_url(msc_patient), WORKED_DAY)
    record = FormRecord.objects.get(allocation=msc_patient, form_id="sofa", day=0)
    rows = record.history.count()
    bad = {**WORKED_DAY, "fio2_fraction": "40", "gcs": "2", "reason": "corrected"}
    response = client.post(form_url(msc_patient), bad)
    html = response.content.decode()
    assert response.status_code == 400
    assert "EDIT_CHECK_FAILED" in html
    assert "enter 0.40" in html and "GCS" in html  # both problems at once
    assert 'name="fio2_fraction" id="id_fio2_fraction" value="40"' in html
    assert 'value="corrected"' in html
    record.refresh_from_db()
    assert record.data["fio2_fraction"] == 0.5 and record.history.count() == rows


def test_changing_saved_data_needs_a_reason_kept_in_the_audit(investigator, msc_patient, rumcess):
    client = browser(investigator)
    client.post(form_url(msc_patient), WORKED_DAY)
    no_reason = client.post(form_url(msc_patient), {**WORKED_DAY, "gcs": "12"})
    assert no_reason.status_code == 400 and "give a reason" in no_reason.content.decode()
    client.post(form_url(msc_patient), {**WORKED_DAY, "gcs": "12",
                                        "reason": "GCS re-assessed off sedation"})
    record = FormRecord.objects.get(allocation=msc_patient, form_id="sofa", day=0)
    assert record.data["gcs"] == 12
    reasons = list(record.history.order_by("history_id").values_list("history_change_reason",
                                                                     "history_user__username"))
    assert reasons == [("form entered", "ivan"), ("GCS re-assessed off sedation", "ivan")]
    unchanged = save_form(rumcess, msc_patient, "sofa", 0, record.data, user=investigator)
    assert not unchanged.changed and record.history.count() == 2


def test_unusual_values_need_a_confirmation_that_is_audited(investigator, msc_patient):
    client = browser(investigator)
    unusual = {**WORKED_DAY, "map_mmhg": "30"}
    refused = client.post(form_url(msc_patient), unusual)
    assert refused.status_code == 400
    assert "CONFIRMATION_REQUIRED" in refused.content.decode()
    assert not FormRecord.objects.filter(allocation=msc_patient).exists()
    client.post(form_url(msc_patient), {**unusual, "confirm": "UNUSUAL_VALUE:map_mmhg"})
    record = FormRecord.objects.get(allocation=msc_patient, form_id="sofa", day=0)
    [confirmed] = record.confirmed_warnings
    assert confirmed["key"] == "UNUSUAL_VALUE:map_mmhg" and confirmed["confirmed_by"] == "ivan"
    assert "30 mmHg is unusual" in record.history.get().history_change_reason


def test_service_refusals_list_every_problem(rumcess, investigator, msc_patient):
    with pytest.raises(EditCheckFailed) as refused:
        save_form(rumcess, msc_patient, "sofa", 0, {"fio2_fraction": 40, "gcs": 2},
                  user=investigator)
    assert {p["field"] for p in refused.value.problems} == {"fio2_fraction", "gcs"}
    with pytest.raises(ConfirmationRequired):
        save_form(rumcess, msc_patient, "sofa", 0, {"map_mmhg": 30}, user=investigator)
    with pytest.raises(InputRejected):
        save_form(rumcess, msc_patient, "no_such_form", 0, {}, user=investigator)


def test_no_visit_after_the_recorded_death(rumcess, investigator, msc_patient):
    save_form(rumcess, msc_patient, "sofa", 2, {"gcs": 8}, user=investigator)
    death = save_form(rumcess, msc_patient, "end_of_study", None,
                      {"status": "died", "date": _date(msc_patient, 3)}, user=investigator)
    assert death.created
    with pytest.raises(EditCheckFailed, match="after the recorded death"):
        save_form(rumcess, msc_patient, "sofa", 4, {"gcs": 8}, user=investigator)
    book = browser(investigator).get(reverse("casebook:detail",
                                             args=[msc_patient.subject_id])).content.decode()
    assert 'data-form="sofa" data-day="4" data-status="not_required"' in book
    assert 'id="death"' in book


def _date(allocation, day: int) -> str:
    from trialdesk.crf.schedule import day_date

    return day_date(day, allocation.randomized_at, allocation.site.timezone).isoformat()


def test_standard_therapy_shows_bundle_compliance(investigator, msc_patient):
    client = browser(investigator)
    onset = msc_patient.screening.onset_utc.astimezone(dt.timezone(dt.timedelta(hours=3)))
    local = lambda h: (onset + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
    typed = {"lactate_measured_at": local(1), "lactate_mmol_l": "36",
             "lactate_mmol_l__unit": "mg/dL", "blood_cultures_at": local(1.5),
             "antibiotics_first_dose_at": local(3.5), "crystalloid_ml_per_kg_3h": "30"}
    assert client.post(form_url(msc_patient, "standard_therapy"), typed).status_code == 302
    record = FormRecord.objects.get(allocation=msc_patient, form_id="standard_therapy")
    bundles = {e["id"]: e["status"] for e in record.derived["bundles"]["elements"]}
    assert bundles["antibiotics"] == "not_met"  # 3 h 30 min after onset
    assert bundles["crystalloid"] == "met"
    assert bundles["repeat_lactate"] == "unknown"  # 36 mg/dL = 4 mmol/L is elevated
    page = client.get(form_url(msc_patient, "standard_therapy")).content.decode()
    assert "3 h 30 min after onset" in page


def test_a_locked_patient_cannot_change(rumcess, investigator, data_manager, msc_patient):
    from trialdesk.web.datamgmt.locks import lock_patient

    lock_patient(msc_patient, data_manager, reason="database lock for the final analysis")
    with pytest.raises(RecordLocked):
        save_form(rumcess, msc_patient, "sofa", 0, {"gcs": 8}, user=investigator)
    assert not FormRecord.objects.filter(allocation=msc_patient).exists()
