"""Pocock–Simon minimization on hand-worked examples (arms in protocol order).

Two-arm examples use the threearm factors (cause: chemo/other, sex_factor: female/male)
with arms A = usual_care and B = high_dose, 1:1, p = 1.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest

from tests.randomization.designs import redesign, two_arm_two_factors
from trialdesk.errors import AllocationError, InputRejected, UnknownStratum
from trialdesk.randomization import MarginalCounts, minimize

A, B = "usual_care", "high_dose"
CHEMO_MALE = {"cause": "chemo", "sex_factor": "male"}


def _patients(*groups):
    """(levels, arm) pairs from (cause, sex, arm, how many) groups."""
    return [({"cause": c, "sex_factor": s}, arm) for c, s, arm, k in groups for _ in range(k)]


def _taves(counts: MarginalCounts, levels, arms):
    """Taves (1974): the arm with the smaller sum of counts at the patient's levels."""
    totals = {a: sum(counts.counts[f][lvl][a] for f, lvl in levels.items()) for a in arms}
    low = min(totals.values())
    return tuple(a for a in arms if totals[a] == low)


@pytest.mark.parametrize("criterion", ["range", "variance"])
def test_p1_two_arms_is_taves_on_a_hand_worked_example(criterion):
    protocol = redesign(two_arm_two_factors(), minimization_criterion=criterion)
    # chemo: A 3, B 1; male: A 2, B 1 -> Taves totals A 5, B 2: B
    counts = MarginalCounts.from_allocations(protocol, _patients(
        ("chemo", "male", A, 2), ("chemo", "female", A, 1), ("chemo", "male", B, 1)))
    for draw_seed in range(20):  # deterministic whatever the draw
        decision = minimize(protocol, counts, CHEMO_MALE, random.Random(draw_seed))
        assert decision.arm == B and decision.minimizing_arms == (B,)
        assert decision.arm_probabilities == {A: 0.0, B: 1.0}
    expected = {"range": {A: 5, B: 1}, "variance": {A: 3.25, B: 0.25}}[criterion]
    assert decision.scores == expected


def test_p1_two_arms_variance_criterion_is_taves_at_every_step_of_a_trial():
    protocol = redesign(two_arm_two_factors(), minimization_criterion="variance")
    rng, cohort_rng = random.Random(7), random.Random(8)
    counts = MarginalCounts.empty(protocol)
    for _ in range(200):
        levels = {"cause": cohort_rng.choice(["chemo", "other"]),
                  "sex_factor": cohort_rng.choice(["female", "male"])}
        decision = minimize(protocol, counts, levels, rng)
        taves = _taves(counts, levels, protocol.arm_ids)
        assert decision.minimizing_arms == taves
        if len(taves) == 1:
            assert decision.arm == taves[0]
        counts.add(levels, decision.arm)


def test_range_criterion_counts_only_each_factors_sign_so_it_can_tie_where_taves_does_not():
    protocol = two_arm_two_factors()  # range
    # chemo: A 4, B 1 (d = +3); male: A 1, B 2 (d = -1). Taves: A 5, B 3 -> B.
    counts = MarginalCounts.from_allocations(protocol, _patients(
        ("chemo", "female", A, 3), ("chemo", "male", A, 1), ("chemo", "male", B, 1),
        ("other", "male", B, 1)))
    assert _taves(counts, CHEMO_MALE, protocol.arm_ids) == (B,)
    decision = minimize(protocol, counts, CHEMO_MALE, random.Random(0))
    assert decision.scores == {A: 4, B: 4} and decision.minimizing_arms == (A, B)
    variance = minimize(redesign(protocol, minimization_criterion="variance"), counts,
                        CHEMO_MALE, random.Random(0))
    assert variance.minimizing_arms == (B,)


def test_factor_weights_decide_between_factors():
    base = two_arm_two_factors()
    # chemo: A 3, B 1 (d = +2); male: A 1, B 2 (d = -1): range scores A 3, B 3, a tie
    counts = MarginalCounts.from_allocations(base, _patients(
        ("chemo", "male", A, 1), ("chemo", "female", A, 2), ("chemo", "male", B, 1),
        ("other", "male", B, 1)))
    assert minimize(base, counts, CHEMO_MALE, random.Random(0)).minimizing_arms == (A, B)
    cause_first = redesign(base, factor_weights={"cause": 2})
    decision = minimize(cause_first, counts, CHEMO_MALE, random.Random(0))
    assert decision.scores == {A: 6, B: 4} and decision.arm == B
    sex_first = redesign(base, factor_weights={"sex_factor": 2})
    decision = minimize(sex_first, counts, CHEMO_MALE, random.Random(0))
    assert decision.scores == {A: 3, B: 5} and decision.arm == A


def _three_equal(threearm, criterion):
    return redesign(threearm, ratio={A: 1, "low_dose": 1, B: 1}, minimization_probability=1.0,
                    minimization_criterion=criterion)


