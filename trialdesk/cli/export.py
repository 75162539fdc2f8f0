"""``export odm`` / ``export csv``: the complete trial record from the trial database.

Same database as the web app (its settings and environment), same code as the web
download (``trialdesk.web.exports``): every randomized subject of every site, every
version of every form and adverse event with its audit record, records entered in
error, signatures (docs/export.md). The file is written while the database is read in
chunks; the export is logged (channel ``cli``) with the SHA-256 of the file.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from trialdesk.cli.base import JsonOpt, app, err, handles_errors, out, print_json
from trialdesk.cli.web import setup_django
from trialdesk.errors import InputRejected

export_app = typer.Typer(help="Export the complete trial record (ODM 1.3.2, long CSV).",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")

OutOpt = Annotated[Path, typer.Option("--out", help="File to write (replaced if present).")]
ProtocolOpt = Annotated[Path | None, typer.Option(
    "--protocol", "-p", help="Protocol file (YAML); default: the web app's protocol.")]
ChunkOpt = Annotated[int, typer.Option(
    "--chunk-size", min=1, help="Subjects read from the database per query.")]


def _run(fmt: str, out_path: Path, protocol_path: Path | None, chunk_size: int,
         as_json: bool) -> None:
    setup_django()
    from trialdesk.protocol import load_protocol
    from trialdesk.web.core.protocol_access import current_protocol
    from trialdesk.web.exports.services import start_export, stream_export

    protocol = load_protocol(protocol_path) if protocol_path else current_protocol()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    partial = out_path.with_name(out_path.name + ".partial")
    try:
        handle = partial.open("wb")
    except OSError as exc:
        raise InputRejected(f"{out_path}: cannot write the file ({exc.strerror}).",
                            field="out") from None
    log = start_export(fmt, protocol, requested_by=f"cli:{user}", channel="cli")
    with handle:
        for chunk in stream_export(log, protocol, chunk_size=chunk_size):
            handle.write(chunk)
    partial.replace(out_path)
    log.refresh_from_db()
    summary = {"file": str(out_path), "format": fmt, "sha256": log.sha256,
               "bytes": log.size_bytes, "subjects": log.subjects, "forms": log.forms,
               "item_data": log.item_data, "signatures": log.signatures,
               "removed_forms": log.removed_forms, "screenings": log.screenings,
               "query_steps": log.query_steps, "sdv_marks": log.sdv_marks,
               "locks": log.locks, "deviations": log.deviations,
               "allocation_included": log.allocation_included, "note": log.note,
               "export_id": log.pk, "as_of": log.as_of.isoformat()}
    if as_json:
        print_json(summary)
        return
    err.print(f"wrote {escape(str(out_path))}: {log.subjects} subjects, {log.forms} records, "
              f"{log.item_data} item values, {log.signatures} signatures, "
              f"{log.screenings} screened only, {log.query_steps} query steps; "
              f"{escape(log.note)}", soft_wrap=True)
    out.print(f"sha256 {log.sha256}", soft_wrap=True)


@export_app.command("odm")
@handles_errors
def export_odm(out_path: OutOpt, protocol: ProtocolOpt = None,
               chunk_size: ChunkOpt = 200, as_json: JsonOpt = False) -> None:
    """CDISC ODM 1.3.2 XML (transactional, archival): metadata from the protocol and the
    form library, every record's versions with audit records, signatures."""
    _run("odm", out_path, protocol, chunk_size, as_json)


@export_app.command("csv")
@handles_errors
def export_csv(out_path: OutOpt, protocol: ProtocolOpt = None,
               chunk_size: ChunkOpt = 200, as_json: JsonOpt = False) -> None:
    """Long CSV: one row per item value and version (subject, day, form, item, value, unit,
    version, changed_at_utc, changed_by, reason), signatures as 'sign' rows."""
    _run("csv", out_path, protocol, chunk_size, as_json)
