"""Confidence intervals for two independent proportions (x1/n1 vs x2/n2).

Group 1 is the treatment arm, group 2 the reference arm; differences are p1 − p2
and ratios p1 / p2. Every function returns ``(estimate, lower, upper)``; a limit
that does not exist (a ratio with a zero count) is ``nan`` or ``inf``, never a
made-up number (no continuity corrections are added silently).

* Wald: p1 − p2 ± z·sqrt(p1q1/n1 + p2q2/n2).
* Newcombe (1998, method 10), "hybrid score": combines the two Wilson score
  intervals (l1, u1), (l2, u2): lower = d − sqrt((p1 − l1)² + (u2 − p2)²),
  upper = d + sqrt((u1 − p1)² + (p2 − l2)²).
* Miettinen–Nurminen (1985): the set of δ with
  (p1 − p2 − δ)² / V(δ) ≤ z², V(δ) = [p̃1(1 − p̃1)/n1 + p̃2(1 − p̃2)/n2]·N/(N − 1),
  where p̃1 = p̃2 + δ are the maximum-likelihood estimates restricted to p1 − p2 = δ
  (closed form of Farrington & Manning 1990); the limits are found by root finding
  (Brent) on each side of the estimate.
* Relative risk, log method (Katz): exp(log RR ± z·sqrt(1/x1 − 1/n1 + 1/x2 − 1/n2)).
* Odds ratio, Woolf (logit) method: exp(log OR ± z·sqrt(1/a + 1/b + 1/c + 1/d)).
* Barnard's and Boschloo's unconditional exact tests, with ties in the statistic
  handled (see :func:`barnard_exact`, :func:`boschloo_exact`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import gammaln
from scipy.stats import binom, norm

Interval = tuple[float, float, float]


def _z(conf_level: float) -> float:
    return float(norm.ppf(1 - (1 - conf_level) / 2))


def wilson_interval(x: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for one proportion (R ``prop.test(x, n, correct=FALSE)``)."""
    z = _z(conf_level)
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def wald_difference(x1: int, n1: int, x2: int, n2: int, conf_level: float = 0.95) -> Interval:
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    half = _z(conf_level) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return d, d - half, d + half


def newcombe_difference(x1: int, n1: int, x2: int, n2: int,
                        conf_level: float = 0.95) -> Interval:
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, conf_level)
    l2, u2 = wilson_interval(x2, n2, conf_level)
    d = p1 - p2
    return (d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def restricted_mle(x1: int, n1: int, x2: int, n2: int, delta: float) -> tuple[float, float]:
    """(p̃1, p̃2) maximizing the binomial likelihood subject to p1 − p2 = delta."""
    p1, p2 = x1 / n1, x2 / n2
    theta = n2 / n1
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta * delta + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b ** 3 / (27 * a ** 3) - b * c / (6 * a * a) + d / (2 * a)
    u_sq = b * b / (9 * a * a) - c / (3 * a)
    u = math.copysign(math.sqrt(max(u_sq, 0.0)), v) if v != 0 else math.sqrt(max(u_sq, 0.0))
    if u == 0:
        q1 = -b / (3 * a)
    else:
        w = (math.pi + math.acos(max(-1.0, min(1.0, v / u ** 3)))) / 3
        q1 = 2 * u * math.cos(w) - b / (3 * a)
    q1 = min(1.0, max(0.0, q1))
    q2 = min(1.0, max(0.0, q1 - delta))
    return q1, q2


def mn_statistic(x1: int, n1: int, x2: int, n2: int, delta: float) -> float:
    """Miettinen–Nurminen score statistic (chi-square scale) for H0: p1 − p2 = delta."""
    q1, q2 = restricted_mle(x1, n1, x2, n2, delta)
    n = n1 + n2
    var = (q1 * (1 - q1) / n1 + q2 * (1 - q2) / n2) * n / (n - 1)
    diff = x1 / n1 - x2 / n2 - delta
    if var <= 0:
        return 0.0 if abs(diff) < 1e-15 else math.inf
    return diff * diff / var


def miettinen_nurminen_difference(x1: int, n1: int, x2: int, n2: int,
                                  conf_level: float = 0.95) -> Interval:
    d = x1 / n1 - x2 / n2
    crit = _z(conf_level) ** 2
    eps = 1e-12

    def excess(delta: float) -> float:
        return mn_statistic(x1, n1, x2, n2, delta) - crit

    def limit(edge: float) -> float:
        inner = edge + (eps if edge < d else -eps)
        if abs(d - edge) < eps or excess(inner) <= 0:
            return edge
        lo, hi = sorted((inner, d))
        return float(brentq(excess, lo, hi, xtol=1e-14, rtol=1e-15, maxiter=500))

    return d, limit(-1.0), limit(1.0)


def log_relative_risk(x1: int, n1: int, x2: int, n2: int, conf_level: float = 0.95) -> Interval:
    if x1 == 0 or x2 == 0:
        rr = (x1 / n1) / (x2 / n2) if x2 else math.inf
        return rr, math.nan, math.nan
    rr = (x1 / n1) / (x2 / n2)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    z = _z(conf_level)
    return rr, rr * math.exp(-z * se), rr * math.exp(z * se)


def woolf_odds_ratio(a: int, b: int, c: int, d: int, conf_level: float = 0.95) -> Interval:
    """Odds ratio (a·d)/(b·c) of the table [[a, b], [c, d]] with Woolf's interval."""
    if 0 in (a, b, c, d):
        ratio = (a * d) / (b * c) if b * c else math.inf
        return ratio, math.nan, math.nan
    ratio = (a * d) / (b * c)
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    z = _z(conf_level)
    return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)