def test_variance_and_range_criteria_can_choose_different_arms(threearm):
    # arms usual_care, low_dose, high_dose at 1:1:1; chemo: 0, 1, 1; male: 2, 0, 3.
    # If usual_care: chemo (1,1,1) range 0 var 0;   male (3,0,3) range 3 var 2   -> 3 | 2
    # If low_dose:   chemo (0,2,1) range 2 var 2/3; male (2,1,3) range 2 var 2/3 -> 4 | 4/3
    # If high_dose:  chemo (0,1,2) range 2 var 2/3; male (2,0,4) range 4 var 8/3 -> 6 | 10/3
    patients = _patients(("other", "male", A, 2), ("chemo", "female", "low_dose", 1),
                         ("chemo", "male", B, 1), ("other", "male", B, 2))
    by_range = _three_equal(threearm, "range")
    counts = MarginalCounts.from_allocations(by_range, patients)
    decision = minimize(by_range, counts, CHEMO_MALE, random.Random(0))
    assert decision.scores == {A: 3, "low_dose": 4, B: 6} and decision.arm == A
    by_variance = _three_equal(threearm, "variance")
    decision = minimize(by_variance, counts, CHEMO_MALE, random.Random(0))
    assert decision.scores == pytest.approx({A: 2, "low_dose": 4 / 3, B: 10 / 3})
    assert decision.arm == "low_dose"


def test_variance_ties_are_exact_where_floating_point_would_not_tie(threearm):
    # chemo: 0, 1, 1; male: 1, 0, 3 -> variance 14/9 for usual_care and for low_dose
    protocol = _three_equal(threearm, "variance")
    counts = MarginalCounts.from_allocations(protocol, _patients(
        ("other", "male", A, 1), ("chemo", "female", "low_dose", 1),
        ("chemo", "male", B, 1), ("other", "male", B, 2)))
    decision = minimize(protocol, counts, CHEMO_MALE, random.Random(0))
    assert decision.minimizing_arms == (A, "low_dose")
    assert decision.arm_probabilities == {A: 0.5, "low_dose": 0.5, B: 0.0}


def test_counts_are_divided_by_the_ratio_so_2_1_1_targets_count_as_balanced(threearm):
    counts = MarginalCounts.from_allocations(threearm, _patients(
        ("chemo", "male", A, 2), ("chemo", "male", "low_dose", 1), ("chemo", "male", B, 1)))
    decision = minimize(threearm, counts, CHEMO_MALE, random.Random(0))
    # usual_care: (3/2, 1, 1) per factor range 1/2; low_dose: (1, 2, 1) range 1
    assert decision.scores == {A: 1.0, "low_dose": 2.0, B: 2.0}
    assert decision.minimizing_arms == (A,)
    assert decision.probability == 0.8
    assert decision.arm_probabilities == pytest.approx({A: 0.8, "low_dose": 0.1, B: 0.1})


def test_minimizing_arm_is_taken_with_probability_p(threearm):
    counts = MarginalCounts.empty(threearm)  # usual_care minimizes (its target is 2 of 4)
    rng, draws = random.Random(3), 4000
    arms = Counter(minimize(threearm, counts, CHEMO_MALE, rng).arm for _ in range(draws))
    se = math.sqrt(0.8 * 0.2 / draws)
    assert abs(arms[A] / draws - 0.8) < 4 * se
    assert abs(arms["low_dose"] - arms[B]) < 4 * math.sqrt(draws * 0.1)


def test_the_draw_recorded_reproduces_the_decision(threearm):
    counts = MarginalCounts.empty(threearm)
    decision = minimize(threearm, counts, CHEMO_MALE, random.Random(11))
    assert decision.random_draw == random.Random(11).random()
    json.dumps(decision.to_dict())
    assert decision.arm in str(decision)


def test_state_round_trips_through_json_and_is_rebuilt_from_allocations(threearm):
    patients = _patients(("chemo", "male", A, 2), ("other", "female", B, 1))
    counts = MarginalCounts.from_allocations(threearm, patients)
    again = MarginalCounts.from_dict(json.loads(json.dumps(counts.to_dict())))
    assert again == counts and again.total == 3
    assert counts.counts["cause"]["chemo"] == {A: 2, "low_dose": 0, B: 0}
    assert counts.counts["sex_factor"]["female"][B] == 1
    with pytest.raises(InputRejected):
        MarginalCounts.from_dict({"cause": {"chemo": {A: -1}}})


def test_unknown_levels_and_arms_are_refused_before_counting(threearm):
    counts = MarginalCounts.empty(threearm)
    with pytest.raises(UnknownStratum, match="chemo, other"):
        counts.add({"cause": "viral", "sex_factor": "male"}, A)
    with pytest.raises(InputRejected, match="not an arm"):
        counts.add(CHEMO_MALE, "placebo")
    assert counts.total == 0
    with pytest.raises(UnknownStratum, match="female, male"):
        minimize(threearm, counts, {"cause": "chemo"}, random.Random(0))


def test_state_of_another_protocol_is_refused(threearm, rumcess):
    with pytest.raises(AllocationError, match="do not match protocol"):
        minimize(threearm, MarginalCounts.empty(rumcess), CHEMO_MALE, random.Random(0))
