"""Mortality at a fixed day (28-day mortality) from the subjects dataset.

The rule that turns time-to-event rows into a binary outcome at day ``day`` (28 by
default; the protocol's ``timeframe_days``):

* **death**: ``event`` = 1 and ``time`` ≤ ``day`` (a death on day 28 itself counts);
* **alive**: ``event`` = 1 with ``time`` > ``day``, or ``event`` = 0 with ``time`` ≥
  ``day`` (known alive through the day);
* **missing**: ``event`` = 0 with ``time`` < ``day`` (censored before the day without a
  recorded death: vital status at the day unknown). Such subjects are left out of the
  binary analysis (complete-case) and listed in a ``MISSING_OUTCOME`` warning; nothing
  is imputed.

Each treatment arm is compared with the reference arm (the first arm of the
protocol) as a 2×2 table, rows = arms (treatment, reference), columns = (died,
alive). Estimates are for **death**: risk difference treatment − reference (Wald,
Newcombe hybrid score, Miettinen–Nurminen), relative risk treatment / reference (log
method), odds ratio (Woolf; conditional MLE with its exact interval). The same
differences for **survival** (= −risk difference) and the survival relative risk are
reported too, since the trial's publication gives survival.

Tests (``p_value`` two-sided; ``p_one_sided`` for "treatment has fewer deaths"):
Fisher exact, Pearson chi-square without (``chi_square``) and with Yates' correction
(``chi_square_cc``; R ``chisq.test``/``prop.test`` conventions, one-sided p from the
signed root as in ``prop.test``), Barnard's and Boschloo's exact tests (scipy, which
compares **columns**: the table is passed transposed so the arms are the columns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.stats.contingency import odds_ratio

from trialdesk.analysis import proportions as pr
from trialdesk.analysis.dataset import SubjectsDataset
from trialdesk.analysis.results import Estimate, TestResult, fmt, num
from trialdesk.analysis.warnings import Caveats, StatisticalWarning
from trialdesk.errors import AnalysisError

BINARY_TESTS = ("fisher_exact", "chi_square", "chi_square_cc", "barnard", "boschloo")


@dataclass(frozen=True)
class ArmCounts:
    arm: str
    n: int
    deaths: int
    alive: int
    missing: int

    @property
    def analysed(self) -> int:
        return self.deaths + self.alive

    @property
    def mortality(self) -> float:
        return self.deaths / self.analysed if self.analysed else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, "n": self.n, "deaths": self.deaths, "alive": self.alive,
                "missing": self.missing, "analysed": self.analysed,
                "mortality": num(self.mortality)}


@dataclass(frozen=True)
class BinaryComparison:
    """One treatment arm against the reference arm."""

    treatment: ArmCounts
    reference: ArmCounts
    estimates: tuple[Estimate, ...]
    tests: tuple[TestResult, ...]

    @property
    def label(self) -> str:
        return f"{self.treatment.arm} vs {self.reference.arm}"

    def estimate(self, name: str, method: str | None = None) -> Estimate:
        for e in self.estimates:
            if e.name == name and (method is None or e.method == method):
                return e
        raise KeyError((name, method))

    def test(self, name: str) -> TestResult:
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"treatment": self.treatment.arm, "reference": self.reference.arm,
                "table": {"rows": [self.treatment.arm, self.reference.arm],
                          "columns": ["died", "alive"],
                          "counts": [[self.treatment.deaths, self.treatment.alive],
                                     [self.reference.deaths, self.reference.alive]]},
                "estimates": [e.to_dict() for e in self.estimates],
                "tests": [t.to_dict() for t in self.tests]}


@dataclass(frozen=True)
class BinaryAnalysis:
    day: float
    reference_arm: str
    arms: tuple[ArmCounts, ...]
    comparisons: tuple[BinaryComparison, ...]
    primary_test: str | None
    conf_level: float
    warnings: tuple[StatisticalWarning, ...]

    @property
    def rule(self) -> str:
        d = f"{self.day:g}"
        return (f"death: event 1 with time ≤ {d}; alive: event 1 with time > {d} or event 0 "
                f"with time ≥ {d}; missing: event 0 with time < {d} (left out)")

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "rule": self.rule, "reference_arm": self.reference_arm,
                "conf_level": self.conf_level, "primary_test": self.primary_test,
                "arms": [a.to_dict() for a in self.arms],
                "comparisons": [c.to_dict() for c in self.comparisons],
                "warnings": [w.to_dict() for w in self.warnings]}

    def __str__(self) -> str:
        lines = [f"<BinaryAnalysis: mortality by day {self.day:g}>",
                 f"  rule: {self.rule}", "",
                 f"  {'arm':<14}{'n':>5}{'deaths':>8}{'alive':>7}{'missing':>9}{'mortality':>11}"]
        for a in self.arms:
            ref = " *" if a.arm == self.reference_arm else ""
            lines.append(f"  {a.arm + ref:<14}{a.n:>5}{a.deaths:>8}{a.alive:>7}{a.missing:>9}"
                         f"{fmt(a.mortality):>11}")
        lines.append("  (* reference arm)")
        for c in self.comparisons:
            lines += ["", f"  {c.label}:"]
            lines += [f"    {e}" for e in c.estimates]
            lines += [f"    {t}" for t in c.tests]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def day_outcome(time: np.ndarray, event: np.ndarray, day: float) -> np.ndarray:
    """Per subject: 1 = died by ``day``, 0 = alive at ``day``, −1 = missing (see module)."""
    died = (event == 1) & (time <= day)
    alive = ((event == 1) & (time > day)) | ((event == 0) & (time >= day))
    return np.where(died, 1, np.where(alive, 0, -1))


def analyze_binary(dataset: SubjectsDataset, *, day: float = 28, conf_level: float = 0.95,
                   primary_test: str | None = None) -> BinaryAnalysis:
    """Mortality by ``day`` per arm and each treatment arm against the reference arm."""
    caveats = Caveats()
    outcome = day_outcome(dataset.time, dataset.event, day)
    arm = dataset.arm
    counts = []
    for name in dataset.arms_present:
        mask = arm == name
        counts.append(ArmCounts(name, int(mask.sum()), int((outcome[mask] == 1).sum()),
                                int((outcome[mask] == 0).sum()),
                                int((outcome[mask] == -1).sum())))
    missing = [sid for sid, o in zip(dataset.subject_ids, outcome, strict=True) if o == -1]
    if missing:
        caveats.add("MISSING_OUTCOME",
                    f"{len(missing)} subject(s) censored before day {day:g} without a recorded "
                    f"death have no day-{day:g} outcome and are left out of the binary "
                    f"analysis (complete case): {', '.join(missing[:20])}"
                    f"{' …' if len(missing) > 20 else ''}.")
    reference = counts[0] if counts and counts[0].arm == dataset.reference_arm else None
    if reference is None or len(counts) < 2:
        raise AnalysisError(f"Binary analysis needs subjects in the reference arm "
                            f"'{dataset.reference_arm}' and in at least one other arm "
                            f"(arms with subjects: {', '.join(dataset.arms_present)}).")
    for c in counts:
        if c.analysed == 0:
            raise AnalysisError(f"Arm '{c.arm}' has no subject with a day-{day:g} outcome.")
    comparisons = tuple(_compare(t, reference, conf_level, primary_test, caveats)
                        for t in counts[1:])
    if len(comparisons) > 1:
        caveats.add("MULTIPLE_COMPARISONS",
                    f"{len(comparisons)} treatment arms are each compared with "
                    f"'{reference.arm}'; p-values are not adjusted for multiplicity.")
    return BinaryAnalysis(day=float(day), reference_arm=reference.arm, arms=tuple(counts),
                          comparisons=comparisons, primary_test=primary_test,
                          conf_level=conf_level, warnings=caveats.freeze())


def _compare(t: ArmCounts, r: ArmCounts, conf: float, primary: str | None,
             caveats: Caveats) -> BinaryComparison:
    label = f"{t.arm} vs {r.arm}"
    x1, n1, x2, n2 = t.deaths, t.analysed, r.deaths, r.analysed
    estimates: list[Estimate] = []
    for method, func in (("wald", pr.wald_difference), ("newcombe", pr.newcombe_difference),
                         ("miettinen_nurminen", pr.miettinen_nurminen_difference)):
        d, lo, hi = func(x1, n1, x2, n2, conf)
        estimates.append(Estimate("risk_difference", d, lo, hi, method, conf))
        estimates.append(Estimate("survival_difference", -d, -hi, -lo, method, conf))
    estimates.append(Estimate("relative_risk", *pr.log_relative_risk(x1, n1, x2, n2, conf),
                              "log", conf))
    estimates.append(Estimate("relative_risk_survival",
                              *pr.log_relative_risk(t.alive, n1, r.alive, n2, conf), "log",
                              conf))
    estimates.append(Estimate("odds_ratio", *pr.woolf_odds_ratio(x1, t.alive, x2, r.alive,
                                                                  conf), "woolf", conf))
    table = np.array([[x1, t.alive], [x2, r.alive]])
    if 0 in table:
        caveats.add("ZERO_CELL", f"{label}: a zero count in the 2×2 table; the log-method "
                    "relative risk and Woolf odds-ratio intervals are not defined (reported "
                    "as null); use the Newcombe / Miettinen–Nurminen differences and the "
                    "exact tests.")
    cond = odds_ratio(table, kind="conditional")
    ci = cond.confidence_interval(confidence_level=conf)
    estimates.append(Estimate("odds_ratio", float(cond.statistic), float(ci.low),
                              float(ci.high), "conditional_mle_exact", conf))
    return BinaryComparison(t, r, tuple(estimates), _tests(table, label, primary, caveats))


def _tests(table: np.ndarray, label: str, primary: str | None,
           caveats: Caveats) -> tuple[TestResult, ...]:
    def result(name: str, text: str, stat: float | None, df: int | None, p: float,
               p1: float | None) -> TestResult:
        return TestResult(name, text, stat, df, float(p), None if p1 is None else float(p1),
                          primary=name == primary, comparison=label)

    fisher2 = stats.fisher_exact(table, alternative="two-sided")
    fisher1 = stats.fisher_exact(table, alternative="less")
    out = [result("fisher_exact", "Fisher exact", None, None, fisher2.pvalue, fisher1.pvalue)]
    margins_ok = table.sum(axis=0).all() and table.sum(axis=1).all()
    fewer = table[0, 0] / table[0].sum() < table[1, 0] / table[1].sum()
    for name, text, correct in (("chi_square", "Pearson chi-square", False),
                                ("chi_square_cc", "Chi-square, Yates-corrected", True)):
        if not margins_ok:
            out.append(result(name, text, None, 1, math.nan, None))
            continue
        chi = stats.chi2_contingency(table, correction=correct)
        half = float(chi.pvalue) / 2
        out.append(result(name, text, float(chi.statistic), 1, chi.pvalue,
                          half if fewer else 1 - half))
    if not margins_ok:
        caveats.add("DEGENERATE_TABLE", f"{label}: every subject had the same outcome; the "
                    "chi-square tests are not defined.")
    elif (expected := stats.contingency.expected_freq(table)).min() < 5:
        caveats.add("SMALL_EXPECTED", f"{label}: smallest expected count "
                    f"{expected.min():.2f} < 5; the chi-square approximation is doubtful "
                    "(prefer the exact tests).")
    n1, n2 = int(table[0].sum()), int(table[1].sum())
    stat, p2 = pr.barnard_exact(int(table[0, 0]), n1, int(table[1, 0]), n2, "two-sided")
    _, p1 = pr.barnard_exact(int(table[0, 0]), n1, int(table[1, 0]), n2, "less")
    out.append(result("barnard", "Barnard exact (pooled Wald)", stat, None, p2, p1))
    stat, p2 = pr.boschloo_exact(int(table[0, 0]), n1, int(table[1, 0]), n2, "two-sided")
    _, p1 = pr.boschloo_exact(int(table[0, 0]), n1, int(table[1, 0]), n2, "less")
    out.append(result("boschloo", "Boschloo exact", stat if math.isfinite(stat) else None,
                      None, p2, p1))
    return tuple(out)

