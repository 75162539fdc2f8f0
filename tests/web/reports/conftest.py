"""A small RUMCESS trial built through the production services, 40 days after enrolment.

Three patients are randomized with the real sealed-list service (their arms are the
list's: control, msc, msc for this seed, checked by the trial fixture), then their time
stamps are moved 40 days back so that day 28 has passed. Forms, adverse events and the
screening log are recorded with the casebook, safety and screening services.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from django.test import Client

from tests.web.conftest import eligible_record, make_screening, member
from trialdesk.clinical.timeutil import utcnow
from trialdesk.crf.schedule import day_date
from trialdesk.randomization import generate_list
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import import_list, randomize
from trialdesk.web.screening.models import Screening

DAYS_AGO = 40
SEED = "reports-tests"
#: domain.md §4.1's worked patient: SOFA 17 (respiration 3, coagulation 3, liver 2,
#: cardiovascular 4, CNS 2, renal 3), on invasive ventilation and norepinephrine
WORKED_DAY = {"pao2_mmhg": 70, "fio2_fraction": 0.5, "respiratory_support": "invasive",
              "platelets_10e9_per_l": 35, "bilirubin_umol_l": 40, "map_mmhg": 62,
              "norepinephrine_ug_kg_min": 0.25, "gcs": 11, "creatinine_umol_l": 180,
              "urine_ml_per_day": 350}
#: a recovering day: every component 0 except CNS (GCS 14 → 1); oxygen only, no drugs
GOOD_DAY = {"pao2_mmhg": 90, "fio2_fraction": 0.21, "respiratory_support": "oxygen",
            "platelets_10e9_per_l": 160, "bilirubin_umol_l": 15, "map_mmhg": 75, "gcs": 14,
            "creatinine_umol_l": 90, "urine_ml_per_day": 1500}


def browser(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def local(allocation: Allocation, hours_after_randomization: float) -> str:
    t = allocation.randomized_at + dt.timedelta(hours=hours_after_randomization)
    return t.astimezone(dt.timezone(dt.timedelta(hours=3))).isoformat()


def date_of(allocation: Allocation, day: int) -> str:
    return day_date(day, allocation.randomized_at, allocation.site.timezone).isoformat()


@dataclass
class Trial:
    died_day5: Allocation  # msc: infused (late), SOFA day 0, dead on day 5, an SAE
    survivor: Allocation  # control: SOFA days 0 and 3, markers, alive on day 30
    lost: Allocation  # msc: not infused, lost to follow-up after day 10


@pytest.fixture
def investigator(django_user_model, nrch):
    return member(django_user_model.objects.create_user("ivan", password="x" * 16),
                  "investigator", nrch)


@pytest.fixture
def patients(rumcess, nrch, alice):
    """Three patients randomized 40 days ago (arms from the sealed list)."""
    member(alice, "coordinator", nrch)
    alist = generate_list(rumcess, seed=SEED, size_per_stratum=8)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice)
    made = []
    for _ in range(3):
        screening = make_screening(nrch, alice, eligible_record(utcnow() - dt.timedelta(hours=2)))
        a = randomize(screening.pk, user=alice, request_id=uuid.uuid4().hex,
                      protocol=rumcess).allocation
        # 07:00 UTC = 10:00 in Moscow: every time below falls on the intended study day
        randomized = dt.datetime.combine((utcnow() - dt.timedelta(days=DAYS_AGO)).date(),
                                         dt.time(7, 0), tzinfo=dt.UTC)
        Allocation.objects.filter(pk=a.pk).update(randomized_at=randomized)
        Screening.objects.filter(pk=screening.pk).update(
            onset_utc=randomized - dt.timedelta(hours=4))
        made.append(Allocation.objects.select_related("site", "screening").get(pk=a.pk))
    return made


def _birthday_on_day0(allocation: Allocation, years: int, days_after: int = 0) -> None:
    """Give the patient a birth date ``years`` before day 0 (+ ``days_after`` days)."""
    day0 = dt.date.fromisoformat(date_of(allocation, 0))
    born = day0.replace(year=day0.year - years) + dt.timedelta(days=days_after)
    record = {**allocation.screening.record, "birth_date": born.isoformat()}
    Screening.objects.filter(pk=allocation.screening_id).update(record=record)


@pytest.fixture
def trial(rumcess, patients, investigator, django_user_model, nrch):
    """The three patients' records, entered through the casebook and safety services."""
    from trialdesk.web.casebook.services import save_form
    from trialdesk.web.safety.services import report_ae
    from trialdesk.web.screening.services import close_screening, mark_entered_in_error

    died, survivor, lost = patients
    assert [p.arm for p in patients] == ["msc", "control", "msc"]  # the sealed list's
    lab = member(django_user_model.objects.create_user("lena", password="x" * 16), "lab",
                 nrch)
    _birthday_on_day0(died, 50)  # 50 on day 0
    _birthday_on_day0(survivor, 40, days_after=1)  # 40 the day after day 0: still 39
    # died on day 5: MSC given 7 h after randomization (11 h after onset: late), SOFA day 0
    save_form(rumcess, died, "msc_product", None,
              {"product_id": "MSC-1", "donor_id": "D-1", "viable_cells_total": 1e8,
               "viability_percent": 92, "concentration_cells_per_ml": 1e6, "volume_ml": 100,
               "sterility": "no_growth", "endotoxin_eu_per_ml": 0.1, "mycoplasma": "negative",
               "identity": "pass", "released_by": "Dr Kuzmina",
               "released_at": local(died, 5)}, user=lab)
    save_form(rumcess, died, "msc_infusion", 0,
              {"infusion_start_at": local(died, 7), "weight_kg": 70, "weight_basis": "actual",
               "cells_infused": 7e7}, user=lab)
    save_form(rumcess, died, "sofa", 0, WORKED_DAY, user=investigator)
    save_form(rumcess, died, "vital_status", 28,
              {"status": "dead", "date_of_death": date_of(died, 5), "source": "records"},
              user=investigator)
    report_ae(died, investigator, {
        "term": "Septic shock progression", "onset": local(died, 100),
        "awareness": local(died, 101), "seriousness": ["death"], "severity_grade": 5,
        "causality": "unlikely", "expectedness": "expected", "outcome": "fatal"},
        protocol=rumcess)
    # survivor (control): SOFA days 0 and 3, markers day 0 (CRP in mg/dL), alive on day 30
    save_form(rumcess, survivor, "sofa", 0, WORKED_DAY, user=investigator)
    save_form(rumcess, survivor, "sofa", 3, GOOD_DAY, user=investigator)
    save_form(rumcess, survivor, "inflammatory_markers", 0,
              {"sampled_at": local(survivor, 1), "il6_pg_per_ml": 850,
               "crp_mg_l": {"value": 3.6, "unit": "mg/dL"}, "procalcitonin_ng_ml": 12.5,
               "lactate_mmol_l": 4.2}, user=investigator)
    save_form(rumcess, survivor, "vital_status", 28,
              {"status": "alive", "last_known_alive_date": date_of(survivor, 30),
               "source": "phone"}, user=investigator)
    report_ae(survivor, investigator, {
        "term": "Rash", "onset": local(survivor, 30), "awareness": local(survivor, 31),
        "severity_grade": 1, "causality": "not_assessed"}, protocol=rumcess)
    # lost (msc, never infused): SOFA day 3, lost to follow-up after day 10
    save_form(rumcess, lost, "sofa", 3, GOOD_DAY, user=investigator)
    save_form(rumcess, lost, "end_of_study", None,
              {"status": "lost_to_follow_up", "date": date_of(lost, 10)}, user=investigator)
    # the rest of the screening log: one not enrolled, one open, one entered in error
    for_log = [make_screening(nrch, investigator, eligible_record(
        utcnow() - dt.timedelta(hours=2))) for _ in range(3)]
    close_screening(for_log[0], investigator, reason_code="missed_window",
                    detail="arrived 14 h after onset")
    mark_entered_in_error(for_log[2], investigator, reason="duplicate")
    return Trial(died, survivor, lost)
