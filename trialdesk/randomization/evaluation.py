"""Evaluating a randomization design by simulation before the trial starts.

The choice between complete randomization, permuted blocks (and which block sizes)
and minimization trades balance against predictability. ``simulate_design`` runs many
simulated trials of the design and reports both: the imbalance at the end (overall,
within strata, within each factor's levels) and how often a recruiter who tracks the
allocations could guess the next arm (the convergence strategy of Blackwell & Hodges:
guess the arm that is furthest behind its target, at random on ties).

Patients' levels come from their own generator, seeded from the seed alone, so two
designs simulated with the same seed (and n, runs) see the same patients in every run:
differences between them are the designs', not the cohorts'.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import cache
from typing import Any

from trialdesk.errors import InputRejected
from trialdesk.protocol.schema import Protocol, RandomizationMethod
from trialdesk.randomization._rng import below, seeded_rng
from trialdesk.randomization.minimization import MarginalCounts, minimize
from trialdesk.randomization.sequence import generate_list
from trialdesk.randomization.strata import stratification_factors, stratum_key

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Distribution:
    """Summary of one quantity over simulated trials; ``half_width`` is the 95%
    Monte-Carlo half-width of the mean. Percentiles are nearest-rank."""

    mean: float
    p50: float
    p95: float
    max: float
    half_width: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        ordered = sorted(values)
        count = len(ordered)

        def rank(q: float) -> float:
            return ordered[max(math.ceil(q * count) - 1, 0)]

        spread = statistics.stdev(ordered) if count > 1 else 0.0
        return cls(statistics.fmean(ordered), rank(0.5), rank(0.95), ordered[-1],
                   Z95 * spread / math.sqrt(count))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return (f"mean {self.mean:.3f} (±{self.half_width:.3f}), median {self.p50:g}, "
                f"95th percentile {self.p95:g}, max {self.max:g}")


@dataclass(frozen=True)
class DesignEvaluation:
    """What ``simulate_design`` found. Imbalances are max − min over arms of the arm
    counts divided by their ratio weights, at the end of each simulated trial."""

    protocol_id: str
    method: RandomizationMethod
    block_sizes: tuple[int, ...]
    n: int
    runs: int
    cohort: str
    overall_imbalance: Distribution
    #: the largest imbalance within any stratum
    stratum_imbalance: Distribution
    #: factor -> the largest imbalance within any of its levels
    marginal_imbalance: dict[str, Distribution]
    #: the largest marginal imbalance over all factors
    max_marginal_imbalance: Distribution
    #: mean share of patients per arm (shows drift from the ratio)
    arm_fractions: dict[str, float]
    correct_guess_probability: float
    correct_guess_half_width: float

    @property
    def predictability(self) -> float:
        return self.correct_guess_probability

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if not isinstance(v, Distribution)}
        data.update(method=self.method.value, block_sizes=list(self.block_sizes),
                    marginal_imbalance={f: d.to_dict() for f, d in
                                        self.marginal_imbalance.items()})
        for name in ("overall_imbalance", "stratum_imbalance", "max_marginal_imbalance"):
            data[name] = getattr(self, name).to_dict()
        return data

    def __str__(self) -> str:
        blocks = f" blocks {list(self.block_sizes)}" if self.block_sizes else ""
        lines = [f"{self.protocol_id}: {self.method.value}{blocks}, n = {self.n}, "
                 f"{self.runs} simulated trials ({self.cohort} cohort)",
                 f"  overall imbalance: {self.overall_imbalance}",
                 f"  worst stratum imbalance: {self.stratum_imbalance}"]
        lines += [f"  worst {f} level imbalance: {d}" for f, d in self.marginal_imbalance.items()]
        lines.append(f"  correct-guess probability: {self.correct_guess_probability:.3f} "
                     f"(±{self.correct_guess_half_width:.3f})")
        return "\n".join(lines)


def simulate_design(protocol: Protocol, *, method: RandomizationMethod | None = None,
                    block_sizes: tuple[int, ...] | None = None, n: int = 60, runs: int = 1000,
                    seed: str = "trialdesk-simulation",
                    cohort: Sequence[Mapping[str, str]] | None = None) -> DesignEvaluation:
    """Simulate ``runs`` trials of ``n`` patients under the protocol's design (or
    ``method``/``block_sizes``). Levels are drawn uniformly per factor, unless ``cohort``
    (level dicts) is given: then every run enrols exactly those patients, and n is
    ``len(cohort)``.

    The guesser knows everything already allocated: for permuted blocks it tracks the
    patient's stratum, for complete randomization the whole trial, and for minimization
    it guesses among the arms minimization favours (knowing the counts).
    """
    rand = protocol.randomization
    method = RandomizationMethod(method or rand.method)
    factors = stratification_factors(protocol)
    arms = protocol.arm_ids
    lcm = math.lcm(*rand.ratio.values())
    scale = {a: lcm // rand.ratio[a] for a in arms}
    fixed = [dict(levels) for levels in cohort] if cohort is not None else None
    n = len(fixed) if fixed is not None else n
    if n < 1 or runs < 1:
        raise InputRejected("A simulation needs at least one patient and one run.", field="n")

    def targets(tally: Mapping[str, int]) -> list[int]:
        return [tally.get(a, 0) * scale[a] for a in arms]

    def imbalance(tally: Mapping[str, int]) -> float:
        xs = targets(tally)
        return (max(xs) - min(xs)) / lcm

    def behind(tally: Mapping[str, int]) -> tuple[str, ...]:
        xs = targets(tally)
        return tuple(a for a, x in zip(arms, xs, strict=True) if x == min(xs))

    cohort_rng = seeded_rng("simulation-cohort", seed)
    overall: list[float] = []
    within: list[float] = []
    marginal: dict[str, list[float]] = {f.id: [] for f in factors}
    guesses: list[float] = []
    shares: dict[str, list[float]] = {a: [] for a in arms}
    for run in range(runs):
        patients = fixed if fixed is not None else [
            {f.id: f.levels[below(cohort_rng, len(f.levels))].id for f in factors}
            for _ in range(n)]
        keys = [stratum_key(protocol, levels) for levels in patients]
        run_seed = f"{seed}:run-{run}"
        given: list[str] = []
        correct = 0.0
        if method is RandomizationMethod.MINIMIZATION:
            rng = seeded_rng("simulation-minimization", run_seed)
            counts = MarginalCounts.empty(protocol)
            for levels in patients:
                decision = minimize(protocol, counts, levels, rng)
                counts.add(levels, decision.arm)
                given.append(decision.arm)
                if decision.arm in decision.minimizing_arms:
                    correct += 1 / len(decision.minimizing_arms)
        else:
            per_stratum = Counter(keys)
            alist = generate_list(protocol, seed=run_seed,
                                  size_per_stratum=max(per_stratum.values()),
                                  strata=list(per_stratum), method=method,
                                  block_sizes=block_sizes, label="simulation")
            used: Counter[str] = Counter()
            seen: dict[str, Counter[str]] = {}
            for key in keys:
                context = key if method is RandomizationMethod.PERMUTED_BLOCKS else "all"
                tally = seen.setdefault(context, Counter())
                used[key] += 1
                arm = alist.entry(key, used[key]).arm
                guess = behind(tally)
                correct += 1 / len(guess) if arm in guess else 0.0
                tally[arm] += 1
                given.append(arm)
        guesses.append(correct / n)
        totals = Counter(given)
        overall.append(imbalance(totals))
        by_stratum: dict[str, Counter[str]] = {}
        for key, arm in zip(keys, given, strict=True):
            by_stratum.setdefault(key, Counter())[arm] += 1
        within.append(max(imbalance(t) for t in by_stratum.values()))
        for f in factors:
            by_level: dict[str, Counter[str]] = {}
            for levels, arm in zip(patients, given, strict=True):
                by_level.setdefault(levels[f.id], Counter())[arm] += 1
            marginal[f.id].append(max(imbalance(t) for t in by_level.values()))
        for a in arms:
            shares[a].append(totals[a] / n)

    marginal_dist = {f: Distribution.of(v) for f, v in marginal.items()}
    worst = [max((marginal[f][r] for f in marginal), default=0.0) for r in range(runs)]
    predictability = Distribution.of(guesses)
    used_blocks = (tuple(block_sizes or rand.block_sizes)
                   if method is RandomizationMethod.PERMUTED_BLOCKS else ())
    return DesignEvaluation(
        protocol.protocol_id, method, used_blocks, n, runs,
        "fixed" if fixed is not None else "random", Distribution.of(overall),
        Distribution.of(within), marginal_dist, Distribution.of(worst),
        {a: statistics.fmean(v) for a, v in shares.items()},
        predictability.mean, predictability.half_width)


def exact_block_predictability(block_size: int, arms: int = 2) -> float:
    """The exact correct-guess probability of a permuted block of ``block_size`` with
    ``arms`` equally weighted arms under the convergence strategy.

    Every arrangement of the block is equally likely, so the enumeration of all of them
    is a recursion over what is left of the block: the next arm is a given one with
    probability (its remaining count) / (entries remaining), and the guesser, knowing
    the block so far, guesses among the arms used least (right with 1 / number of them).
    For two arms and block size 2m this equals (m + (4**m / C(2m, m) − 1) / 2) / (2m),
    e.g. 3/4 for blocks of 2 and 17/24 for blocks of 4.
    """
    if arms < 2 or block_size < arms or block_size % arms:
        raise InputRejected(f"A block of {block_size} cannot hold {arms} arms equally.",
                            field="block_size")
    per_arm = block_size // arms

    @cache
    def expected_correct(remaining: tuple[int, ...]) -> Fraction:
        left = sum(remaining)
        if left == 0:
            return Fraction(0)
        most_left = max(remaining)  # the arms used least have the most left
        guessed = [i for i, r in enumerate(remaining) if r == most_left]
        total = Fraction(0)
        for i, r in enumerate(remaining):
            if r:
                after = (*remaining[:i], r - 1, *remaining[i + 1:])
                hit = Fraction(1, len(guessed)) if i in guessed else Fraction(0)
                total += Fraction(r, left) * (hit + expected_correct(after))
        return total

    return float(expected_correct((per_arm,) * arms) / block_size)
