"""Wilcoxon rank-sum (Mann–Whitney) test with the Hodges–Lehmann shift, as R's wilcox.test.

``wilcoxon_rank_sum(x, y)`` compares x (treatment) with y (reference):

* **p-value** (two-sided): exact null distribution when both groups have fewer than
  50 values and there are no ties (R's default); otherwise the normal approximation
  with the tie-corrected variance and a continuity correction of 0.5 (R's
  ``correct = TRUE``). The statistic W is R's: the rank sum of x minus n_x(n_x+1)/2.
* **shift** (Hodges–Lehmann): the median of all n_x·n_y differences x_i − y_j.
* **confidence interval**: order statistics of the sorted differences. Exact case:
  R's rule (``qwilcox``: the interval [d_(q), d_(n_x n_y − q + 1)]). Otherwise the
  ranks come from the normal approximation with the tie-corrected variance:
  q = ⌊n_x n_y/2 − z_{1−α/2}·σ_W⌋ (Lehmann 1975, eq. 2.11).

**Known difference from R** (tested): with ties or larger samples R does not use the
order statistics: it finds the estimate and the limits as roots (``uniroot``, tolerance
1e-4) of the continuity-corrected normal statistic as a function of the shift. On
integer-valued outcomes such as free days, both are values at or between the jumps of a
step function; R's can differ from the median of the differences by up to one step.
This module reports the textbook Hodges–Lehmann estimator (the median of the pairwise
differences), which does not depend on a root finder's tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from trialdesk.analysis.results import fmt, fmt_p, num

EXACT_LIMIT = 50


@dataclass(frozen=True)
class RankSumTest:
    name: str
    n_x: int
    n_y: int
    w: float
    p_value: float
    method: str
    shift: float
    lower: float
    upper: float
    conf_level: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n_treatment": self.n_x, "n_reference": self.n_y,
                "w": num(self.w), "p_value": num(self.p_value), "method": self.method,
                "hodges_lehmann_shift": num(self.shift), "lower": num(self.lower),
                "upper": num(self.upper), "conf_level": self.conf_level}

    def __str__(self) -> str:
        return (f"{self.name}: Hodges–Lehmann shift {fmt(self.shift)} ({self.conf_level:.0%} "
                f"CI {fmt(self.lower)} to {fmt(self.upper)}); Wilcoxon W = {fmt(self.w)}, "
                f"p = {fmt_p(self.p_value)} ({self.method})")


def _exact_counts(n_x: int, n_y: int) -> np.ndarray:
    """Number of arrangements giving each W = 0 … n_x·n_y (no ties): the classic
    recursion f(w; m, n) = f(w − n; m − 1, n) + f(w; m, n − 1), by dynamic programming."""
    table = np.zeros((n_x + 1, n_y + 1, n_x * n_y + 1))
    table[0, :, 0] = 1.0
    table[:, 0, 0] = 1.0
    for m in range(1, n_x + 1):
        for n in range(1, n_y + 1):
            row = table[m, n - 1].copy()
            row[n:] += table[m - 1, n, : n_x * n_y + 1 - n]
            table[m, n] = row
    return table[n_x, n_y]


def wilcoxon_rank_sum(x: np.ndarray, y: np.ndarray, *, conf_level: float = 0.95,
                      name: str = "Wilcoxon rank-sum") -> RankSumTest:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    n_x, n_y = len(x), len(y)
    if n_x == 0 or n_y == 0:
        return RankSumTest(name, n_x, n_y, math.nan, math.nan, "no data", math.nan,
                           math.nan, math.nan, conf_level)
    ranks = stats.rankdata(np.concatenate([x, y]))
    w = float(ranks[:n_x].sum() - n_x * (n_x + 1) / 2)
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    shift = float(np.median(diffs))
    _, tie_counts = np.unique(np.concatenate([x, y]), return_counts=True)
    ties = bool((tie_counts > 1).any())
    nn = n_x * n_y
    alpha = 1 - conf_level
    if n_x < EXACT_LIMIT and n_y < EXACT_LIMIT and not ties:
        counts = _exact_counts(n_x, n_y)
        cdf = np.cumsum(counts) / counts.sum()
        p_le = cdf[int(w)]
        p_ge = 1 - (cdf[int(w) - 1] if w >= 1 else 0.0)
        p = min(1.0, 2 * min(p_le, p_ge))
        # qwilcox(alpha/2): smallest q with P(W ≤ q) ≥ alpha/2
        q = int(np.searchsorted(cdf, alpha / 2 - 1e-12))
        q = max(q, 1)
        lower, upper = diffs[q - 1], diffs[nn - q]
        method = "exact"
    else:
        n = n_x + n_y
        sigma = math.sqrt(nn / 12 * ((n + 1) - float(np.sum(tie_counts ** 3 - tie_counts))
                                     / (n * (n - 1))))
        z = w - nn / 2
        z = (z - math.copysign(0.5, z)) / sigma if z != 0 else 0.0
        p = float(min(1.0, 2 * stats.norm.sf(abs(z)))) if sigma > 0 else 1.0
        zq = float(stats.norm.ppf(1 - alpha / 2))
        q = max(math.floor(nn / 2 - zq * sigma), 1)
        lower, upper = diffs[q - 1], diffs[nn - q]
        method = "normal approximation, tie-corrected, continuity correction"
    return RankSumTest(name, n_x, n_y, w, float(p), method, shift, float(lower),
                       float(upper), conf_level)
