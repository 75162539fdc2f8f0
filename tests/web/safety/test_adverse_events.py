"""Adverse events on the real database: report, correct with a reason, deadlines shown,
an overdue SAE escalated on the safety dashboard, a locked patient refusing changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from trialdesk.clinical.timeutil import utcnow
from trialdesk.errors import InputRejected, RecordLocked, TimeOrderError
from trialdesk.web.audit.models import ChainLink
from trialdesk.web.datamgmt.locks import lock_patient, lock_trial, unlock_patient
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.safety.services import record_report, report_ae, update_ae

pytestmark = pytest.mark.django_db


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def sae_entry(hours_ago: float, **changes):
    now = utcnow()
    entry = {"term": "Anaphylactoid infusion reaction", "onset": _iso(now - dt.timedelta(
        hours=hours_ago + 1)), "awareness": _iso(now - dt.timedelta(hours=hours_ago)),
        "seriousness": ["life_threatening"], "severity_grade": 4, "causality": "probable",
        "expectedness": "unexpected", "outcome": "recovering"}
    entry.update(changes)
    return entry


def client_for(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def test_a_reported_sae_is_stored_as_entered_with_its_history(patient, ivan, rumcess):
    ae = report_ae(patient, ivan, sae_entry(2), protocol=rumcess)
    ae.refresh_from_db()
    assert ae.serious and ae.susar
    assert ae.seriousness == ["life_threatening"] and ae.severity_grade == 4
    (h,) = ae.history.all()
    assert h.history_user == ivan and h.history_change_reason == "adverse event reported"
    assert ChainLink.objects.filter(history_model="safety.HistoricalAdverseEvent",
                                    history_id=h.pk).exists()


def test_a_correction_needs_a_reason_and_keeps_the_old_values(patient, ivan, rumcess):
    ae = report_ae(patient, ivan, sae_entry(2), protocol=rumcess)
    with pytest.raises(InputRejected) as exc:
        update_ae(ae, ivan, sae_entry(2, causality="unlikely"), reason=" ", protocol=rumcess)
    assert exc.value.field == "reason"
    update_ae(ae, ivan, sae_entry(2, causality="unlikely"),
              reason="causality re-assessed after IB review", protocol=rumcess)
    ae.refresh_from_db()
    assert ae.causality == "unlikely" and not ae.susar and ae.serious
    reasons = list(ae.history.order_by("history_date").values_list(
        "history_change_reason", "causality"))
    assert reasons == [("adverse event reported", "probable"),
                       ("causality re-assessed after IB review", "unlikely")]


@pytest.mark.parametrize("changes, field", [
    ({"term": ""}, "term"),
    ({"awareness": "2026-03-01T10:00:00"}, "awareness"),
    ({"severity_grade": 7}, "severity_grade"),
    ({"seriousness": ["death"]}, "outcome"),
    ({"exempt_event_id": "sunburn"}, "exempt_event_id"),
    ({"colour": "red"}, "colour"),
])
def test_bad_entries_are_refused_and_nothing_is_saved(patient, ivan, rumcess, changes, field):
    with pytest.raises(InputRejected) as exc:
        report_ae(patient, ivan, sae_entry(2, **changes), protocol=rumcess)
    assert exc.value.field == field
    assert not AdverseEvent.objects.exists()


def test_awareness_before_onset_is_refused(patient, ivan, rumcess):
    now = utcnow()
    with pytest.raises(TimeOrderError):
        report_ae(patient, ivan, sae_entry(2, onset=_iso(now - dt.timedelta(hours=1)),
                                           awareness=_iso(now - dt.timedelta(hours=3))),
                  protocol=rumcess)


def test_a_report_cannot_predate_awareness_and_a_changed_report_time_needs_a_reason(
        patient, ivan, rumcess):
    ae = report_ae(patient, ivan, sae_entry(5), protocol=rumcess)
    with pytest.raises(TimeOrderError):
        record_report(ae, ivan, recipient="sponsor",
                      reported_at=ae.awareness_at - dt.timedelta(minutes=1))
    record_report(ae, ivan, recipient="sponsor", reported_at=utcnow() - dt.timedelta(hours=1))
    with pytest.raises(InputRejected) as exc:
        record_report(ae, ivan, recipient="sponsor", reported_at=utcnow())
    assert exc.value.field == "reason"


def test_overdue_sae_is_escalated_at_the_top_of_the_safety_dashboard(patient, ivan, rumcess):
    due = report_ae(patient, ivan, sae_entry(2, term="Pulmonary embolism"), protocol=rumcess)
    overdue = report_ae(patient, ivan, sae_entry(30, term="Acute liver failure"),
                        protocol=rumcess)
    response = client_for(ivan).get("/safety/")
    assert response.status_code == 200
    html = response.content.decode()
    pending = html[html.index('id="pending"'):html.index('id="settled"')]
    # the overdue SAE report (30 h after awareness > 24 h) comes first, highlighted
    assert pending.index("Acute liver failure") < pending.index("Pulmonary embolism")
    first_row = pending[pending.index("<tr class"):]
    assert first_row.startswith('<tr class="escalated"') and "OVERDUE" in first_row[:300]
    assert 'id="overdue-count"' in html and "1 report overdue" in html
    assert due.term in pending and overdue.term in pending


def test_the_dashboard_names_the_zone_susar_days_are_counted_in(ivan):
    # RUMCESS gives no reporting_timezone: the coordinating centre's zone applies
    # (protocols/rumcess.yaml, docs/conventions.md: "RUMCESS: Europe/Moscow"), never "None"
    html = client_for(ivan).get("/safety/").content.decode()
    assert "counted in Europe/Moscow." in html and "counted in None" not in html


def test_reporting_to_the_sponsor_in_time_moves_the_sae_off_the_pending_list(
        patient, ivan, rumcess):
    ae = report_ae(patient, ivan, sae_entry(3, causality="unrelated"), protocol=rumcess)
    record_report(ae, ivan, recipient="sponsor", reported_at=utcnow() - dt.timedelta(hours=1))
    html = client_for(ivan).get("/safety/").content.decode()
    pending = html[html.index('id="pending"'):html.index('id="settled"')]
    settled = html[html.index('id="settled"'):]
    assert ae.term not in pending and ae.term in settled and "in time" in settled


def test_an_exempt_disease_related_death_owes_no_expedited_report(patient, ivan, rumcess):
    report_ae(patient, ivan, sae_entry(40, term="Death, refractory septic shock",
                                       seriousness=["death"], severity_grade=5,
                                       outcome="fatal", causality="unrelated",
                                       exempt_event_id="death_from_septic_shock"),
              protocol=rumcess)
    html = client_for(ivan).get("/safety/").content.decode()
    assert "refractory septic shock" not in html and "No report is owed." in html


def test_the_form_reads_times_in_the_site_zone(patient, ivan, rumcess):
    msk = ZoneInfo("Europe/Moscow")
    onset = (utcnow() - dt.timedelta(days=1)).astimezone(msk).replace(second=0, microsecond=0)
    response = client_for(ivan).post(f"/safety/patient/{patient.subject_id}/new/", {
        "term": "Fever after infusion", "onset": onset.strftime("%Y-%m-%dT%H:%M"),
        "awareness": (onset + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "severity_grade": "1", "causality": "possible", "expectedness": "expected",
        "outcome": "recovered"})
    assert response.status_code == 302
    ae = AdverseEvent.objects.get()
    assert ae.onset_at == onset.astimezone(dt.UTC)
    assert not ae.serious


def test_a_bad_form_is_shown_again_with_the_message_and_the_values(patient, ivan):
    response = client_for(ivan).post(f"/safety/patient/{patient.subject_id}/new/", {
        "term": "Fever", "onset": "", "awareness": "", "severity_grade": "2"})
    assert response.status_code == 422
    assert "Onset is required" in response.content.decode()
    assert 'value="Fever"' in response.content.decode()


def test_a_locked_patient_refuses_new_and_changed_adverse_events(patient, ivan, dora,
                                                                 rumcess):
    ae = report_ae(patient, ivan, sae_entry(2), protocol=rumcess)
    lock_patient(patient, dora, reason="casebook complete, locked for interim analysis")
    with pytest.raises(RecordLocked, match="locked"):
        report_ae(patient, ivan, sae_entry(1, term="Rash"), protocol=rumcess)
    with pytest.raises(RecordLocked):
        update_ae(ae, ivan, sae_entry(2, outcome="recovered"), reason="follow-up",
                  protocol=rumcess)
    with pytest.raises(RecordLocked):
        record_report(ae, ivan, recipient="sponsor", reported_at=utcnow())
    response = client_for(ivan).post(f"/safety/patient/{patient.subject_id}/new/",
                                     {**sae_entry(1, term="Rash"), "seriousness": []})
    assert response.status_code == 422 and "RECORD_LOCKED" in response.content.decode()
    unlock_patient(patient, dora, reason="late SAE follow-up must be entered")
    update_ae(ae, ivan, sae_entry(2, outcome="recovered"), reason="follow-up",
              protocol=rumcess)
    lock_trial(dora, reason="final database lock")
    with pytest.raises(RecordLocked, match="trial database is locked"):
        report_ae(patient, ivan, sae_entry(1, term="Rash"), protocol=rumcess)
    assert AdverseEvent.objects.count() == 1


def test_site_staff_of_another_site_cannot_see_the_event(patient, ivan, rumcess,
                                                         django_user_model):
    from tests.web.conftest import member
    from trialdesk.web.sites.models import Site

    other = Site.objects.create(code="other", name="Other ICU", timezone="Europe/Berlin")
    stranger = member(django_user_model.objects.create_user("stranger"), "investigator",
                      other)
    ae = report_ae(patient, ivan, sae_entry(2), protocol=rumcess)
    assert client_for(stranger).get(f"/safety/ae/{ae.pk}/").status_code == 403
    assert ae.term not in client_for(stranger).get("/safety/").content.decode()
    assert client_for(ivan).get(f"/safety/ae/{ae.pk}/").status_code == 200
