"""Generate a trial report from the database: export, freeze, analyse, store or write.

:func:`generate_report` is what the web page and the ``trialdesk report`` command share:
it exports the database (:mod:`trialdesk.web.reports.export`), freezes the analysis
dataset, runs :func:`trialdesk.analysis.report.build_report` and returns the HTML, the
PDF and a manifest (dataset SHA-256 and per-table hashes, protocol id, version and file
SHA-256, generation time UTC, TrialDesk version, the export's caveats, file hashes).
:func:`store_report` keeps it in the database (:class:`ReportArtefact`);
:func:`write_bundle` writes it with the frozen dataset as CSV files to a folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trialdesk
from trialdesk.analysis import StatisticalWarning
from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.analysis.report import Report, build_report
from trialdesk.clinical.timeutil import utcnow
from trialdesk.errors import InputRejected
from trialdesk.protocol import Protocol
from trialdesk.web.reports.export import DatabaseExport, build_dataset
from trialdesk.web.reports.models import ReportArtefact

MANIFEST = "manifest.json"
DATASET_DIR = "dataset"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, eq=False)
class GeneratedReport:
    report: Report
    dataset: AnalysisDataset
    export: DatabaseExport
    html: str
    pdf: bytes
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return self.report.version


def generate_report(protocol: Protocol, *, closed: bool,
                    now: dt.datetime | None = None) -> GeneratedReport:
    """Export the database and build the report (nothing stored or written)."""
    dataset, export = build_dataset(protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        report = build_report(dataset, protocol, closed=closed, generated_at=now or utcnow())
        html = report.html()
        pdf = report.pdf_bytes()
    manifest = {
        "report": report.version, "generated_at": report.generated_at.isoformat(),
        "trialdesk_version": trialdesk.__version__, **report.citation,
        "n_subjects": dataset.subjects.n, "primary_timeframe_days": export.timeframe_days,
        "tables": dict(dataset.table_sha256),
        "files": {f"report-{report.version}.html": sha256(html.encode("utf-8")),
                  f"report-{report.version}.pdf": sha256(pdf)},
        "caveats": list(export.caveats),
    }
    return GeneratedReport(report, dataset, export, html, pdf, manifest)


def store_report(generated: GeneratedReport, *, user: Any) -> ReportArtefact:
    m = generated.manifest
    artefact = ReportArtefact(
        version=generated.version, dataset_sha256=m["dataset_sha256"],
        protocol_id=m["protocol_id"] or "", protocol_version=m["protocol_version"] or "",
        protocol_sha256=m["protocol_sha256"] or "", n_subjects=m["n_subjects"],
        html=generated.html, html_sha256=sha256(generated.html.encode("utf-8")),
        pdf=generated.pdf, pdf_sha256=sha256(generated.pdf), manifest=m,
        generated_at=generated.report.generated_at, generated_by=user)
    artefact._history_user = user
    artefact._change_reason = f"{generated.version} report generated"
    artefact.save()
    return artefact


def write_bundle(generated: GeneratedReport,
                 out_dir: str | Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """Write report-<version>.html/.pdf, dataset/<table>.csv and manifest.json; return
    the manifest written (its ``files``: SHA-256 of every other file) and the paths."""
    out = Path(out_dir)
    version = generated.version
    files: dict[str, Path] = {}
    try:
        data_dir = out / DATASET_DIR
        data_dir.mkdir(parents=True, exist_ok=True)
        for name in generated.dataset.tables:
            path = data_dir / f"{name}.csv"
            text = generated.export.frame(name).to_csv(index=False, lineterminator="\n")
            path.write_text(text, encoding="utf-8")
            files[f"{DATASET_DIR}/{name}.csv"] = path
        for suffix, content in (("html", generated.html.encode("utf-8")),
                                ("pdf", generated.pdf)):
            path = out / f"report-{version}.{suffix}"
            path.write_bytes(content)
            files[path.name] = path
        manifest = dict(generated.manifest)
        manifest["files"] = {name: sha256(p.read_bytes()) for name, p in sorted(files.items())}
        path = out / MANIFEST
        path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        files[MANIFEST] = path
    except OSError as exc:
        raise InputRejected(f"{out}: cannot write the report ({exc.strerror}).",
                            field="out") from None
    return manifest, files
