"""The ``trialdesk`` command line: exit codes, error codes and outputs of every command.

Most tests run the Typer app in-process (``typer.testing.CliRunner``); the tests at the
end run the installed console script ``trialdesk`` in a subprocess, as a user would.
The example files are those of ``examples/`` (documented in examples/README.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trialdesk.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RUMCESS = ROOT / "protocols" / "rumcess.yaml"
THREEARM = ROOT / "tests" / "protocols" / "threearm.yaml"
#: evaluation time for the example patients (onsets on 2026-03-01, Moscow time)
AT = "2026-03-01T06:00:00+03:00"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

runner = CliRunner()


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


class Run:
    """Exit code, standard output and standard error of one command."""

    def __init__(self, code: int, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, _plain(stdout), _plain(stderr)

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli(*args: str | Path, input: str | None = None) -> Run:
    """Run ``trialdesk ARGS`` in-process; an unexpected exception fails the test."""
    result = runner.invoke(app, [str(a) for a in args], input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def statuses(output: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in output["criteria"]}


# --- protocol ---------------------------------------------------------------------------


def test_protocol_validate_prints_the_file_sha256():
    run = cli("protocol", "validate", RUMCESS)
    assert run.code == 0, run.stderr
    assert "valid" in run.stdout
    assert "RUMCESS" in run.stdout
    assert f"sha256 {sha256(RUMCESS)}" in run.stdout


def test_protocol_validate_json():
    run = cli("protocol", "validate", THREEARM, "--json")
    assert run.code == 0, run.stderr
    assert run.json() == {"valid": True, "protocol_id": "threearm-demo",
                          "protocol_version": "2.1", "sha256": sha256(THREEARM)}


def test_broken_protocol_exits_4_naming_the_line(tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    text = RUMCESS.read_text(encoding="utf-8").rstrip("\n") + "\nunexpected_key: 1\n"
    broken.write_text(text, encoding="utf-8")
    line = len(text.splitlines())
    run = cli("protocol", "validate", broken)
    assert run.code == 4
    assert run.stderr.startswith("PROTOCOL_INVALID: ")
    assert f"line {line} (unexpected_key)" in run.stderr
    assert run.stdout == ""


def test_broken_protocol_json_error(tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema_version: 1\narms: [1, 2\n", encoding="utf-8")
    run = cli("protocol", "validate", broken, "--json")
    assert run.code == 4
    error = run.json()["error"]
    assert error["code"] == "PROTOCOL_INVALID"
    assert "line " in error["message"] and "not valid YAML" in error["message"]


def test_missing_protocol_exits_4(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    run = cli("protocol", "validate", missing)
    assert run.code == 4
    assert run.stderr.startswith("PROTOCOL_NOT_FOUND: ")
    assert "nope.yaml" in run.stderr


@pytest.mark.parametrize("command", [
    ["screen", EXAMPLES / "patient_eligible.json", "--at", AT],
    ["dose", "--weight-kg", "70"],
])
def test_missing_protocol_option_exits_4(tmp_path: Path, command: list[Any]):
    run = cli(*command, "--protocol", tmp_path / "nope.yaml", "--json")
    assert run.code == 4
    assert run.json()["error"]["code"] == "PROTOCOL_NOT_FOUND"


def test_protocol_show_lists_arms_and_criteria():
    run = cli("protocol", "show", RUMCESS)
    assert run.code == 0, run.stderr
    for text in ("RUMCESS", "NCT01849237", "control", "msc", "Arms", "Eligibility",
                 sha256(RUMCESS)[:16]):
        assert text in run.stdout
    for criterion in ("I1", "I2", "I3", "I4", "I5", "E1", "E2", "E3", "E4"):
        assert re.search(rf"\b{criterion}\b", run.stdout), criterion


def test_protocol_show_defaults_to_rumcess():
    run = cli("protocol", "show", "--json")
    assert run.code == 0, run.stderr
    assert run.json()["protocol_id"] == "rumcess"


def test_protocol_show_json_is_the_protocol():
    run = cli("protocol", "show", THREEARM, "--json")
    assert run.code == 0, run.stderr
    data = run.json()
    assert data["protocol_id"] == "threearm-demo"
    assert data["content_sha256"] == sha256(THREEARM)
    assert [a["id"] for a in data["arms"]] == ["usual_care", "low_dose", "high_dose"]
    assert [c["id"] for c in data["eligibility"]["inclusion"]] == [
        "IN-1", "IN-2", "IN-3", "IN-4", "IN-5", "IN-6", "IN-7"]


# --- screen -----------------------------------------------------------------------------

MET, NOT, UNK = "met", "not_met", "unknown"
ALL_CLEAR = {"I1": MET, "I2": MET, "I3": MET, "I4": MET, "I5": MET,
             "E1": NOT, "E2": NOT, "E3": NOT, "E4": NOT}

RUMCESS_EXPECTED = {
    "patient_eligible.json": ("eligible", ALL_CLEAR, []),
    "patient_wrong_unit.json": ("incomplete", {**ALL_CLEAR, "I3": UNK}, ["neutrophils"]),
    "patient_incomplete.json": (
        "incomplete",
        {**ALL_CLEAR, "I3": UNK, "I5": UNK, "E2": UNK, "E4": UNK},
        ["neutrophils", "consent_signed", "pregnant"],
    ),
    "patient_differential.json": ("eligible", ALL_CLEAR, []),
}


@pytest.mark.parametrize("name", sorted(RUMCESS_EXPECTED))
def test_screen_examples_rumcess(name: str):
    decision, expected, missing = RUMCESS_EXPECTED[name]
    run = cli("screen", EXAMPLES / name, "--at", AT, "--json")
    assert run.code == 0, run.stderr
    out = run.json()
    assert out["decision"] == decision
    assert statuses(out) == expected
    assert out["missing_fields"] == missing
    assert out["failing"] == []
    assert out["evaluated_at"] == "2026-03-01T03:00:00+00:00"
    assert out["protocol"] == {"id": "rumcess", "version": "1.0", "sha256": sha256(RUMCESS)}
    for criterion in out["criteria"]:
        assert set(criterion) >= {"id", "type", "text", "status", "reason", "data_used",
                                  "error_code", "missing_fields"}
        assert criterion["reason"]


def test_screen_wrong_unit_names_the_likely_unit():
    out = cli("screen", EXAMPLES / "patient_wrong_unit.json", "--at", AT, "--json").json()
    i3 = next(c for c in out["criteria"] if c["id"] == "I3")
    assert i3["error_code"] == "LIKELY_WRONG_UNIT"
    assert "cells/uL" in i3["reason"]
    assert [(p["code"], p["field"]) for p in out["input_problems"]] == [
        ("LIKELY_WRONG_UNIT", "neutrophils")]


def test_screen_differential_computes_the_anc():
    out = cli("screen", EXAMPLES / "patient_differential.json", "--at", AT, "--json").json()
    i3 = next(c for c in out["criteria"] if c["id"] == "I3")
    assert i3["data_used"] == {"neutrophils": "0.32 10^9/L"}
    assert "WBC 0.8" in i3["reason"]
    assert out["input_problems"] == []


def test_screen_text_output():
    run = cli("screen", EXAMPLES / "patient_incomplete.json", "--at", AT)
    assert run.code == 0, run.stderr
    assert "RUMCESS eligibility at 2026-03-01 03:00 UTC" in run.stdout
    assert "Decision: incomplete" in run.stdout
    assert "Still needed: neutrophils, consent_signed, pregnant" in run.stdout


def test_screen_text_reports_input_problems_on_stderr():
    run = cli("screen", EXAMPLES / "patient_wrong_unit.json", "--at", AT)
    assert run.code == 0
    assert "LIKELY_WRONG_UNIT (neutrophils): absolute neutrophil count: 500" in run.stderr
    assert "Decision: incomplete" in run.stdout


def test_screen_without_at_is_evaluated_now():
    """The example's onset is 2026-03-01 01:30 MSK, so 'now' is long past its deadline."""
    assert dt.datetime.now(dt.UTC) > dt.datetime.fromisoformat("2026-03-01T11:30:00+03:00")
    out = cli("screen", EXAMPLES / "patient_eligible.json", "--json").json()
    assert out["decision"] == "ineligible"
    assert out["failing"] == ["I2"]


