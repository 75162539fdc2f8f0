"""The report: HTML and PDF, closed (by arm) and open (pooled); every page cites the data."""

from __future__ import annotations

import datetime as dt
import json
import warnings
import xml.etree.ElementTree as ET

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from trialdesk.analysis import AnalysisDataset
from trialdesk.analysis.report import build_report
from trialdesk.analysis.synthetic import synthetic_trial
from trialdesk.cli import app
from trialdesk.protocol import load_protocol
from trialdesk.protocol.schema import InterimLook

from .test_cli_analyze import RUMCESS

WHEN = dt.datetime(2026, 11, 29, 8, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def protocol():
    """RUMCESS with one interim look at half the information (O'Brien–Fleming type)."""
    p = load_protocol(RUMCESS)
    analysis = p.analysis.model_copy(update={
        "interim_looks": (InterimLook(information_fraction=0.5),),
        "alpha_spending": "lan_demets_of"})
    return p.model_copy(update={"analysis": analysis})


@pytest.fixture(scope="module")
def dataset(protocol):
    tables = synthetic_trial(60, seed=2)
    return AnalysisDataset.from_frames(tables.pop("subjects"), protocol=protocol, **tables)


@pytest.fixture(scope="module")
def written(dataset, protocol, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for closed in (True, False):
            report = build_report(dataset, protocol, closed=closed, generated_at=WHEN)
            paths[closed] = (report, *report.write(out))
    return paths


def _pages(path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def test_closed_pdf_pages_cite_hash_protocol_and_time(written, dataset):
    report, _, pdf = written[True]
    pages = _pages(pdf)
    n_figures = sum(len(s.figures) for s in report.sections)
    assert len(pages) >= 1 + len(report.sections) + n_figures - 1
    for text in pages:
        flat = " ".join(text.split())
        assert dataset.content_sha256 in flat.replace(" ", "")  # the footer may wrap
        assert "protocol rumcess v1.0" in flat and "2026-11-29 08:30:00 UTC" in flat
        assert "CLOSED report" in flat
    everything = " ".join(pages)
    for needle in ("Fisher exact (primary)", "Kaplan", "Number at risk", "Primary effect",
                   "CONSORT 2010 flow diagram", "Table 1. Baseline characteristics by arm",
                   "Adverse events by seriousness and causality", "Protocol deviations",
                   "satterthwaite", "observed z", "Lan-DeMets"):
        assert needle in everything, needle


def test_closed_html_has_every_figure_as_inline_svg(written, dataset):
    report, html_path, _ = written[True]
    text = html_path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for figure in ("consort", "km", "forest", "traj_sofa_total", "boundaries"):
        start = text.index(f'<figure id="{figure}">') + len(f'<figure id="{figure}">')
        svg = text[start:text.index("</figure>", start)]
        ET.fromstring(svg.encode("utf-8"))  # well-formed SVG
    assert text.count(dataset.content_sha256) >= len(report.sections)
    assert "MSC + standard therapy vs Standard therapy" in text


def test_open_report_is_pooled_without_arm_level_results(written, dataset):
    report, html_path, pdf = written[False]
    assert report.primary is None and report.secondary is None
    text = html_path.read_text(encoding="utf-8")
    everything = " ".join(_pages(pdf)) + text
    for forbidden in ("msc vs control", "Fisher", "Log-rank", "hazard ratio", "observed z",
                      "Allocated to msc", "Allocated to control", ">msc<", ">control<"):
        assert forbidden not in everything, forbidden
    assert "Allocated to all arms (n = 60)" in text and "OPEN report" in everything
    assert "All subjects" in text and '<figure id="km">' in text


def test_cli_report_from_csv_files(tmp_path):
    tables = synthetic_trial(30, seed=4)
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in tables.items():
        frame.to_csv(data / f"{name}.csv", index=False)
    result = CliRunner().invoke(app, ["report", "--subjects", str(data / "subjects.csv"),
                                      "--daily", str(data / "daily.csv"), "--data-dir",
                                      str(data), "--out", str(tmp_path / "out"),
                                      "--protocol", str(RUMCESS), "--open", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["version"] == "open" and info["protocol_version"] == "1.0"
    assert len(PdfReader(info["pdf"]).pages) >= 5
    assert (tmp_path / "out" / "report-open.html").exists()


def test_cli_report_bad_daily_file_exits_3(tmp_path):
    (tmp_path / "subjects.csv").write_text("subject_id,arm,time,event\nA,msc,28,0\n"
                                           "B,control,3,1\n", encoding="utf-8")
    (tmp_path / "daily.csv").write_text("subject_id,day,sofa_total\nA,0,30\n",
                                        encoding="utf-8")
    result = CliRunner().invoke(app, ["report", "--data-dir", str(tmp_path), "--out",
                                      str(tmp_path / "o")])
    assert result.exit_code == 3
    assert "line 2, column sofa_total: 30 is above the possible range 0–24" in result.stderr


def test_analyze_with_daily_adds_the_secondary_analyses(tmp_path):
    tables = synthetic_trial(30, seed=9)
    for name in ("subjects", "daily"):
        tables[name].to_csv(tmp_path / f"{name}.csv", index=False)
    result = CliRunner().invoke(app, ["analyze", "--subjects", str(tmp_path / "subjects.csv"),
                                      "--daily", str(tmp_path / "daily.csv"), "--protocol",
                                      str(RUMCESS), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    sec = data["secondary"]
    assert sec["mixed_model_df"] == "satterthwaite" and sec["protocol_version"] == "1.0"
    assert [m["outcome"] for m in sec["sofa_models"]] == ["sofa_total",
                                                          "sofa_without_coagulation"]
    written = json.loads((tmp_path / "o" / "secondary.json").read_text(encoding="utf-8"))
    assert written == sec
    text = CliRunner().invoke(app, ["analyze", "--subjects", str(tmp_path / "subjects.csv"),
                                    "--daily", str(tmp_path / "daily.csv")])
    assert text.exit_code == 0 and "Secondary analyses" in text.stdout
