"""docs/permissions.md is the permission table, written out, and up to date.

The file is generated (scripts/gen_permissions_docs.py); these tests fail while it is
stale, and check a few rows against the protocol's roles as docs/reports.md and the
site workflow state them (only the DMC and its unblinded statistician read the closed
report; only the lab records the MSC product; the DMC sees no patient; the sponsor
enters no patient data; the ICU feed's integration role holds the feed and nothing else).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trialdesk.web.accounts import permissions_doc
from trialdesk.web.accounts.permissions import DESCRIPTIONS, PERMISSIONS

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "permissions.md"
ROLES = ["investigator", "coordinator", "lab", "data_manager", "monitor", "statistician",
         "dmc_statistician", "dmc", "sponsor", "administrator", "integration"]
PEOPLE = set(ROLES) - {"integration"}


def _matrix() -> dict[str, set[str]]:
    """Action -> roles ticked, read back from the Markdown table."""
    rows: dict[str, set[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 + len(ROLES) and re.fullmatch(r"`[a-z_]+\.[a-z_]+`", cells[0]):
            rows[cells[0].strip("`")] = {r for r, c in zip(ROLES, cells[2:], strict=True)
                                         if c == "✓"}
    return rows


def test_permissions_md_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == permissions_doc.render(), (
        "docs/permissions.md is out of date: run `python scripts/gen_permissions_docs.py`")


def test_every_action_has_one_line_of_description():
    assert set(DESCRIPTIONS) == set(PERMISSIONS)
    for action, text in DESCRIPTIONS.items():
        assert text.strip() and "\n" not in text and "|" not in text, action


def test_the_matrix_lists_every_action_once_with_its_roles():
    matrix = _matrix()
    assert set(matrix) == set(PERMISSIONS)
    assert matrix["report.closed"] == {"dmc", "dmc_statistician"}
    assert matrix["msc.record"] == {"lab"} == matrix["lab.dashboard"]
    assert matrix["trial.view"] == PEOPLE == matrix["tools.use"]
    assert matrix["randlist.manage"] == {"dmc_statistician", "administrator"}
    assert matrix["prescreen.ingest"] == {"integration"}
    assert not any("dmc" in roles for action, roles in matrix.items()
                   if action.split(".")[0] in {"screening", "casebook", "ae", "query"})


def test_the_trial_statistician_stays_blind_and_the_unblinded_one_keeps_the_list():
    matrix = _matrix()
    blind = {action for action, roles in matrix.items() if "statistician" in roles}
    assert blind == {"trial.view", "tools.use", "report.open"}
    assert {"randlist.manage", "report.closed", "report.open"} <= {
        action for action, roles in matrix.items() if "dmc_statistician" in roles}
    # whoever holds the sequence takes no part in enrolment
    for enrolling in ("screening.edit", "consent.record", "randomization.randomize"):
        assert not matrix[enrolling] & matrix["randlist.manage"], enrolling


def test_the_sponsor_oversees_and_enters_no_patient_data():
    matrix = _matrix()
    sponsor = {action for action, roles in matrix.items() if "sponsor" in roles}
    assert sponsor == {"trial.view", "tools.use", "safety.dashboard", "ae.view",
                       "deviation.view", "report.open", "audit.view",
                       "safety.regulator_report", "data.export"}


def test_the_integration_role_holds_the_feed_and_nothing_a_person_uses():
    matrix = _matrix()
    assert {action for action, roles in matrix.items() if "integration" in roles} == {
        "prescreen.ingest"}


def test_a_missing_description_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(PERMISSIONS, "new.action", frozenset())
    with pytest.raises(permissions_doc.MissingDescription, match=r"new\.action"):
        permissions_doc.render()


def test_the_source_names_the_document():
    source = (ROOT / "trialdesk" / "web" / "accounts" / "permissions.py").read_text()
    assert "docs/permissions.md" in source and DOC.exists()