THREEARM_FROM_RUMCESS = {"IN-1": UNK, "IN-2": UNK, "IN-3": UNK, "IN-4": UNK, "IN-5": MET,
                         "IN-6": UNK, "IN-7": UNK, "EX-1": NOT, "EX-2": UNK}


@pytest.mark.parametrize("name", sorted(RUMCESS_EXPECTED))
def test_screen_examples_against_threearm(name: str):
    """RUMCESS records under another protocol: only the shared fields count."""
    run = cli("screen", EXAMPLES / name, "--protocol", THREEARM, "--at", AT, "--json")
    assert run.code == 0, run.stderr
    out = run.json()
    assert out["decision"] == "incomplete"
    assert statuses(out) == THREEARM_FROM_RUMCESS
    assert out["protocol"]["id"] == "threearm-demo"
    assert out["protocol"]["sha256"] == sha256(THREEARM)
    unknown = {p["field"] for p in out["input_problems"] if p["code"] == "UNKNOWN_FIELD"}
    assert "septic_shock_onset" in unknown


THREEARM_PATIENT = {
    "birth_date": "1970-01-01", "sex": "female",
    "shock_time": "2026-03-01T02:00:00+01:00",
    "anc": {"value": 300, "unit": "cells/uL"},
    "lactate": {"value": 36, "unit": "mg/dL"},
    "on_dialysis": False, "consent": True, "cause": "chemo",
}


