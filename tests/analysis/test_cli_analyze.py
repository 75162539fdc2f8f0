"""``trialdesk analyze`` on the example file: the published RUMCESS figures, JSON, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialdesk.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rumcess_published_subjects.csv"
RUMCESS = ROOT / "protocols" / "rumcess.yaml"

runner = CliRunner()


def _run(*args: str | Path):
    result = runner.invoke(app, ["analyze", *(str(a) for a in args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(scope="module")
def as_json() -> dict:
    result = _run("--subjects", EXAMPLE, "--protocol", RUMCESS, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _estimate(data: dict, name: str, method: str) -> list[float]:
    (e,) = [e for e in data["binary"]["comparisons"][0]["estimates"]
            if e["name"] == name and e["method"] == method]
    return [e["estimate"], e["lower"], e["upper"]]


def _test(data: dict, name: str) -> dict:
    (t,) = [t for t in data["binary"]["comparisons"][0]["tests"] if t["name"] == name]
    return t


def test_analyze_json_reproduces_the_published_rumcess_figures(as_json):
    """domain.md §1.5: Fisher 0.0604, chi-square 5.0 p 0.0253, Yates p 0.0624,
    Barnard/Boschloo 0.0301, survival difference 0.40 (Newcombe 0.0504–0.6398), RR of death
    0.50 (0.256–0.977), OR of death 0.167 (Woolf 0.033–0.853)."""
    assert _test(as_json, "fisher_exact")["p_value"] == pytest.approx(0.0604, abs=5e-5)
    assert _test(as_json, "fisher_exact")["primary"] is True
    assert _test(as_json, "chi_square")["statistic"] == pytest.approx(5.0)
    assert _test(as_json, "chi_square")["p_value"] == pytest.approx(0.0253, abs=5e-5)
    assert _test(as_json, "chi_square_cc")["p_value"] == pytest.approx(0.0624, abs=5e-5)
    assert _test(as_json, "barnard")["p_value"] == pytest.approx(0.0301, abs=5e-5)
    assert _test(as_json, "boschloo")["p_value"] == pytest.approx(0.0301, abs=5e-5)
    assert _estimate(as_json, "survival_difference", "newcombe") == pytest.approx(
        [0.40, 0.0504, 0.6398], abs=5e-5)
    assert _estimate(as_json, "relative_risk", "log") == pytest.approx([0.50, 0.256, 0.977],
                                                                       abs=5e-4)
    assert _estimate(as_json, "odds_ratio", "woolf") == pytest.approx([0.167, 0.033, 0.853],
                                                                      abs=5e-4)
    assert as_json["decisions"] == [{"test": "fisher_exact", "comparison": "msc vs control",
                                     "sides": 2, "p_value": pytest.approx(0.0604, abs=5e-5),
                                     "alpha": 0.05, "significant": False}]
    assert as_json["protocol"]["id"] == "rumcess" and as_json["warnings"] == []


def test_analyze_text_summary():
    result = _run("--subjects", EXAMPLE, "--protocol", RUMCESS)
    assert result.exit_code == 0
    text = result.stdout
    for needle in ("Primary analysis", "Fisher exact (primary)", "0.0604", "0.0253",
                   "0.0624", "0.0301", "0.05035 to 0.6398", "Kaplan–Meier", "log transform",
                   "Log-rank test", "Cox hazard ratio (efron ties) msc vs control",
                   "not significant at alpha 0.05"):
        assert needle in text, needle


def test_analyze_out_writes_primary_json(tmp_path, as_json):
    result = _run("--subjects", EXAMPLE, "--protocol", RUMCESS, "--out", tmp_path / "res",
                  "--json")
    assert result.exit_code == 0
    written = json.loads((tmp_path / "res" / "primary.json").read_text(encoding="utf-8"))
    assert written == json.loads(result.stdout) == as_json


def test_invalid_subjects_file_exits_3_with_dataset_invalid(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("subject_id,arm,time,event\nA,msc,-2,1\n", encoding="utf-8")
    result = _run("--subjects", bad, "--json")
    assert result.exit_code == 3
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "DATASET_INVALID" and error["field"] == "time"
    assert "line 2, column time" in error["message"]
    plain = _run("--subjects", bad)
    assert plain.exit_code == 3 and plain.stderr.startswith("DATASET_INVALID: ")


def test_arm_not_in_protocol_exits_3(tmp_path):
    bad = tmp_path / "arms.csv"
    bad.write_text("subject_id,arm,time,event\nA,placebo,2,1\nB,msc,3,1\n", encoding="utf-8")
    result = _run("--subjects", bad, "--protocol", RUMCESS)
    assert result.exit_code == 3 and "not an arm of protocol rumcess" in result.stderr


def test_single_arm_file_exits_1_with_analysis_error(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("subject_id,arm,time,event\nA,msc,2,1\nB,msc,28,0\n", encoding="utf-8")
    result = _run("--subjects", one, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "ANALYSIS_ERROR"


def test_missing_subjects_option_is_a_usage_error():
    assert _run().exit_code == 2
