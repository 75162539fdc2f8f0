"""28-day mortality: the outcome rule, the RUMCESS published figures, the 2×2 methods."""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tests.analysis.helpers import counts_dataset
from trialdesk.analysis import StatisticalWarning, SubjectsDataset, analyze_binary
from trialdesk.analysis import proportions as pr
from trialdesk.analysis.binary import day_outcome

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rumcess_published_subjects.csv"

pytestmark = pytest.mark.filterwarnings(
    "ignore::trialdesk.analysis.warnings.StatisticalWarning")


@pytest.fixture(scope="module")
def rumcess():
    """The example file: MSC 6/15 died by day 28, control 12/15 (published 9/15 and 3/15
    alive)."""
    return analyze_binary(SubjectsDataset.from_csv(EXAMPLE), primary_test="fisher_exact")


# --- the day-28 outcome rule ----------------------------------------------------------


@pytest.mark.parametrize(("time", "event", "expected"), [
    (28.0, 1, 1),    # death on day 28 itself counts
    (3.0, 1, 1),
    (28.5, 1, 0),    # death after day 28: alive at day 28
    (28.0, 0, 0),    # censored at day 28: known alive through it
    (90.0, 0, 0),
    (27.9, 0, -1),   # censored before day 28 without death: missing
    (0.0, 0, -1),
])
def test_day_28_outcome_rule(time, event, expected):
    assert day_outcome(np.array([time]), np.array([event]), 28)[0] == expected


def test_subjects_censored_before_day_28_are_missing_and_named_in_a_warning():
    rows = [{"subject_id": "A1", "arm": "a", "time": 5, "event": 1},
            {"subject_id": "A2", "arm": "a", "time": 12, "event": 0},
            {"subject_id": "A3", "arm": "a", "time": 40, "event": 0},
            {"subject_id": "B1", "arm": "b", "time": 20, "event": 1},
            {"subject_id": "B2", "arm": "b", "time": 30, "event": 1}]
    with pytest.warns(StatisticalWarning, match="A2"):
        result = analyze_binary(SubjectsDataset.from_records(rows))
    a, b = result.arms
    assert (a.n, a.deaths, a.alive, a.missing, a.analysed) == (3, 1, 1, 1, 2)
    assert (b.deaths, b.alive, b.missing) == (1, 1, 0)
    assert result.warnings[0].code == "MISSING_OUTCOME"
    assert "1 subject(s)" in result.warnings[0].message and "A2" in result.warnings[0].message
    assert result.to_dict()["warnings"][0]["code"] == "MISSING_OUTCOME"


def test_the_day_is_a_parameter():
    rows = [{"subject_id": f"{a}{i}", "arm": a, "time": t, "event": 1}
            for a in "ab" for i, t in enumerate((10, 50, 70))]
    r = analyze_binary(SubjectsDataset.from_records(rows), day=60)
    assert [x.deaths for x in r.arms] == [2, 2]
    assert "time ≤ 60" in r.rule


# --- RUMCESS (statistics.md, domain.md §1.5) --------------------------------------------


def test_rumcess_counts(rumcess):
    assert [(a.arm, a.deaths, a.alive) for a in rumcess.arms] == [("control", 12, 3),
                                                                    ("msc", 6, 9)]
    assert rumcess.reference_arm == "control"
    assert rumcess.warnings == ()


def test_rumcess_published_tests(rumcess):
    """domain.md §1.5 (scipy 1.17.1, also R fisher.test/chisq.test): Fisher two-sided 0.0604,
    one-sided 0.0302; chi-square 5.0, p 0.0253; Yates 3.47, p 0.0624; Barnard and Boschloo
    0.0301 (arms as the compared groups)."""
    c = rumcess.comparisons[0]
    assert c.label == "msc vs control"
    assert c.test("fisher_exact").p_value == pytest.approx(0.0604, abs=5e-5)
    assert c.test("fisher_exact").p_one_sided == pytest.approx(0.0302, abs=5e-5)
    assert c.test("chi_square").statistic == pytest.approx(5.0)
    assert c.test("chi_square").p_value == pytest.approx(0.0253, abs=5e-5)
    assert c.test("chi_square_cc").statistic == pytest.approx(3.47, abs=5e-3)
    assert c.test("chi_square_cc").p_value == pytest.approx(0.0624, abs=5e-5)
    assert c.test("barnard").p_value == pytest.approx(0.0301, abs=5e-5)
    assert c.test("boschloo").p_value == pytest.approx(0.0301, abs=5e-5)


