"""Rejection regions of a 2×2 test for every possible table with given arm sizes, and
the exact probability of rejecting by enumeration of the two binomials.

A trial with ``n_treatment`` and ``n_control`` patients ends with ``x_t`` and ``x_c``
deaths (events); a test rejects or not. For fixed arm sizes there are only
(n_t + 1)(n_c + 1) possible tables, so the decision for each one is computed once
(:func:`decision_table`) and a simulated trial is a table look-up, and the exact power
is the sum of the binomial probabilities of the rejected tables (:func:`exact_power`).

Orientation as in :mod:`trialdesk.analysis.binary`: rows (treatment, control), columns
(died, alive); "favourable" = fewer deaths in the treatment arm. One-sided tests
(``sides=1``) test for a favourable effect only (Fisher ``alternative="less"``).

Fisher's two-sided p-value sums the probabilities of all tables with the same margins
that are no more likely than the one observed (R's ``fisher.test`` and scipy's
``fisher_exact``). Here it is computed for all tables at once from log-factorials;
"no more likely" uses a relative tolerance of 1e-7 (R's ``relErr``), so tables whose
probabilities differ only by rounding count as equally likely. The tests check every
p-value against :func:`scipy.stats.fisher_exact` (the function the analysis uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import gammaln
from scipy.stats import binom, chi2

from trialdesk.errors import DesignError

#: primary tests the table-driven simulation can evaluate (protocol analysis.primary_test)
TABLE_TESTS = ("fisher_exact", "chi_square", "chi_square_cc")
_REL_ERR = 1 + 1e-7


def _check_sizes(n_treatment: int, n_control: int) -> None:
    if min(n_treatment, n_control) < 1:
        raise DesignError(f"each arm needs at least one patient (got {n_treatment} and "
                          f"{n_control})", field="n_per_arm")


def _log_choose(n: int, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def fisher_pvalues(n_treatment: int, n_control: int, sides: int = 2) -> np.ndarray:
    """Fisher exact p-values for every table: element [x_t, x_c] of an
    (n_t + 1) × (n_c + 1) array. ``sides=2``: two-sided; ``sides=1``: one-sided for
    fewer deaths in the treatment arm (P(X_t ≤ x_t) given the margins)."""
    _check_sizes(n_treatment, n_control)
    xt = np.arange(n_treatment + 1)[:, None]
    xc = np.arange(n_control + 1)[None, :]
    total = n_treatment + n_control
    s = xt + xc
    logp = _log_choose(n_treatment, xt) + _log_choose(n_control, xc) - _log_choose(total, s)
    prob = np.exp(logp)
    out = np.empty_like(prob)
    for deaths in range(total + 1):
        # tables with this column margin: x_t from lo to hi, x_c = deaths - x_t
        lo, hi = max(0, deaths - n_control), min(n_treatment, deaths)
        rows = np.arange(lo, hi + 1)
        p = prob[rows, deaths - rows]
        p = p / p.sum()  # exact up to rounding; renormalise the conditional distribution
        if sides == 2:
            order = np.sort(p)
            cum = np.cumsum(order)
            idx = np.searchsorted(order, p * _REL_ERR, side="right") - 1
            pv = cum[idx]
        else:
            pv = np.cumsum(p)
        out[rows, deaths - rows] = np.minimum(pv, 1.0)
    return out


def chi_square_pvalues(n_treatment: int, n_control: int, sides: int = 2,
                       correct: bool = False) -> np.ndarray:
    """Pearson chi-square p-values (``correct``: Yates) for every table, as the analysis
    computes them (``scipy.stats.chi2_contingency``); 1 where a margin is zero.
    One-sided: half the two-sided p when the treatment arm has fewer deaths, else
    1 − half (R ``prop.test``)."""
    _check_sizes(n_treatment, n_control)
    xt = np.arange(n_treatment + 1)[:, None].astype(float)
    xc = np.arange(n_control + 1)[None, :].astype(float)
    total = n_treatment + n_control
    deaths = xt + xc
    alive = total - deaths
    obs = [xt, n_treatment - xt, xc, n_control - xc]
    exp = [n_treatment * deaths / total, n_treatment * alive / total,
           n_control * deaths / total, n_control * alive / total]
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.abs(obs[0] - exp[0])
        if correct:
            diff = np.maximum(diff - 0.5, 0.0)  # scipy: never over-correct past 0
        stat = sum(diff ** 2 / e for e in exp)
    p2 = np.where((deaths > 0) & (alive > 0), chi2.sf(stat, 1), 1.0)
    if sides == 2:
        return p2
    fewer = xt / n_treatment < xc / n_control
    half = p2 / 2
    return np.where((deaths > 0) & (alive > 0), np.where(fewer, half, 1 - half), np.nan)


def pvalue_table(test: str, n_treatment: int, n_control: int, sides: int = 2) -> np.ndarray:
    """p-values of ``test`` (one of :data:`TABLE_TESTS`) for every table."""
    if test == "fisher_exact":
        return fisher_pvalues(n_treatment, n_control, sides)
    if test in ("chi_square", "chi_square_cc"):
        return chi_square_pvalues(n_treatment, n_control, sides, test == "chi_square_cc")
    raise DesignError(f"the design simulation evaluates a binary primary outcome with "
                      f"{', '.join(TABLE_TESTS)}; '{test}' is not one of them (time-to-event "
                      "tests need simulated event times, not 2×2 tables)",
                      field="analysis.primary_test")


def pooled_z_table(n_treatment: int, n_control: int) -> np.ndarray:
    """The pooled two-proportion z statistic (control − treatment death rate over its
    standard error under H0; positive = treatment better) for every table; 0 where every
    patient had the same outcome. Its square is the Pearson chi-square."""
    _check_sizes(n_treatment, n_control)
    xt = np.arange(n_treatment + 1)[:, None] / n_treatment
    xc = np.arange(n_control + 1)[None, :] / n_control
    pooled = (xt * n_treatment + xc * n_control) / (n_treatment + n_control)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_treatment + 1 / n_control))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (xc - xt) / se, 0.0)
    return z


def direction_table(n_treatment: int, n_control: int) -> np.ndarray:
    """+1 where the treatment arm has the lower death rate, −1 where higher, 0 equal."""
    xt = np.arange(n_treatment + 1)[:, None] * n_control
    xc = np.arange(n_control + 1)[None, :] * n_treatment
    return np.sign(xc - xt).astype(np.int8)


@lru_cache(maxsize=4096)
def decision_table(test: str, n_treatment: int, n_control: int, alpha: float,
                   sides: int = 2) -> np.ndarray:
    """int8 decisions for every table: +1 reject favouring treatment, −1 reject against
    it (two-sided tests only), 0 do not reject. Reject when p ≤ alpha (the analysis'
    rule). Cached: a simulation builds each (test, n_t, n_c, alpha) table once."""
    p = pvalue_table(test, n_treatment, n_control, sides)
    direction = direction_table(n_treatment, n_control)
    reject = np.nan_to_num(p, nan=1.0) <= alpha
    table = np.where(reject, direction, 0).astype(np.int8)
    if sides == 1:
        table[table < 0] = 0
    table.setflags(write=False)
    return table


@dataclass(frozen=True)
class ExactRejection:
    """P(reject H0) and P(reject favouring treatment), by enumeration."""

    reject: float
    favourable: float


def exact_power(decisions: np.ndarray, p_treatment: float, p_control: float) -> ExactRejection:
    """Probability of each kind of rejection when deaths are Binomial(n_t, p_treatment)
    and Binomial(n_c, p_control): Σ over all tables of P(x_t) P(x_c) × decision."""
    n_t, n_c = decisions.shape[0] - 1, decisions.shape[1] - 1
    pt = binom.pmf(np.arange(n_t + 1), n_t, p_treatment)
    pc = binom.pmf(np.arange(n_c + 1), n_c, p_control)
    joint = pt[:, None] * pc[None, :]
    return ExactRejection(float(joint[decisions != 0].sum()),
                          float(joint[decisions > 0].sum()))


def z_decision_table(n_treatment: int, n_control: int, upper: float,
                     lower: float | None) -> np.ndarray:
    """Group-sequential look: +1 when Z ≥ upper, −1 when Z ≤ lower (two-sided designs),
    else 0; Z the pooled two-proportion statistic (:func:`pooled_z_table`)."""
    z = pooled_z_table(n_treatment, n_control)
    table = np.where(z >= upper, 1, 0)
    if lower is not None:
        table = np.where(z <= lower, -1, table)
    return table.astype(np.int8)

