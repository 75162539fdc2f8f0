"""Kaplan–Meier (product-limit) estimate with R ``survival``'s conventions.

* **Ties in time.** Times closer than ``sqrt(machine eps)`` (absolutely, or relative
  to the mean absolute time) are the same time (:func:`timefix`, R's ``aeqSurv``), so
  ``0.1 + 0.2`` and ``0.3`` do not make two steps. Deaths at a time come before
  censorings at that time (a subject censored at t was at risk at t).
* **Variance.** Greenwood: ``std_err_log`` = sqrt(Σ d/(n(n − d))) is the standard error
  of −log S (R's ``survfit()$std.err``); ``std_err`` = S·std_err_log is that of S
  (R's ``summary(survfit)``).
* **Confidence interval** (``conf_type``, named in every result): ``"log"`` (R's
  default): S·exp(±z·σ), upper limit capped at 1, undefined where S = 0;
  ``"log-log"`` (SAS, lifelines): exp(−exp(log(−log S) ∓ z·σ/log S)), undefined where
  S is 0 or 1; ``"plain"``: S ± z·S·σ clipped to [0, 1].
* **Median and quantiles** (R's ``quantile.survfit``): the first time the curve drops
  to 1 − p or below; when it equals 1 − p exactly (within sqrt(eps)) on a flat segment,
  the midpoint of that segment (times 1..6, all deaths: median 3.5). The interval for a
  quantile applies the same rule to the lower and upper confidence curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import norm

from trialdesk.analysis.results import fmt, num

ConfType = Literal["log", "log-log", "plain"]
CONF_TYPES: tuple[str, ...] = ("log", "log-log", "plain")
TOLERANCE = math.sqrt(np.finfo(float).eps)


def timefix(time: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """Merge times that differ only by rounding (R ``survival::aeqSurv``)."""
    time = np.asarray(time, dtype=float)
    unique = np.unique(time[np.isfinite(time)])
    if len(unique) < 2:
        return time
    gaps = np.diff(unique)
    tied = (gaps <= tolerance) | (gaps / np.mean(np.abs(unique)) <= tolerance)
    if not tied.any():
        return time
    cuts = unique[np.concatenate(([True], ~tied))]
    return cuts[np.searchsorted(cuts, time, side="right") - 1]


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """The estimate at every distinct observed time (deaths and censorings)."""

    label: str
    conf_type: str
    conf_level: float
    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    survival: np.ndarray
    std_err_log: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def std_err(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # S = 0 with an infinite σ: undefined (nan)
            return self.survival * self.std_err_log

    @property
    def n(self) -> int:
        return int(self.n_risk[0]) if len(self.n_risk) else 0

    @property
    def events(self) -> int:
        return int(self.n_event.sum())

    def quantile(self, p: float) -> tuple[float, float, float]:
        """Time by which a fraction ``p`` has died, with its interval: (q, lower, upper);
        ``nan`` where not reached."""
        return (_findq(self.time, 1 - self.survival, p),
                _findq(self.time, 1 - self.lower, p),
                _findq(self.time, 1 - self.upper, p))

    @property
    def median(self) -> tuple[float, float, float]:
        return self.quantile(0.5)

    def at(self, t: float) -> tuple[float, float, float]:
        """(S(t), lower, upper): the step function at ``t`` (right-continuous). After the
        last observed time S is not estimated (``nan``), unless it has reached 0."""
        i = int(np.searchsorted(self.time, t, side="right")) - 1
        if i < 0:
            return 1.0, 1.0, 1.0
        if t > self.time[-1] and self.survival[-1] > 0:
            return math.nan, math.nan, math.nan
        return float(self.survival[i]), float(self.lower[i]), float(self.upper[i])

    def to_dict(self, table: bool = True) -> dict[str, Any]:
        med, lo, hi = self.median
        data: dict[str, Any] = {"label": self.label, "n": self.n, "events": self.events,
                                "conf_type": self.conf_type, "conf_level": self.conf_level,
                                "median": num(med), "median_lower": num(lo),
                                "median_upper": num(hi)}
        if table:
            data["table"] = [
                {"time": float(t), "n_risk": int(r), "n_event": int(e), "n_censor": int(c),
                 "survival": num(s), "std_err": num(se), "lower": num(lo_), "upper": num(up)}
                for t, r, e, c, s, se, lo_, up in zip(
                    self.time, self.n_risk, self.n_event, self.n_censor, self.survival,
                    self.std_err, self.lower, self.upper, strict=True)]
        return data

    def __str__(self) -> str:
        med, lo, hi = self.median
        return (f"<KaplanMeier {self.label}: n {self.n}, events {self.events}, median "
                f"{fmt(med)} ({self.conf_level:.0%} CI {fmt(lo)} to {fmt(hi)}, "
                f"{self.conf_type} transform)>")


def kaplan_meier(time: np.ndarray, event: np.ndarray, *, conf_type: str = "log",
                 conf_level: float = 0.95, label: str = "all") -> KaplanMeier:
    """Product-limit estimate of S(t) from times and event indicators (1 = death)."""
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {', '.join(CONF_TYPES)}, not {conf_type!r}")
    time = timefix(np.asarray(time, dtype=float))
    event = np.asarray(event, dtype=int)
    times, inverse = np.unique(time, return_inverse=True)
    n_event = np.bincount(inverse, weights=event, minlength=len(times)).astype(int)
    n_total = np.bincount(inverse, minlength=len(times))
    n_censor = n_total - n_event
    n_risk = len(time) - np.concatenate(([0], np.cumsum(n_total)[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = 1 - n_event / n_risk
        survival = np.cumprod(factor)
        var_terms = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    std_err_log = np.sqrt(np.cumsum(var_terms))
    lower, upper = _confint(survival, std_err_log, conf_type, conf_level)
    return KaplanMeier(label, conf_type, conf_level, times, n_risk, n_event, n_censor,
                       survival, std_err_log, lower, upper)


def _confint(s: np.ndarray, se: np.ndarray, conf_type: str,
             conf_level: float) -> tuple[np.ndarray, np.ndarray]:
    """R ``survival:::survfit_confint`` with ``logse = TRUE``."""
    z = float(norm.ppf(1 - (1 - conf_level) / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            half = z * se * s
            return np.maximum(s - half, 0.0), np.minimum(s + half, 1.0)
        if conf_type == "log":
            x = np.where(s == 0, np.nan, s)
            return x * np.exp(-z * se), np.minimum(x * np.exp(z * se), 1.0)
        x = np.where((s == 0) | (s == 1), np.nan, s)
        shift = z * se / np.log(x)
        return np.exp(-np.exp(np.log(-np.log(x)) - shift)), \
            np.exp(-np.exp(np.log(-np.log(x)) + shift))


def _findq(time: np.ndarray, cdf: np.ndarray, p: float, tol: float = TOLERANCE) -> float:
    """R ``survival:::findq``: the time at which the distribution function reaches ``p``."""
    x = np.concatenate(([0.0], time))
    y = np.concatenate(([0.0], cdf))
    if not np.any(np.isfinite(y)) or np.nanmax(y) < p:
        return math.nan
    xmax = x[-1]
    keep = _first_occurrences(y)
    x, y = x[keep], y[keep]
    ok = np.isfinite(y)

    def first_at_least(shift: float) -> int | None:
        hits = np.nonzero(ok & (y + shift >= p))[0]
        return int(hits[0]) if len(hits) else None

    i1, i2 = first_at_least(tol), first_at_least(-tol)
    if p == 0:
        return float(x[0])
    if i1 is None:
        return math.nan
    if i2 is None:  # R: only when the last value itself is p (and not missing)
        return float((x[i1] + xmax) / 2) if abs(p - y[-1]) < tol else math.nan
    return float((x[i1] + x[i2]) / 2)


def _first_occurrences(y: np.ndarray) -> np.ndarray:
    """Mask keeping the first of repeated values (R ``!duplicated(y)``, NA counted once)."""
    seen: set[float | None] = set()
    keep = np.zeros(len(y), dtype=bool)
    for i, value in enumerate(y):
        key = None if not math.isfinite(value) else float(value)
        if key not in seen:
            seen.add(key)
            keep[i] = True
    return keep
