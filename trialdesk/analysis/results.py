"""Small result types shared by the analysis modules, and JSON/format helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def num(x: float | None) -> float | None:
    """A JSON-safe number: NaN and ±infinity (an undefined estimate or limit) become None."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def fmt(x: float | None, digits: int = 4) -> str:
    """Fixed significant digits for reports; ``NA`` for an undefined value."""
    if x is None or not math.isfinite(float(x)):
        return "NA"
    return f"{float(x):.{digits}g}"


def fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(float(p)):
        return "NA"
    return f"{p:.4f}" if p >= 0.0001 else f"{p:.2e}"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval and the method that gave the interval."""

    name: str
    estimate: float
    lower: float
    upper: float
    method: str
    conf_level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "estimate": num(self.estimate), "lower": num(self.lower),
                "upper": num(self.upper), "method": self.method,
                "conf_level": self.conf_level}

    def __str__(self) -> str:
        return (f"{self.name} {fmt(self.estimate)} ({self.conf_level:.0%} CI "
                f"{fmt(self.lower)} to {fmt(self.upper)}, {self.method})")


@dataclass(frozen=True)
class TestResult:
    """One hypothesis test. ``p_value`` is two-sided; ``p_one_sided`` is for the
    alternative "the treatment arm does better than the reference arm" (fewer deaths,
    lower hazard), None where it is not defined (several degrees of freedom)."""

    __test__ = False  # not a pytest test class

    name: str
    label: str
    statistic: float | None
    df: int | None
    p_value: float
    p_one_sided: float | None = None
    primary: bool = False
    comparison: str = ""

    def p(self, sides: int) -> float | None:
        return self.p_value if sides == 2 else self.p_one_sided

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "comparison": self.comparison,
                "statistic": num(self.statistic), "df": self.df, "p_value": num(self.p_value),
                "p_one_sided": num(self.p_one_sided), "primary": self.primary}

    def __str__(self) -> str:
        star = " (primary)" if self.primary else ""
        parts = []
        if self.statistic is not None:
            parts.append(f"statistic {fmt(self.statistic)}")
        if self.df is not None:
            parts.append(f"df {self.df}")
        parts.append(f"p = {fmt_p(self.p_value)}")
        if self.p_one_sided is not None:
            parts.append(f"one-sided p = {fmt_p(self.p_one_sided)}")
        return f"{self.label}{star}: " + ", ".join(parts)
