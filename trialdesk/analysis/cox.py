"""Cox proportional-hazards model for the treatment arms, fitted by Newton–Raphson.

The covariates are indicators of the treatment arms (the reference arm is the
baseline), so each hazard ratio compares one arm with the reference arm. Ties are
handled by Efron's approximation by default (R ``coxph``'s default) or Breslow's;
``strata`` gives a stratified model (separate baseline hazards, R ``+ strata()``).
Times are merged with :func:`~trialdesk.analysis.kaplan_meier.timefix` as R does.

Convergence is taken further than R's default (relative change of the log partial
likelihood < 1e-12, step halving when it decreases), so the estimates are the maximum
of the likelihood to ~1e-10; R stops at 1e-9 and agrees to ~1e-9 relative.
Reported: per arm β, SE (inverse observed information), HR = exp β with the Wald
interval exp(β ± z·SE), Wald z and two-sided p; and the global likelihood-ratio,
Wald and score tests (R ``summary(coxph)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import chi2, norm

from trialdesk.analysis.kaplan_meier import timefix
from trialdesk.analysis.results import TestResult, fmt, fmt_p, num
from trialdesk.errors import AnalysisError

Ties = Literal["efron", "breslow"]


@dataclass(frozen=True)
class CoxCoefficient:
    arm: str
    coef: float
    se: float
    hazard_ratio: float
    lower: float
    upper: float
    z: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, "coef": num(self.coef), "se": num(self.se),
                "hazard_ratio": num(self.hazard_ratio), "lower": num(self.lower),
                "upper": num(self.upper), "z": num(self.z), "p_value": num(self.p_value)}


@dataclass(frozen=True)
class CoxResult:
    reference_arm: str
    ties: str
    stratified: bool
    conf_level: float
    n: int
    events: int
    coefficients: tuple[CoxCoefficient, ...]
    loglik_null: float
    loglik: float
    likelihood_ratio: TestResult
    wald: TestResult
    score: TestResult
    iterations: int
    converged: bool

    def coefficient(self, arm: str) -> CoxCoefficient:
        for c in self.coefficients:
            if c.arm == arm:
                return c
        raise KeyError(arm)

    def to_dict(self) -> dict[str, Any]:
        return {"reference_arm": self.reference_arm, "ties": self.ties,
                "stratified": self.stratified, "conf_level": self.conf_level, "n": self.n,
                "events": self.events,
                "coefficients": [c.to_dict() for c in self.coefficients],
                "loglik_null": num(self.loglik_null), "loglik": num(self.loglik),
                "likelihood_ratio": self.likelihood_ratio.to_dict(),
                "wald": self.wald.to_dict(), "score": self.score.to_dict(),
                "iterations": self.iterations, "converged": self.converged}

    def __str__(self) -> str:
        lines = [f"<CoxPH: ties {self.ties}{', stratified' if self.stratified else ''}; "
                 f"n {self.n}, events {self.events}; reference arm {self.reference_arm}>",
                 f"  {'arm':<14}{'coef':>10}{'se':>10}{'HR':>9}{'lower':>9}{'upper':>9}"
                 f"{'p':>10}"]
        for c in self.coefficients:
            lines.append(f"  {c.arm:<14}{fmt(c.coef, 5):>10}{fmt(c.se, 5):>10}"
                         f"{fmt(c.hazard_ratio):>9}{fmt(c.lower):>9}{fmt(c.upper):>9}"
                         f"{fmt_p(c.p_value):>10}")
        for t in (self.likelihood_ratio, self.wald, self.score):
            lines.append(f"  {t}")
        return "\n".join(lines)


def cox_ph(time: np.ndarray, event: np.ndarray, arm: np.ndarray, arms: tuple[str, ...], *,
           strata: np.ndarray | None = None, ties: str = "efron", conf_level: float = 0.95,
           primary: bool = False, max_iter: int = 50) -> CoxResult:
    """Fit the model; ``arms[0]`` is the reference, one coefficient per other arm."""
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow', not {ties!r}")
    time = timefix(np.asarray(time, dtype=float))
    event = np.asarray(event, dtype=int)
    arm = np.asarray(arm, dtype=object)
    if event.sum() == 0:
        raise AnalysisError("Cox model: no deaths in the data.")
    x = np.column_stack([(arm == a).astype(float) for a in arms[1:]])
    x = x - x.mean(axis=0)
    groups = np.zeros(len(time), dtype=int) if strata is None else \
        np.unique(np.asarray(strata, dtype=object), return_inverse=True)[1]
    efron = ties == "efron"
    beta = np.zeros(x.shape[1])
    ll0, u0, i0 = _partial_likelihood(beta, x, time, event, groups, efron)
    ll, u, info = ll0, u0, i0
    converged, iterations = False, 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (reported)
        step = np.linalg.solve(info, u)
        for _ in range(30):
            new = beta + step
            ll_new, u_new, info_new = _partial_likelihood(new, x, time, event, groups, efron)
            if ll_new >= ll - 1e-12 * abs(ll):
                break
            step = step / 2
        done = abs(ll_new - ll) <= 1e-12 * abs(ll_new) and np.all(np.abs(step) < 1e-9)
        beta, ll, u, info = new, ll_new, u_new, info_new
        if done:
            converged = True
            break
    cov = np.linalg.inv(info)
    se = np.sqrt(np.diag(cov))
    z = float(norm.ppf(1 - (1 - conf_level) / 2))
    comparison = f"{', '.join(arms[1:])} vs {arms[0]}"
    coefs = tuple(CoxCoefficient(a, float(b), float(s), math.exp(b), math.exp(b - z * s),
                                 math.exp(b + z * s), float(b / s),
                                 float(2 * norm.sf(abs(b / s))))
                  for a, b, s in zip(arms[1:], beta, se, strict=True))
    df = len(beta)
    one_sided = float(norm.cdf(beta[0] / se[0])) if df == 1 else None
    lr = 2 * (ll - ll0)
    wald = float(beta @ info @ beta)
    score = float(u0 @ np.linalg.solve(i0, u0))
    return CoxResult(
        reference_arm=arms[0], ties=ties, stratified=strata is not None,
        conf_level=conf_level, n=len(time), events=int(event.sum()), coefficients=coefs,
        loglik_null=ll0, loglik=ll,
        likelihood_ratio=TestResult("cox_lr", "Cox likelihood-ratio test", lr, df,
                                    float(chi2.sf(lr, df)), comparison=comparison),
        wald=TestResult("cox", "Cox Wald test", wald, df, float(chi2.sf(wald, df)),
                        one_sided, primary=primary, comparison=comparison),
        score=TestResult("cox_score", "Cox score test", score, df,
                         float(chi2.sf(score, df)), comparison=comparison),
        iterations=iterations, converged=converged)


def _partial_likelihood(beta: np.ndarray, x: np.ndarray, time: np.ndarray, event: np.ndarray,
                        groups: np.ndarray, efron: bool
                        ) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, score vector and observed information at ``beta``."""
    p = x.shape[1]
    ll, score, info = 0.0, np.zeros(p), np.zeros((p, p))
    for g in np.unique(groups):
        idx = np.nonzero(groups == g)[0]
        idx = idx[np.argsort(-time[idx], kind="stable")]
        t, e, xs = time[idx], event[idx], x[idx]
        eta = xs @ beta
        w = np.exp(eta)
        xw = xs * w[:, None]
        xxw = xs[:, :, None] * xs[:, None, :] * w[:, None, None]
        cs0, cs1, cs2 = np.cumsum(w), np.cumsum(xw, axis=0), np.cumsum(xxw, axis=0)
        # the risk set at t: everyone up to the last position holding t (descending order)
        last = np.searchsorted(-t, -t, side="right") - 1
        for u in np.unique(t[e == 1]):
            dead = np.nonzero((t == u) & (e == 1))[0]
            k = last[dead[0]]
            d = len(dead)
            s0d, s1d, s2d = w[dead].sum(), xw[dead].sum(axis=0), xxw[dead].sum(axis=0)
            ll += float(eta[dead].sum())
            score += xs[dead].sum(axis=0)
            for m in range(d):
                f = m / d if efron else 0.0
                den = cs0[k] - f * s0d
                mean = (cs1[k] - f * s1d) / den
                ll -= math.log(den)
                score -= mean
                info += (cs2[k] - f * s2d) / den - np.outer(mean, mean)
    return ll, score, info
