"""A reader sees the protocol's arm labels, never the arm ids, in the report.

RUMCESS (protocols/rumcess.yaml): arm ``control`` is labelled "Standard therapy" and
arm ``msc`` "MSC + standard therapy". Machine outputs (the analysis JSON) keep the ids;
without a protocol the report falls back to the ids.
"""

from __future__ import annotations

import re
import warnings
from html.parser import HTMLParser

import pytest

from trialdesk.analysis import AnalysisDataset
from trialdesk.analysis.arm_labels import ArmLabels
from trialdesk.analysis.primary import analyze_primary
from trialdesk.analysis.report import build_report
from trialdesk.analysis.synthetic import synthetic_trial
from trialdesk.protocol import load_protocol

from .test_cli_analyze import RUMCESS

CONTROL = "Standard therapy"
MSC = "MSC + standard therapy"
IDS = ("control", "msc")


class _Cells(HTMLParser):
    """Every table as (caption, header cells, body cells) and every SVG <text>."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, list[str]]] = []
        self.svg_text: list[str] = []
        self._where: str | None = None
        self._buffer = ""

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"caption": [], "th": [], "td": []})
        if tag in ("caption", "th", "td", "text"):
            self._where, self._buffer = tag, ""

    def handle_endtag(self, tag):
        if tag == self._where:
            if tag == "text":
                self.svg_text.append(self._buffer)
            else:
                self.tables[-1][tag].append(self._buffer)
            self._where = None

    def handle_data(self, data):
        if self._where:
            self._buffer += data


def _parse(text: str) -> _Cells:
    cells = _Cells()
    cells.feed(text)
    return cells


def _table(cells: _Cells, caption_start: str) -> dict[str, list[str]]:
    found = [t for t in cells.tables if t["caption"] and
             t["caption"][0].startswith(caption_start)]
    assert len(found) == 1, caption_start
    return found[0]


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(RUMCESS)


@pytest.fixture(scope="module")
def tables():
    return synthetic_trial(40, seed=11)


def _report_html(tables, protocol) -> str:
    t = {k: v.copy() for k, v in tables.items()}
    dataset = AnalysisDataset.from_frames(t.pop("subjects"), protocol=protocol, **t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_report(dataset, protocol, closed=True).html()


@pytest.fixture(scope="module")
def closed_html(tables, protocol):
    return _report_html(tables, protocol)


def test_protocol_labels_are_the_rumcess_arm_labels(protocol):
    labels = ArmLabels.of(protocol)
    assert (labels("control"), labels("msc")) == (CONTROL, MSC)
    assert labels("unknown_arm") == "unknown_arm"
    assert ArmLabels.of(None)("msc") == "msc"


def test_table_1_is_headed_by_the_arm_labels(closed_html):
    t = _table(_parse(closed_html), "Table 1.")
    assert t["th"] == ["", CONTROL, MSC]


def test_primary_results_table_names_each_arm_by_its_label(closed_html):
    cells = _parse(closed_html)
    t = _table(cells, "Day-28 mortality by arm")
    assert t["td"][0::6] == [CONTROL, MSC]
    _table(cells, f"Estimates, {MSC} vs {CONTROL}")
    _table(cells, f"Tests, {MSC} vs {CONTROL}")


def test_adverse_event_table_is_headed_by_the_arm_labels(closed_html, tables):
    t = _table(_parse(closed_html), "Adverse events by seriousness")
    n = tables["subjects"]["arm"].value_counts()
    assert t["th"] == ["", f"{CONTROL} (n = {n['control']})", f"{MSC} (n = {n['msc']})"]


def test_consort_boxes_name_the_arms_by_label(closed_html):
    start = closed_html.index('<figure id="consort">')
    svg = closed_html[start:closed_html.index("</figure>", start)]
    texts = _parse(svg).svg_text
    assert any(t.startswith(f"Allocated to {CONTROL} (n = ") for t in texts)
    assert any(t.startswith(f"Allocated to {MSC} (n = ") for t in texts)
    assert not any(re.search(r"\b(msc|control)\b", t) for t in texts)


def test_no_table_cell_or_svg_text_of_the_html_is_a_bare_arm_id(closed_html):
    cells = _parse(closed_html)
    every_cell = [c for t in cells.tables for part in t.values() for c in part]
    assert every_cell
    for cell in [*every_cell, *cells.svg_text]:
        assert not re.search(r"\b(msc|control)\b", cell), cell
    for arm_id in IDS:
        assert f">{arm_id}<" not in closed_html
        assert f"{arm_id} vs" not in closed_html and f"vs {arm_id}" not in closed_html


def test_without_a_protocol_the_report_shows_the_ids(tables):
    html = _report_html(tables, None)
    cells = _parse(html)
    assert sorted(_table(cells, "Table 1.")["th"]) == ["", "control", "msc"]
    assert CONTROL not in html and MSC not in html


def test_analysis_json_keeps_the_arm_ids(tables, protocol):
    dataset = AnalysisDataset.from_frames(tables["subjects"].copy(), protocol=protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = analyze_primary(dataset.subjects, protocol).to_dict()
    assert [a["arm"] for a in data["binary"]["arms"]] == ["control", "msc"]
    assert MSC not in str(data) and CONTROL not in str(data)


def test_label_rewriting_touches_comparisons_and_quoted_ids_only():
    labels = ArmLabels({"control": CONTROL, "msc": MSC})
    assert labels.text("msc vs control: a zero count") == f"{MSC} vs {CONTROL}: a zero count"
    assert labels.text("compared with 'control'; infection control") == (
        f"compared with '{CONTROL}'; infection control")
    assert labels.term("armmsc:day") == f"arm[{MSC}]:day"
    assert labels.term("day") == "day"
    assert labels.legend(("control", "msc")) == f"control = {CONTROL}; msc = {MSC}"
