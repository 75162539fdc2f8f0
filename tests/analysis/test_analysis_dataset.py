"""The analysis dataset: tidy tables from CSV or frames, one content hash, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from trialdesk.analysis import AnalysisDataset
from trialdesk.analysis.synthetic import synthetic_trial
from trialdesk.analysis.tidy import TABLES, describe_tables
from trialdesk.errors import DatasetError


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return synthetic_trial(40, seed=11)


def _write(tables: dict[str, pd.DataFrame], directory) -> None:
    directory.mkdir(exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(directory / f"{name}.csv", index=False)


def _frames(tables, **changes) -> AnalysisDataset:
    t = {k: v.copy() for k, v in tables.items()} | changes
    return AnalysisDataset.from_frames(t.pop("subjects"), **t)


def test_csv_dir_and_frames_give_the_same_hash(tables, tmp_path):
    _write(tables, tmp_path / "d")
    from_csv = AnalysisDataset.from_csv_dir(tmp_path / "d")
    from_frames = _frames(tables)
    assert from_csv.content_sha256 == from_frames.content_sha256
    assert dict(from_csv.table_sha256) == dict(from_frames.table_sha256)
    assert set(from_csv.tables) == set(TABLES)


def test_hash_ignores_row_and_column_order_and_changes_with_any_value(tables):
    base = _frames(tables).content_sha256
    shuffled = tables["daily"].sample(frac=1, random_state=1)[
        list(reversed(tables["daily"].columns))]
    assert _frames(tables, daily=shuffled).content_sha256 == base
    changed = tables["daily"].copy()
    changed.loc[3, "il6_pg_per_ml"] = 123.0
    assert _frames(tables, daily=changed).content_sha256 != base
    ae = tables["adverse_events"].copy()
    ae.loc[0, "term"] = "headache"
    assert _frames(tables, adverse_events=ae).content_sha256 != base


def test_citation_names_dataset_and_protocol(tables):
    from trialdesk.protocol import load_protocol

    from .test_cli_analyze import RUMCESS
    p = load_protocol(RUMCESS)
    t = {k: v.copy() for k, v in tables.items()}
    ds = AnalysisDataset.from_frames(t.pop("subjects"), protocol=p, **t)
    assert ds.citation() == {"dataset_sha256": ds.content_sha256, "protocol_id": "rumcess",
                             "protocol_version": "1.0", "protocol_sha256": p.content_sha256}


def _daily_csv(tmp_path, body: str):
    (tmp_path / "subjects.csv").write_text("subject_id,arm,time,event\nA,msc,28,0\n"
                                           "B,control,5,1\n", encoding="utf-8")
    (tmp_path / "daily.csv").write_text(body, encoding="utf-8")
    return AnalysisDataset.from_csv_dir(tmp_path)


@pytest.mark.parametrize(("body", "needle", "field"), [
    ("subject_id,day,il6\nA,0,3\n", "unknown column(s) il6", "il6"),
    ("subject_id,day,sofa_renal\nA,0,5\n", "line 2, column sofa_renal: 5 is above", "sofa_renal"),
    ("subject_id,day,sofa_total\nA,0,4\nA,1,x\n", "line 3, column sofa_total: 'x' is not a "
                                                  "whole number", "sofa_total"),
    ("subject_id,day,on_vasopressor\nA,0,2\n", "line 2, column on_vasopressor: '2' is not 0 "
                                               "or 1", "on_vasopressor"),
    ("subject_id,day\nA,0\nB,0\nA,0\n", "line 4, column day: duplicate row for subject_id A, "
                                        "day 0 (first at", "day"),
    ("subject_id,day\nZ,0\n", "line 2, column subject_id: 'Z' is not a subject", "subject_id"),
    ("subject_id,day,sofa_total,sofa_respiration,sofa_coagulation,sofa_liver,"
     "sofa_cardiovascular,sofa_cns,sofa_renal\nA,0,7,1,1,1,1,1,1\n",
     "line 2, column sofa_total: 7 is not the sum of the six components (6)", "sofa_total"),
    ("day\n0\n", "missing column(s) subject_id", "subject_id"),
])
def test_daily_file_errors_name_file_line_and_column(tmp_path, body, needle, field):
    with pytest.raises(DatasetError) as err:
        _daily_csv(tmp_path, body)
    assert needle in err.value.message and str(tmp_path / "daily.csv") in err.value.message
    assert err.value.field == field and err.value.code == "DATASET_INVALID"


def test_cross_table_checks(tables):
    ae = tables["adverse_events"].copy()
    ae.loc[0, ["causality", "related"]] = ["definite", 0]
    with pytest.raises(DatasetError, match="record 1, column related: 0 disagrees with "
                                           "causality 'definite'"):
        _frames(tables, adverse_events=ae)
    with pytest.raises(DatasetError, match="no disposition row for 1 subject"):
        _frames(tables, disposition=tables["disposition"].iloc[1:])
    with pytest.raises(DatasetError, match=r"39 row\(s\) with status randomized but 40 subjects"):
        _frames(tables, screening=tables["screening"].iloc[1:])
    screening = tables["screening"].copy()
    screening.loc[screening["status"] == "excluded", "exclusion_reason"] = None
    with pytest.raises(DatasetError, match="column exclusion_reason: empty"):
        _frames(tables, screening=screening)


def test_table_definitions_are_documented():
    text = describe_tables()
    for spec in TABLES.values():
        assert f"`{spec.file_name}`" in text
        for column in spec.columns:
            assert f"`{column.name}`" in text
