"""Virtual patients reproduce the published RUMCESS cohort (domain.md §1.2) within 3
standard errors on a large sample, score the intended SOFA with the production scorer,
pass the production eligibility check, and carry data-entry errors that TrialDesk's
own input checks catch."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from trialdesk.clinical.sofa import SofaInputs, compute_sofa
from trialdesk.eligibility import evaluate
from trialdesk.errors import LikelyWrongUnit
from trialdesk.simulation.patients import (
    PUBLISHED_EFFECT,
    ErrorRates,
    TreatmentEffect,
    generate_patients,
    virtual_patient,
)

N = 10_000


@pytest.fixture(scope="module")
def cohort():
    return generate_patients(N, seed=7, effect=TreatmentEffect(odds_ratio=1 / 6),
                             with_days=False)


def share(values, condition) -> tuple[float, float]:
    x = np.array([condition(v) for v in values], dtype=float)
    return x.mean(), math.sqrt(max(x.mean() * (1 - x.mean()), 1e-12) / len(x))


def assert_quantile(values, q: float, target: float):
    """target is the q-quantile: P(X < target) ≤ q and P(X ≤ target) ≥ q, within 3 SE."""
    below, se1 = share(values, lambda v: v < target)
    at_most, se2 = share(values, lambda v: v <= target)
    assert below <= q + 3 * se1 and at_most >= q - 3 * se2, (below, at_most)


def test_baseline_severity_matches_table_1(cohort):
    sofa = [p.baseline_sofa for p in cohort]
    for q, target in ((0.25, 15), (0.5, 16), (0.75, 17)):  # SOFA 16 (15–17)
        assert_quantile(sofa, q, target)
    assert abs(np.mean(sofa) - 16.0) <= 3 * np.std(sofa) / math.sqrt(N)  # 15.9 / 16.1
    apache = [p.apache_ii for p in cohort]
    for q, target in ((0.25, 27), (0.5, 34), (0.75, 36)):  # APACHE II 34 (27–36)
        assert_quantile(apache, q, target)
    lactate = [p.lactate_mmol_per_l for p in cohort]
    assert_quantile(lactate, 0.5, 3.5)  # 3.5 mmol/L in both arms
    assert_quantile(lactate, 0.25, 2.7)
    assert_quantile(lactate, 0.75, 4.35)


def test_demographics_and_timing(cohort):
    ages = [p.age_years for p in cohort]
    assert min(ages) >= 17 and max(ages) <= 75  # the registry's age criteria
    assert_quantile(ages, 0.5, 44)  # medians 40 and 47
    male, se = share(cohort, lambda p: p.screening_record["sex"] == "male")
    assert abs(male - 13 / 30) <= 3 * se
    chemo, se = share(cohort, lambda p: p.screening_record["neutropenia_cause"]
                      == "post_chemotherapy")
    assert abs(chemo - 23 / 30) <= 3 * se
    hours = [p.hours_onset_to_randomization for p in cohort]
    assert max(hours) <= 10 and min(hours) > 0  # within the enrolment window
    assert_quantile(hours, 0.5, 5.25)  # medians 5 and 5.5 h
    vent, se = share(cohort, lambda p: p.ventilated)
    assert abs(vent - 12 / 30) <= 3 * se


def test_day_28_mortality_and_treatment_effect(cohort):
    control = [p for p in cohort if p.arm_role == "control"]
    treated = [p for p in cohort if p.arm_role == "experimental"]
    died, se = share(control, lambda p: p.died_by_day28)
    assert abs(died - 0.8) <= 3 * se  # 20% alive at day 28 on standard therapy
    # odds ratio 1/6: odds 4 → 2/3, i.e. 40% mortality (the published MSC arm)
    died_t, se_t = share(treated, lambda p: p.died_by_day28)
    assert abs(died_t - 0.4) <= 3 * se_t
    published = generate_patients(4000, seed=8, effect=PUBLISHED_EFFECT, with_days=False,
                                  arms=["experimental"] * 4000)
    alive, se = share(published, lambda p: not p.died_by_day28)
    assert abs(alive - 0.6) <= 3 * se  # 9/15 alive with MSC
    late = [p for p in control if p.death_day is not None and p.death_day > 28]
    assert all(p.death_day <= 90 for p in late) and late


@pytest.fixture(scope="module")
def with_days():
    return generate_patients(200, seed=3, effect=PUBLISHED_EFFECT)


def test_every_sofa_day_scores_as_intended_with_the_production_scorer(with_days):
    days = [d for p in with_days for d in p.sofa_days]
    assert len(days) > 2000
    for d in days:
        result = compute_sofa(SofaInputs.from_mapping(d.inputs))
        assert (result.total, result.components, result.missing) == \
            (d.total, d.components, ())
    for p in with_days:
        assert p.sofa_days[0].total == p.baseline_sofa
        assert p.sofa_days[0].components["cardiovascular"] >= 3  # in shock on day 0
        if p.died_by_day28:
            assert p.sofa_days[-1].day <= p.death_day < p.sofa_days[-1].day + 1


def test_screening_records_are_eligible_by_the_production_rules(rumcess, with_days):
    for p in with_days:
        result = evaluate(rumcess, p.screening_record, p.screened_at)
        assert result.decision.value == "eligible", (p.index, result)
        assert p.screened_at < p.randomized_at
        if p.arm_role == "experimental":
            assert p.infusion_at > p.randomized_at
        else:
            assert p.infusion_at is None
    markers = [m for p in with_days for m in p.markers]
    assert {m.day for m in markers} <= {0, 1, 2, 3, 5, 7, 14, 28}
    assert all(m.il6_pg_per_ml > 0 and m.procalcitonin_ng_per_ml > 0 for m in markers)


def test_entry_errors_are_flagged_and_caught_by_the_input_checks(rumcess):
    rates = ErrorRates(neutrophils_unit_mixup=0.5, onset_without_timezone=0.3,
                       fio2_percent=0.2, bilirubin_umol_in_mg_field=0.3,
                       norepinephrine_ug_per_min=0.3, late_entry=0.2, missing_lab=0.1,
                       missing_day=0.05)
    patients = generate_patients(60, seed=5, errors=rates)
    kinds = Counter(e.kind for p in patients for e in p.entry_errors)
    assert set(kinds) >= {"neutrophils_unit_mixup", "onset_without_timezone", "fio2_percent",
                          "norepinephrine_ug_per_min", "late_entry"}
    for p in patients:
        by_day = {e.day: e for e in p.entry_errors if e.form == "sofa"
                  and e.expected_code is not None}
        for d in p.sofa_days:
            if d.entered is None:
                continue
            if d.day in by_day:
                with pytest.raises(LikelyWrongUnit):
                    SofaInputs.from_mapping(d.entered)
            elif not any(e.day == d.day and e.expected_code for e in p.entry_errors):
                result = compute_sofa(SofaInputs.from_mapping(d.entered))
                assert result.total <= d.total  # missing labs score 0: never more
        for e in p.entry_errors:
            if e.form == "screening" and e.expected_code is not None:
                result = evaluate(rumcess, p.entered_screening_record, p.screened_at)
                codes = {problem["code"] for problem in result.input_problems}
                assert e.expected_code in codes, (e, codes)
                assert result.decision.value != "eligible"
        late = [e for e in p.entry_errors if e.kind == "late_entry"]
        for e in late:
            assert (e.entered_value - p.sofa_days[e.day].assessed_at).days >= 3


def test_same_seed_same_patient_and_arm_changes_only_the_outcome():
    a = virtual_patient(4, treated=False, seed=1)
    b = virtual_patient(4, treated=False, seed=1)
    t = virtual_patient(4, treated=True, seed=1, effect=TreatmentEffect(hazard_ratio=0.3))
    assert a == b
    assert (a.screening_record, a.baseline_sofa, a.onset) == \
        (t.screening_record, t.baseline_sofa, t.onset)
    if a.death_day is not None and t.death_day is not None and a.death_day <= 28:
        assert t.death_day >= a.death_day  # lower hazard: a later death (same draws)
    assert virtual_patient(4, treated=False, seed=2) != a