@pytest.mark.parametrize(("changes", "decision", "failing"), [
    ({}, "eligible", []),
    ({"on_dialysis": True}, "ineligible", ["EX-2"]),
    ({"cause": "other"}, "ineligible", ["IN-6"]),
    ({"shock_time": "2026-02-28T20:00:00+01:00"}, "ineligible", ["IN-2"]),
    ({"lactate": None}, "incomplete", []),
])
def test_screen_threearm_patient(tmp_path: Path, changes: dict[str, Any], decision: str,
                                 failing: list[str]):
    record = tmp_path / "patient.json"
    record.write_text(json.dumps({**THREEARM_PATIENT, **changes}), encoding="utf-8")
    run = cli("screen", record, "-p", THREEARM, "--at", AT, "--json")
    assert run.code == 0, run.stderr
    out = run.json()
    assert out["decision"] == decision
    assert out["failing"] == failing
    assert out["input_problems"] == []


def test_screen_reads_stdin():
    record = (EXAMPLES / "patient_eligible.json").read_text(encoding="utf-8")
    run = cli("screen", "-", "--at", AT, "--json", input=record)
    assert run.code == 0, run.stderr
    assert run.json()["decision"] == "eligible"


def test_screen_malformed_json_exits_3(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "sex": "male",\n  "birth_date": \n', encoding="utf-8")
    run = cli("screen", bad, "--at", AT)
    assert run.code == 3
    assert run.stderr.startswith("INPUT_REJECTED: ")
    assert "not valid JSON" in run.stderr and "line " in run.stderr
    run = cli("screen", bad, "--at", AT, "--json")
    assert run.code == 3
    assert run.json()["error"]["code"] == "INPUT_REJECTED"


@pytest.mark.parametrize("content", ["[]", '"patient"', "null"])
def test_screen_top_level_not_an_object_exits_3(tmp_path: Path, content: str):
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    run = cli("screen", bad, "--at", AT, "--json")
    assert run.code == 3
    assert run.json()["error"]["code"] == "INPUT_REJECTED"


def test_screen_missing_file_exits_3(tmp_path: Path):
    run = cli("screen", tmp_path / "absent.json", "--at", AT)
    assert run.code == 3
    assert run.stderr.startswith("INPUT_REJECTED: ")


def test_screen_at_without_offset_exits_3():
    run = cli("screen", EXAMPLES / "patient_eligible.json", "--at", "2026-03-01T06:00:00")
    assert run.code == 3
    assert run.stderr.startswith("TIMEZONE_REQUIRED: ")
    run = cli("screen", EXAMPLES / "patient_eligible.json", "--at", "2026-03-01T06:00:00",
              "--json")
    assert run.code == 3
    error = run.json()["error"]
    assert set(error) == {"code", "field", "message"}
    assert (error["code"], error["field"]) == ("TIMEZONE_REQUIRED", "at")
    assert "UTC offset" in error["message"]


def test_screen_at_not_a_time_exits_3():
    run = cli("screen", EXAMPLES / "patient_eligible.json", "--at", "yesterday", "--json")
    assert run.code == 3
    assert run.json()["error"]["code"] == "IMPLAUSIBLE_VALUE"


def test_screen_text_with_markup_like_input_does_not_crash(tmp_path: Path):
    """User text is printed literally, never read as Rich markup."""
    record = tmp_path / "patient.json"
    record.write_text(json.dumps({"[/x]": 1, "[bold]y": 2,
                                  "neutrophils": {"value": 1, "unit": "[red]"}}),
                      encoding="utf-8")
    run = cli("screen", record, "--at", AT)
    assert run.code == 0, run.stderr
    assert "UNKNOWN_FIELD ([/x])" in run.stderr
    assert "UNKNOWN_FIELD ([bold]y)" in run.stderr
    assert "unit '[red]'" in run.stderr


def test_error_message_with_markup_like_text_is_printed_literally(tmp_path: Path):
    bad = tmp_path / "[bold]bad.json"
    bad.write_text("{", encoding="utf-8")
    run = cli("screen", bad, "--at", AT)
    assert run.code == 3
    assert "[bold]bad.json" in run.stderr


# --- sofa -------------------------------------------------------------------------------

SOFA_KEYS = {"total", "total_without_coagulation", "missing", "components", "conventions"}
COMPONENTS = ["respiration", "coagulation", "liver", "cardiovascular", "cns", "renal"]


@pytest.mark.parametrize(("name", "total", "without", "components"), [
    ("sofa_day1.json", 16, 12, [3, 4, 1, 4, 1, 3]),
    ("sofa_umol.json", 17, 14, [3, 3, 2, 4, 2, 3]),
])
def test_sofa_examples_json(name: str, total: int, without: int, components: list[int]):
    run = cli("sofa", EXAMPLES / name, "--json")
    assert run.code == 0, run.stderr
    out = run.json()
    assert set(out) == SOFA_KEYS
    assert list(out["components"]) == COMPONENTS
    assert out["total"] == total
    assert out["total_without_coagulation"] == without
    assert list(out["components"].values()) == components
    assert out["missing"] == []
    assert set(out["conventions"]) == {"missing_component_scores_zero",
                                       "noninvasive_counts_as_support"}


def test_sofa_text_output():
    run = cli("sofa", EXAMPLES / "sofa_day1.json")
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "SOFA 16 (without coagulation 12)"
    assert [line.split()[0] for line in lines[1:]] == COMPONENTS


def test_sofa_missing_components_are_listed(tmp_path: Path):
    obs = tmp_path / "obs.json"
    obs.write_text('{"gcs": 9, "platelets_10e9_per_l": null}', encoding="utf-8")
    out = cli("sofa", obs, "--json").json()
    assert out["total"] == 3
    assert out["missing"] == ["respiration", "coagulation", "liver", "cardiovascular", "renal"]
    assert out["components"]["coagulation"] is None


def test_sofa_fio2_percentage_exits_3(tmp_path: Path):
    obs = tmp_path / "obs.json"
    obs.write_text('{"pao2_mmhg": 80, "fio2_fraction": 40}', encoding="utf-8")
    run = cli("sofa", obs)
    assert run.code == 3
    assert run.stderr.startswith("LIKELY_WRONG_UNIT: ")
    assert "percentage" in run.stderr and "0.40" in run.stderr
    run = cli("sofa", obs, "--json")
    assert run.code == 3
    error = run.json()["error"]
    assert (error["code"], error["field"]) == ("LIKELY_WRONG_UNIT", "fio2_fraction")
    assert "percentage" in error["message"]


def test_sofa_unknown_key_exits_3(tmp_path: Path):
    obs = tmp_path / "obs.json"
    obs.write_text('{"creatinine_umol": 180}', encoding="utf-8")
    run = cli("sofa", obs, "--json")
    assert run.code == 3
    error = run.json()["error"]
    assert (error["code"], error["field"]) == ("INPUT_REJECTED", "creatinine_umol")
    assert "creatinine_umol_l" in error["message"]


def test_sofa_reads_stdin():
    run = cli("sofa", "-", "--json", input=(EXAMPLES / "sofa_umol.json").read_text("utf-8"))
    assert run.code == 0, run.stderr
    assert run.json()["total"] == 17


# --- dose -------------------------------------------------------------------------------


def test_dose_70_kg():
    run = cli("dose", "--weight-kg", "70", "--json")
    assert run.code == 0, run.stderr
    out = run.json()
    assert out["target_cells"] == pytest.approx(70e6)
    assert out["min_cells"] == pytest.approx(70e6)
    assert out["max_cells"] == pytest.approx(140e6)
    assert out["weight"] == {"weight_kg": 70.0, "basis": "actual",
                             "detail": "actual body weight"}
    assert out["volume_ml"] is None


def test_dose_volume_and_text():
    run = cli("dose", "--weight-kg", "70", "--concentration-cells-per-ml", "1e6")
    assert run.code == 0, run.stderr
    assert run.stdout.startswith("70×10^6 viable cells")
    assert "70 mL" in run.stdout
    out = cli("dose", "--weight-kg", "70", "--concentration-cells-per-ml", "1e6",
              "--json").json()
    assert out["volume_ml"] == pytest.approx(70.0)


def test_dose_in_grams_exits_3():
    run = cli("dose", "--weight-kg", "70000")
    assert run.code == 3
    assert run.stderr.startswith("LIKELY_WRONG_UNIT: ")
    assert "grams" in run.stderr
    run = cli("dose", "--weight-kg", "70000", "--json")
    assert run.code == 3
    assert run.json()["error"]["code"] == "LIKELY_WRONG_UNIT"


def test_dose_outside_protocol_range_exits_3():
    run = cli("dose", "--weight-kg", "70", "--cells-per-kg", "3e6", "--json")
    assert run.code == 3
    assert run.json()["error"]["code"] == "IMPLAUSIBLE_VALUE"


def test_dose_predicted_weight_protocol_needs_height():
    run = cli("dose", "--weight-kg", "70", "-p", THREEARM, "--json")
    assert run.code == 3
    assert run.json()["error"]["code"] == "MISSING_VALUE"
    run = cli("dose", "--weight-kg", "70", "-p", THREEARM, "--height-cm", "175",
              "--sex", "male", "--json")
    assert run.code == 0, run.stderr
    out = run.json()
    assert out["weight"]["basis"] == "predicted"
    assert out["target_cells"] == pytest.approx(3e6 * out["weight"]["weight_kg"])


# --- usage errors -----------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["dose", "--weight-kg", "70", "--bogus"],
    ["dose"],
    ["screen"],
    ["sofa", EXAMPLES / "sofa_day1.json", "--jsn"],
    ["no-such-command"],
    ["dose", "--weight-kg", "seventy"],
])
def test_usage_errors_exit_2(args: list[Any]):
    assert cli(*args).code == 2


