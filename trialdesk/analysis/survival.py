"""Time to death by arm: Kaplan–Meier curves, the log-rank test and the Cox model.

Kaplan–Meier (:mod:`~trialdesk.analysis.kaplan_meier`) and Cox
(:mod:`~trialdesk.analysis.cox`) are computed here with numpy, following R
``survival`` (``survfit``, ``survdiff``, ``coxph``): the same tie tolerance, median
rule, Greenwood variance and confidence-interval transforms.

Log-rank test (R ``survdiff``, rho = 0): at each death time the deaths are shared
among the arms in proportion to the numbers at risk; O − E and the hypergeometric
covariance are summed over times (and over strata for the stratified test, R
``survdiff(Surv(time, event) ~ arm + strata(stratum))``); the statistic drops the
first arm: (O − E)ᵀ V⁻¹ (O − E), chi-square with (arms − 1) df. With two arms the
one-sided p is Φ((O − E)/√V) of the treatment arm (fewer deaths than expected).

``horizon`` (the primary analysis uses the protocol's time frame) censors every
subject still alive at that day: later deaths do not count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import chi2, norm

from trialdesk.analysis.cox import CoxResult, cox_ph
from trialdesk.analysis.dataset import SubjectsDataset
from trialdesk.analysis.kaplan_meier import KaplanMeier, kaplan_meier, timefix
from trialdesk.analysis.results import Estimate, TestResult, fmt, num
from trialdesk.analysis.warnings import Caveats, StatisticalWarning
from trialdesk.errors import AnalysisError

SURVIVAL_TESTS = ("logrank", "cox")


@dataclass(frozen=True, eq=False)
class LogRankTest:
    arms: tuple[str, ...]
    observed: np.ndarray
    expected: np.ndarray
    variance: np.ndarray
    stratified: bool
    test: TestResult

    @property
    def chisq(self) -> float:
        return float(self.test.statistic) if self.test.statistic is not None else math.nan

    @property
    def p_value(self) -> float:
        return self.test.p_value

    def to_dict(self) -> dict[str, Any]:
        return {"arms": list(self.arms), "observed": [num(o) for o in self.observed],
                "expected": [num(e) for e in self.expected],
                "variance": [[num(v) for v in row] for row in self.variance],
                "stratified": self.stratified, **self.test.to_dict()}

    def __str__(self) -> str:
        rows = ", ".join(f"{a} O {o:g} E {fmt(e)}" for a, o, e in
                         zip(self.arms, self.observed, self.expected, strict=True))
        return f"{self.test} [{rows}]"


def logrank_test(time: np.ndarray, event: np.ndarray, arm: np.ndarray,
                 arms: tuple[str, ...], *, strata: np.ndarray | None = None,
                 primary: bool = False) -> LogRankTest:
    """The (stratified) log-rank test of equal survival in ``arms`` (first = reference)."""
    time = timefix(np.asarray(time, dtype=float))
    event = np.asarray(event, dtype=int)
    arm = np.asarray(arm, dtype=object)
    k = len(arms)
    member = np.column_stack([arm == a for a in arms]).astype(float)
    groups = np.zeros(len(time), dtype=int) if strata is None else \
        np.unique(np.asarray(strata, dtype=object), return_inverse=True)[1]
    observed, expected, var = np.zeros(k), np.zeros(k), np.zeros((k, k))
    for g in np.unique(groups):
        sel = groups == g
        t, e, m = time[sel], event[sel], member[sel]
        for u in np.unique(t[e == 1]):
            at_risk = (m[t >= u]).sum(axis=0)
            deaths = (m[(t == u) & (e == 1)]).sum(axis=0)
            n, d = at_risk.sum(), deaths.sum()
            observed += deaths
            expected += d * at_risk / n
            if n > 1:
                var += d * (n - d) / (n * n * (n - 1)) * (n * np.diag(at_risk)
                                                          - np.outer(at_risk, at_risk))
    diff = (observed - expected)[1:]
    sub = var[1:, 1:]
    comparison = f"{', '.join(arms[1:])} vs {arms[0]}"
    label = "Log-rank test" + (" (stratified)" if strata is not None else "")
    if np.linalg.matrix_rank(sub) < k - 1:
        test = TestResult("logrank", label, None, k - 1, math.nan, None, primary, comparison)
    else:
        stat = float(diff @ np.linalg.solve(sub, diff))
        one = float(norm.cdf(diff[0] / math.sqrt(sub[0, 0]))) if k == 2 else None
        test = TestResult("logrank", label, stat, k - 1, float(chi2.sf(stat, k - 1)), one,
                          primary, comparison)
    return LogRankTest(tuple(arms), observed, expected, var, strata is not None, test)


@dataclass(frozen=True, eq=False)
class SurvivalAnalysis:
    reference_arm: str
    arms: tuple[str, ...]
    conf_type: str
    conf_level: float
    horizon: float | None
    at_day: float | None
    curves: tuple[KaplanMeier, ...]
    survival_at_day: tuple[Estimate, ...]
    logrank: LogRankTest
    cox: CoxResult | None
    primary_test: str | None
    warnings: tuple[StatisticalWarning, ...]
    #: with more than two arms: log-rank of each treatment arm against the reference
    #: (those two arms only) and the Wald test of each arm's Cox coefficient
    pairwise: tuple[TestResult, ...] = ()

    def curve(self, arm: str) -> KaplanMeier:
        for c in self.curves:
            if c.label == arm:
                return c
        raise KeyError(arm)

    @property
    def tests(self) -> tuple[TestResult, ...]:
        return (self.logrank.test,) + ((self.cox.wald,) if self.cox else ()) + self.pairwise

    def comparison_tests(self, name: str) -> tuple[TestResult, ...]:
        """Test ``name`` ("logrank", "cox") of each treatment arm against the reference."""
        if len(self.arms) == 2:
            return tuple(t for t in self.tests[:2] if t.name == name)
        return tuple(t for t in self.pairwise if t.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"reference_arm": self.reference_arm, "arms": list(self.arms),
                "conf_type": self.conf_type, "conf_level": self.conf_level,
                "horizon_days": self.horizon, "at_day": self.at_day,
                "primary_test": self.primary_test,
                "kaplan_meier": [c.to_dict() for c in self.curves],
                "survival_at_day": [e.to_dict() for e in self.survival_at_day],
                "logrank": self.logrank.to_dict(),
                "cox": self.cox.to_dict() if self.cox else None,
                "pairwise_tests": [t.to_dict() for t in self.pairwise],
                "warnings": [w.to_dict() for w in self.warnings]}

    def __str__(self) -> str:
        horizon = f", censored at day {self.horizon:g}" if self.horizon else ""
        lines = [f"<SurvivalAnalysis: time to death{horizon}; KM CI {self.conf_type} "
                 f"transform>"]
        lines += [f"  {c}" for c in self.curves]
        lines += [f"  {e}" for e in self.survival_at_day]
        lines.append(f"  {self.logrank}")
        lines += [f"  {t}" for t in self.pairwise]
        if self.cox:
            lines += ["  " + line for line in str(self.cox).splitlines()]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def analyze_survival(dataset: SubjectsDataset, *, conf_type: str = "log",
                     conf_level: float = 0.95, ties: str = "efron",
                     horizon: float | None = None, at_day: float | None = None,
                     primary_test: str | None = None) -> SurvivalAnalysis:
    """KM per arm, S(``at_day``), log-rank (stratified when the data has strata), Cox."""
    caveats = Caveats()
    time, event = timefix(dataset.time), dataset.event  # on all arms together, as R does
    if horizon is not None:
        event = np.where(time <= horizon, event, 0)
        time = np.minimum(time, horizon)
    arms = dataset.arms_present
    if not arms or arms[0] != dataset.reference_arm or len(arms) < 2:
        raise AnalysisError(f"Survival analysis needs subjects in the reference arm "
                            f"'{dataset.reference_arm}' and in at least one other arm "
                            f"(arms with subjects: {', '.join(arms)}).")
    arm = dataset.arm
    strata = None if dataset.strata is None else np.asarray(dataset.strata, dtype=object)
    curves = tuple(kaplan_meier(time[arm == a], event[arm == a], conf_type=conf_type,
                                conf_level=conf_level, label=a) for a in arms)
    at = []
    if at_day is not None:
        for c in curves:
            s, lo, hi = c.at(at_day)
            at.append(Estimate(f"survival_day_{at_day:g}_{c.label}", s, lo, hi,
                               f"kaplan_meier_{conf_type}", conf_level))
    if strata is not None:
        lonely = sorted({str(s) for s in np.unique(strata)
                         if len(set(arm[strata == s])) < 2})
        if lonely:
            caveats.add("STRATUM_SINGLE_ARM", f"stratum/strata {', '.join(lonely)} hold one "
                        "arm only and contribute nothing to the stratified tests.")
    several = len(arms) > 2
    logrank = logrank_test(time, event, arm, arms, strata=strata,
                           primary=primary_test == "logrank" and not several)
    if logrank.test.statistic is None:
        caveats.add("LOGRANK_UNDEFINED", "the log-rank test is not defined (no deaths, or "
                    "no death while more than one arm was at risk).")
    no_deaths = [a for a in arms if event[arm == a].sum() == 0]
    cox = None
    if no_deaths:
        caveats.add("COX_NOT_ESTIMABLE", f"no deaths in arm(s) {', '.join(no_deaths)}: the "
                    "Cox hazard ratio is 0 or infinite (monotone likelihood); not reported.")
    else:
        cox = cox_ph(time, event, arm, arms, strata=strata, ties=ties,
                     conf_level=conf_level, primary=primary_test == "cox" and not several)
        if not cox.converged:
            caveats.add("COX_NOT_CONVERGED", "the Cox model did not converge; the hazard "
                        "ratios may be infinite.")
    pairwise: list[TestResult] = []
    if several:
        caveats.add("MULTIPLE_COMPARISONS", "tests and hazard ratios of several arms against "
                    "the reference are not adjusted for multiplicity.")
        for a in arms[1:]:
            pair = (arm == arms[0]) | (arm == a)
            pairwise.append(logrank_test(time[pair], event[pair], arm[pair], (arms[0], a),
                                         strata=None if strata is None else strata[pair],
                                         primary=primary_test == "logrank").test)
        for c in cox.coefficients if cox else ():
            pairwise.append(TestResult("cox", "Cox Wald test", c.z ** 2, 1, c.p_value,
                                       float(norm.cdf(c.z)), primary_test == "cox",
                                       f"{c.arm} vs {arms[0]}"))
    return SurvivalAnalysis(reference_arm=arms[0], arms=arms, conf_type=conf_type,
                            conf_level=conf_level, horizon=horizon, at_day=at_day,
                            curves=curves, survival_at_day=tuple(at), logrank=logrank,
                            cox=cox, primary_test=primary_test, warnings=caveats.freeze(),
                            pairwise=tuple(pairwise))
