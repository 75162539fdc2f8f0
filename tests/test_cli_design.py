"""``trialdesk design boundaries``: output shapes, exit codes and error messages."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from trialdesk.analysis.boundaries import group_sequential_boundaries
from trialdesk.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, app

runner = CliRunner()
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["design", "boundaries", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, _ANSI.sub("", result.stdout), _ANSI.sub("", result.stderr)


def test_json_output_shape():
    code, stdout, _ = run("--looks", "3", "--type", "ld-obf", "--json")
    assert code == EXIT_OK
    data = json.loads(stdout)
    assert set(data) == {"type", "label", "alpha", "sides", "looks", "information_fractions",
                         "z_upper", "z_lower", "nominal_alpha", "cumulative_alpha_spent",
                         "exit_probabilities", "method"}
    assert (data["type"], data["alpha"], data["sides"], data["looks"]) == ("ld-obf", 0.05, 2, 3)
    assert data["information_fractions"] == pytest.approx([1 / 3, 2 / 3, 1])
    assert data["z_upper"] == list(group_sequential_boundaries(3, type="ld-obf").z_upper)
    assert data["z_lower"] == [-z for z in data["z_upper"]]
    assert data["cumulative_alpha_spent"][-1] == pytest.approx(0.05, abs=1e-9)
    for key in ("nominal_alpha", "cumulative_alpha_spent", "exit_probabilities"):
        assert len(data[key]) == 3


def test_one_sided_with_information_fractions():
    code, stdout, _ = run("--type", "pocock", "--information-fractions", "0.3,0.7,1",
                          "--sides", "1", "--alpha", "0.025", "--json")
    assert code == EXIT_OK
    data = json.loads(stdout)
    assert data["information_fractions"] == [0.3, 0.7, 1.0]
    assert data["z_lower"] is None and data["sides"] == 1
    assert len(set(data["z_upper"])) == 1


def test_table_output():
    code, stdout, _ = run("--looks", "5", "--type", "obf")
    assert code == EXIT_OK
    for text in ("O'Brien-Fleming", "look", "information fraction", "z boundary",
                 "nominal p", "±4.5617", "±2.0401", "0.050000"):
        assert text in stdout


@pytest.mark.parametrize("args", [
    ("--looks", "3", "--type", "haybittle"),
    ("--looks", "3"),
    ("--looks", "0", "--type", "obf"),
    ("--looks", "3", "--type", "obf", "--sides", "3"),
])
def test_usage_errors_exit_2(args: tuple[str, ...]):
    code, _, _ = run(*args)
    assert code == EXIT_USAGE


@pytest.mark.parametrize("alpha", ["0", "0.5", "1.2", "-0.05"])
def test_alpha_out_of_range_exits_2_with_a_clear_message(alpha: str):
    code, stdout, stderr = run("--looks", "3", "--type", "obf", "--alpha", alpha)
    assert code == EXIT_USAGE
    message = " ".join(re.sub(r"[│╭╮╰╯─]", " ", stdout + stderr).split())  # Rich panel
    assert "--alpha" in message and "strictly between 0 and 0.5" in message


@pytest.mark.parametrize(("args", "text"), [
    (("--information-fractions", "0.5,0.9"), "increase strictly from above 0 to 1"),
    (("--information-fractions", "0.5,x"), "not a comma-separated list of numbers"),
    (("--looks", "3", "--information-fractions", "0.5,1"), "3 looks but 2 information"),
    ((), "give the number of looks or the information fractions"),
])
def test_impossible_designs_exit_1_with_design_invalid(args: tuple[str, ...], text: str):
    code, _, stderr = run("--type", "obf", *args)
    assert code == EXIT_ERROR
    assert stderr.startswith("DESIGN_INVALID: ") and text in " ".join(stderr.split())
    code, stdout, _ = run("--type", "obf", *args, "--json")
    assert code == EXIT_ERROR
    error = json.loads(stdout)["error"]
    assert error["code"] == "DESIGN_INVALID" and text in error["message"]
    assert error["field"] in ("information_fractions", "looks")
