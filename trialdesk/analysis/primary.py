"""The primary analysis: mortality at the protocol's time frame, binary and time to death.

:func:`analyze_primary` takes its settings from the protocol when one is given:

* time frame: ``outcomes.primary[0].timeframe_days`` (28 when absent or without a
  protocol); the binary outcome follows :mod:`~trialdesk.analysis.binary`'s rule and
  the survival analysis censors everyone alive at that day (deaths after it do not
  count);
* ``analysis.alpha`` and ``analysis.sides`` (0.05, two-sided without a protocol);
  confidence intervals are at level 1 − 2·alpha/sides (95% for 0.05 two-sided or
  0.025 one-sided); one-sided means "the treatment arm does better" (fewer deaths,
  lower hazard);
* ``analysis.primary_test`` (Fisher exact without a protocol) is flagged as primary
  in the results; every other test is reported as supportive;
* ``analysis.km_ci_transform`` for the Kaplan–Meier intervals (``log``, R's default);
  Cox ties by Efron's method unless ``ties="breslow"``.

The decision for each primary comparison is "p ≤ alpha" with the p-value of the
protocol's sidedness. With more than two arms each treatment arm is compared with the
reference arm (2×2 tests; log-rank of the two arms; Wald test of the arm's Cox
coefficient), and the p-values are not adjusted for multiplicity (a warning says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy
import scipy

import trialdesk
from trialdesk.analysis.binary import BINARY_TESTS, BinaryAnalysis, analyze_binary
from trialdesk.analysis.dataset import SubjectsDataset
from trialdesk.analysis.results import TestResult, fmt_p, num
from trialdesk.analysis.survival import SurvivalAnalysis, analyze_survival
from trialdesk.analysis.warnings import Caveats, StatisticalWarning
from trialdesk.protocol.schema import Protocol

DEFAULT_DAY = 28
DEFAULT_ALPHA = 0.05
DEFAULT_TEST = "fisher_exact"


@dataclass(frozen=True)
class Decision:
    test: TestResult
    sides: int
    alpha: float

    @property
    def p_value(self) -> float | None:
        return self.test.p(self.sides)

    @property
    def significant(self) -> bool | None:
        p = self.p_value
        return None if p is None or p != p else p <= self.alpha

    def to_dict(self) -> dict[str, Any]:
        return {"test": self.test.name, "comparison": self.test.comparison,
                "sides": self.sides, "p_value": num(self.p_value), "alpha": self.alpha,
                "significant": self.significant}

    def __str__(self) -> str:
        verdict = {True: "significant", False: "not significant", None: "undefined"}
        side = "two-sided" if self.sides == 2 else "one-sided"
        return (f"{self.test.label} {self.test.comparison}: {side} p = {fmt_p(self.p_value)} "
                f"→ {verdict[self.significant]} at alpha {self.alpha:g}")


@dataclass(frozen=True, eq=False)
class PrimaryAnalysis:
    dataset: SubjectsDataset
    protocol_id: str | None
    protocol_version: str | None
    protocol_sha256: str | None
    day: float
    alpha: float
    sides: int
    conf_level: float
    primary_test: str
    binary: BinaryAnalysis
    survival: SurvivalAnalysis
    decisions: tuple[Decision, ...]
    warnings: tuple[StatisticalWarning, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": "primary",
            "protocol": {"id": self.protocol_id, "version": self.protocol_version,
                         "sha256": self.protocol_sha256},
            "dataset": self.dataset.to_dict(),
            "timeframe_days": self.day, "alpha": self.alpha, "sides": self.sides,
            "conf_level": self.conf_level, "primary_test": self.primary_test,
            "decisions": [d.to_dict() for d in self.decisions],
            "binary": self.binary.to_dict(), "survival": self.survival.to_dict(),
            "warnings": [w.to_dict() for w in self.warnings],
            "software": {"trialdesk": trialdesk.__version__, "numpy": numpy.__version__,
                         "scipy": scipy.__version__},
        }

    def __str__(self) -> str:
        proto = (f"protocol {self.protocol_id} v{self.protocol_version}"
                 if self.protocol_id else "no protocol (defaults)")
        head = [f"<PrimaryAnalysis: mortality by day {self.day:g}; {proto}; alpha "
                f"{self.alpha:g} {'two' if self.sides == 2 else 'one'}-sided; primary test "
                f"{self.primary_test}>", f"  data: {self.dataset}"]
        head += [f"  decision: {d}" for d in self.decisions]
        return "\n".join([*head, str(self.binary), str(self.survival)])


def analyze_primary(dataset: SubjectsDataset, protocol: Protocol | None = None, *,
                    ties: str = "efron") -> PrimaryAnalysis:
    """Binary and time-to-death analyses of the primary outcome, with the decision."""
    caveats = Caveats()
    if protocol is not None:
        dataset = dataset.for_protocol(protocol)
        settings = protocol.analysis
        day = next((o.timeframe_days for o in protocol.outcomes.primary if o.timeframe_days),
                   DEFAULT_DAY)
        alpha, sides, test = settings.alpha, settings.sides, settings.primary_test
        conf_type = settings.km_ci_transform
    else:
        day, alpha, sides, test, conf_type = DEFAULT_DAY, DEFAULT_ALPHA, 2, DEFAULT_TEST, "log"
    conf_level = round(1 - 2 * alpha / sides, 10)
    binary = analyze_binary(dataset, day=day, conf_level=conf_level, primary_test=test)
    survival = analyze_survival(dataset, conf_type=conf_type, conf_level=conf_level,
                                ties=ties, horizon=day, at_day=day, primary_test=test)
    caveats.extend(binary.warnings)
    caveats.extend(survival.warnings)
    if test in BINARY_TESTS:
        primary = [c.test(test) for c in binary.comparisons]
    else:
        primary = list(survival.comparison_tests(test))
    decisions = tuple(Decision(t, sides, alpha) for t in primary)
    if any(d.p_value is None or d.p_value != d.p_value for d in decisions) or not decisions:
        caveats.add("DECISION_UNDEFINED", f"the primary test {test} has no p-value here "
                    "(see the other warnings); no decision.")
    return PrimaryAnalysis(
        dataset=dataset, protocol_id=protocol.protocol_id if protocol else None,
        protocol_version=protocol.protocol_version if protocol else None,
        protocol_sha256=protocol.content_sha256 if protocol else None, day=float(day),
        alpha=alpha, sides=sides, conf_level=conf_level, primary_test=test, binary=binary,
        survival=survival, decisions=decisions, warnings=caveats.freeze())
