"""Simulated evaluation of designs: imbalance and predictability.

Monte-Carlo checks compare with a tolerance of 3 standard errors (SE = the reported 95%
half-width / 1.96); the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.randomization.designs import rumcess_three_factors
from trialdesk.errors import InputRejected, UnknownStratum
from trialdesk.protocol.schema import RandomizationMethod
from trialdesk.randomization import exact_block_predictability, simulate_design

BLOCKS = RandomizationMethod.PERMUTED_BLOCKS
COMPLETE = RandomizationMethod.COMPLETE
MINIMIZATION = RandomizationMethod.MINIMIZATION
Z95 = 1.959963984540054


def _closed_form(m: int) -> float:
    """Blackwell–Hodges, 1:1 block of 2m: m + (4**m / C(2m, m) - 1) / 2 correct guesses."""
    return (m + (4 ** m / math.comb(2 * m, m) - 1) / 2) / (2 * m)


def test_exact_block_predictability_known_values():
    assert exact_block_predictability(2) == 0.75
    assert exact_block_predictability(4) == pytest.approx(17 / 24)
    # three arms, block of 3: 1/3, then 1/2 (two arms unused), then certain
    assert exact_block_predictability(3, arms=3) == pytest.approx(11 / 18)


@pytest.mark.parametrize("m", range(1, 8))
def test_exact_block_predictability_matches_the_closed_form(m):
    assert exact_block_predictability(2 * m) == pytest.approx(_closed_form(m), abs=1e-12)


def test_exact_block_predictability_refuses_blocks_that_do_not_fit():
    with pytest.raises(InputRejected):
        exact_block_predictability(5)


@pytest.mark.parametrize("size", [2, 4, 6])
def test_simulated_fixed_block_predictability_matches_the_exact_value(rumcess, size):
    # one stratum and 60 patients: whole blocks only, so every block position counts equally
    cohort = [{"neutropenia_cause": "post_chemotherapy"}] * 60
    result = simulate_design(rumcess, block_sizes=(size,), runs=1000, seed="bh", cohort=cohort)
    se = result.correct_guess_half_width / Z95
    assert result.n == 60 and result.cohort == "fixed"
    # (blocks of 2 are exactly 3/4 in every run: a tie, then a certainty)
    exact = exact_block_predictability(size)
    assert abs(result.correct_guess_probability - exact) <= 3 * se + 1e-12
    assert result.overall_imbalance.max == 0 and result.stratum_imbalance.max == 0


def test_complete_randomization_is_unpredictable(rumcess):
    result = simulate_design(rumcess, method=COMPLETE, n=60, runs=1000, seed="cr")
    se = result.correct_guess_half_width / Z95
    assert abs(result.correct_guess_probability - 0.5) < 3 * se


def test_blocks_bound_the_within_stratum_imbalance_and_complete_randomization_does_not(rumcess):
    blocks = simulate_design(rumcess, n=60, runs=300, seed="bound")  # blocks of 2 and 4
    assert blocks.stratum_imbalance.max <= 2
    complete = simulate_design(rumcess, method=COMPLETE, n=60, runs=300, seed="bound")
    assert complete.stratum_imbalance.mean > 2 * blocks.stratum_imbalance.mean
    assert complete.overall_imbalance.p95 > blocks.overall_imbalance.p95


def test_minimization_balances_the_factors_better_than_stratified_blocks_with_many_strata():
    # 24 strata for 60 patients: the blocks of most strata stay incomplete, and their
    # imbalances add up within each factor level; minimization balances the levels.
    protocol = rumcess_three_factors()  # permuted blocks of 2 and 4, p = 0.8 when minimizing
    blocks = simulate_design(protocol, n=60, runs=300, seed="same-cohorts")
    mini = simulate_design(protocol, method=MINIMIZATION, n=60, runs=300, seed="same-cohorts")
    assert (mini.max_marginal_imbalance.mean + mini.max_marginal_imbalance.half_width
            < blocks.max_marginal_imbalance.mean - blocks.max_marginal_imbalance.half_width)
    for factor in protocol.randomization.stratify_by:
        assert mini.marginal_imbalance[factor].mean < blocks.marginal_imbalance[factor].mean
    # … and pays for it in predictability
    assert mini.correct_guess_probability > blocks.correct_guess_probability


def test_minimization_on_the_threearm_protocol_keeps_the_2_1_1_ratio(threearm):
    result = simulate_design(threearm, n=60, runs=200, seed="ratio")
    assert result.method is MINIMIZATION and result.block_sizes == ()
    assert result.arm_fractions == pytest.approx(
        {"usual_care": 0.5, "low_dose": 0.25, "high_dose": 0.25}, abs=0.02)


def test_a_given_cohort_is_validated(rumcess):
    with pytest.raises(UnknownStratum):
        simulate_design(rumcess, runs=2, cohort=[{"neutropenia_cause": "viral"}])


def test_evaluation_reports_readably_and_as_json(threearm):
    result = simulate_design(threearm, method=BLOCKS, block_sizes=(4, 8), n=30, runs=50)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["method"] == "permuted_blocks" and data["block_sizes"] == [4, 8]
    assert set(data["marginal_imbalance"]) == {"cause", "sex_factor"}
    text = str(result)
    assert "correct-guess probability" in text and "blocks [4, 8]" in text
    assert result.predictability == result.correct_guess_probability
