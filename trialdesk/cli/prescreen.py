"""``trialdesk prescreen``: retrospective feasibility over MIMIC-IV-layout extracts (DuckDB)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from trialdesk.cli.base import JsonOpt, ProtocolOpt, app, handles_errors, out, print_json
from trialdesk.clinical.timeutil import format_utc
from trialdesk.errors import IngestError
from trialdesk.prescreen.config import PrescreenConfig
from trialdesk.prescreen.feasibility import run_feasibility
from trialdesk.protocol import DEFAULT_PROTOCOL, load_protocol


def _date(text: str | None, name: str, end: bool = False) -> dt.datetime | None:
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise IngestError(f"{name}: '{text}' is not a date; use YYYY-MM-DD (UTC).",
                          field=name) from None
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start + dt.timedelta(days=1) - dt.timedelta(microseconds=1) if end else start


@app.command("prescreen")
@handles_errors
def prescreen(
    paths: Annotated[list[Path], typer.Argument(
        help="Folders in MIMIC-IV layout (hosp/, icu/; CSV, CSV.gz or Parquet).")],
    date_from: Annotated[str | None, typer.Option(
        "--from", help="First day (YYYY-MM-DD, UTC) of vasopressor starts to include.")] = None,
    date_to: Annotated[str | None, typer.Option(
        "--to", help="Last day (YYYY-MM-DD, UTC, inclusive) of vasopressor starts.")] = None,
    protocol: ProtocolOpt = DEFAULT_PROTOCOL,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Print every patient's criteria, not only candidates.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Retrospective feasibility: how many patients would have been candidates, and how fast.

    Runs the protocol's pre-screening rules (septic-shock onset, neutropenia, age, the
    enrolment window) over historical ICU data with DuckDB, out of core. Each patient is
    candidate / possible / no with the reasons; the summary counts candidates detectable
    within 2, 4, 6 and 10 h of onset.
    """
    config = PrescreenConfig.from_protocol(load_protocol(protocol))
    result = run_feasibility(list(paths), config,
                             date_from=_date(date_from, "--from"),
                             date_to=_date(date_to, "--to", end=True))
    if as_json:
        print_json(result.to_dict())
        return
    summary = result.summary()
    out.print(f"[bold]{summary['patients']}[/] patients: {summary['candidates']} candidates, "
              f"{summary['possible']} possible, {summary['no']} no "
              f"({config.definition.label} onset, {config.deadline_hours:g} h window)")
    detect = ", ".join(f"≤{h} h: {summary['detectable'][f'within_{h}h']}"
                       for h in result.detection_hours)
    out.print(f"candidates detectable after onset — {detect}")
    table = Table("subject", "status", "onset", "deadline", "detected after")
    shown = result.assessments if explain else [a for a in result.assessments
                                                if a.status.value != "no"]
    for a in shown:
        after = "" if a.hours_to_detection is None else f"{a.hours_to_detection:.2f} h"
        table.add_row(escape(a.patient_id), a.status.value,
                      format_utc(a.onset_utc) if a.onset_utc else "",
                      format_utc(a.deadline_utc) if a.deadline_utc else "", after)
    out.print(table)
    for a in shown:
        if a.status.value == "candidate" or explain:
            out.print(escape(str(a)))
