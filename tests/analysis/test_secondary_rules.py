"""Definitions of the secondary outcomes checked by hand on small cases (domain.md §8)."""

from __future__ import annotations

import warnings

import pytest

from trialdesk.analysis import AnalysisDataset, analyze_secondary
from trialdesk.analysis.secondary import delta_sofa_values, free_days
from trialdesk.errors import AnalysisError

SUBJECTS = [
    {"subject_id": "A", "arm": "control", "time": 10, "event": 1},   # died day 10 → 0
    {"subject_id": "B", "arm": "control", "time": 40, "event": 0},   # survivor
    {"subject_id": "C", "arm": "msc", "time": 12, "event": 0},       # censored alive < 28
    {"subject_id": "D", "arm": "msc", "time": 28, "event": 0},       # survivor, no rows 6+
    {"subject_id": "E", "arm": "msc", "time": 35, "event": 1},       # died after day 28
]


def _daily():
    rows = []
    vaso = {"A": range(0, 10), "B": range(0, 4), "C": range(0, 2), "D": [0, 1, 2, 5],
            "E": range(0, 29)}
    last = {"A": 9, "B": 28, "C": 11, "D": 5, "E": 28}
    for sid, days in vaso.items():
        for day in range(last[sid] + 1):
            rows.append({"subject_id": sid, "day": day, "on_vasopressor": int(day in days),
                         "sofa_total": 15 - day if day <= 7 else None})
    return rows


@pytest.fixture()
def dataset():
    return AnalysisDataset.from_frames(SUBJECTS, daily=_daily())


def test_vasopressor_free_days_by_hand(dataset):
    values, unrecorded = free_days(dataset, "on_vasopressor", 28)
    # A died ≤ 28 → 0; B on vasopressors days 1–3 → 25; C censored alive before day 28 →
    # left out; D on days 1, 2, 5 (days 6–28 unrecorded, free) → 25; E alive at day 28
    # (died day 35) on every day 1–28 → 0.
    assert values.to_dict() == {"A": 0.0, "B": 25.0, "D": 25.0, "E": 0.0}
    assert unrecorded == 23  # D's days 6–28


def test_delta_sofa_is_last_of_days_1_to_7_minus_day_0(dataset):
    long = dataset.daily.long("sofa_total", (0, 7))
    delta = delta_sofa_values(long, (0, 7))
    # A: rows to day 7 → 8 − 15 = −7; C: day 7 → −7; D: last day 5 → 10 − 15 = −5
    assert delta.to_dict() == {"A": -7.0, "B": -7.0, "C": -7.0, "D": -5.0, "E": -7.0}


def test_caveats_name_what_was_left_out(dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = analyze_secondary(dataset)
    codes = {w.code for w in r.warnings}
    assert {"FREE_DAYS_MISSING", "FREE_DAYS_UNRECORDED"} <= codes
    # SOFA here is exactly 15 − day: the model has no residual variation to fit
    assert "MODEL_NOT_FITTED" in codes and r.sofa_models == ()
    assert r.df_method == "satterthwaite" and r.reference_arm == "control"


def test_without_daily_table_the_secondary_analysis_is_refused():
    ds = AnalysisDataset.from_frames(SUBJECTS)
    with pytest.raises(AnalysisError, match="need the daily table"):
        analyze_secondary(ds)


def test_unsupported_df_method_is_refused(dataset):
    with pytest.raises(AnalysisError, match=r"kenward_roger.*not implemented"):
        analyze_secondary(dataset, df_method="kenward_roger")
