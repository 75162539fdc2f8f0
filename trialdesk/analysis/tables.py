"""Report tables: baseline characteristics (Table 1), adverse events, protocol deviations.

Each function returns a :class:`SummaryTable` (title, column headers, rows of strings)
by arm (reference arm first) or pooled (``by_arm=False``, the open report). Arm columns
are headed by the arm's label (``labels``: :class:`~trialdesk.analysis.arm_labels.ArmLabels`
of the protocol; without one, the arm id).

* **Table 1**: n; age (``age_years``), APACHE II (``apache_ii``), SOFA and lactate on
  day 0 (from the daily table) as median [IQR] — quartiles by linear interpolation
  (R's default, type 7) — with the number missing when any; sex and neutropenia cause
  as n (%) of the arm's subjects. Rows whose data are absent are left out.
* **Adverse events**: per arm, subjects with ≥ 1 event n (%) and number of events, for
  any event, serious, related (causality possible, probable or definite), serious and
  related, each causality category and each severity grade; % of the arm's subjects.
* **Protocol deviations**: per arm, subjects with ≥ 1 deviation n (%) and number of
  deviations, overall and per code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.analysis.arm_labels import ArmLabels
from trialdesk.analysis.tidy import CAUSALITY, SEVERITY_GRADES


@dataclass(frozen=True)
class SummaryTable:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": list(self.columns),
                "rows": [list(r) for r in self.rows], "note": self.note}

    def __str__(self) -> str:
        widths = [max(len(r[i]) for r in (self.columns, *self.rows))
                  for i in range(len(self.columns))]
        lines = [self.title, "  ".join(c.ljust(w) for c, w in zip(self.columns, widths,
                                                                  strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                  for r in self.rows]
        return "\n".join(lines)


def _groups(ds: AnalysisDataset, by_arm: bool,
            labels: ArmLabels | None = None) -> list[tuple[str, list[str]]]:
    s = ds.subjects
    if not by_arm:
        return [("All subjects", list(s.subject_ids))]
    label = labels or ArmLabels()
    return [(label(arm), [i for i, a in zip(s.subject_ids, s.arms, strict=True) if a == arm])
            for arm in s.arms_present]


def _num(x: float) -> str:
    return f"{x:.1f}" if abs(x - round(x)) > 1e-9 else f"{x:.0f}"


def median_iqr(values: np.ndarray) -> str:
    """``median [Q1, Q3]`` with R type-7 quartiles, and "(k missing)" when any are NaN."""
    v = np.asarray(values, dtype=float)
    missing = int(np.isnan(v).sum())
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return "—"
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    text = f"{_num(med)} [{_num(q1)}, {_num(q3)}]"
    return text + (f" ({missing} missing)" if missing else "")


def n_pct(k: int, n: int) -> str:
    return f"{k} ({100 * k / n:.1f}%)" if n else "0"


def baseline_table(ds: AnalysisDataset, *, by_arm: bool = True,
                   labels: ArmLabels | None = None) -> SummaryTable:
    groups = _groups(ds, by_arm, labels)
    base = ds.baseline.set_index("subject_id")
    day0 = None
    if ds.daily is not None:
        f = ds.daily.frame
        day0 = f[f["day"] == 0].set_index("subject_id")
    rows: list[tuple[str, ...]] = [("n", *(str(len(m)) for _, m in groups))]

    def numeric(label: str, frame: pd.DataFrame | None, column: str) -> None:
        if frame is None or column not in frame or not frame[column].notna().any():
            return
        rows.append((f"{label}, median [IQR]",
                     *(median_iqr(frame[column].reindex(m).to_numpy(dtype=float))
                       for _, m in groups)))

    def categorical(label: str, column: str) -> None:
        if column not in base or not base[column].notna().any():
            return
        levels = sorted(base[column].dropna().unique())
        rows.append((f"{label}, n (%)", *("" for _ in groups)))
        for level in [*levels, None]:
            counts = [int((base[column].reindex(m) == level).sum()) if level is not None
                      else int(base[column].reindex(m).isna().sum()) for _, m in groups]
            if level is None and not any(counts):
                continue
            rows.append((f"  {level if level is not None else 'not recorded'}",
                         *(n_pct(k, len(m)) for k, (_, m) in zip(counts, groups,
                                                                 strict=True))))

    numeric("Age, years", base, "age_years")
    categorical("Sex", "sex")
    numeric("SOFA on day 0", day0, "sofa_total")
    numeric("APACHE II", base, "apache_ii")
    categorical("Cause of neutropenia", "neutropenia_cause")
    numeric("Lactate on day 0, mmol/L", day0, "lactate_mmol_per_l")
    return SummaryTable("Table 1. Baseline characteristics" + (" by arm" if by_arm else ""),
                        ("", *(g for g, _ in groups)), tuple(rows),
                        "Median [IQR]: quartiles by linear interpolation (R type 7).")


def _event_rows(frame: pd.DataFrame, groups: list[tuple[str, list[str]]],
                criteria: list[tuple[str, pd.Series]]) -> list[tuple[str, ...]]:
    rows = []
    for label, mask in criteria:
        cells = []
        for _, members in groups:
            sel = frame[mask & frame["subject_id"].isin(members)]
            cells.append(f"{n_pct(sel['subject_id'].nunique(), len(members))}; "
                         f"{len(sel)} event{'s' if len(sel) != 1 else ''}")
        rows.append((label, *cells))
    return rows


def adverse_event_table(ds: AnalysisDataset, *, by_arm: bool = True,
                        labels: ArmLabels | None = None) -> SummaryTable | None:
    ae = ds.adverse_events
    if ae is None:
        return None
    groups = _groups(ds, by_arm, labels)
    true = pd.Series(True, index=ae.index)
    criteria = [("Any adverse event", true), ("Serious", ae["serious"] == 1),
                ("Related (possible, probable, definite)", ae["related"] == 1),
                ("Serious and related", (ae["serious"] == 1) & (ae["related"] == 1))]
    criteria += [(f"  Causality: {c}", ae["causality"] == c) for c in CAUSALITY]
    criteria += [(f"  Grade {g}", ae["severity_grade"] == g) for g in SEVERITY_GRADES]
    return SummaryTable("Adverse events by seriousness and causality",
                        ("", *(f"{g} (n = {len(m)})" for g, m in groups)),
                        tuple(_event_rows(ae, groups, criteria)),
                        "Subjects with at least one event n (% of the arm); number of "
                        "events.")


def deviation_table(ds: AnalysisDataset, *, by_arm: bool = True,
                    labels: ArmLabels | None = None) -> SummaryTable | None:
    dv = ds.deviations
    if dv is None:
        return None
    groups = _groups(ds, by_arm, labels)
    criteria = [("Any protocol deviation", pd.Series(True, index=dv.index))]
    criteria += [(f"  {code}", dv["code"] == code) for code in sorted(dv["code"].unique())]
    return SummaryTable("Protocol deviations",
                        ("", *(f"{g} (n = {len(m)})" for g, m in groups)),
                        tuple(_event_rows(dv, groups, criteria)),
                        "Subjects with at least one deviation n (% of the arm); number of "
                        "deviations.")
