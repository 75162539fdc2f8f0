"""The documentation stays in step with the code.

docs/cli.md is generated from the commands' ``--help`` by scripts/gen_cli_docs.py;
docs/formats.md is written by hand and must name every error code, every SOFA input
and every screening field of the shipped protocol.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest
import typer.main

import trialdesk.errors
from trialdesk import cli
from trialdesk.clinical.sofa import SofaInputs
from trialdesk.errors import TrialError
from trialdesk.protocol import load_protocol

ROOT = Path(__file__).resolve().parents[1]
CLI_MD = ROOT / "docs" / "cli.md"
FORMATS_MD = ROOT / "docs" / "formats.md"
REGENERATE = "docs/cli.md is out of date: run `python scripts/gen_cli_docs.py`"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs",
                                                  ROOT / "scripts" / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _error_classes() -> list[type[TrialError]]:
    return [obj for _, obj in inspect.getmembers(trialdesk.errors, inspect.isclass)
            if issubclass(obj, TrialError) and obj.__module__ == trialdesk.errors.__name__]


def _command_paths() -> list[tuple[str, ...]]:
    """Every command of the Typer app, walked independently of the generator."""
    paths: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(cli.app), ("trialdesk",))
    return paths


# --- docs/cli.md --------------------------------------------------------------------------


def test_cli_md_is_up_to_date():
    assert CLI_MD.read_text(encoding="utf-8") == gen.render(), REGENERATE


@pytest.mark.parametrize("env", [
    {"COLUMNS": "40"},
    {"COLUMNS": "250", "TERM": "xterm-256color", "FORCE_COLOR": "1"},
    {"TERM": "dumb", "NO_COLOR": "1"},
])
def test_render_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch,
                                                env: dict[str, str]):
    first = gen.render()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert gen.render() == first


def test_render_is_plain_portable_text():
    text = gen.render()
    assert "\x1b[" not in text, "ANSI escapes in docs/cli.md"
    assert not set("╭╮╰╯│─") & set(text), "Rich panels in docs/cli.md"
    assert str(ROOT) not in text, "an absolute path of this checkout in docs/cli.md"
    assert "[default: protocols/rumcess.yaml]" in text
    in_blocks = re.findall(r"```text\n(.*?)```", text, flags=re.S)
    assert in_blocks
    assert all(len(line) <= gen.WIDTH for block in in_blocks for line in block.splitlines())


def test_every_command_is_in_cli_md():
    text = CLI_MD.read_text(encoding="utf-8")
    paths = _command_paths()
    assert {p[-1] for p in paths} >= {"screen", "sofa", "dose", "protocol", "validate", "show"}
    for path in paths:
        name = " ".join(path)
        assert f"### `{name}`" in text, f"{name} has no section in docs/cli.md"
        assert f"Usage: {name} " in text, f"{name}: no --help in docs/cli.md"


def test_every_option_is_in_cli_md():
    text = CLI_MD.read_text(encoding="utf-8")
    for command in gen.iter_commands():
        for param in command[1].params:
            for opt in param.opts:
                if opt.startswith("-"):
                    assert opt in text, f"{opt} of {' '.join(command[0])} not in docs/cli.md"


def test_cli_md_exit_codes_match_the_cli():
    text = CLI_MD.read_text(encoding="utf-8")
    for code in (cli.EXIT_OK, cli.EXIT_ERROR, cli.EXIT_USAGE, cli.EXIT_INPUT, cli.EXIT_PROTOCOL):
        assert re.search(rf"^\| {code} \| \S", text, flags=re.M), f"exit code {code}"


def test_exit_code_table_is_taken_from_the_docstring():
    doc = ("Intro.\n\n== =====\n0  fine (``screen``)\n7  broken\n== =====\n\n"
           "Errors as ``CODE: message``.\n")
    assert gen.exit_code_table(doc) == (
        "| Code | Meaning |\n|---|---|\n| 0 | fine (`screen`) |\n| 7 | broken |\n\n"
        "Errors as `CODE: message`.\n")
    with pytest.raises(ValueError, match="exit-code table"):
        gen.exit_code_table("no table here")


# --- docs/formats.md -------------------------------------------------------------------


def test_every_error_code_is_in_formats_md():
    text = FORMATS_MD.read_text(encoding="utf-8")
    classes = _error_classes()
    assert len(classes) >= 10
    for cls in classes:
        assert f"`{cls.code}`" in text, f"{cls.__name__}.code {cls.code} not in docs/formats.md"
        assert f"`{cls.__name__}`" in text, f"{cls.__name__} not in docs/formats.md"


def test_formats_md_exit_status_of_each_error_code_matches_the_cli():
    text = FORMATS_MD.read_text(encoding="utf-8")
    for cls in _error_classes():
        row = re.search(rf"^\| `{cls.code}` \| `{cls.__name__}` \| (\d) \|", text, flags=re.M)
        assert row, f"no error-code row for {cls.code} in docs/formats.md"
        assert int(row.group(1)) == cli.exit_code(cls("x")), cls.code


def test_every_sofa_input_is_in_formats_md():
    text = FORMATS_MD.read_text(encoding="utf-8")
    for key in SofaInputs.accepted_keys():
        assert f"| `{key}` |" in text, f"SOFA input {key} not in docs/formats.md"


def test_every_rumcess_screening_field_is_in_formats_md():
    text = FORMATS_MD.read_text(encoding="utf-8")
    for field in load_protocol().screening_fields:
        assert f"| `{field.id}` |" in text, f"screening field {field.id} not in docs/formats.md"
