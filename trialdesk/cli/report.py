"""``report``: the closed (DMC) or open trial report as HTML and PDF.

From CSV files (``--subjects`` / ``--data-dir``) or, when neither is given, from the trial
database (the web app's settings): then the frozen dataset (``dataset/*.csv``) and
``manifest.json`` (dataset and file SHA-256, protocol id/version/SHA-256, generation
time, caveats) are written next to the report (docs/reports.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from trialdesk.analysis import StatisticalWarning
from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.analysis.report import build_report
from trialdesk.cli.base import JsonOpt, app, err, handles_errors, out, print_json
from trialdesk.cli.web import setup_django
from trialdesk.protocol import Protocol, load_protocol


@app.command()
@handles_errors
def report(
    out_dir: Annotated[Path, typer.Option(
        "--out", help="Folder for report-closed.html/.pdf (or report-open.*); from the "
                      "database also dataset/*.csv and manifest.json.")],
    subjects: Annotated[Path | None, typer.Option(
        "--subjects", help="Subjects CSV (subject_id, arm, time, event, baseline columns); "
                           "default DIR/subjects.csv of --data-dir.")] = None,
    daily: Annotated[Path | None, typer.Option(
        "--daily", help="Daily CSV (subject_id, day, sofa_total, …); default "
                        "DIR/daily.csv when present.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Folder with the other tables: adverse_events.csv, "
                           "deviations.csv, screening.csv, disposition.csv (each optional; "
                           "see docs/formats.md).")] = None,
    protocol: Annotated[Path | None, typer.Option(
        "--protocol", "-p", help="Protocol file (YAML).")] = None,
    closed: Annotated[bool, typer.Option(
        "--closed/--open", help="--closed (default): unblinded, by arm, for the DMC; "
                                "--open: all arms pooled, no comparisons.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Trial report (HTML and PDF): CONSORT, Table 1, primary and secondary analyses,
    safety tables, interim boundaries; every page cites the dataset SHA-256 and the
    protocol version. Without --subjects and --data-dir: from the trial database, with
    the frozen dataset (dataset/*.csv) and manifest.json."""
    p = load_protocol(protocol) if protocol is not None else None
    if subjects is None and data_dir is None:
        _report_from_database(out_dir, p, closed=closed, as_json=as_json)
        return
    if subjects is None:
        subjects = data_dir / "subjects.csv"
    dataset = AnalysisDataset.from_csv(subjects, daily=daily, data_dir=data_dir, protocol=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        result = build_report(dataset, p, closed=closed)
        html_path, pdf_path = result.write(out_dir)
    if as_json:
        print_json({"version": result.version, "html": str(html_path), "pdf": str(pdf_path),
                    "generated_at": result.generated_at.isoformat(), **result.citation})
        return
    err.print(f"wrote {escape(str(html_path))} and {escape(str(pdf_path))}", soft_wrap=True)
    out.print(escape(result.stamp), soft_wrap=True)


def _report_from_database(out_dir: Path, protocol: Protocol | None, *, closed: bool,
                          as_json: bool) -> None:
    setup_django()
    from trialdesk.web.core.protocol_access import current_protocol
    from trialdesk.web.reports.services import generate_report, write_bundle

    p = protocol or current_protocol()
    generated = generate_report(p, closed=closed)
    manifest, files = write_bundle(generated, out_dir)
    if as_json:
        print_json({**manifest, "written": {k: str(v) for k, v in files.items()}})
        return
    err.print(f"wrote {len(files)} files to {escape(str(out_dir))} "
              f"(report-{generated.version}.html/.pdf, dataset/, manifest.json)",
              soft_wrap=True)
    out.print(escape(generated.report.stamp), soft_wrap=True)
