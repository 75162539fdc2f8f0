"""Operating characteristics of a whole trial design by simulation, with exact values.

One simulated trial: patients arrive with stratification levels drawn like the RUMCESS
cohort, are allocated by the protocol's own randomization (the production
:func:`~trialdesk.randomization.generate_list` / :func:`~trialdesk.randomization.minimize`
— not copies), die by day 28 with probability ``p_control`` or ``p_treatment``, and are
analysed at the protocol's interim looks (``analysis.interim_looks``, boundaries from
:func:`~trialdesk.analysis.boundaries.boundaries_for_protocol`) and at the end with the
protocol's primary test (``analysis.primary_test``).

How it is fast (≥ 10⁶ fixed-design trials per second):

* **Allocation paths.** Randomization decides only how many patients each arm has at
  each look. A pool of ``allocation_pool`` randomization runs (production code, each
  with its own seed) gives the cumulative (n_treatment, n_control) at every look; every
  simulated trial takes one path from the pool at random. With permuted blocks and no
  strata the path is the same every time; with strata, complete randomization or
  minimization the arm sizes vary, and the pool carries that variation.
* **Decision tables.** For arm sizes (n_t, n_c) there are (n_t + 1)(n_c + 1) possible
  outcomes; the decision for each (reject favouring treatment, against it, continue) is
  computed once (:func:`~trialdesk.design.rejection.decision_table`: the primary test's
  p-value against the look's nominal alpha at the final analysis; the pooled z statistic
  against the boundary at interim looks). A trial is then two binomial draws per look
  (numpy) and a table look-up.

Exact values: for every path in the pool the probabilities of stopping at each look in
each direction are computed exactly by carrying the distribution of (deaths on
treatment, deaths on control) from look to look (binomial increments, a 2-D
convolution), and averaged over the pool with the pool's weights. The Monte-Carlo
estimate is unbiased for this value; for a fixed design with fixed arm sizes it is the
textbook exact power (Fisher's test by enumeration).

Group-sequential analysis rule: at interim look k the trial stops when the pooled
two-proportion Z (positive = fewer deaths on treatment) crosses ±c_k (two-sided) or
c_k (one-sided); at the final look the primary test rejects when its p-value is at most
the final look's nominal alpha (for a fixed design: alpha itself). Interim looks are at
round(t_k × N) patients with outcome, N = the planned total.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binom

from trialdesk.analysis.boundaries import Boundaries, boundaries_for_protocol
from trialdesk.design.rejection import TABLE_TESTS, decision_table, z_decision_table
from trialdesk.errors import DesignError
from trialdesk.protocol.schema import Protocol, RandomizationMethod
from trialdesk.randomization import (
    MarginalCounts,
    generate_list,
    levels_from_record,
    minimize,
    stratification_factors,
    stratum_key,
)
from trialdesk.simulation.cohort import RUMCESS_COHORT, Categorical, CohortCalibration

#: trials simulated per vectorized batch (memory ~ 40 bytes per trial)
CHUNK = 1 << 18
Progress = Callable[[int], None]


# --- the design -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrialDesign:
    """What a simulated trial runs: arms, patients per look, decision rules."""

    protocol_id: str
    protocol_sha256: str
    treatment_arm: str
    control_arm: str
    method: RandomizationMethod
    n_total: int
    look_sizes: tuple[int, ...]
    primary_test: str
    alpha: float
    sides: int
    boundaries: Boundaries | None

    @property
    def looks(self) -> int:
        return len(self.look_sizes)

    def decisions(self, look: int, n_treatment: int, n_control: int) -> np.ndarray:
        """The decision table of look ``look`` (0-based) for these arm sizes."""
        b = self.boundaries
        if look == self.looks - 1:
            nominal = self.alpha if b is None else b.nominal_alpha[-1]
            return decision_table(self.primary_test, n_treatment, n_control, float(nominal),
                                  self.sides)
        assert b is not None
        lower = b.z_lower[look] if b.z_lower is not None else None
        return z_decision_table(n_treatment, n_control, b.z_upper[look], lower)


def design_from_protocol(protocol: Protocol, n_per_arm: int | None = None) -> TrialDesign:
    """The design a protocol describes; ``n_per_arm`` = patients in the control arm
    (default: half the planned enrolment of a 1:1 trial), the total follows the ratio."""
    arms = protocol.arms
    if len(arms) != 2:
        raise DesignError(f"the design simulation compares two arms; protocol "
                          f"{protocol.protocol_id} has {len(arms)} "
                          f"({', '.join(protocol.arm_ids)})", field="arms")
    control = next(a.id for a in arms if a.role == "control")
    treatment = next(a.id for a in arms if a.id != control)
    a = protocol.analysis
    if a.primary_test not in TABLE_TESTS:
        raise DesignError(f"the design simulation evaluates a binary primary outcome with "
                          f"{', '.join(TABLE_TESTS)}; protocol {protocol.protocol_id} names "
                          f"'{a.primary_test}'", field="analysis.primary_test")
    ratio = protocol.randomization.ratio
    whole = sum(ratio.values())
    if n_per_arm is None:
        n_total = protocol.identifiers.planned_enrolment
    else:
        if n_per_arm < 1:
            raise DesignError(f"n_per_arm must be at least 1, not {n_per_arm}",
                              field="n_per_arm")
        n_total = round(n_per_arm * whole / ratio[control])
    boundaries = boundaries_for_protocol(protocol)
    fractions = boundaries.information_fractions if boundaries else (1.0,)
    sizes = tuple(max(2, round(t * n_total)) for t in fractions)
    if len(set(sizes)) != len(sizes):
        raise DesignError(f"{n_total} patients are too few for looks at information "
                          f"fractions {', '.join(f'{t:g}' for t in fractions)}: two looks "
                          "would analyse the same patients", field="n_per_arm")
    return TrialDesign(protocol.protocol_id, protocol.content_sha256, treatment, control,
                       RandomizationMethod(protocol.randomization.method), n_total, sizes,
                       a.primary_test, a.alpha, a.sides, boundaries)


# --- allocation paths from the production randomization ------------------------------


def _record_choices(calibration: CohortCalibration) -> dict[str, Categorical]:
    return {"neutropenia_cause": calibration.neutropenia_cause,
            "sex": Categorical(("male", "female"),
                               (calibration.p_male, 1 - calibration.p_male))}


def draw_levels(protocol: Protocol, rng: np.random.Generator, n: int,
                calibration: CohortCalibration = RUMCESS_COHORT) -> list[dict[str, str]]:
    """Stratification levels of ``n`` arriving patients, read from screening records
    (:func:`levels_from_record`) whose fields are drawn like the calibrated cohort; a
    factor on a field the cohort does not describe gets its levels uniformly."""
    choices = _record_choices(calibration)
    columns: dict[str, np.ndarray] = {}
    for factor in stratification_factors(protocol):
        known = choices.get(factor.field)
        ids = [lvl.id for lvl in factor.levels]
        if known is not None and set(known.levels) <= set(ids):
            columns[factor.field] = known.draw(rng, n)
        else:
            columns[factor.field] = np.array(ids, dtype=object)[rng.integers(len(ids), size=n)]
    return [levels_from_record(protocol, {f: str(col[i]) for f, col in columns.items()})
            for i in range(n)]


def allocation_paths(protocol: Protocol, design: TrialDesign, *, pool: int,
                     seed: int) -> np.ndarray:
    """``pool`` randomization runs of ``design.n_total`` patients: an int array
    (pool, looks, 2) of cumulative (n_treatment, n_control) at each look."""
    if pool < 1:
        raise DesignError("the allocation pool needs at least one run", field="pool")
    rng = np.random.default_rng([seed, 1])
    out = np.zeros((pool, design.looks, 2), dtype=np.int64)
    marks = np.array(design.look_sizes)
    for run in range(pool):
        levels = draw_levels(protocol, rng, design.n_total)
        arms = _allocate(protocol, design, levels, f"{seed}:pool-{run}")
        is_t = np.cumsum(np.array([a == design.treatment_arm for a in arms]))
        out[run, :, 0] = is_t[marks - 1]
        out[run, :, 1] = marks - is_t[marks - 1]
    return out


def _allocate(protocol: Protocol, design: TrialDesign, levels: list[dict[str, str]],
              run_seed: str) -> list[str]:
    if design.method is RandomizationMethod.MINIMIZATION:
        rng = random.Random(f"trialdesk-simulation-minimization:{run_seed}")
        counts = MarginalCounts.empty(protocol)
        arms = []
        for patient in levels:
            arm = minimize(protocol, counts, patient, rng).arm
            counts.add(patient, arm)
            arms.append(arm)
        return arms
    keys = [stratum_key(protocol, patient) for patient in levels]
    per_stratum = Counter(keys)
    alist = generate_list(protocol, seed=run_seed, size_per_stratum=max(per_stratum.values()),
                          strata=list(per_stratum), label="simulation")
    used: Counter[str] = Counter()
    arms = []
    for key in keys:
        used[key] += 1
        arms.append(alist.entry(key, used[key]).arm)
    return arms


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExactCharacteristics:
    """Exact probabilities over the allocation pool (module docstring)."""

    rejection: float
    favourable: float
    stop_by_look: tuple[float, ...]
    expected_n_total: float


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario (true death probabilities) over ``trials`` simulated trials.

    ``rejection``: share of trials rejecting H0 (either direction for two-sided
    designs) — the type I error when there is no effect, the power otherwise;
    ``favourable``: rejecting with fewer deaths on treatment. ``*_se``: Monte-Carlo
    standard errors. ``stop_by_look``: share stopping (rejecting) at each look.
    """

    label: str
    p_control: float
    p_treatment: float
    trials: int
    rejection: float
    rejection_se: float
    favourable: float
    favourable_se: float
    stop_by_look: tuple[float, ...]
    expected_n_total: float
    exact: ExactCharacteristics | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AllocationSummary:
    """Final arm sizes over the allocation pool: |n_treatment − n_control|."""

    method: str
    pool: int
    mean_abs_imbalance: float
    max_abs_imbalance: int
    share_unequal: float
    mean_n_treatment: float
    mean_n_control: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OperatingCharacteristics:
    """Type I error, power, stopping, expected size and allocation of one design."""

    design: TrialDesign
    seed: int
    null: ScenarioResult
    alternative: ScenarioResult
    allocation: AllocationSummary

    @property
    def type_i_error(self) -> float:
        return self.null.rejection

    @property
    def power(self) -> float:
        return self.alternative.rejection

    def to_dict(self) -> dict[str, Any]:
        d = self.design
        b = d.boundaries
        return {
            "protocol": {"id": d.protocol_id, "sha256": d.protocol_sha256},
            "design": "group-sequential" if b else "fixed",
            "arms": {"treatment": d.treatment_arm, "control": d.control_arm},
            "randomization": d.method.value, "n_total": d.n_total,
            "look_sizes": list(d.look_sizes), "primary_test": d.primary_test,
            "alpha": d.alpha, "sides": d.sides,
            "boundaries": None if b is None else {"type": b.type,
                                                  "z_upper": list(b.z_upper),
                                                  "nominal_alpha": list(b.nominal_alpha)},
            "seed": self.seed, "type_i_error": self.type_i_error, "power": self.power,
            "null": self.null.to_dict(), "alternative": self.alternative.to_dict(),
            "allocation": self.allocation.to_dict()}


