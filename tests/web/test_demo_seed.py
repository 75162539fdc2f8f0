"""The demo trial of ``make run``: a simulated trial entered through the real services.

Twelve virtual patients are seeded into the test database, ending on 1 June 2025 09:00
UTC, against a sealed list generated here (so the arms are known independently of
the seeder). The expectations are the protocol's rules restated: arms come from the
list in sequence, MSC forms exist only in the MSC arm, an infusion later than onset +
10 h is a deviation, vital status follows day 28 (+2 days of entry delay), the
simulator's data-entry errors are refused with the codes it names.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth import get_user_model
from typer.testing import CliRunner

from trialdesk.crf.schedule import SlotStatus, day_date
from trialdesk.randomization import AllocationList, generate_list
from trialdesk.safety.deadlines import ObligationKind, ObligationStatus
from trialdesk.simulation.patients import virtual_patient
from trialdesk.web.audit.chain import verify_chain
from trialdesk.web.casebook.models import Deviation, FormRecord
from trialdesk.web.casebook.services import casebook
from trialdesk.web.demo_seed import (
    DEMO_ERROR_RATES,
    SEED_PREFIX,
    DemoNotAllowed,
    seed_trial,
)
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import import_list
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.safety.services import dashboard_rows
from trialdesk.web.screening.models import Screening

pytestmark = pytest.mark.django_db

PATIENTS = 12
SEED = 2013
TODAY = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)
MSC = "msc"


@pytest.fixture
def sealed(rumcess, settings, django_user_model):
    """Demo mode, the demo accounts, and a sealed list known to the test."""
    from trialdesk.web.demo import setup_demo
    from trialdesk.web.sites.services import sync_sites

    settings.DEMO = True
    sync_sites(rumcess)
    statistician = django_user_model.objects.create_user("list-maker", password="x" * 16)
    alist = generate_list(rumcess, seed="demo-seed-tests", size_per_stratum=40)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=statistician)
    setup_demo(rumcess)  # accounts and its own five screenings; keeps our list
    return AllocationList.from_csv(alist.to_csv())


@pytest.fixture
def seeded(rumcess, sealed):
    screenings_before = Screening.objects.count()
    report = seed_trial(rumcess, patients=PATIENTS, seed=SEED, today=TODAY)
    return report, screenings_before


def _seeded_allocations():
    return list(Allocation.objects.filter(request_id__startswith=SEED_PREFIX)
                .select_related("site", "screening").order_by("randomized_at"))


def test_seeding_screens_randomizes_and_fills_the_casebooks(rumcess, seeded):
    report, before = seeded
    allocations = _seeded_allocations()
    assert report.seeded and len(allocations) == PATIENTS == report.randomized
    # 12 randomized + round(0.4 × 12) = 5 not enrolled: the first five reasons of the
    # cycle (neutrophils, declined, age, missed window, chemo-resistant)
    assert Screening.objects.count() - before == PATIENTS + 5
    closed = Screening.objects.exclude(not_enrolled_reason="").values_list(
        "not_enrolled_reason", flat=True)
    reasons = sorted(r.split(":")[0] for r in closed)
    # setup_demo closes one screening as declined itself
    assert reasons == ["declined", "declined", "ineligible", "ineligible", "ineligible",
                       "missed_window"]
    assert any("I3" in r for r in closed) and any("E3" in r for r in closed) \
        and any("E1" in r for r in closed)
    assert report.notes == []  # each not-eligible screening failed the intended criterion
    # every patient was randomized in the 10-h window, after consent, 36 h (± the
    # placement's rounding to whole minutes) or more before TODAY
    for a in allocations:
        hours = (a.randomized_at - a.screening.onset_utc).total_seconds() / 3600
        assert 0 < hours <= 10
        consent = a.screening.consents.get()
        assert consent.obtained_at <= a.randomized_at
        assert a.randomized_at <= TODAY - dt.timedelta(hours=36, minutes=-1)
    # the trial ends at TODAY: the last patient randomized 36 h before it
    assert allocations[-1].randomized_at == pytest.approx(
        TODAY - dt.timedelta(hours=36), abs=dt.timedelta(minutes=1))
    for a in allocations:
        forms = {(r.form_id, r.day) for r in a.form_records.all()}
        # day 0 of standard therapy and markers is entered within 30 h of randomization
        assert ("standard_therapy", 0) in forms and ("inflammatory_markers", 0) in forms
        # vital status at day 28 is entered two days later, if that moment has come
        past_day_30 = a.randomized_at + dt.timedelta(days=30) <= TODAY
        assert (("vital_status", 28) in forms) == past_day_30
        # no form for a day that had not begun on TODAY (site calendar)
        today_local = TODAY.astimezone(dt.timezone(dt.timedelta(hours=3))).date()
        assert all(day_date(d, a.randomized_at, "Europe/Moscow") <= today_local
                   for _, d in forms if d is not None)
    # recent patients have forms due, and missing or late ones are overdue
    statuses = {s.status for a in allocations
                for s in casebook(rumcess, a, now=TODAY).schedule.slots}
    assert {SlotStatus.DONE, SlotStatus.DUE, SlotStatus.OVERDUE} <= statuses


def test_a_death_is_recorded_once_and_no_visit_follows_it(rumcess, seeded):
    for a in _seeded_allocations():
        records = list(a.form_records.all())
        died = [r for r in records if r.form_id == "end_of_study"
                and r.data["status"] == "died"]
        vital = [r for r in records if r.form_id == "vital_status" and r.day == 28]
        if died:
            death = dt.date.fromisoformat(died[0].data["date"])
            visits = [day_date(r.day, a.randomized_at, "Europe/Moscow") for r in records
                      if r.day is not None and r.form_id != "vital_status"]
            assert max(visits) <= death
            if vital and vital[0].data["status"] == "dead":
                assert vital[0].data["date_of_death"] == died[0].data["date"]
            assert a.adverse_events.filter(outcome="fatal", severity_grade=5).count() == 1


def test_arms_are_the_sealed_list_in_sequence_and_balanced(seeded, sealed):
    by_slot = {(e.stratum, e.sequence): e.arm for e in sealed.entries}
    every = list(Allocation.objects.all())  # setup_demo's patient draws from the list too
    for a in every:
        assert a.arm == by_slot[(a.stratum, a.sequence)]
    for stratum in {a.stratum for a in every}:
        sequences = sorted(a.sequence for a in every if a.stratum == stratum)
        assert sequences == list(range(1, len(sequences) + 1))
        arms = [by_slot[(stratum, s)] for s in sequences]
        # blocks of 2 and 4 at 1:1: never more than 2 apart within a stratum
        assert abs(arms.count(MSC) - arms.count("control")) <= 2


def test_msc_product_and_infusion_only_in_the_msc_arm(rumcess, seeded):
    allocations = _seeded_allocations()
    assert {a.arm for a in allocations} == {MSC, "control"}
    late = set()
    for a in allocations:
        forms = {r.form_id: r for r in a.form_records.filter(
            form_id__in=("msc_product", "msc_infusion"))}
        if a.arm != MSC:
            assert forms == {}
            continue
        assert set(forms) == {"msc_product", "msc_infusion"}
        assert {r.entered_by.get_username() for r in forms.values()} == {"lab"}
        infusion = forms["msc_infusion"]
        start = dt.datetime.fromisoformat(infusion.data["infusion_start_at"])
        assert start >= a.randomized_at
        dose = infusion.data["cells_infused"] / infusion.data["weight_kg"]
        assert 1.0e6 <= dose <= 2.0e6
        if start > a.screening.onset_utc + dt.timedelta(hours=10):
            late.add(a.subject_id)
    deviations = {d.allocation.subject_id for d in Deviation.objects.filter(
        code="INFUSION_LATE", allocation__in=allocations)}
    assert late and deviations == late


def test_every_injected_error_is_refused_with_the_code_the_simulator_names(rumcess, seeded):
    report, _ = seeded
    tried = report.entry_errors
    assert {e.form for e in tried} == {"screening", "sofa"}
    assert all(e.as_expected for e in tried), [e for e in tried if not e.as_expected]
    for e in tried:
        if e.expected_code is not None:
            assert e.expected_code in e.observed_codes
    # every screening error the simulator injected into these patients was tried
    arms = {int(a.request_id.rsplit("-", 1)[1]): a.arm for a in _seeded_allocations()}
    injected = [(i, e.kind) for i, arm in arms.items()
                for e in virtual_patient(i, treated=arm == MSC, seed=SEED,
                                         errors=DEMO_ERROR_RATES).entry_errors
                if e.form == "screening"]
    assert len(injected) == sum(1 for e in tried if e.form == "screening") > 0
    # nothing stored carries a refused value: FiO2 is a fraction, norepinephrine a dose
    for r in FormRecord.objects.filter(form_id="sofa"):
        assert r.data.get("fio2_fraction", 0.5) <= 1.0
        assert r.data.get("norepinephrine_ug_kg_min", 0) <= 2.0
        assert "bilirubin_mg_dl" not in r.data
    # onsets entered without their offset were corrected to Moscow time
    assert all(a.screening.record["septic_shock_onset"].endswith("+03:00")
               for a in _seeded_allocations())


def test_the_audit_trail_keeps_each_correction_with_its_reason(seeded):
    report, _ = seeded
    sofa_errors = {(e.subject, e.day) for e in report.entry_errors if e.form == "sofa"}
    corrected = FormRecord.history.filter(
        form_id="sofa", history_change_reason__startswith="corrected after the edit check")
    assert {(h.allocation.subject_id, h.day) for h in corrected} == sofa_errors
    screening_errors = {e.subject for e in report.entry_errors if e.form == "screening"}
    fixed = Screening.history.filter(history_change_reason__startswith="corrected at screening")
    assert {h.screening_number for h in fixed} == screening_errors
    # a correction after saving (source data verification) keeps the old value too
    sdv = FormRecord.history.filter(history_change_reason__startswith="source data verif")
    assert sdv.exists()
    for h in sdv:
        previous = h.prev_record
        assert previous is not None and h.history_type == "~"
        assert h.data["urine_ml_per_day"] - previous.data["urine_ml_per_day"] == 150
    assert verify_chain().ok


def test_safety_shows_an_overdue_sponsor_report_and_exempt_deaths(rumcess, seeded):
    events = AdverseEvent.objects.filter(allocation__request_id__startswith=SEED_PREFIX)
    rows = dashboard_rows(events, rumcess, at=TODAY)
    to_sponsor = [r for r in rows if r.obligation.kind is ObligationKind.SAE_TO_SPONSOR]
    assert any(r.obligation.status is ObligationStatus.OVERDUE for r in to_sponsor)
    assert any(r.obligation.status is ObligationStatus.MET for r in to_sponsor)
    # deaths from septic shock are the protocol's exempt events: serious, no expedited report
    deaths = events.filter(exempt_event_id="death_from_septic_shock")
    assert deaths.exists() and all(ae.serious for ae in deaths)
    assert not [r for r in rows if r.ae.exempt_event_id == "death_from_septic_shock"]


def test_seeding_again_changes_nothing(rumcess, seeded):
    counts = (Screening.objects.count(), Allocation.objects.count(),
              FormRecord.objects.count(), AdverseEvent.objects.count(),
              FormRecord.history.count(), Screening.history.count())
    again = seed_trial(rumcess, patients=PATIENTS, seed=99, today=TODAY)
    assert not again.seeded and again.seed == SEED and again.randomized == PATIENTS
    assert counts == (Screening.objects.count(), Allocation.objects.count(),
                      FormRecord.objects.count(), AdverseEvent.objects.count(),
                      FormRecord.history.count(), Screening.history.count())


def test_simulated_patients_never_enter_a_real_trial(rumcess, settings):
    settings.DEMO = False
    with pytest.raises(DemoNotAllowed):
        seed_trial(rumcess, patients=2, today=TODAY)
    assert not Allocation.objects.exists() and not get_user_model().objects.exists()


def test_cli_seeds_a_small_trial_and_reports_it_as_json(sealed):
    from trialdesk.cli import app

    result = CliRunner().invoke(app, ["demo", "seed", "--patients", "3", "--seed", "7",
                                      "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["seeded"] is True and data["randomized"] == 3 and data["seed"] == 7
    assert sum(data["arms"].values()) == 3
    again = CliRunner().invoke(app, ["demo", "seed", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["seeded"] is False


def test_demo_passwords_are_always_accepted_by_the_validators(monkeypatch, settings):
    """Regression: 'iAQstrYIOtngkQ8G' is refused as too similar to 'investigator'; demo
    setup must draw again rather than fail `make run`."""
    import secrets

    from trialdesk.web import demo

    draws = iter(["iAQstrYIOtngkQ8G", "a-perfectly-random-one"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(draws))
    assert demo._demo_password("investigator", "investigator@example.org") == \
        "a-perfectly-random-one"
