"""Sample size for the primary outcome: a binary outcome (28-day mortality) or time to
event, for a fixed design or inflated for a group-sequential one.

Why here (``trialdesk/design``) and not in ``trialdesk/simulation``: these are
closed-form or enumerated design calculations that need no random numbers; the
simulator imports them (exact power, rejection regions), never the other way round.

Binary outcome, per-arm n for equal arms, ``p_control``/``p_treatment`` the event
probabilities, two-sided alpha (``sides=2``) or one-sided:

* ``normal``: n = (z_α √(2 p̄ q̄) + z_β √(p₁q₁ + p₂q₂))² / Δ², the formula R's
  ``power.prop.test`` solves (pooled variance under H0, unpooled under H1). Its power is
  Φ((√n Δ − z_α √(2 p̄ q̄)) / √(p₁q₁ + p₂q₂)), one tail, like ``power.prop.test`` with
  its default ``strict = FALSE``; ``strict=True`` adds the rejections in the wrong
  direction (``strict = TRUE``).
* ``normal-cc``: Fleiss' continuity correction, n_cc = n/4 (1 + √(1 + 4/(n Δ)))²
  (Fleiss, Tytun & Ury 1980); its power is the normal power at the n whose corrected
  size is n_cc, i.e. n = (n_cc − 1/Δ)² / n_cc (the exact inverse).
* ``arcsine``: n = (z_α + z_β)² / (2 (asin √p₁ − asin √p₂)²) (Cohen's h = 2 asin √p₁ −
  2 asin √p₂, n = 2 ((z_α + z_β)/h)²; R ``pwr.2p.test``).
* ``exact``: Fisher's exact test, power by full enumeration of the two binomials
  (:mod:`trialdesk.design.rejection`); n searched upward from 2. Exact power is not
  monotone in n (a saw-tooth, because the attainable p-values are discrete): the result
  gives the smallest n whose power reaches the target, whether the power stays at or
  above the target for every n up to a horizon, and the smallest n from which it does.

Time to event (1:1 unless ``allocation`` says otherwise, ``allocation`` = share of the
treatment arm): Schoenfeld (1983) events d = (z_α + z_β)² / (a(1−a) ln² HR); Freedman
(1982) d = (z_α + z_β)² (1 + r HR)² / (r (1 − HR)²), r = a/(1−a); patients = d / P(event).

Group-sequential designs: the maximum sample size is the fixed one times the inflation
factor IF = (θ / (z_α + z_β))², θ the drift (mean of the final Z) at which the design's
boundaries give the target power counting upper crossings only — rpact's
``getDesignCharacteristics()$inflationFactor`` and ``getSampleSizeRates``
(``maxNumberOfSubjects`` = ``nFixed`` × IF).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binom, norm

from trialdesk.analysis.boundaries import Boundaries
from trialdesk.design.rejection import decision_table
from trialdesk.errors import DesignError

BinaryMethod = Literal["normal", "normal-cc", "arcsine", "exact"]
BINARY_METHODS: tuple[str, ...] = ("normal", "normal-cc", "arcsine", "exact")
SurvivalMethod = Literal["schoenfeld", "freedman"]
#: the exact search stops here (per arm) and reports that the target was not reached
MAX_EXACT_N = 1000


def _check_design(p_control: float, p_treatment: float, alpha: float, power: float,
                  sides: int) -> None:
    for name, p in (("p_control", p_control), ("p_treatment", p_treatment)):
        if not isinstance(p, int | float) or not 0 < p < 1:
            raise DesignError(f"{name} must be an event probability strictly between 0 and 1 "
                              f"(e.g. 0.8 for 80% 28-day mortality), not {p!r}", field=name)
    if p_control == p_treatment:
        raise DesignError(f"p_control and p_treatment are both {p_control:g}: with no "
                          "difference to detect no sample size gives power",
                          field="p_treatment")
    if not 0 < alpha < 0.5:
        raise DesignError(f"alpha must lie strictly between 0 and 0.5, not {alpha!r}",
                          field="alpha")
    if not alpha / sides < power < 1:
        raise DesignError(f"power must lie between alpha and 1 (e.g. 0.8), not {power!r}",
                          field="power")
    if sides not in (1, 2):
        raise DesignError(f"sides must be 1 or 2, not {sides!r}", field="sides")


def _z_alpha(alpha: float, sides: int) -> float:
    return float(norm.isf(alpha / sides))


# --- binary: the approximations ---------------------------------------------------


def normal_n(p_control: float, p_treatment: float, alpha: float = 0.05,
             power: float = 0.8, sides: int = 2) -> float:
    """Per-arm n (not rounded) of the normal approximation without continuity correction."""
    za, zb = _z_alpha(alpha, sides), float(norm.ppf(power))
    p1, p2 = p_control, p_treatment
    pbar = (p1 + p2) / 2
    d = abs(p1 - p2)
    return (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1)
                                                                     + p2 * (1 - p2))) ** 2 / d ** 2


def normal_power(n: float, p_control: float, p_treatment: float, alpha: float = 0.05,
                 sides: int = 2, strict: bool = False) -> float:
    """Power of the uncorrected normal test with n per arm (``power.prop.test``)."""
    za = _z_alpha(alpha, sides)
    p1, p2 = p_control, p_treatment
    pbar = (p1 + p2) / 2
    d = abs(p1 - p2)
    sd1 = math.sqrt(2 * pbar * (1 - pbar))
    sd = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    power = float(norm.cdf((math.sqrt(n) * d - za * sd1) / sd))
    if strict and sides == 2:
        power += float(norm.cdf((-math.sqrt(n) * d - za * sd1) / sd))
    return power


def fleiss_n(n_uncorrected: float, p_control: float, p_treatment: float) -> float:
    """Fleiss' continuity-corrected per-arm n from the uncorrected one."""
    d = abs(p_control - p_treatment)
    return n_uncorrected / 4 * (1 + math.sqrt(1 + 4 / (n_uncorrected * d))) ** 2