#: statistics closer than this (relative) are ties: the same value computed two ways
TIE_TOLERANCE = 1e-9


def barnard_exact(x1: int, n1: int, x2: int, n2: int,
                  alternative: str = "two-sided") -> tuple[float, float]:
    """Barnard's unconditional exact test (pooled Wald statistic): ``(statistic, p)``.

    Same test as scipy's ``barnard_exact(pooled=True)`` on the table whose columns are
    the groups, but tables whose statistic equals the observed one up to rounding
    (relative :data:`TIE_TOLERANCE`) count as "as extreme": scipy compares the floats
    exactly and drops such ties, so its p-value depends on the order of the rows
    (RUMCESS 6/15 vs 12/15: 0.02976 or 0.03007; the correct value is 0.03007).
    ``alternative`` "less" is H1: p1 < p2. The nuisance parameter is maximized as in
    :func:`_sup_over_nuisance`.
    """
    k1 = np.arange(n1 + 1)[:, None]
    k2 = np.arange(n2 + 1)[None, :]
    pooled = (k1 + k2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(k1 / n1 == k2 / n2, 0.0, (k1 / n1 - k2 / n2) / np.sqrt(var))
    observed = float(stat[x1, x2])
    tol = TIE_TOLERANCE * max(1.0, abs(observed))
    if alternative == "two-sided":
        extreme = np.abs(stat) >= abs(observed) - tol
    elif alternative == "less":
        extreme = stat <= observed + tol
    elif alternative == "greater":
        extreme = stat >= observed - tol
    else:
        raise ValueError(f"alternative must be two-sided, less or greater, not {alternative!r}")
    return observed, _sup_over_nuisance(extreme, n1, n2)


def boschloo_exact(x1: int, n1: int, x2: int, n2: int,
                   alternative: str = "two-sided") -> tuple[float, float]:
    """Boschloo's unconditional exact test: ``(statistic, p)``.

    The statistic of a table is Fisher's one-sided p-value (hypergeometric tail given
    the total number of events); the p-value is the probability, maximized over the
    common event probability π, of a table whose Fisher p-value is at most the
    observed one (ties within relative :data:`TIE_TOLERANCE`). Two-sided: twice the
    smaller one-sided p-value, capped at 1 — scipy's ``boschloo_exact`` convention,
    which this function reproduces (tested) on the table whose columns are the groups.
    ``alternative`` "less" is H1: p1 < p2. Vectorized over every table and the grid
    of π, so a 500 vs 500 trial takes well under a second (scipy: about 10 s).
    """
    if alternative == "two-sided":
        less, p_less = boschloo_exact(x1, n1, x2, n2, "less")
        greater, p_greater = boschloo_exact(x1, n1, x2, n2, "greater")
        stat, p = (greater, p_greater) if p_greater < p_less else (less, p_less)
        return stat, min(1.0, 2 * p)
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be two-sided, less or greater, not {alternative!r}")
    if alternative == "less":
        fisher = _fisher_lower_tail(n1, n2)
    else:
        fisher = _fisher_lower_tail(n2, n1).T
    observed = float(fisher[x1, x2])
    extreme = fisher <= observed * (1 + TIE_TOLERANCE)
    return observed, _sup_over_nuisance(extreme, n1, n2)


def _fisher_lower_tail(n1: int, n2: int) -> np.ndarray:
    """P(X1 ≤ k1 | k1 + k2 events) under the hypergeometric law, for every table (k1, k2).

    The tables with the same number of events m = k1 + k2 lie on one anti-diagonal;
    shearing the (n1 + 1) × (n2 + 1) grid to (k1, m) turns each tail into a cumulative
    sum down a column — O(n1·N) instead of one hypergeometric CDF call per table.
    """
    total = n1 + n2
    k1 = np.arange(n1 + 1)[:, None]
    m = np.arange(total + 1)[None, :]
    k2 = m - k1
    valid = (k2 >= 0) & (k2 <= n2)
    log_pmf = (_log_choose(n1, k1) + _log_choose(n2, np.clip(k2, 0, n2))
               - _log_choose(total, m))
    sheared = np.where(valid, np.exp(log_pmf), 0.0).cumsum(axis=0)
    rows = np.arange(n1 + 1)[:, None]
    return np.minimum(sheared[rows, rows + np.arange(n2 + 1)[None, :]], 1.0)


def _log_choose(n: int, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def _sup_over_nuisance(extreme: np.ndarray, n1: int, n2: int) -> float:
    """max over π of P(table in ``extreme`` | both groups Binomial(n, π)).

    ``extreme`` is an (n1 + 1) × (n2 + 1) boolean mask of the tables (k1, k2) counted.
    π runs over a grid of 401 points (one matrix product for all of them), then the
    three best points are refined by bounded Brent search to 1e-10.
    """
    if extreme.all():
        return 1.0
    mask = extreme.astype(float)
    k1 = np.arange(n1 + 1)
    k2 = np.arange(n2 + 1)

    def p_at(pi: float) -> float:
        return float(binom.pmf(k1, n1, pi) @ mask @ binom.pmf(k2, n2, pi))

    grid = np.linspace(0.0, 1.0, 401)
    pmf1 = binom.pmf(k1[:, None], n1, grid[None, :])
    pmf2 = binom.pmf(k2[:, None], n2, grid[None, :])
    values = np.einsum("ig,ig->g", pmf1, mask @ pmf2)
    best = float(values.max())
    for i in np.argsort(values)[-3:]:
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(lambda pi: -p_at(pi), bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-10})
        best = max(best, -float(res.fun))
    return min(1.0, best)
