"""Secondary analyses from the daily dataset: SOFA, cytokines, vasopressor/ventilator-free days.

Definitions (each comparison is treatment arm vs the reference arm, treatment − reference
or treatment / reference; confidence level as the primary analysis, 1 − 2·alpha/sides):

* **SOFA trajectory, days 0–7** (total, and total without coagulation): linear mixed
  model ``sofa ~ arm * day + (1 | subject)`` with day as a number (points per day), REML,
  the protocol's ``analysis.mixed_model_df`` (:mod:`~trialdesk.analysis.mixed_model`).
  ``arm<T>`` is the difference at day 0, ``arm<T>:day`` the difference in slope, and the
  contrast ``arm<T> at day 7`` the modelled difference at day 7. Every observed value
  counts; subjects who die or leave the ICU contribute until then (missing at random).
* **ΔSOFA** = SOFA on the last day with a value among days 1–7 (day 7 when measured) −
  SOFA on day 0; negative = improvement. A subject without day 0 or without any value
  on days 1–7 is left out (``DELTA_SOFA_MISSING`` caveat). Compared by the Wilcoxon
  rank-sum test with the Hodges–Lehmann shift, and by the difference in means (Welch).
* **Cytokines and inflammatory markers** (IL-6, IL-10, CRP, procalcitonin), log scale:
  per subject log(value on day d / value on day 0) for each measured day d ≥ 1; per arm
  the geometric mean fold change exp(mean) with a t interval; between arms the ratio of
  geometric mean fold changes exp(difference of means) with Welch's interval (R
  ``t.test`` on the log changes). Values ≤ 0 (below detection reported as 0) cannot be
  logged and are left out with a ``NONPOSITIVE_VALUE`` caveat.
* **Vasopressor-free and ventilator-free days to day 28** (domain.md §8): 0 for a subject
  who died on or before day 28; otherwise 28 − the number of days 1–28 with the flag 1
  (day 0, the partial day of randomization, does not count). Days without a record
  count as free (no daily form after ICU discharge) and are named in a caveat; a
  subject censored alive before day 28, or without any daily record, is left out.
  Compared by Wilcoxon rank-sum with the Hodges–Lehmann shift (:mod:`ranks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.analysis.mixed_model import MixedModelFit, fit_random_intercept
from trialdesk.analysis.ranks import RankSumTest, wilcoxon_rank_sum
from trialdesk.analysis.results import Estimate, fmt, num
from trialdesk.analysis.tidy import CYTOKINES
from trialdesk.analysis.warnings import Caveats, StatisticalWarning
from trialdesk.errors import AnalysisError
from trialdesk.protocol.schema import Protocol

SOFA_OUTCOMES = {"sofa_total": "SOFA total",
                 "sofa_without_coagulation": "SOFA without coagulation"}
MARKER_LABELS = {"il6_pg_per_ml": "IL-6 (pg/mL)", "il10_pg_per_ml": "IL-10 (pg/mL)",
                 "crp_mg_per_l": "CRP (mg/L)", "procalcitonin_ng_per_ml": "Procalcitonin (ng/mL)"}
FREE_DAYS = {"on_vasopressor": "Vasopressor-free days to day 28",
             "on_invasive_ventilation": "Ventilator-free days to day 28"}


@dataclass(frozen=True)
class TrajectoryPoint:
    """Observed mean and SD of an outcome on one day in one arm (descriptive)."""

    outcome: str
    arm: str
    day: int
    n: int
    mean: float
    sd: float

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "arm": self.arm, "day": self.day, "n": self.n,
                "mean": num(self.mean), "sd": num(self.sd)}


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    n: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, "n": self.n, "mean": num(self.mean), "sd": num(self.sd),
                "median": num(self.median), "q1": num(self.q1), "q3": num(self.q3)}

    def __str__(self) -> str:
        return (f"{self.arm}: n {self.n}, mean {fmt(self.mean)} (SD {fmt(self.sd)}), median "
                f"{fmt(self.median)} [{fmt(self.q1)}, {fmt(self.q3)}]")


@dataclass(frozen=True)
class LocationComparison:
    """A per-subject outcome (ΔSOFA, free days) compared between two arms."""

    outcome: str
    label: str
    comparison: str
    arms: tuple[ArmSummary, ...]
    rank_sum: RankSumTest
    mean_difference: Estimate | None

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "label": self.label, "comparison": self.comparison,
                "arms": [a.to_dict() for a in self.arms], "rank_sum": self.rank_sum.to_dict(),
                "mean_difference": self.mean_difference.to_dict()
                if self.mean_difference else None}


@dataclass(frozen=True)
class MarkerChange:
    """Change from day 0 of a marker on the log scale on one day, arm vs reference."""

    marker: str
    label: str
    day: int
    comparison: str
    arm_fold_changes: tuple[tuple[str, int, Estimate], ...]
    ratio: Estimate
    p_value: float
    df: float

    def to_dict(self) -> dict[str, Any]:
        return {"marker": self.marker, "label": self.label, "day": self.day,
                "comparison": self.comparison,
                "arms": [{"arm": a, "n": n, "geometric_mean_fold_change": e.to_dict()}
                         for a, n, e in self.arm_fold_changes],
                "ratio_of_geometric_means": self.ratio.to_dict(),
                "p_value": num(self.p_value), "df": num(self.df)}


@dataclass(frozen=True)
class SofaModel:
    outcome: str
    label: str
    fit: MixedModelFit

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "label": self.label, **self.fit.to_dict()}


@dataclass(frozen=True, eq=False)
class SecondaryAnalysis:
    citation: dict[str, Any]
    reference_arm: str
    arms: tuple[str, ...]
    conf_level: float
    df_method: str
    sofa_days: tuple[int, int]
    sofa_models: tuple[SofaModel, ...]
    trajectories: tuple[TrajectoryPoint, ...]
    delta_sofa: tuple[LocationComparison, ...]
    markers: tuple[MarkerChange, ...]
    free_days: tuple[LocationComparison, ...]
    warnings: tuple[StatisticalWarning, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"analysis": "secondary", **self.citation, "reference_arm": self.reference_arm,
                "arms": list(self.arms), "conf_level": self.conf_level,
                "mixed_model_df": self.df_method, "sofa_days": list(self.sofa_days),
                "sofa_models": [m.to_dict() for m in self.sofa_models],
                "sofa_trajectories": [t.to_dict() for t in self.trajectories],
                "delta_sofa": [d.to_dict() for d in self.delta_sofa],
                "markers": [m.to_dict() for m in self.markers],
                "free_days": [f.to_dict() for f in self.free_days],
                "warnings": [w.to_dict() for w in self.warnings]}

    def __str__(self) -> str:
        lines = [f"<SecondaryAnalysis: reference arm {self.reference_arm}; "
                 f"{self.conf_level:.0%} CIs; mixed-model df {self.df_method}>"]
        lines += [f"[{m.label}] {m.fit}" for m in self.sofa_models]
        for c in (*self.delta_sofa, *self.free_days):
            lines.append(f"{c.label}, {c.comparison}: {c.rank_sum}")
        for m in self.markers:
            lines.append(f"{m.label} day {m.day}, {m.comparison}: {m.ratio}")
        return "\n".join(lines)


def analyze_secondary(dataset: AnalysisDataset, protocol: Protocol | None = None, *,
                      sofa_days: tuple[int, int] = (0, 7), horizon_days: int = 28,
                      conf_level: float | None = None,
                      df_method: str | None = None) -> SecondaryAnalysis:
    """All secondary analyses the daily table allows (AnalysisError without one)."""
    if dataset.daily is None:
        raise AnalysisError("the secondary analyses need the daily table (daily.csv: "
                            "subject_id, day, sofa_total, …).", field="daily")
    subjects = dataset.subjects.for_protocol(protocol) if protocol else dataset.subjects
    if conf_level is None:
        conf_level = (round(1 - 2 * protocol.analysis.alpha / protocol.analysis.sides, 10)
                      if protocol else 0.95)
    if df_method is None:
        df_method = protocol.analysis.mixed_model_df if protocol else "satterthwaite"
    arms = subjects.arms_present
    if len(arms) < 2 or arms[0] != subjects.reference_arm:
        raise AnalysisError("the secondary analyses need subjects in the reference arm and "
                            "in at least one other arm.", field="arm")
    arm_of = dict(zip(subjects.subject_ids, subjects.arms, strict=True))
    caveats = Caveats()
    daily = dataset.daily
    models: list[SofaModel] = []
    traj: list[TrajectoryPoint] = []
    deltas: list[LocationComparison] = []
    for outcome, label in SOFA_OUTCOMES.items():
        long = daily.long(outcome, sofa_days)
        if long.empty:
            continue
        long["arm"] = long["subject_id"].map(arm_of)
        traj += _trajectory(outcome, long, arms)
        try:
            fit = _sofa_model(long, arms, sofa_days, df_method, conf_level)
        except AnalysisError as exc:
            if exc.field == "analysis.mixed_model_df":
                raise
            caveats.add("MODEL_NOT_FITTED", f"{label}: {exc.message}")
        else:
            models.append(SofaModel(outcome, label, fit))
            caveats.extend(fit.warnings)
        deltas += _delta(outcome, label, daily.long(outcome, sofa_days), arm_of, arms,
                         sofa_days, conf_level, caveats)
    markers: list[MarkerChange] = []
    for marker in CYTOKINES:
        if daily.has(marker):
            markers += _markers(marker, daily.long(marker, (0, horizon_days)), arm_of, arms,
                                conf_level, caveats)
    free: list[LocationComparison] = []
    for flag, label in FREE_DAYS.items():
        if daily.has(flag):
            free += _free_days(flag, label, dataset, arm_of, arms, horizon_days, conf_level,
                               caveats)
    return SecondaryAnalysis(
        citation=dataset.citation() | ({"protocol_id": protocol.protocol_id,
                                         "protocol_version": protocol.protocol_version,
                                         "protocol_sha256": protocol.content_sha256}
                                        if protocol else {}),
        reference_arm=arms[0], arms=arms, conf_level=conf_level, df_method=df_method,
        sofa_days=sofa_days, sofa_models=tuple(models), trajectories=tuple(traj),
        delta_sofa=tuple(deltas), markers=tuple(markers), free_days=tuple(free),
        warnings=caveats.freeze())


# --- SOFA -----------------------------------------------------------------------------


def _trajectory(outcome: str, long: pd.DataFrame, arms: tuple[str, ...]
                ) -> list[TrajectoryPoint]:
    grouped = long.groupby(["arm", "day"])["value"].agg(["count", "mean", "std"])
    points = []
    for arm in arms:
        if arm not in grouped.index.get_level_values(0):
            continue
        for day, row in grouped.loc[arm].iterrows():
            points.append(TrajectoryPoint(outcome, arm, int(day), int(row["count"]),
                                          float(row["mean"]), float(row["std"])))
    return points


def sofa_design(long: pd.DataFrame, arms: tuple[str, ...]
                ) -> tuple[np.ndarray, list[str]]:
    """Design of ``value ~ arm * day``: intercept, arm dummies (reference = arms[0]), day,
    arm:day (R's treatment contrasts, same column order as lme4)."""
    day = long["day"].to_numpy(dtype=float)
    dummies = [(long["arm"] == a).to_numpy(dtype=float) for a in arms[1:]]
    columns = [np.ones(len(long)), *dummies, day, *(d * day for d in dummies)]
    names = ["(Intercept)", *(f"arm{a}" for a in arms[1:]), "day",
             *(f"arm{a}:day" for a in arms[1:])]
    return np.column_stack(columns), names


def _sofa_model(long: pd.DataFrame, arms: tuple[str, ...], days: tuple[int, int],
                df_method: str, conf_level: float) -> MixedModelFit:
    long = long[long["arm"].isin(arms)]
    x, names = sofa_design(long, arms)
    k = len(arms) - 1
    contrasts = []
    for j, arm in enumerate(arms[1:]):
        vec = np.zeros(len(names))
        vec[1 + j] = 1.0
        vec[2 + k + j] = float(days[1])
        contrasts.append((f"arm{arm} at day {days[1]}", vec))
    return fit_random_intercept(long["value"].to_numpy(), x, long["subject_id"].to_numpy(),
                                names, contrasts=contrasts, df_method=df_method,
                                conf_level=conf_level,
                                formula="sofa ~ arm * day + (1 | subject)")


def delta_sofa_values(long: pd.DataFrame, days: tuple[int, int]) -> pd.Series:
    """Per subject: value on the last day in (first, last] with a value − value on day
    ``first``; subjects lacking either are absent."""
    base = long[long["day"] == days[0]].set_index("subject_id")["value"]
    later = long[(long["day"] > days[0]) & (long["day"] <= days[1])]
    last = later.sort_values(["subject_id", "day"]).groupby("subject_id")["value"].last()
    both = base.index.intersection(last.index)
    return (last.loc[both] - base.loc[both]).sort_index()


def _delta(outcome: str, label: str, long: pd.DataFrame, arm_of: dict[str, str],
           arms: tuple[str, ...], days: tuple[int, int], conf_level: float,
           caveats: Caveats) -> list[LocationComparison]:
    delta = delta_sofa_values(long, days)
    missing = len(arm_of) - len(delta)
    if missing:
        caveats.add("DELTA_SOFA_MISSING", f"Δ{label}: {missing} subject(s) without a value "
                    f"on day {days[0]} or on days {days[0] + 1}–{days[1]} are left out.")
    arm = delta.index.map(arm_of)
    return [_compare(f"delta_{outcome}", f"Δ{label} (last of days {days[0] + 1}–{days[1]} − "
                     f"day {days[0]})", delta.to_numpy()[arm == a],
                     delta.to_numpy()[arm == arms[0]], a, arms[0], conf_level)
            for a in arms[1:]]


# --- comparisons ------------------------------------------------------------------------


def _summary(arm: str, v: np.ndarray) -> ArmSummary:
    if len(v) == 0:
        return ArmSummary(arm, 0, math.nan, math.nan, math.nan, math.nan, math.nan)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return ArmSummary(arm, len(v), float(np.mean(v)),
                      float(np.std(v, ddof=1)) if len(v) > 1 else math.nan,
                      float(med), float(q1), float(q3))


def welch(x: np.ndarray, y: np.ndarray, conf_level: float) -> tuple[float, float, float,
                                                                     float, float]:
    """Difference in means x − y with Welch's interval: (diff, lower, upper, p, df)."""
    if len(x) < 2 or len(y) < 2:
        return (math.nan,) * 5
    vx, vy = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    diff = float(np.mean(x) - np.mean(y))
    if se == 0:
        return diff, diff, diff, math.nan, math.nan
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    q = float(stats.t.ppf(0.5 + conf_level / 2, df))
    p = float(2 * stats.t.sf(abs(diff / se), df))
    return diff, diff - q * se, diff + q * se, p, float(df)


def _compare(outcome: str, label: str, x: np.ndarray, y: np.ndarray, arm: str, ref: str,
             conf_level: float) -> LocationComparison:
    rank = wilcoxon_rank_sum(x, y, conf_level=conf_level,
                             name=f"Wilcoxon rank-sum, {arm} vs {ref}")
    d, lo, hi, _, _ = welch(x, y, conf_level)
    mean_diff = Estimate("mean_difference", d, lo, hi, "welch", conf_level)
    return LocationComparison(outcome, label, f"{arm} vs {ref}",
                              (_summary(ref, y), _summary(arm, x)), rank, mean_diff)


# --- markers ----------------------------------------------------------------------------


def _markers(marker: str, long: pd.DataFrame, arm_of: dict[str, str], arms: tuple[str, ...],
             conf_level: float, caveats: Caveats) -> list[MarkerChange]:
    nonpos = long["value"] <= 0
    if nonpos.any():
        caveats.add("NONPOSITIVE_VALUE", f"{MARKER_LABELS[marker]}: {int(nonpos.sum())} "
                    "value(s) ≤ 0 cannot be put on the log scale and are left out.")
    long = long[~nonpos].copy()
    long["log"] = np.log(long["value"])
    wide = long.pivot(index="subject_id", columns="day", values="log")
    if 0 not in wide.columns:
        return []
    out = []
    arm = wide.index.map(arm_of).to_numpy()
    for day in sorted(c for c in wide.columns if c > 0):
        change = (wide[day] - wide[0]).to_numpy()
        ok = ~np.isnan(change)
        ref_v = change[ok & (arm == arms[0])]
        for a in arms[1:]:
            trt_v = change[ok & (arm == a)]
            if len(trt_v) < 2 or len(ref_v) < 2:
                continue
            folds = tuple((name, len(v), _geo(v, conf_level))
                          for name, v in ((arms[0], ref_v), (a, trt_v)))
            d, lo, hi, p, df = welch(trt_v, ref_v, conf_level)
            ratio = Estimate("ratio_of_geometric_mean_fold_changes", math.exp(d),
                             math.exp(lo), math.exp(hi), "welch t on log change",
                             conf_level)
            out.append(MarkerChange(marker, MARKER_LABELS[marker], int(day), f"{a} vs "
                                    f"{arms[0]}", folds, ratio, p, df))
    return out


def _geo(v: np.ndarray, conf_level: float) -> Estimate:
    m = float(np.mean(v))
    se = float(np.std(v, ddof=1) / math.sqrt(len(v)))
    q = float(stats.t.ppf(0.5 + conf_level / 2, len(v) - 1))
    return Estimate("geometric_mean_fold_change", math.exp(m), math.exp(m - q * se),
                    math.exp(m + q * se), "t on log change", conf_level)


# --- free days --------------------------------------------------------------------------


def free_days(dataset: AnalysisDataset, flag: str, horizon_days: int = 28
              ) -> tuple[pd.Series, int]:
    """Free days per subject (index subject_id) and the number of subject-days without a
    record counted as free. Left out: censored alive before the horizon, no daily rows."""
    s = dataset.subjects
    time, event = np.asarray(s.times), np.asarray(s.events)
    died = (event == 1) & (time <= horizon_days)
    known = died | (time >= horizon_days) | (event == 1)
    frame = dataset.daily.frame
    window = frame[(frame["day"] >= 1) & (frame["day"] <= horizon_days)]
    on_days = window[window[flag] == 1].groupby("subject_id")["day"].nunique()
    recorded = window[window[flag].notna()].groupby("subject_id")["day"].nunique()
    has_rows = set(frame["subject_id"])
    values, unrecorded = {}, 0
    for sid, d, k in zip(s.subject_ids, died, known, strict=True):
        if not k or sid not in has_rows:
            continue
        if d:
            values[sid] = 0.0
            continue
        values[sid] = float(horizon_days - int(on_days.get(sid, 0)))
        unrecorded += horizon_days - int(recorded.get(sid, 0))
    return pd.Series(values, dtype=float), unrecorded


def _free_days(flag: str, label: str, dataset: AnalysisDataset, arm_of: dict[str, str],
               arms: tuple[str, ...], horizon: int, conf_level: float,
               caveats: Caveats) -> list[LocationComparison]:
    values, unrecorded = free_days(dataset, flag, horizon)
    left_out = dataset.subjects.n - len(values)
    if left_out:
        caveats.add("FREE_DAYS_MISSING", f"{label}: {left_out} subject(s) censored alive "
                    f"before day {horizon} or without daily records are left out.")
    if unrecorded:
        caveats.add("FREE_DAYS_UNRECORDED", f"{label}: {unrecorded} subject-day(s) of "
                    f"survivors without a {flag} value counted as free.")
    arm = values.index.map(arm_of).to_numpy()
    v = values.to_numpy()
    outcome = flag.replace("on_", "").replace("invasive_", "") + "_free_days"
    return [_compare(outcome, label, v[arm == a], v[arm == arms[0]], a, arms[0], conf_level)
            for a in arms[1:]]