def test_rumcess_published_estimates(rumcess):
    """domain.md §1.5: survival difference +0.40 (Wald 0.08–0.72, Newcombe 0.0504–0.6398),
    RR of death 0.50 (0.256–0.977), RR of survival 3.00 (1.005–8.95), OR of death 0.167
    (Woolf 0.033–0.853), conditional MLE 0.178 (exact 0.022–1.061)."""
    c = rumcess.comparisons[0]

    def check(name, method, expected, tol):
        e = c.estimate(name, method)
        assert [e.estimate, e.lower, e.upper] == pytest.approx(expected, abs=tol)

    check("survival_difference", "newcombe", [0.40, 0.0504, 0.6398], 5e-5)
    check("risk_difference", "newcombe", [-0.40, -0.6398, -0.0504], 5e-5)
    check("survival_difference", "wald", [0.40, 0.08, 0.72], 5e-3)
    check("relative_risk", "log", [0.50, 0.256, 0.977], 5e-4)
    check("relative_risk_survival", "log", [3.00, 1.005, 8.95], 5e-3)
    check("odds_ratio", "woolf", [0.167, 0.033, 0.853], 5e-4)
    check("odds_ratio", "conditional_mle_exact", [0.178, 0.022, 1.061], 5e-4)


def test_primary_test_is_flagged(rumcess):
    flags = {t.name: t.primary for t in rumcess.comparisons[0].tests}
    assert flags == {"fisher_exact": True, "chi_square": False, "chi_square_cc": False,
                     "barnard": False, "boschloo": False}
    assert "Fisher exact (primary)" in str(rumcess)


def test_one_sided_p_is_for_fewer_deaths_in_the_treatment_arm():
    better = analyze_binary(counts_dataset(2, 20, 10, 20)).comparisons[0]
    worse = analyze_binary(counts_dataset(10, 20, 2, 20)).comparisons[0]
    for name in ("fisher_exact", "chi_square", "chi_square_cc", "barnard", "boschloo"):
        assert better.test(name).p_one_sided < 0.05 < worse.test(name).p_one_sided, name


# --- methods ------------------------------------------------------------------------------


def test_barnard_counts_tables_tied_with_the_observed_statistic():
    """RUMCESS: scipy's barnard_exact gives 0.02976 with the arms' rows as (died, alive) and
    0.03007 with (alive, died): float ties of the Wald statistic are dropped in one order.
    The tie-aware value is 0.030068, order-free, and equals scipy's Boschloo here."""
    assert pr.barnard_exact(6, 15, 12, 15)[1] == pytest.approx(0.0300680131, abs=1e-8)
    assert pr.barnard_exact(9, 15, 3, 15)[1] == pytest.approx(0.0300680131, abs=1e-8)
    assert stats.barnard_exact([[9, 3], [6, 12]]).pvalue == pytest.approx(0.0300680131,
                                                                        abs=1e-8)


def _exact_ties(x1, n1, x2, n2):
    def t2(a, b):
        p1, p2, p = Fraction(a, n1), Fraction(b, n2), Fraction(a + b, n1 + n2)
        return 0 if p1 == p2 else (p1 - p2) ** 2 / (p * (1 - p) * (Fraction(1, n1)
                                                                    + Fraction(1, n2)))
    obs = t2(x1, x2)
    return sum(t2(a, b) == obs for a in range(n1 + 1) for b in range(n2 + 1)) > 1


