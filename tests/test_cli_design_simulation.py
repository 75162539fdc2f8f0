"""``trialdesk design sample-size`` and ``design simulate``: output and exit codes."""

from __future__ import annotations

import json
import math
import re

from scipy import stats
from typer.testing import CliRunner

from trialdesk.cli import EXIT_ERROR, EXIT_OK, app

runner = CliRunner()
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["design", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, _ANSI.sub("", result.stdout), _ANSI.sub("", result.stderr)


def test_sample_size_normal_json_is_the_closed_form():
    code, stdout, _ = run("sample-size", "--p-control", "0.8", "--p-treatment", "0.4",
                          "--power", "0.8", "--method", "normal", "--json")
    assert code == EXIT_OK
    data = json.loads(stdout)
    z = stats.norm.ppf(0.975) * math.sqrt(2 * 0.6 * 0.4) + stats.norm.ppf(0.8) * math.sqrt(
        0.8 * 0.2 + 0.4 * 0.6)
    assert abs(data["n_unrounded"] - (z / 0.4) ** 2) < 1e-9
    assert data["n_per_arm"] == 23 and data["n_total"] == 46
    assert data["achieved_power"] >= 0.8


def test_sample_size_exact_text_reports_the_saw_tooth():
    code, stdout, _ = run("sample-size", "--p-control", "0.8", "--p-treatment", "0.4",
                          "--power", "0.45", "--method", "exact")
    assert code == EXIT_OK
    assert "exact" in stdout and "13" in stdout and "Saw-tooth" in stdout


def test_sample_size_without_a_difference_is_a_design_error():
    code, _, stderr = run("sample-size", "--p-control", "0.3", "--p-treatment", "0.3")
    assert code == EXIT_ERROR and "DESIGN_INVALID" in stderr


def test_simulate_json_has_type_i_error_power_and_exact_values():
    code, stdout, _ = run("simulate", "--trials", "20000", "--seed", "3",
                          "--allocation-pool", "50", "--json")
    assert code == EXIT_OK
    data = json.loads(stdout)
    assert data["design"] == "fixed" and data["primary_test"] == "fisher_exact"
    assert data["n_total"] == 30 and data["randomization"] == "permuted_blocks"
    for scenario in ("null", "alternative"):
        s = data[scenario]
        assert abs(s["rejection"] - s["exact"]["rejection"]) <= 3 * s["rejection_se"] + 1e-9
    assert data["type_i_error"] < 0.05 < data["power"]


def test_simulate_text_output():
    code, stdout, _ = run("simulate", "--trials", "5000", "--n-per-arm", "20",
                          "--allocation-pool", "20")
    assert code == EXIT_OK
    assert "fixed design, 40 patients" in stdout and "type I error" in stdout


def test_sample_size_inflated_for_interim_looks_matches_published_factors():
    """Jennison & Turnbull (2000) Table 2.4/2.6: two looks, alpha 0.05 two-sided, power
    0.8 — O'Brien-Fleming inflation 1.008, Pocock 1.110."""
    for kind, factor in (("obf", 1.008), ("pocock", 1.110)):
        code, stdout, _ = run("sample-size", "--p-control", "0.8", "--p-treatment", "0.4",
                              "--looks", "2", "--type", kind, "--json")
        assert code == EXIT_OK
        grouped = json.loads(stdout)["group_sequential"]
        assert round(grouped["inflation_factor"], 3) == factor
        assert grouped["max_n_per_arm"] == math.ceil(22.330134908 * grouped["inflation_factor"])


def test_events_schoenfeld_for_a_halved_hazard_is_the_textbook_66():
    """Schoenfeld: (z_0.975 + z_0.8)^2 / (0.25 · log(0.5)^2) = 65.4 → 66 events; with 60%
    of patients dying, 110 patients."""
    code, stdout, _ = run("events", "--hazard-ratio", "0.5", "--event-probability", "0.6",
                          "--json")
    assert code == EXIT_OK
    data = json.loads(stdout)
    assert data["events"] == 66 and data["n_total"] == 110
    code, stdout, _ = run("events", "--hazard-ratio", "0.5", "--looks", "3", "--type", "obf")
    assert code == EXIT_OK and "inflation factor" in stdout


def test_events_for_no_effect_is_a_design_error():
    code, _, stderr = run("events", "--hazard-ratio", "1")
    assert code == EXIT_ERROR and "DESIGN_INVALID" in stderr
