"""The daily dataset: SOFA, laboratory values and organ support per subject and study day.

A long table (``subject_id, day, …``), day 0 = the day of randomization; the columns
are defined in :data:`trialdesk.analysis.tidy.DAILY` (every number with its unit in
its name: ``il6_pg_per_ml``, ``lactate_mmol_per_l`` …). When ``sofa_total`` and all six
components are given on a row, the total must equal their sum. The SOFA total without
the coagulation component (``sofa_total − sofa_coagulation``) is derived, never stored:
in neutropenic haematology patients low platelets come from the disease or chemotherapy
(docs/conventions.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialdesk.analysis.tidy import (
    DAILY,
    SOFA_COMPONENTS,
    canonical_sha256,
    csv_row_label,
    read_csv_frame,
    record_label,
    records_frame,
    validate_frame,
)
from trialdesk.errors import DatasetError


@dataclass(frozen=True, eq=False)
class DailyDataset:
    """Validated daily rows (a typed DataFrame: treat it as read-only)."""

    frame: pd.DataFrame
    source: str
    content_sha256: str
    #: names row i (0-based) of ``frame`` as the input did (file line or record)
    row_label: Callable[[int], str] = field(default=lambda i: f"row {i + 1}", repr=False)

    @classmethod
    def from_csv(cls, path: str | Path) -> DailyDataset:
        path = Path(path)
        frame = read_csv_frame(path)
        return cls._build(frame, str(path), csv_row_label(str(path)))

    @classmethod
    def from_frame(cls, frame: Any, *, source: str = "daily records") -> DailyDataset:
        """From a DataFrame or an iterable of mappings with the CSV's column names."""
        return cls._build(records_frame(frame), source, record_label(source))

    @classmethod
    def _build(cls, frame: pd.DataFrame, source: str, where: Any) -> DailyDataset:
        typed = validate_frame(DAILY, frame, source, where)
        if "sofa_total" in typed and all(c in typed for c in SOFA_COMPONENTS):
            parts = typed[list(SOFA_COMPONENTS)].to_numpy()
            total = typed["sofa_total"].to_numpy()
            complete = ~np.isnan(parts).any(axis=1) & ~np.isnan(total)
            wrong = complete & (parts.sum(axis=1, where=~np.isnan(parts)) != total)
            if wrong.any():
                i = int(np.flatnonzero(wrong)[0])
                raise DatasetError(f"{where(i)}, column sofa_total: {total[i]:g} is not the sum "
                                   f"of the six components ({parts[i].sum():g}).",
                                   field="sofa_total")
        return cls(frame=typed, source=source,
                   content_sha256=canonical_sha256("daily", typed, DAILY.key),
                   row_label=where)

    # -- views ---------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def subject_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.frame["subject_id"]))

    def has(self, column: str) -> bool:
        return column in self.frame and bool(self.frame[column].notna().any())

    def column(self, name: str) -> pd.Series:
        """A column, or a derived one: ``sofa_without_coagulation``."""
        if name == "sofa_without_coagulation":
            if "sofa_total" not in self.frame or "sofa_coagulation" not in self.frame:
                return pd.Series(np.nan, index=self.frame.index)
            return self.frame["sofa_total"] - self.frame["sofa_coagulation"]
        if name not in self.frame:
            return pd.Series(np.nan, index=self.frame.index)
        return self.frame[name]

    def long(self, name: str, days: tuple[int, int] | None = None) -> pd.DataFrame:
        """``subject_id, day, value`` rows with a value (optionally days in [first, last])."""
        out = pd.DataFrame({"subject_id": self.frame["subject_id"],
                            "day": self.frame["day"].astype(int),
                            "value": self.column(name).astype(float)})
        out = out[out["value"].notna()]
        if days is not None:
            out = out[(out["day"] >= days[0]) & (out["day"] <= days[1])]
        return out.reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        present = [c for c in self.frame.columns if c not in ("subject_id", "day")
                   and self.frame[c].notna().any()]
        return {"source": self.source, "rows": self.n_rows,
                "subjects": int(self.frame["subject_id"].nunique()),
                "days": [int(self.frame["day"].min()), int(self.frame["day"].max())]
                if self.n_rows else None,
                "columns": present, "content_sha256": self.content_sha256}

    def __str__(self) -> str:
        d = self.to_dict()
        return (f"{d['rows']} daily rows for {d['subjects']} subjects from {self.source}; "
                f"sha256 {self.content_sha256}")