# --- the simulation -----------------------------------------------------------------


class DecisionTables:
    """Per look: a padded stack of decision tables and each path's index into it."""

    def __init__(self, design: TrialDesign, paths: np.ndarray):
        self.stack: list[np.ndarray] = []
        self.index: list[np.ndarray] = []
        for k in range(design.looks):
            pairs, inverse = np.unique(paths[:, k, :], axis=0, return_inverse=True)
            width_t, width_c = pairs[:, 0].max() + 1, pairs[:, 1].max() + 1
            stack = np.zeros((len(pairs), width_t, width_c), dtype=np.int8)
            for i, (nt, nc) in enumerate(pairs):
                stack[i, :nt + 1, :nc + 1] = design.decisions(k, int(nt), int(nc))
            self.stack.append(stack)
            self.index.append(inverse.reshape(-1))


def simulate_trials(design: TrialDesign, paths: np.ndarray, tables: DecisionTables,
                    p_t: float, p_c: float, trials: int, rng: np.random.Generator,
                    progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """The vectorized core: ``trials`` trials on ``paths`` (from :func:`allocation_paths`)
    with death probabilities ``p_t``/``p_c``. Returns the counts of favourable and
    unfavourable stops per look and the summed trial sizes (patients)."""
    looks = design.looks
    fav = np.zeros(looks, dtype=np.int64)
    unfav = np.zeros(looks, dtype=np.int64)
    size_sum = 0.0
    single = len(paths) == 1
    increments = np.diff(paths, axis=1, prepend=0)  # (pool, looks, 2)
    done = 0
    while done < trials:
        m = min(CHUNK, trials - done)
        idx = None if single else rng.integers(len(paths), size=m)
        xt = np.zeros(m, dtype=np.int64)
        xc = np.zeros(m, dtype=np.int64)
        active = np.ones(m, dtype=bool)
        for k in range(looks):
            if single:
                xt += rng.binomial(int(increments[0, k, 0]), p_t, m)
                xc += rng.binomial(int(increments[0, k, 1]), p_c, m)
                dec = tables.stack[k][0][xt, xc]
            else:
                xt += rng.binomial(increments[idx, k, 0], p_t)
                xc += rng.binomial(increments[idx, k, 1], p_c)
                dec = tables.stack[k][tables.index[k][idx], xt, xc]
            if looks == 1:
                fav[0] += int(np.count_nonzero(dec > 0))
                unfav[0] += int(np.count_nonzero(dec < 0))
                break
            stop = active & (dec != 0)
            fav[k] += int(np.count_nonzero(stop & (dec > 0)))
            unfav[k] += int(np.count_nonzero(stop & (dec < 0)))
            if k < looks - 1:
                size_sum += float(np.count_nonzero(stop)) * design.look_sizes[k]
            active &= ~stop
        done += m
        if progress is not None:
            progress(m)
    stopped_early = int(fav[:-1].sum() + unfav[:-1].sum())
    size_sum += float(trials - stopped_early) * design.look_sizes[-1]
    return fav, unfav, size_sum


def exact_characteristics(design: TrialDesign, paths: np.ndarray, p_t: float,
                          p_c: float) -> ExactCharacteristics:
    """Exact stopping probabilities averaged over the pool's paths (module docstring)."""
    unique, counts = np.unique(paths.reshape(len(paths), -1), axis=0, return_counts=True)
    weights = counts / counts.sum()
    fav = np.zeros(design.looks)
    unfav = np.zeros(design.looks)
    for row, w in zip(unique, weights, strict=True):
        path = row.reshape(design.looks, 2)
        f, u = _exact_path(design, path, p_t, p_c)
        fav += w * f
        unfav += w * u
    stop = fav + unfav
    sizes = np.array(design.look_sizes, dtype=float)
    expected = float((stop[:-1] * sizes[:-1]).sum() + (1 - stop[:-1].sum()) * sizes[-1])
    return ExactCharacteristics(float(stop.sum()), float(fav.sum()),
                                tuple(float(s) for s in stop), expected)


def _exact_path(design: TrialDesign, path: np.ndarray, p_t: float,
                p_c: float) -> tuple[np.ndarray, np.ndarray]:
    fav = np.zeros(design.looks)
    unfav = np.zeros(design.looks)
    state = np.ones((1, 1))
    prev = np.zeros(2, dtype=np.int64)
    for k in range(design.looks):
        nt, nc = (int(v) for v in path[k])
        dt, dc = nt - int(prev[0]), nc - int(prev[1])
        kt = binom.pmf(np.arange(dt + 1), dt, p_t)
        kc = binom.pmf(np.arange(dc + 1), dc, p_c)
        grown = np.zeros((nt + 1, nc + 1))
        for i in range(state.shape[0]):  # state[i, :] ⊗ (kt, kc), added at offset i
            row = np.convolve(state[i], kc)
            grown[i:i + dt + 1, :] += kt[:, None] * row[None, :]
        dec = design.decisions(k, nt, nc)
        fav[k] = grown[dec > 0].sum()
        unfav[k] = grown[dec < 0].sum()
        state = np.where(dec == 0, grown, 0.0)
        prev = path[k]
    return fav, unfav


def _scenario(label: str, design: TrialDesign, paths: np.ndarray, tables: DecisionTables,
              p_t: float, p_c: float, trials: int, rng: np.random.Generator,
              progress: Progress | None, exact: bool) -> ScenarioResult:
    fav, unfav, size_sum = simulate_trials(design, paths, tables, p_t, p_c, trials, rng, progress)
    reject = (fav.sum() + unfav.sum()) / trials
    favourable = fav.sum() / trials

    def se(p: float) -> float:
        return math.sqrt(p * (1 - p) / trials)

    return ScenarioResult(label, p_c, p_t, trials, float(reject), se(reject),
                          float(favourable), se(favourable),
                          tuple(float(x) for x in (fav + unfav) / trials), size_sum / trials,
                          exact_characteristics(design, paths, p_t, p_c) if exact else None)


def simulate_design(protocol: Protocol, *, trials: int, p_control: float,
                    p_treatment: float, n_per_arm: int | None = None, seed: int = 20130501,
                    allocation_pool: int = 1000, exact: bool = True,
                    progress: Progress | None = None) -> OperatingCharacteristics:
    """Simulate ``trials`` trials with no effect (both arms ``p_control``) and
    ``trials`` with the effect (``p_treatment`` on treatment); death probabilities by
    day 28. ``progress`` is called with the number of trials just finished (2 ×
    ``trials`` in all). Seeded: the same arguments give the same numbers."""
    if trials < 1:
        raise DesignError("simulate at least one trial", field="trials")
    for name, p in (("p_control", p_control), ("p_treatment", p_treatment)):
        if not 0 <= p <= 1:
            raise DesignError(f"{name} must be a probability from 0 to 1, not {p!r}",
                              field=name)
    design = design_from_protocol(protocol, n_per_arm)
    paths = allocation_paths(protocol, design, pool=allocation_pool, seed=seed)
    if len(np.unique(paths.reshape(len(paths), -1), axis=0)) == 1:
        paths = paths[:1]
    tables = DecisionTables(design, paths)
    rng = np.random.default_rng([seed, 2])
    null = _scenario("no effect", design, paths, tables, p_control, p_control, trials, rng,
                     progress, exact)
    alt = _scenario("effect", design, paths, tables, p_treatment, p_control, trials, rng,
                    progress, exact)
    final = paths[:, -1, :]
    diff = np.abs(final[:, 0] - final[:, 1])
    allocation = AllocationSummary(
        design.method.value, allocation_pool, float(diff.mean()), int(diff.max()),
        float((diff > 0).mean()), float(final[:, 0].mean()), float(final[:, 1].mean()))
    return OperatingCharacteristics(design, seed, null, alt, allocation)
