"""The subjects dataset: validation names the line and the column; reference arm; hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialdesk.analysis import SubjectsDataset
from trialdesk.errors import DatasetError, InputRejected
from trialdesk.protocol import load_protocol

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rumcess_published_subjects.csv"

GOOD = "subject_id,arm,time,event\nS1,msc,3,1\nS2,control,28,0\nS3,control,12.5,1\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "subjects.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_a_valid_file(tmp_path):
    ds = SubjectsDataset.from_csv(_write(tmp_path, GOOD))
    assert ds.subject_ids == ("S1", "S2", "S3")
    assert ds.times == (3.0, 28.0, 12.5) and ds.events == (1, 0, 1)
    assert ds.strata is None and dict(ds.covariates) == {}


@pytest.mark.parametrize(("text", "where", "column", "says"), [
    ("subject_id,arm,time\nS1,msc,3\n", "subjects.csv", "event", "missing column(s) event"),
    (GOOD + "S4,msc,-1,1\n", "line 5", "time", "negative"),
    (GOOD + "S4,msc,three,1\n", "line 5", "time", "not a number"),
    (GOOD + "S4,msc,inf,1\n", "line 5", "time", "not a finite"),
    (GOOD + "S4,msc,,1\n", "line 5", "time", "empty"),
    (GOOD + "S4,msc,3,2\n", "line 5", "event", "not 0 or 1"),
    (GOOD + "S4,msc,3,yes\n", "line 5", "event", "not 0 or 1"),
    (GOOD + "S2,msc,3,1\n", "line 5", "subject_id", "duplicate subject id 'S2' (first at"),
    (GOOD + ",msc,3,1\n", "line 5", "subject_id", "empty"),
    (GOOD + "S4,,3,1\n", "line 5", "arm", "empty"),
    (GOOD + "S4,msc,3\n", "line 5", None, "3 values for 4 columns"),
    ("subject_id,arm,time,event\n", "subjects.csv", None, "no subjects"),
    ("", "subjects.csv", None, "empty"),
])
def test_invalid_rows_name_the_line_and_the_column(tmp_path, text, where, column, says):
    with pytest.raises(DatasetError) as info:
        SubjectsDataset.from_csv(_write(tmp_path, text))
    error = info.value
    assert where in error.message and says in error.message
    if column is not None:
        assert error.field == column and column in error.message
    assert error.code == "DATASET_INVALID" and isinstance(error, InputRejected)


def test_arm_must_be_a_protocol_arm_when_a_protocol_is_given(tmp_path):
    path = _write(tmp_path, GOOD + "S4,placebo,3,1\n")
    with pytest.raises(DatasetError, match=r"line 5, column arm: 'placebo' is not an arm of "
                                           r"protocol rumcess \(arms: control, msc\)"):
        SubjectsDataset.from_csv(path, load_protocol())
    assert SubjectsDataset.from_csv(path).arm_order == ("msc", "control", "placebo")


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        SubjectsDataset.from_csv(tmp_path / "nope.csv")


def test_reference_arm_is_the_protocols_first_arm_else_the_first_in_the_file(tmp_path):
    path = _write(tmp_path, GOOD)
    assert SubjectsDataset.from_csv(path).reference_arm == "msc"
    with_protocol = SubjectsDataset.from_csv(path, load_protocol())
    assert with_protocol.reference_arm == "control"
    assert with_protocol.arms_present == ("control", "msc")
    assert SubjectsDataset.from_csv(path).for_protocol(load_protocol()).reference_arm == \
        "control"


def test_stratum_and_covariates_are_kept(tmp_path):
    text = "subject_id,arm,time,event,stratum,age\nS1,a,3,1,x,70\nS2,b,4,0,y,\n"
    ds = SubjectsDataset.from_csv(_write(tmp_path, text))
    assert ds.strata == ("x", "y")
    assert dict(ds.covariates) == {"age": ("70", None)}
    with pytest.raises(DatasetError, match="line 3, column stratum: empty"):
        SubjectsDataset.from_csv(_write(tmp_path, text.replace(",y,", ",,")))


def test_content_hash_ignores_row_order_column_order_and_number_spelling(tmp_path):
    base = SubjectsDataset.from_csv(_write(tmp_path, GOOD)).content_sha256
    shuffled = "time,event,subject_id,arm\n12.50,1,S3,control\n3.0,1,S1,msc\n28,0,S2,control\n"
    assert SubjectsDataset.from_csv(_write(tmp_path, shuffled)).content_sha256 == base
    changed = GOOD.replace("12.5,1", "12.6,1")
    assert SubjectsDataset.from_csv(_write(tmp_path, changed)).content_sha256 != base


def test_from_records_equals_from_csv(tmp_path):
    from_csv = SubjectsDataset.from_csv(EXAMPLE, load_protocol())
    from_records = SubjectsDataset.from_records(from_csv.to_records(), load_protocol())
    assert from_records.content_sha256 == from_csv.content_sha256
    assert from_records.arm_order == from_csv.arm_order
    with pytest.raises(DatasetError, match="record 2, column event"):
        SubjectsDataset.from_records([{"subject_id": "a", "arm": "x", "time": 1, "event": 1},
                                      {"subject_id": "b", "arm": "x", "time": 1, "event": 3}])
    with pytest.raises(DatasetError, match="record 1, column time"):
        SubjectsDataset.from_records([{"subject_id": "a", "arm": "x", "time": True,
                                       "event": 1}])


def test_example_file_holds_the_published_counts():
    ds = SubjectsDataset.from_csv(EXAMPLE, load_protocol())
    assert ds.n == 30 and ds.arm_counts() == {"control": 15, "msc": 15}
    deaths = {a: sum(e for arm, e in zip(ds.arms, ds.events, strict=True) if arm == a)
              for a in ("control", "msc")}
    assert deaths == {"control": 12, "msc": 6}
    assert max(t for t, e in zip(ds.times, ds.events, strict=True) if e) <= 28
    assert "30 subjects" in str(ds) and ds.to_dict()["reference_arm"] == "control"
