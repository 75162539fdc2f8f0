"""Kaplan–Meier, log-rank and Cox: R's conventions and the lung worked example.

The lung figures are those of /work/shared/statistics.md (R survival 3.5-3:
``survfit(Surv(time, status) ~ 1, lung)``, ``survdiff(… ~ sex)``, ``coxph(… ~ sex)``);
test_against_r.py recomputes them with R in the test run.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.analysis.rscript import lung_records
from trialdesk.analysis import (
    StatisticalWarning,
    SubjectsDataset,
    analyze_survival,
    cox_ph,
    kaplan_meier,
    logrank_test,
)
from trialdesk.analysis.kaplan_meier import timefix


@pytest.fixture(scope="module")
def lung():
    return SubjectsDataset.from_records(lung_records(strata=True), source="lung")


# --- Kaplan–Meier -------------------------------------------------------------------------


def test_median_is_the_midpoint_of_the_flat_segment_where_s_equals_one_half():
    """R: survfit(Surv(1:6, rep(1, 6)) ~ 1) → median 3.5 (lifelines/statsmodels say 3 or 4)."""
    km = kaplan_meier(np.arange(1, 7), np.ones(6))
    assert km.median == pytest.approx((3.5, 2.0, np.nan), nan_ok=True)


def test_median_when_s_stays_one_half_to_the_end_is_the_midpoint_to_the_last_time():
    """R (findq): deaths at 1, 2, censored at 3, 4 → S = 0.5 from 2 on → median (2 + 4)/2."""
    km = kaplan_meier(np.array([1, 2, 3, 4]), np.array([1, 1, 0, 0]))
    assert km.median[0] == 3.0


def test_median_not_reached_is_nan():
    km = kaplan_meier(np.array([1, 2, 3, 4]), np.array([1, 0, 0, 0]))
    assert np.isnan(km.median[0])
    assert km.to_dict()["median"] is None


def test_s_of_one_half_is_found_despite_floating_point_rounding():
    """24 subjects, deaths at 1..12: S(12) = (23/24)·(22/23)·… is 0.5000000000000001 in
    floating point; R's tolerance (sqrt(eps)) still treats it as 0.5 → median (12 + 13)/2,
    not 13."""
    km = kaplan_meier(np.arange(1, 25), np.r_[np.ones(12), np.ones(12)])
    assert km.survival[11] != 0.5 and km.survival[11] == pytest.approx(0.5)
    assert km.median[0] == 12.5


def test_times_differing_by_rounding_are_one_time():
    times = timefix(np.array([0.1 + 0.2, 0.3, 1.0]))
    assert times[0] == times[1]
    km = kaplan_meier(np.array([0.1 + 0.2, 0.3, 1.0]), np.array([1, 1, 0]))
    assert list(km.n_event) == [2, 0]


def test_deaths_come_before_censorings_at_the_same_time():
    km = kaplan_meier(np.array([2, 2, 3]), np.array([1, 0, 1]))
    assert list(km.n_risk) == [3, 1] and km.survival[0] == pytest.approx(2 / 3)


def test_lung_km_published_figures(lung):
    """statistics.md: median 310 (log CI 285–363; log-log 284–361); S(365) = 0.40924."""
    log = kaplan_meier(lung.time, lung.event)
    loglog = kaplan_meier(lung.time, lung.event, conf_type="log-log")
    assert log.median == (310, 285, 363)
    assert loglog.median == (310, 284, 361)
    assert log.at(365)[0] == pytest.approx(0.40924, abs=5e-6)
    assert log.conf_type == "log" and "log transform" in str(log)


def test_survival_after_the_last_time_is_not_estimated():
    km = kaplan_meier(np.array([1, 2, 5]), np.array([1, 0, 0]))
    assert np.isnan(km.at(6)[0]) and km.at(5)[0] == pytest.approx(2 / 3)
    assert kaplan_meier(np.array([1, 2]), np.array([1, 1])).at(9)[0] == 0.0


def test_unknown_transform_is_refused():
    with pytest.raises(ValueError, match="conf_type"):
        kaplan_meier(np.array([1.0]), np.array([1]), conf_type="logit")


# --- log-rank and Cox -------------------------------------------------------------------


def test_lung_logrank_by_sex(lung):
    """statistics.md: survdiff(Surv(time, status) ~ sex, lung): chi-square 10.3267, p 0.001311."""
    lr = logrank_test(lung.time, lung.event, lung.arm, ("1", "2"))
    assert lr.chisq == pytest.approx(10.3267, abs=5e-5)
    assert lr.p_value == pytest.approx(0.001311, abs=5e-7)
    assert lr.test.p_one_sided == pytest.approx(lr.p_value / 2)  # women: fewer deaths


def test_lung_cox_by_sex(lung):
    """statistics.md: coxph(Surv(time, status) ~ sex, lung): HR 0.58800 (0.42372–0.81598)
    Efron; 0.58837 Breslow."""
    efron = cox_ph(lung.time, lung.event, lung.arm, ("1", "2")).coefficient("2")
    assert [efron.hazard_ratio, efron.lower, efron.upper] == pytest.approx(
        [0.58800, 0.42372, 0.81598], abs=5e-6)
    breslow = cox_ph(lung.time, lung.event, lung.arm, ("1", "2"), ties="breslow")
    assert breslow.coefficient("2").hazard_ratio == pytest.approx(0.58837, abs=5e-6)
    assert breslow.converged


def test_analyze_survival_on_a_dataset(lung):
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticalWarning)  # no caveat expected here
        result = analyze_survival(lung, at_day=365)
    assert result.reference_arm == "1" and result.logrank.stratified
    assert result.cox is not None and result.cox.stratified
    assert [c.label for c in result.curves] == ["1", "2"]
    assert [e.name for e in result.survival_at_day] == ["survival_day_365_1",
                                                        "survival_day_365_2"]
    assert result.warnings == ()


def test_horizon_censors_everyone_alive_at_that_day():
    rows = [{"subject_id": f"{a}{i}", "arm": a, "time": t, "event": 1}
            for a, times in (("a", (5, 20, 40)), ("b", (10, 35, 60))) for i, t in
            enumerate(times)]
    result = analyze_survival(SubjectsDataset.from_records(rows), horizon=28)
    assert [int(c.events) for c in result.curves] == [2, 1]
    assert result.curve("b").time[-1] == 28


def test_arm_without_deaths_has_no_cox_model_and_says_why():
    rows = [{"subject_id": f"{a}{i}", "arm": a, "time": 10 + i, "event": int(a == "a")}
            for a in "ab" for i in range(5)]
    with pytest.warns(StatisticalWarning, match="no deaths in arm"):
        result = analyze_survival(SubjectsDataset.from_records(rows))
    assert result.cox is None
    assert "COX_NOT_ESTIMABLE" in [w.code for w in result.warnings]
    assert result.logrank.p_value < 0.05


def test_stratum_with_a_single_arm_is_reported():
    rows = [{"subject_id": f"{a}{s}{i}", "arm": a, "time": 5 + i, "event": 1, "stratum": s}
            for a, s in (("a", "x"), ("b", "x"), ("a", "y")) for i in range(4)]
    with pytest.warns(StatisticalWarning, match="one arm only"):
        result = analyze_survival(SubjectsDataset.from_records(rows))
    assert "STRATUM_SINGLE_ARM" in [w.code for w in result.warnings]


def test_reference_arm_without_subjects_is_an_analysis_error():
    from trialdesk.errors import AnalysisError

    ds = SubjectsDataset.from_records(
        [{"subject_id": "1", "arm": "b", "time": 3, "event": 1},
         {"subject_id": "2", "arm": "c", "time": 4, "event": 1}])
    ds = ds.__class__(**{**ds.__dict__, "arm_order": ("a", "b", "c")})
    with pytest.raises(AnalysisError, match="reference arm 'a'"):
        analyze_survival(ds)
