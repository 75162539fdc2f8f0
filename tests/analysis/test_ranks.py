"""Wilcoxon rank-sum with the Hodges–Lehmann shift against R's wilcox.test and enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from tests.analysis.rscript import run_r
from trialdesk.analysis.ranks import wilcoxon_rank_sum

X = [5.082, -4.111, 1.836, -0.136, 0.095, 0.569, -3.04, 0.536, -0.73, 7.646, 1.452, 0.295]
Y = [-0.563, -1.336, -2.11, -0.782, 0.964, -0.477, 1.916, -0.4, 0.049]

SCRIPT = r"""
x <- read.csv(x_csv)$v; y <- read.csv(y_csv)$v
r <- wilcox.test(x, y, conf.int = TRUE)
emit("exact", c(r$statistic, r$p.value, r$estimate, r$conf.int))
a <- read.csv(a_csv)$v; b <- read.csv(b_csv)$v
r <- wilcox.test(a, b, conf.int = TRUE, exact = FALSE)
emit("ties", c(r$statistic, r$p.value, r$estimate, r$conf.int))
"""


def _free_days_like(seed: int, n: int, zeros: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 29, n).astype(float)
    v[:zeros] = 0
    return v


@pytest.fixture(scope="module")
def r_values(tmp_path_factory):
    a, b = _free_days_like(3, 60, 15), _free_days_like(4, 55, 25)
    table = {name: [{"v": float(v)} for v in values]
             for name, values in (("x", X), ("y", Y), ("a", a), ("b", b))}
    return run_r(SCRIPT, tmp_path_factory.mktemp("ranks"), **table), a, b


def test_exact_case_matches_r_exactly(r_values):
    """No ties, both groups < 50: exact distribution, HL = median of differences, R's
    qwilcox interval."""
    r, _, _ = r_values
    w, p, est, lo, hi = r["exact"]
    res = wilcoxon_rank_sum(np.array(X), np.array(Y))
    assert res.method == "exact"
    assert res.w == w
    assert res.p_value == pytest.approx(p, rel=1e-12)
    assert res.shift == pytest.approx(est, rel=1e-12)
    assert (res.lower, res.upper) == pytest.approx((lo, hi), rel=1e-12)


def test_tied_case_p_value_matches_r_and_shift_is_the_median_of_differences(r_values):
    """With ties R's estimate and limits are uniroot roots (tolerance 1e-4) of the
    continuity-corrected statistic; ours are order statistics of the differences (the
    documented difference): they agree to R's root tolerance on integer data."""
    r, a, b = r_values
    w, p, est, lo, hi = r["ties"]
    res = wilcoxon_rank_sum(a, b)
    assert res.method.startswith("normal approximation")
    assert res.w == w
    assert res.p_value == pytest.approx(p, rel=1e-10)
    assert res.shift == float(np.median([ai - bj for ai in a for bj in b]))  # enumeration
    assert abs(res.shift - est) < 1e-3
    assert abs(res.lower - lo) < 1e-3 and abs(res.upper - hi) < 1e-3


def test_empty_group_gives_nan_not_an_error():
    res = wilcoxon_rank_sum(np.array([]), np.array([1.0, 2.0]))
    assert res.n_x == 0 and np.isnan(res.p_value)