def test_help_exits_0():
    run = cli("--help")
    assert run.code == 0
    for command in ("screen", "sofa", "dose", "protocol"):
        assert command in run.stdout


# --- the installed console script (subprocess) ------------------------------------------


def _console_script() -> Path:
    candidate = Path(sys.executable).parent / "trialdesk"
    if candidate.exists():
        return candidate
    found = shutil.which("trialdesk")
    assert found, "the trialdesk console script is not installed (pip install -e .)"
    return Path(found)


def script(*args: str | Path, input: str | None = None) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS")}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"})
    done = subprocess.run(
        [str(_console_script()), *map(str, args)], input=input, capture_output=True,
        text=True, encoding="utf-8", env=env, cwd=ROOT, timeout=120, check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def test_script_protocol_validate_sha256():
    run = script("protocol", "validate", "protocols/rumcess.yaml")
    assert run.code == 0, run.stderr
    assert f"sha256 {sha256(RUMCESS)}" in run.stdout


def test_script_screen_and_exit_codes():
    run = script("screen", "examples/patient_eligible.json", "--at", AT, "--json")
    assert run.code == 0, run.stderr
    assert run.json()["decision"] == "eligible"
    assert statuses(run.json()) == ALL_CLEAR

    run = script("screen", "examples/patient_eligible.json", "--at", "2026-03-01T06:00:00")
    assert run.code == 3
    assert run.stderr.startswith("TIMEZONE_REQUIRED: ")

    run = script("protocol", "validate", "protocols/absent.yaml")
    assert run.code == 4
    assert run.stderr.startswith("PROTOCOL_NOT_FOUND: ")

    assert script("dose", "--weight-kg", "70", "--bogus").code == 2


def test_script_sofa_stdin_and_dose():
    run = script("sofa", "-", "--json", input=(EXAMPLES / "sofa_day1.json").read_text("utf-8"))
    assert run.code == 0, run.stderr
    assert run.json()["total"] == 16

    run = script("dose", "--weight-kg", "70000")
    assert run.code == 3
    assert run.stderr.startswith("LIKELY_WRONG_UNIT: ")