def normal_cc_power(n: float, p_control: float, p_treatment: float, alpha: float = 0.05,
                    sides: int = 2, strict: bool = False) -> float:
    """Power with n per arm under Fleiss' correction (the inverse of :func:`fleiss_n`)."""
    d = abs(p_control - p_treatment)
    if n <= 1 / d:
        return 0.0
    return normal_power((n - 1 / d) ** 2 / n, p_control, p_treatment, alpha, sides, strict)


def arcsine_n(p_control: float, p_treatment: float, alpha: float = 0.05,
              power: float = 0.8, sides: int = 2) -> float:
    """Per-arm n of the arcsine (variance-stabilised) approximation."""
    h = 2 * math.asin(math.sqrt(p_control)) - 2 * math.asin(math.sqrt(p_treatment))
    return 2 * ((_z_alpha(alpha, sides) + float(norm.ppf(power))) / h) ** 2


def arcsine_power(n: float, p_control: float, p_treatment: float, alpha: float = 0.05,
                  sides: int = 2, strict: bool = False) -> float:
    """Power of the arcsine test with n per arm (``strict``: both tails, ``pwr.2p.test``)."""
    h = abs(2 * math.asin(math.sqrt(p_control)) - 2 * math.asin(math.sqrt(p_treatment)))
    za = _z_alpha(alpha, sides)
    power = float(norm.cdf(h * math.sqrt(n / 2) - za))
    if strict and sides == 2:
        power += float(norm.cdf(-h * math.sqrt(n / 2) - za))
    return power


# --- binary: exact ------------------------------------------------------------------


def fisher_power(n_per_arm: int, p_control: float, p_treatment: float, alpha: float = 0.05,
                 sides: int = 2) -> float:
    """Exact power of Fisher's test (p ≤ alpha; two-sided: either direction; one-sided:
    fewer events on treatment) with n per arm, by enumeration of every table."""
    table = decision_table("fisher_exact", n_per_arm, n_per_arm, float(alpha), sides)
    k = np.arange(n_per_arm + 1)
    joint = binom.pmf(k, n_per_arm, p_treatment)[:, None] * binom.pmf(k, n_per_arm,
                                                                      p_control)[None, :]
    return float(joint[table != 0].sum())