def test_barnard_equals_scipy_when_there_are_no_exact_ties():
    rng = np.random.default_rng(7)
    for _ in range(25):
        n1, n2 = (int(v) for v in rng.integers(4, 30, 2))
        x1, x2 = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
        if _exact_ties(x1, n1, x2, n2):
            continue
        for alt in ("two-sided", "less", "greater"):
            ours = pr.barnard_exact(x1, n1, x2, n2, alt)[1]
            ref = stats.barnard_exact([[x1, x2], [n1 - x1, n2 - x2]], alternative=alt,
                                      n=100).pvalue
            assert ours == pytest.approx(ref, abs=1e-7), (x1, n1, x2, n2, alt)


def test_miettinen_nurminen_interval_inverts_its_score_statistic():
    crit = stats.norm.ppf(0.975) ** 2
    for table in [(6, 15, 12, 15), (0, 10, 5, 10), (3, 25, 9, 22)]:
        _, lo, hi = pr.miettinen_nurminen_difference(*table)
        for bound in (lo, hi):
            if abs(bound) < 1:
                assert pr.mn_statistic(*table, bound) == pytest.approx(crit, rel=1e-9)


def test_zero_cells_give_undefined_ratio_limits_and_a_warning():
    with pytest.warns(StatisticalWarning, match="zero count"):
        r = analyze_binary(counts_dataset(0, 10, 5, 10))
    c = r.comparisons[0]
    rr = c.estimate("relative_risk", "log")
    assert rr.estimate == 0 and np.isnan(rr.lower)
    assert rr.to_dict()["lower"] is None
    assert "ZERO_CELL" in [w.code for w in r.warnings]
    assert c.estimate("risk_difference", "newcombe").lower == pytest.approx(-0.8, abs=0.1)


def test_small_expected_counts_warn_about_the_chi_square():
    with pytest.warns(StatisticalWarning, match="expected count"):
        analyze_binary(counts_dataset(1, 8, 5, 8))


def test_warnings_are_issued_not_only_stored():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = analyze_binary(counts_dataset(1, 8, 5, 8))
    assert {w.message.code for w in caught if isinstance(w.message, StatisticalWarning)} == \
        {w.code for w in r.warnings}


def test_boschloo_equals_scipy_on_random_tables():
    """Our vectorized Boschloo test against scipy's (columns are the groups)."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        n1, n2 = (int(v) for v in rng.integers(4, 30, 2))
        x1, x2 = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
        columns = [[x1, x2], [n1 - x1, n2 - x2]]
        for alt in ("two-sided", "less", "greater"):
            ours = pr.boschloo_exact(x1, n1, x2, n2, alt)
            ref = stats.boschloo_exact(columns, alternative=alt)
            assert ours[0] == pytest.approx(float(ref.statistic), rel=1e-9, abs=1e-12)
            assert ours[1] == pytest.approx(float(ref.pvalue), abs=1e-6), (x1, n1, x2, n2, alt)


def test_boschloo_rumcess_day28():
    """9/15 vs 3/15 survivors: Boschloo two-sided 0.0301 (domain.md §1.5)."""
    assert pr.boschloo_exact(6, 15, 12, 15)[1] == pytest.approx(0.0300680131, abs=1e-6)


def test_boschloo_supremum_on_a_large_table_equals_a_brute_force_grid():
    """Where scipy's optimizer stops short (200/500 vs 150/500: 9.226e-4), the supremum
    over the nuisance parameter found by a plain 20,001-point grid is the reference."""
    n = 500
    k = np.arange(n + 1)
    grid = np.linspace(0, 1, 20001)
    pmf = stats.binom.pmf(k[:, None], n, grid[None, :])
    # Fisher one-sided p-values of every table, straight from the hypergeometric CDF
    fisher = stats.hypergeom.cdf(k[None, :] * 0 + k[:, None], 2 * n, k[:, None] + k[None, :], n)
    observed = fisher[150, 200]  # "greater": the second group has fewer events
    fisher_greater = fisher.T
    mask = (fisher_greater <= observed * (1 + 1e-9)).astype(float)
    brute = float(np.einsum("ig,ig->g", pmf, mask @ pmf).max())
    assert pr.boschloo_exact(200, n, 150, n, "greater")[1] == pytest.approx(brute, rel=1e-6)
