"""``trialdesk randlist``: generate a sealed list, verify it, simulate designs.

Runs the Typer app in-process, like tests/test_cli.py; no database.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trialdesk.cli import app
from trialdesk.protocol import load_protocol
from trialdesk.randomization import AllocationList, generate_list

ROOT = Path(__file__).resolve().parents[1]
RUMCESS = ROOT / "protocols" / "rumcess.yaml"
THREEARM = ROOT / "tests" / "protocols" / "threearm.yaml"
SEED = "a long secret seed for the tests"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
runner = CliRunner()


class Run:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, _ANSI.sub("", stdout), _ANSI.sub("", stderr)

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli(*args: str | Path, input: str | None = None) -> Run:
    result = runner.invoke(app, [str(a) for a in args], input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def printed_commitment(stdout: str) -> str:
    found = re.findall(r"commitment sha256 ([0-9a-f]{64})", stdout)
    assert len(found) == 1, stdout
    return found[0]


def generate(tmp_path: Path, *extra: str | Path, name: str = "list.csv",
             protocol: Path = RUMCESS) -> tuple[Run, Path]:
    target = tmp_path / name
    run = cli("randlist", "generate", "--protocol", protocol, "--seed", SEED, "--size", "8",
              "--out", target, *extra)
    return run, target


# --- generate / verify ------------------------------------------------------------------


def test_generate_then_verify_round_trip(tmp_path: Path):
    run, target = generate(tmp_path)
    assert run.code == 0, run.stderr
    commitment = printed_commitment(run.stdout)
    assert commitment == sha256(target)
    alist = AllocationList.from_csv(target.read_text(encoding="utf-8"))
    assert alist == generate_list(load_protocol(RUMCESS), seed=SEED, size_per_stratum=8)
    assert alist.commitment() == commitment
    assert SEED not in target.read_text(encoding="utf-8")

    check = cli("randlist", "verify", target, "--commitment", commitment,
                "--protocol", RUMCESS)
    assert check.code == 0, check.stderr
    assert "matches" in check.stdout


def test_generate_json_reports_the_list(tmp_path: Path):
    run, target = generate(tmp_path, "--json")
    assert run.code == 0, run.stderr
    out = run.json()
    main = out["main_list"]
    assert out["emergency_lists"] == []
    assert main["commitment"] == sha256(target)
    assert main["seed_fingerprint"] == hashlib.sha256(SEED.encode()).hexdigest()
    assert main["label"] == "main" and main["method"] == "permuted_blocks"
    assert main["protocol_sha256"] == sha256(RUMCESS)
    assert len(main["strata"]) == 4
    assert set(main["entries_per_stratum"]) == set(main["strata"])
    assert all(n >= 8 for n in main["entries_per_stratum"].values())


def test_seed_can_be_read_from_standard_input(tmp_path: Path):
    piped = tmp_path / "piped.csv"
    run = cli("randlist", "generate", "-p", RUMCESS, "--seed", "-", "--size", "8",
              "--out", piped, input=SEED + "\n")
    assert run.code == 0, run.stderr
    _, given = generate(tmp_path)
    assert piped.read_bytes() == given.read_bytes()


def test_tampered_list_fails_verify(tmp_path: Path):
    run, target = generate(tmp_path)
    commitment = printed_commitment(run.stdout)
    text = target.read_text(encoding="utf-8")
    swapped = {"control": "msc", "msc": "control"}
    target.write_text(re.sub(r",(control|msc)\n", lambda m: f",{swapped[m[1]]}\n", text,
                             count=1), encoding="utf-8")
    check = cli("randlist", "verify", target, "--commitment", commitment)
    assert check.code == 1
    assert check.stderr.startswith("COMMITMENT_MISMATCH: ")
    assert "matches" not in check.stdout

    as_json = cli("randlist", "verify", target, "--commitment", commitment, "--json")
    assert as_json.code == 1
    assert as_json.json()["error"]["code"] == "COMMITMENT_MISMATCH"


def test_verify_against_another_protocol_fails(tmp_path: Path):
    run, target = generate(tmp_path)
    check = cli("randlist", "verify", target, "--commitment", printed_commitment(run.stdout),
                "--protocol", THREEARM)
    assert check.code == 1
    assert check.stderr.startswith("ALLOCATION_ERROR: ")
    assert "threearm-demo" in check.stderr


@pytest.mark.parametrize("commitment", ["abc", "z" * 64])
def test_verify_rejects_a_malformed_commitment(tmp_path: Path, commitment: str):
    _, target = generate(tmp_path)
    check = cli("randlist", "verify", target, "--commitment", commitment)
    assert check.code == 3
    assert check.stderr.startswith("INPUT_REJECTED: ")


def test_verify_of_a_file_that_is_not_a_list_exits_3(tmp_path: Path):
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n", encoding="utf-8")
    check = cli("randlist", "verify", junk, "--commitment", "0" * 64)
    assert check.code == 3
    assert check.stderr.startswith("INPUT_REJECTED: ")


def test_an_existing_list_is_not_overwritten_without_force(tmp_path: Path):
    first, target = generate(tmp_path)
    assert first.code == 0
    before = target.read_bytes()
    again = cli("randlist", "generate", "-p", RUMCESS, "--seed", "other seed", "--size", "8",
                "--out", target)
    assert again.code == 1
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert target.read_bytes() == before

    forced = cli("randlist", "generate", "-p", RUMCESS, "--seed", "other seed", "--size", "8",
                 "--out", target, "--force")
    assert forced.code == 0, forced.stderr
    assert target.read_bytes() != before
    assert printed_commitment(forced.stdout) == sha256(target)


def test_generate_needs_out_and_size(tmp_path: Path):
    no_out = cli("randlist", "generate", "-p", RUMCESS, "--seed", SEED, "--size", "8")
    assert no_out.code == 2
    no_size = cli("randlist", "generate", "-p", RUMCESS, "--seed", SEED,
                  "--out", tmp_path / "l.csv")
    assert no_size.code == 2
    assert not (tmp_path / "l.csv").exists()


def test_emergency_lists_are_written_per_site(tmp_path: Path):
    envelopes = tmp_path / "envelopes"
    run, target = generate(tmp_path, "--emergency-dir", envelopes, "--json")
    assert run.code == 0, run.stderr
    out = run.json()
    protocol = load_protocol(RUMCESS)
    assert [e["site"] for e in out["emergency_lists"]] == [s.id for s in protocol.sites]
    for entry in out["emergency_lists"]:
        path = envelopes / f"emergency-{entry['site']}.csv"
        assert entry["file"] == str(path)
        assert entry["commitment"] == sha256(path)
        alist = AllocationList.from_csv(path.read_text(encoding="utf-8"))
        assert alist.label == f"emergency-{entry['site']}"
        assert set(entry["entries_per_stratum"].values()) == \
            {protocol.randomization.emergency_envelopes_per_stratum}
    assert out["main_list"]["commitment"] == sha256(target)


def test_emergency_commitments_are_printed(tmp_path: Path):
    envelopes = tmp_path / "envelopes"
    run, _ = generate(tmp_path, "--emergency-dir", envelopes)
    assert run.code == 0, run.stderr
    path = envelopes / "emergency-nrch.csv"
    assert f"emergency list of site nrch: {path}" in run.stdout
    assert f"commitment sha256 {sha256(path)}" in run.stdout


def test_minimization_protocol_has_no_main_list(tmp_path: Path):
    run, target = generate(tmp_path, protocol=THREEARM)
    assert run.code == 1
    assert run.stderr.startswith("ALLOCATION_ERROR: ")
    assert "minimization, which uses no main list" in run.stderr
    assert "--emergency-dir" in run.stderr
    assert not target.exists()


def test_minimization_protocol_still_gets_emergency_lists(tmp_path: Path):
    envelopes = tmp_path / "envelopes"
    run = cli("randlist", "generate", "-p", THREEARM, "--seed", SEED,
              "--emergency-dir", envelopes)
    assert run.code == 0, run.stderr
    assert "no main list" in run.stdout
    for site in ("berlin", "lisbon"):
        path = envelopes / f"emergency-{site}.csv"
        assert f"commitment sha256 {sha256(path)}" in run.stdout
        alist = AllocationList.from_csv(path.read_text(encoding="utf-8"))
        assert alist.method.value == "permuted_blocks"  # envelopes need a list
        assert {e.block_size for e in alist.entries} == {4}  # the 2:1:1 ratio total


def test_minimization_with_out_writes_the_envelopes_and_refuses_the_main_list(
        tmp_path: Path):
    envelopes = tmp_path / "envelopes"
    run, target = generate(tmp_path, "--emergency-dir", envelopes, "--json",
                           protocol=THREEARM)
    assert run.code == 1
    out = run.json()
    assert out["error"]["code"] == "ALLOCATION_ERROR"
    assert out["main_list"] is None
    assert {e["site"] for e in out["emergency_lists"]} == {"berlin", "lisbon"}
    assert all(e["commitment"] == sha256(Path(e["file"])) for e in out["emergency_lists"])
    assert not target.exists()


# --- simulate ---------------------------------------------------------------------------


def simulate(*args: str | Path) -> dict[str, Any]:
    run = cli("randlist", "simulate", *args, "--json")
    assert run.code == 0, run.stderr
    assert run.stderr == ""  # no progress bar with --json
    return run.json()


def test_simulate_json_shape():
    out = simulate("-p", THREEARM, "--n", "30", "--runs", "20")
    assert out["protocol_id"] == "threearm-demo"
    assert out["method"] == "minimization"
    assert (out["n"], out["runs"], out["seed"]) == (30, 20, "trialdesk-simulation")
    distribution = {"mean", "p50", "p95", "max", "half_width"}
    for key in ("overall_imbalance", "stratum_imbalance", "max_marginal_imbalance"):
        assert set(out[key]) == distribution, key
    assert set(out["marginal_imbalance"]) == {"cause", "sex_factor"}
    assert all(set(d) == distribution for d in out["marginal_imbalance"].values())
    assert set(out["arm_fractions"]) == {"usual_care", "low_dose", "high_dose"}
    assert 0 <= out["correct_guess_probability"] <= 1
    assert out["correct_guess_half_width"] > 0
    assert out["exact_block_predictability"] is None


def test_simulate_is_reproducible_from_its_seed():
    args = ("--method", "complete", "--n", "20", "--runs", "30", "--seed", "s1")
    assert simulate(*args) == simulate(*args)
    assert simulate(*args) != simulate("--method", "complete", "--n", "20", "--runs", "30",
                                       "--seed", "s2")


def test_complete_randomization_is_unpredictable():
    out = simulate("--method", "complete", "--runs", "400")
    assert out["method"] == "complete" and out["block_sizes"] == []
    assert abs(out["correct_guess_probability"] - 0.5) <= out["correct_guess_half_width"]


def test_fixed_blocks_of_4_are_near_the_exact_17_24():
    out = simulate("--method", "blocks", "--block-sizes", "4", "--runs", "200", "--n", "240")
    assert out["block_sizes"] == [4]
    assert out["exact_block_predictability"] == pytest.approx(17 / 24)
    # the last block of each stratum is cut, which lowers the simulated value a little
    assert out["correct_guess_probability"] == pytest.approx(17 / 24, abs=0.01)
    assert out["correct_guess_probability"] < 17 / 24


def test_simulate_text_shows_the_table_and_the_exact_value():
    run = cli("randlist", "simulate", "--method", "blocks", "--block-sizes", "4",
              "--runs", "250", "--n", "40")
    assert run.code == 0, run.stderr
    for label in ("overall", "within strata", "neutropenia_cause levels", "p95"):
        assert label in run.stdout, label
    assert re.search(r"correct_guess_probability 0\.\d{4} \(±0\.\d{4}", run.stdout)
    assert "exact_block_predictability 0.7083" in run.stdout


def test_simulate_defaults_to_the_protocols_design():
    out = simulate("--runs", "5", "--n", "10")
    assert (out["method"], out["block_sizes"]) == ("permuted_blocks", [2, 4])
    assert out["exact_block_predictability"] is None  # mixed block sizes: no exact value


@pytest.mark.parametrize("args", [
    ["--method", "complete", "--block-sizes", "4"],
    ["--method", "blocks", "--block-sizes", "four"],
    ["-p", str(THREEARM), "--method", "blocks"],
    ["--runs", "0"],
])
def test_simulate_usage_errors_exit_2(args: list[str]):
    assert cli("randlist", "simulate", *args).code == 2


def test_simulate_block_size_that_does_not_fit_the_ratio_exits_1():
    run = cli("randlist", "simulate", "-p", THREEARM, "--method", "blocks",
              "--block-sizes", "6", "--runs", "5")
    assert run.code == 1
    assert run.stderr.startswith("ALLOCATION_ERROR: ")