@dataclass(frozen=True)
class BinarySampleSize:
    """Per-arm n for a binary outcome (rounded up) and the power it achieves.

    ``n_unrounded``: the formula's n (None for ``exact``). For ``exact``:
    ``stays_above_target`` says whether the power stays ≥ the target for every n from
    ``n_per_arm`` up to ``horizon``; ``n_stable`` is the smallest n from which it does
    (within the horizon); ``power_curve`` lists (n, power) for every n searched.
    """

    method: str
    p_control: float
    p_treatment: float
    alpha: float
    sides: int
    target_power: float
    n_per_arm: int
    achieved_power: float
    n_unrounded: float | None = None
    stays_above_target: bool | None = None
    n_stable: int | None = None
    horizon: int | None = None
    power_curve: tuple[tuple[int, float], ...] = field(default=(), repr=False)

    @property
    def n_total(self) -> int:
        return 2 * self.n_per_arm

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["n_total"] = self.n_total
        data["power_curve"] = [{"n_per_arm": n, "power": p} for n, p in self.power_curve]
        return data

    def __str__(self) -> str:
        side = "two-sided" if self.sides == 2 else "one-sided"
        text = (f"{self.method}: {self.n_per_arm} per arm ({self.n_total} in all) for "
                f"p_control {self.p_control:g} vs p_treatment {self.p_treatment:g}, alpha "
                f"{self.alpha:g} {side}; achieved power {self.achieved_power:.4f} (target "
                f"{self.target_power:g})")
        if self.method == "exact":
            if self.stays_above_target:
                text += f"; power stays ≥ target for every n up to {self.horizon}"
            else:
                text += (f"; saw-tooth: power drops below the target again for some n ≤ "
                         f"{self.horizon}; it stays ≥ target from n = {self.n_stable}")
        return text


def binary_sample_size(p_control: float, p_treatment: float, *, alpha: float = 0.05,
                       power: float = 0.8, method: BinaryMethod = "normal",
                       sides: int = 2) -> BinarySampleSize:
    """Per-arm sample size for comparing two event probabilities (module docstring)."""
    _check_design(p_control, p_treatment, alpha, power, sides)
    args = (p_control, p_treatment, alpha)
    if method == "normal":
        n = normal_n(*args, power, sides)
        return BinarySampleSize(method, *args, sides, power, math.ceil(n - 1e-9),
                                normal_power(math.ceil(n - 1e-9), *args, sides), n)
    if method == "normal-cc":
        n = fleiss_n(normal_n(*args, power, sides), p_control, p_treatment)
        return BinarySampleSize(method, *args, sides, power, math.ceil(n - 1e-9),
                                normal_cc_power(math.ceil(n - 1e-9), *args, sides), n)
    if method == "arcsine":
        n = arcsine_n(*args, power, sides)
        return BinarySampleSize(method, *args, sides, power, math.ceil(n - 1e-9),
                                arcsine_power(math.ceil(n - 1e-9), *args, sides), n)
    if method == "exact":
        return _exact_sample_size(p_control, p_treatment, alpha, power, sides)
    raise DesignError(f"unknown method {method!r}: use one of {', '.join(BINARY_METHODS)}",
                      field="method")


