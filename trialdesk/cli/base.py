"""Shared pieces of the command line: the app, consoles, error handling, JSON I/O."""


from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from trialdesk.errors import InputRejected, ProtocolError, TrialError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INPUT, EXIT_PROTOCOL = 0, 1, 2, 3, 4

app = typer.Typer(
    help="TrialDesk: run a randomized clinical trial end to end (RUMCESS, NCT01849237).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ProtocolOpt = Annotated[Path, typer.Option("--protocol", "-p", help="Protocol file (YAML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def exit_code(exc: TrialError) -> int:
    if isinstance(exc, ProtocolError):
        return EXIT_PROTOCOL
    if isinstance(exc, InputRejected):
        return EXIT_INPUT
    return EXIT_ERROR


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a TrialError into ``CODE: message`` and the documented exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TrialError as exc:
            if kwargs.get("as_json"):
                print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False))
            else:
                err.print(f"[bold red]{exc.code}[/]: {escape(exc.message)}", soft_wrap=True)
            raise typer.Exit(exit_code(exc)) from None

    return wrapper


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def read_json(path: Path) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputRejected(f"{path}: cannot read the file ({exc.strerror}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputRejected(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}).") from None
    if not isinstance(data, dict):
        raise InputRejected(f"{path}: expected a JSON object {{…}} at the top level.")
    return data


