"""Every p-value of the table-driven tests equals the one the analysis computes for that
table (scipy's ``fisher_exact`` and ``chi2_contingency``, as in
``trialdesk.analysis.binary``), and the exact power is the sum over rejected tables."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from trialdesk.design.rejection import (
    decision_table,
    exact_power,
    fisher_pvalues,
    pvalue_table,
    z_decision_table,
)
from trialdesk.errors import DesignError

SIZES = [(15, 15), (14, 16), (1, 4), (9, 3)]


@pytest.mark.parametrize(("n_t", "n_c"), SIZES)
def test_fisher_pvalues_equal_scipy_for_every_table(n_t, n_c):
    two, one = fisher_pvalues(n_t, n_c, 2), fisher_pvalues(n_t, n_c, 1)
    for xt in range(n_t + 1):
        for xc in range(n_c + 1):
            table = [[xt, n_t - xt], [xc, n_c - xc]]
            assert two[xt, xc] == pytest.approx(stats.fisher_exact(table).pvalue, abs=1e-12)
            assert one[xt, xc] == pytest.approx(
                stats.fisher_exact(table, alternative="less").pvalue, abs=1e-12)


@pytest.mark.parametrize(("n_t", "n_c"), SIZES)
@pytest.mark.parametrize("test", ["chi_square", "chi_square_cc"])
def test_chi_square_pvalues_equal_scipy(n_t, n_c, test):
    p = pvalue_table(test, n_t, n_c, 2)
    for xt in range(n_t + 1):
        for xc in range(n_c + 1):
            if xt + xc in (0, n_t + n_c):
                assert p[xt, xc] == 1.0
                continue
            table = [[xt, n_t - xt], [xc, n_c - xc]]
            ref = stats.chi2_contingency(table, correction=test == "chi_square_cc").pvalue
            assert p[xt, xc] == pytest.approx(ref, abs=1e-12)


def test_published_rumcess_table_is_not_rejected_two_sided_but_is_one_sided():
    """9/15 vs 3/15 alive = 6 vs 12 deaths: two-sided Fisher p = 0.0604 (domain.md §1.5),
    one-sided 0.0302."""
    two = decision_table("fisher_exact", 15, 15, 0.05, 2)
    one = decision_table("fisher_exact", 15, 15, 0.05, 1)
    assert fisher_pvalues(15, 15)[6, 12] == pytest.approx(0.0604, abs=5e-5)
    assert two[6, 12] == 0 and one[6, 12] == 1
    assert two[12, 2] == -1 and one[12, 2] == 0  # many more deaths on treatment


def test_exact_power_sums_binomial_probabilities_of_rejected_tables():
    table = decision_table("fisher_exact", 15, 15, 0.05, 2)
    brute = 0.0
    for xt in range(16):
        for xc in range(16):
            p = stats.fisher_exact([[xt, 15 - xt], [xc, 15 - xc]]).pvalue
            if p <= 0.05:
                brute += stats.binom.pmf(xt, 15, 0.4) * stats.binom.pmf(xc, 15, 0.8)
    assert exact_power(table, 0.4, 0.8).reject == pytest.approx(brute, abs=1e-12)


def test_z_look_is_the_signed_root_of_pearson_chi_square():
    table = z_decision_table(15, 15, 1.96, -1.96)
    chi = stats.chi2_contingency([[4, 11], [11, 4]], correction=False).statistic
    assert np.sqrt(chi) >= 1.96 and table[4, 11] == 1 and table[11, 4] == -1
    assert table[7, 8] == 0


def test_time_to_event_tests_are_refused_with_a_reason():
    with pytest.raises(DesignError, match="logrank"):
        pvalue_table("logrank", 10, 10)