def _exact_sample_size(p_control: float, p_treatment: float, alpha: float, power: float,
                       sides: int) -> BinarySampleSize:
    curve: list[tuple[int, float]] = []
    first: int | None = None
    horizon = MAX_EXACT_N
    for n in range(2, MAX_EXACT_N + 1):
        if n > horizon:
            break
        achieved = fisher_power(n, p_control, p_treatment, alpha, sides)
        curve.append((n, achieved))
        if first is None and achieved >= power:
            first = n
            # look on for the saw-tooth: half as far again, at least 10 more
            horizon = min(MAX_EXACT_N, n + max(10, n // 2))
    if first is None:
        raise DesignError(f"Fisher's exact test does not reach power {power:g} with up to "
                          f"{MAX_EXACT_N} per arm for {p_control:g} vs {p_treatment:g}",
                          field="power")
    after = [(n, p) for n, p in curve if n >= first]
    below = [n for n, p in after if p < power]
    stable = (below[-1] + 1) if below else first
    return BinarySampleSize("exact", p_control, p_treatment, alpha, sides, power, first,
                            dict(curve)[first], None, not below, stable, curve[-1][0],
                            tuple(curve))


# --- time to event --------------------------------------------------------------------


@dataclass(frozen=True)
class SurvivalSampleSize:
    """Events needed (unrounded and rounded up) and patients for a hazard ratio."""

    method: str
    hazard_ratio: float
    alpha: float
    sides: int
    target_power: float
    allocation: float
    events_unrounded: float
    events: int
    event_probability: float | None
    n_total: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def required_events(hazard_ratio: float, *, alpha: float = 0.05, power: float = 0.8,
                    sides: int = 2, method: SurvivalMethod = "schoenfeld",
                    allocation: float = 0.5) -> float:
    """Events (unrounded) for a log-rank test to detect ``hazard_ratio``."""
    if not hazard_ratio > 0 or hazard_ratio == 1:
        raise DesignError(f"hazard_ratio must be positive and not 1, not {hazard_ratio!r}",
                          field="hazard_ratio")
    if not 0 < allocation < 1:
        raise DesignError(f"allocation (share of patients on treatment) must lie between 0 "
                          f"and 1, not {allocation!r}", field="allocation")
    z = _z_alpha(alpha, sides) + float(norm.ppf(power))
    if method == "schoenfeld":
        return z ** 2 / (allocation * (1 - allocation) * math.log(hazard_ratio) ** 2)
    if method == "freedman":
        r = allocation / (1 - allocation)
        return z ** 2 * (1 + r * hazard_ratio) ** 2 / (r * (1 - hazard_ratio) ** 2)
    raise DesignError(f"unknown method {method!r}: use schoenfeld or freedman",
                      field="method")


def survival_sample_size(hazard_ratio: float, *, event_probability: float | None = None,
                         alpha: float = 0.05, power: float = 0.8, sides: int = 2,
                         method: SurvivalMethod = "schoenfeld",
                         allocation: float = 0.5) -> SurvivalSampleSize:
    """Events and, given the probability that a patient has the event during follow-up,
    the number of patients (events / probability, rounded up)."""
    d = required_events(hazard_ratio, alpha=alpha, power=power, sides=sides, method=method,
                        allocation=allocation)
    if event_probability is not None and not 0 < event_probability <= 1:
        raise DesignError(f"event_probability must lie in (0, 1], not {event_probability!r}",
                          field="event_probability")
    n = None if event_probability is None else math.ceil(math.ceil(d - 1e-9)
                                                         / event_probability - 1e-9)
    return SurvivalSampleSize(method, hazard_ratio, alpha, sides, power, allocation, d,
                              math.ceil(d - 1e-9), event_probability, n)


# --- group-sequential inflation -------------------------------------------------------


def drift_for_power(boundaries: Boundaries, power: float) -> float:
    """The drift θ (mean of Z at the final look) at which the design's power — upper
    crossings only — equals ``power``."""
    def gap(theta: float) -> float:
        return sum(boundaries.crossing_probabilities(theta)) - power

    return float(brentq(gap, 0.0, 40.0, xtol=1e-12, rtol=1e-14))


def inflation_factor(boundaries: Boundaries, power: float = 0.8) -> float:
    """Maximum information of the group-sequential design over the fixed design's, for
    the same alpha and power (rpact ``getDesignCharacteristics()$inflationFactor``)."""
    fixed = _z_alpha(boundaries.alpha, boundaries.sides) + float(norm.ppf(power))
    return (drift_for_power(boundaries, power) / fixed) ** 2


@dataclass(frozen=True)
class GroupSequentialSize:
    """A fixed design's sample size inflated for interim looks: the per-arm maximum
    (rounded up) and the per-arm n at each look (rounded up)."""

    fixed_n_per_arm: float
    inflation_factor: float
    max_n_per_arm_unrounded: float
    max_n_per_arm: int
    n_per_arm_at_looks: tuple[int, ...]
    information_fractions: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def inflate(fixed_n_per_arm: float, boundaries: Boundaries,
            power: float = 0.8) -> GroupSequentialSize:
    """Inflate a fixed design's per-arm n (unrounded) for the design's looks."""
    factor = inflation_factor(boundaries, power)
    n_max = fixed_n_per_arm * factor
    looks = tuple(math.ceil(n_max * t - 1e-9) for t in boundaries.information_fractions)
    return GroupSequentialSize(fixed_n_per_arm, factor, n_max, math.ceil(n_max - 1e-9), looks,
                               boundaries.information_fractions)
