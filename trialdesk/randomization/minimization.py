"""Minimization (Pocock & Simon 1975): allocate each patient to the arm that best keeps
the stratification factors balanced, with a random element against predictability.

For each candidate arm, the imbalance the trial would have if the patient went there:
per factor, the counts per arm at the patient's level after the hypothetical
assignment, each divided by the arm's ratio weight (so that 2:1:1 targets count as
balanced), summarised by their range (max − min) or population variance; then the
weighted sum over factors. The minimizing arm (ties: at random, weighted by ratio) is
taken with probability p, otherwise one of the other arms at random, weighted by ratio.

Scores are compared exactly (integers and fractions, not floats) so that a tie is a
tie. One uniform draw decides each allocation, recorded in the decision, so an auditor
can recompute it from the stored counts. With two arms and p = 1 the variance criterion
is exactly Taves' deterministic rule (the arm with the smaller sum of counts at the
patient's levels); the range criterion agrees with Taves whenever no factor's imbalance
exceeds 1, but can tie where Taves does not (it counts each factor's sign only).
With unequal ratios, minimization's long-run allocation ratio can drift from the target;
``simulate_design`` shows by how much for a given design.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from trialdesk.errors import AllocationError, InputRejected, UnknownStratum
from trialdesk.protocol.schema import MinimizationCriterion, Protocol
from trialdesk.randomization._rng import pick
from trialdesk.randomization.strata import check_level, stratification_factors

Counts = dict[str, dict[str, dict[str, int]]]


@dataclass
class MarginalCounts:
    """``counts[factor][level][arm]``: patients allocated so far, per factor level.

    This is the whole state minimization needs; it is JSON-able (:meth:`to_dict`) so it
    can be stored with each allocation and every decision replayed.
    """

    counts: Counts = field(default_factory=dict)

    @classmethod
    def empty(cls, protocol: Protocol) -> MarginalCounts:
        arms = protocol.arm_ids
        return cls({f.id: {lvl.id: dict.fromkeys(arms, 0) for lvl in f.levels}
                    for f in stratification_factors(protocol)})

    @classmethod
    def from_allocations(cls, protocol: Protocol,
                         allocations: Iterable[tuple[Mapping[str, str], str]]) -> MarginalCounts:
        """The counts after ``allocations``, an iterable of (levels, arm)."""
        counts = cls.empty(protocol)
        for levels, arm in allocations:
            counts.add(levels, arm)
        return counts

    def add(self, levels: Mapping[str, str], arm: str) -> None:
        """Count one patient with ``levels`` (factor id -> level) allocated to ``arm``."""
        for factor, by_level in self.counts.items():
            level = levels.get(factor)
            if level not in by_level:
                raise UnknownStratum(f"'{level}' is not a level of factor '{factor}'; valid "
                                     f"levels: {', '.join(by_level)}.", field=factor)
            if arm not in by_level[level]:
                raise InputRejected(f"'{arm}' is not an arm; arms: "
                                    f"{', '.join(by_level[level])}.", field="arm")
        for factor, by_level in self.counts.items():
            by_level[levels[factor]][arm] += 1

    @property
    def total(self) -> int:
        """Patients counted (each is counted once per factor)."""
        for by_level in self.counts.values():
            return sum(sum(arms.values()) for arms in by_level.values())
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {f: {lvl: dict(arms) for lvl, arms in by_level.items()}
                for f, by_level in self.counts.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MarginalCounts:
        """Counts from :meth:`to_dict` output; InputRejected if the shape is wrong."""
        try:
            counts = {str(f): {str(lvl): {str(a): n for a, n in arms.items()}
                               for lvl, arms in by_level.items()}
                      for f, by_level in data.items()}
        except AttributeError:
            raise InputRejected("Minimization state must map factor -> level -> arm -> count.",
                                field="counts") from None
        for by_level in counts.values():
            for arms in by_level.values():
                if not all(type(n) is int and n >= 0 for n in arms.values()):
                    raise InputRejected("Minimization counts must be non-negative integers.",
                                        field="counts")
        return cls(counts)

    def __str__(self) -> str:
        return "; ".join(f"{f}={lvl}: " + ", ".join(f"{a} {n}" for a, n in arms.items())
                         for f, by_level in self.counts.items() for lvl, arms in by_level.items())


@dataclass(frozen=True)
class MinimizationDecision:
    """One minimization allocation and everything needed to audit it.

    ``probability`` is the protocol's p (the chance of taking the minimizing arms);
    ``arm_probabilities`` is the resulting chance of each arm for this patient, and
    ``random_draw`` the uniform draw that picked ``arm`` from them (arms in protocol
    order, cumulative).
    """

    arm: str
    scores: dict[str, float]
    minimizing_arms: tuple[str, ...]
    probability: float
    random_draw: float
    arm_probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, "scores": dict(self.scores),
                "minimizing_arms": list(self.minimizing_arms), "probability": self.probability,
                "random_draw": self.random_draw,
                "arm_probabilities": dict(self.arm_probabilities)}

    def __str__(self) -> str:
        scores = ", ".join(f"{a} {s:.3g}" for a, s in self.scores.items())
        return (f"{self.arm} (imbalance scores: {scores}; minimizing: "
                f"{', '.join(self.minimizing_arms)}; p = {self.probability:g}, "
                f"P({self.arm}) = {self.arm_probabilities[self.arm]:.3g}, "
                f"draw {self.random_draw:.4f})")


def _check_state(protocol: Protocol, counts: MarginalCounts) -> None:
    expected = MarginalCounts.empty(protocol).counts
    same = expected.keys() == counts.counts.keys() and all(
        expected[f].keys() == counts.counts[f].keys()
        and all(expected[f][lvl].keys() == counts.counts[f][lvl].keys() for lvl in expected[f])
        for f in expected)
    if not same:
        raise AllocationError(
            f"The stored minimization counts do not match protocol {protocol.protocol_id} "
            "(factors, levels or arms differ): rebuild them with MarginalCounts."
            "from_allocations and call the unblinded statistician.", field="counts")


def imbalance_scores(protocol: Protocol, counts: MarginalCounts,
                     levels: Mapping[str, str]) -> dict[str, Fraction]:
    """Exact weighted imbalance if the patient with ``levels`` went to each arm."""
    rand = protocol.randomization
    factors = stratification_factors(protocol)
    if not factors:
        raise AllocationError(f"Minimization needs stratification factors; protocol "
                              f"{protocol.protocol_id} has none in stratify_by.",
                              field="stratify_by")
    for factor in factors:
        check_level(factor, levels.get(factor.id))
    _check_state(protocol, counts)
    arms = protocol.arm_ids
    lcm = math.lcm(*rand.ratio.values())
    scale = {a: lcm // rand.ratio[a] for a in arms}  # count * scale = lcm * count / ratio
    k = len(arms)
    # decimal-exact weights, so that weights 0.1 + 0.2 tie with 0.3 as written
    exact = {f.id: Fraction(str(rand.factor_weights.get(f.id, 1))) for f in factors}
    weights: dict[str, int | Fraction] = {
        f: int(w) if w.denominator == 1 else w for f, w in exact.items()}
    variance = rand.minimization_criterion is MinimizationCriterion.VARIANCE
    # every factor's spread has the same denominator, so sum integer numerators
    denominator = k * k * lcm * lcm if variance else lcm
    scores: dict[str, Fraction] = {}
    for candidate in arms:
        total: int | Fraction = 0
        for f in factors:
            row = counts.counts[f.id][levels[f.id]]
            xs = [(row[a] + (a == candidate)) * scale[a] for a in arms]
            if variance:  # population variance of xs / lcm, times the denominator
                spread = k * sum(x * x for x in xs) - sum(xs) ** 2
            else:
                spread = max(xs) - min(xs)
            total += weights[f.id] * spread
        scores[candidate] = Fraction(total) / denominator
    return scores


def minimize(protocol: Protocol, counts: MarginalCounts, levels: Mapping[str, str],
             rng: random.Random) -> MinimizationDecision:
    """Allocate the patient with ``levels`` (factor id -> level) given ``counts``.

    Does not update ``counts``: add the patient once the allocation is recorded.
    """
    scores = imbalance_scores(protocol, counts, levels)
    rand = protocol.randomization
    arms = protocol.arm_ids
    best = min(scores.values())
    minimizing = tuple(a for a in arms if scores[a] == best)
    others = [a for a in arms if a not in minimizing]
    p = rand.minimization_probability
    if not others:  # every arm ties: p has nothing to favour
        whole = sum(rand.ratio.values())
        probabilities = {a: rand.ratio[a] / whole for a in arms}
    else:
        tied = sum(rand.ratio[a] for a in minimizing)
        rest = sum(rand.ratio[a] for a in others)
        probabilities = {a: p * rand.ratio[a] / tied if a in minimizing
                         else (1 - p) * rand.ratio[a] / rest for a in arms}
    draw = rng.random()
    arm = pick(draw, arms, [probabilities[a] for a in arms])
    return MinimizationDecision(arm, {a: float(s) for a, s in scores.items()}, minimizing, p,
                                draw, probabilities)
