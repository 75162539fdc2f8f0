"""End to end on the MIMIC-IV demo 2.2 (100 patients): reviewed candidates, pinned.

Reviewed by hand against the raw files (hosp/labevents, icu/inputevents, the chartevents
subset, hosp/diagnoses_icd) for RUMCESS (SSC 2012, ≤ 10 h, ANC ≤ 1 × 10^9/L, 17–75 y):

* 10035631 is the one candidate. Norepinephrine restarted 2116-03-03 12:00 (a new
  episode: the previous infusion had stopped more than 1 h before), after MAP 57 mmHg at
  11:30 (arterial line, itemid 220052); absolute neutrophils 0.23 K/µL drawn 03:49
  (labevent 417711, resulted 06:07); anchor age 63 in 2112 → 67. The start was charted
  at 12:39 (storetime), so the candidate was detectable 39 min after onset. His
  diagnoses (ICD-10 A41.9 sepsis, D70.9 neutropenia, Z94.84 stem-cell transplant,
  T45.1X5A adverse effect of antineoplastics) confirm a septic, post-chemotherapy
  neutropenic patient — exactly the RUMCESS population.
* 12 patients are ``possible``: 10 with an SSC 2012 onset but no neutrophil count
  (no absolute count and no WBC with a differential) from 48 h before onset to the
  deadline; 2 (10004720, 10014354) with norepinephrine but no blood pressure in the
  6 h before it in the chartevents subset (which is sparse).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialdesk.cli import app
from trialdesk.interop.mimic import read_mimic
from trialdesk.prescreen.config import PrescreenConfig
from trialdesk.prescreen.detector import PrescreenMonitor
from trialdesk.prescreen.feasibility import run_feasibility
from trialdesk.prescreen.referral import screening_referral
from trialdesk.protocol.loader import load_protocol

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT.parent / "shared" / "data" / "mimic_iv_demo_2.2"
RUMCESS = PrescreenConfig.from_protocol(load_protocol(ROOT / "protocols" / "rumcess.yaml"))
THREEARM = PrescreenConfig.from_protocol(load_protocol(ROOT / "tests/protocols/threearm.yaml"))
POSSIBLE_NO_COUNT = {"10003400", "10004457", "10005817", "10007818", "10009628", "10020944",
                     "10023117", "10027602", "10029291", "10040025"}
POSSIBLE_NO_BP = {"10004720", "10014354"}


@pytest.fixture(scope="module")
def feasibility():
    return run_feasibility([DEMO], RUMCESS)


@pytest.fixture(scope="module")
def ingested():
    return read_mimic(DEMO)


def test_the_one_candidate_and_its_explanation(feasibility):
    [cand] = feasibility.candidates
    assert cand.patient_id == "10035631"
    assert cand.onset_utc == dt.datetime(2116, 3, 3, 12, 0, tzinfo=dt.UTC)
    assert cand.deadline_utc == dt.datetime(2116, 3, 3, 22, 0, tzinfo=dt.UTC)
    assert cand.hours_to_detection == pytest.approx(39 / 60)
    assert "MAP 57 mmHg at 2116-03-03 11:30 UTC" in cand.check("shock_onset").reason
    neutro = cand.check("neutropenia")
    assert "ANC 0.23 ×10^9/L" in neutro.reason
    assert [d.source for d in neutro.data_used] == ["labevents/417711"]
    assert "age 67" in cand.check("age:E3").reason


#: The candidate's reasons, reviewed against the raw files (see the module docstring).
#: Pinned wording: a reason does not repeat its criterion's label (the shock reason was
#: "septic shock (SSC 2012): norepinephrine started …" under the label "septic shock
#: (SSC 2012)") nor its own value (the ANC was "ANC 0.23 ×10^9/L (absolute count 0.23
#: ×10^9/L)"); the clinical content — drugs, values, times, comparisons — is unchanged.
CANDIDATE_REASONS_UTC = {
    "shock_onset": "norepinephrine started 2116-03-03 12:00 UTC after MAP 57 mmHg at "
                   "2116-03-03 11:30 UTC",
    "window": "all criteria met 39 min after onset, deadline 2116-03-03 22:00 UTC",
    "neutropenia": "ANC 0.23 ×10^9/L (absolute count) at 2116-03-03 03:49 UTC, "
                   "8 h 11 min before onset, is ≤ 1",
    "age:I4": "age 67 on 2116-03-03 (anchor age 63 in 2112, ±1 year (patients/10035631)) "
              "is ≥ 17",
    "age:E3": "age 67 on 2116-03-03 (anchor age 63 in 2112, ±1 year (patients/10035631)) "
              "is not > 75",
}


def test_the_candidate_explanation_is_pinned_word_for_word(feasibility):
    [cand] = feasibility.candidates
    assert {c.id: c.reason for c in cand.checks} == CANDIDATE_REASONS_UTC
    for c in cand.checks:
        assert not c.reason.lower().startswith(c.label.lower()), c.label


def test_the_candidate_reasons_in_moscow_time_are_three_hours_later(feasibility):
    """Site time for NRCH (Europe/Moscow, UTC+03:00 all year since 2014): 12:00 UTC is
    15:00 MSK, 11:30 UTC 14:30, 22:00 UTC 01:00 the next day, 03:49 UTC 06:49."""
    [cand] = feasibility.candidates
    local = {c.id: c.reason_in("Europe/Moscow") for c in cand.checks}
    assert local["shock_onset"] == ("norepinephrine started 2116-03-03 15:00 MSK (UTC+03:00) "
                                    "after MAP 57 mmHg at 2116-03-03 14:30 MSK (UTC+03:00)")
    assert local["window"] == ("all criteria met 39 min after onset, deadline "
                               "2116-03-04 01:00 MSK (UTC+03:00)")
    assert local["neutropenia"] == ("ANC 0.23 ×10^9/L (absolute count) at 2116-03-03 06:49 "
                                    "MSK (UTC+03:00), 8 h 11 min before onset, is ≤ 1")
    assert not any("UTC " in text or text.endswith("UTC") for text in local.values())


def test_live_and_sql_pipelines_word_the_candidate_alike(feasibility, ingested):
    m = PrescreenMonitor(RUMCESS)
    m.feed(ingested.events, ingested.patients.values())
    live = next(a for a in m.assess_all() if a.patient_id == "10035631")
    assert {c.id: c.reason for c in live.checks} == CANDIDATE_REASONS_UTC


def test_possible_patients_and_summary(feasibility):
    possible = {a.patient_id for a in feasibility.assessments if a.status.value == "possible"}
    assert possible == POSSIBLE_NO_COUNT | POSSIBLE_NO_BP
    s = feasibility.summary()
    assert (s["patients"], s["candidates"], s["possible"], s["no"]) == (100, 1, 12, 87)
    assert s["detectable"] == {"within_2h": 1, "within_4h": 1, "within_6h": 1,
                               "within_10h": 1}


@pytest.mark.parametrize("config", [RUMCESS, THREEARM], ids=["ssc2012", "sepsis3"])
def test_sql_pipeline_agrees_with_the_incremental_detector(config, ingested):
    m = PrescreenMonitor(config)
    m.feed(ingested.events, ingested.patients.values())
    live = {a.patient_id: a for a in m.assess_all()}
    sql = {a.patient_id: a for a in run_feasibility([DEMO], config).assessments}
    assert set(live) == set(sql)

    def key(a):
        return (a.status, a.onset_utc, a.deadline_utc, a.detectable_utc,
                [(c.id, c.status) for c in a.checks],
                [d.source for d in a.check("neutropenia").data_used]
                if a.onset_utc else None)

    assert {p: key(a) for p, a in live.items()} == {p: key(a) for p, a in sql.items()}


def test_ingest_report_counts_what_was_not_used(ingested):
    report = ingested.report
    assert report.accepted["patient"] == 100
    assert report.accepted["anc"] == 565 and report.unusable["anc:no_number"] == 4
    assert report.implausible["map:IMPLAUSIBLE_VALUE"] == 24  # e.g. -23 and 801 mmHg
    assert report.implausible["pao2:LIKELY_WRONG_UNIT"] == 1  # 14 "mmHg": kPa
    assert report.implausible["vasopressor:IMPLAUSIBLE_VALUE"] == 2  # > 5 µg/kg/min
    assert report.unknown_codes["itemid:220045"] == 13913  # heart rate: not needed


def test_cli_json_output(tmp_path):
    result = CliRunner().invoke(app, ["prescreen", str(DEMO), "--json",
                                      "--from", "2116-03-01", "--to", "2116-03-03"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["summary"]["candidates"] == 1
    [patient] = [p for p in data["patients"] if p["status"] == "candidate"]
    assert patient["subject_id"] == "10035631"
    assert patient["onset"] == "2116-03-03T12:00:00+00:00"
    assert patient["deadline"] == "2116-03-03T22:00:00+00:00"
    assert any("neutrophil" in r.lower() or "ANC" in r for r in patient["reasons"])


def test_cli_refuses_a_folder_without_mimic_tables(tmp_path):
    result = CliRunner().invoke(app, ["prescreen", str(tmp_path)])
    assert result.exit_code == 3
    assert "INGEST_INVALID" in result.output


def test_a_screening_opened_from_the_candidate_cites_its_reasons_in_site_time(feasibility):
    """The referral's notes sit beside site-time values on the screening page."""
    [cand] = feasibility.candidates
    protocol = load_protocol(ROOT / "protocols" / "rumcess.yaml")
    referral = screening_referral(cand, None, protocol, "Europe/Moscow")
    notes = {p.field: p.note for p in referral.provenance}
    assert notes[protocol.onset.field] == (
        "norepinephrine started 2116-03-03 15:00 MSK (UTC+03:00) after MAP 57 mmHg at "
        "2116-03-03 14:30 MSK (UTC+03:00)")
