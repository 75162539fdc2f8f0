"""CONSORT counts add up, the SVG is well-formed XML; Table 1, AE and deviation tables."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from trialdesk.analysis import AnalysisDataset
from trialdesk.analysis.consort import consort_counts, consort_svg
from trialdesk.analysis.synthetic import synthetic_trial
from trialdesk.analysis.tables import adverse_event_table, baseline_table, deviation_table


@pytest.fixture(scope="module")
def tables():
    return synthetic_trial(80, seed=5)


@pytest.fixture(scope="module")
def dataset(tables):
    t = {k: v.copy() for k, v in tables.items()}
    return AnalysisDataset.from_frames(t.pop("subjects"), **t)


def test_consort_numbers_add_up(dataset, tables):
    c = consort_counts(dataset)
    assert c.assessed == len(tables["screening"])
    assert c.assessed == c.excluded + c.randomized
    assert sum(c.exclusion_reasons.values()) == c.excluded
    assert c.randomized == 80 == sum(a.allocated for a in c.arms)
    disp = tables["disposition"]
    for a in c.arms:
        assert a.received + a.not_received == a.allocated
        assert sum(a.not_received_reasons.values()) == a.not_received
        assert a.analysed + a.excluded_from_analysis == a.allocated
    assert sum(a.lost_to_follow_up for a in c.arms) == int(disp["lost_to_follow_up"].sum())
    assert sum(a.discontinued for a in c.arms) == int(disp["discontinued"].sum())
    pooled = c.pooled()
    assert pooled.arms[0].allocated == 80
    assert pooled.arms[0].received == sum(a.received for a in c.arms)


def test_consort_svg_is_well_formed_and_shows_every_count(dataset):
    c = consort_counts(dataset)
    svg = consort_svg(c)
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert f"Assessed for eligibility (n = {c.assessed})" in text
    assert f"Excluded (n = {c.excluded})" in text
    assert f"Randomized (n = {c.randomized})" in text
    for a in c.arms:
        for needle in (f"Allocated to {a.arm} (n = {a.allocated})",
                       f"Received allocated intervention (n = {a.received})",
                       f"Lost to follow-up (n = {a.lost_to_follow_up})",
                       f"Discontinued intervention (n = {a.discontinued})",
                       f"Analysed (n = {a.analysed})"):
            assert needle in text


def test_consort_escapes_reasons():
    ds = AnalysisDataset.from_frames(
        [{"subject_id": "A", "arm": "c", "time": 28, "event": 0},
         {"subject_id": "B", "arm": "t", "time": 28, "event": 0}],
        screening=[{"screening_id": "1", "status": "randomized", "subject_id": "A"},
                   {"screening_id": "2", "status": "randomized", "subject_id": "B"},
                   {"screening_id": "3", "status": "excluded",
                    "exclusion_reason": "ANC < 1 & age > 75"}])
    root = ET.fromstring(consort_svg(consort_counts(ds)).encode("utf-8"))
    assert any("ANC < 1 & age > 75 (n = 1)" in (t.text or "") for t in root.iter())


def test_table1_median_iqr_uses_r_type7_quartiles_and_n_percent():
    subjects = [{"subject_id": f"S{i}", "arm": "control" if i < 4 else "msc", "time": 28,
                 "event": 0, "age_years": age, "sex": sex}
                for i, (age, sex) in enumerate([(40, "male"), (50, "female"), (60, "female"),
                                                (70, "male"), (30, "male"), (35, "male"),
                                                (45, "male"), (80, None)])]
    daily = [{"subject_id": f"S{i}", "day": 0, "sofa_total": 10 + i} for i in range(8)]
    t = baseline_table(AnalysisDataset.from_frames(subjects, daily=daily))
    rows = {r[0]: r[1:] for r in t.rows}
    assert t.columns == ("", "control", "msc")
    assert rows["n"] == ("4", "4")
    # R: quantile(c(40,50,60,70)) → 47.5, 55, 62.5; quantile(c(30,35,45,80)) → 33.75, 40, 53.75
    assert rows["Age, years, median [IQR]"] == ("55 [47.5, 62.5]", "40 [33.8, 53.8]")
    assert rows["  female"] == ("2 (50.0%)", "0 (0.0%)")
    assert rows["  male"] == ("2 (50.0%)", "3 (75.0%)")
    assert rows["  not recorded"] == ("0 (0.0%)", "1 (25.0%)")
    assert rows["SOFA on day 0, median [IQR]"] == ("11.5 [10.8, 12.2]", "15.5 [14.8, 16.2]")
    pooled = baseline_table(AnalysisDataset.from_frames(subjects), by_arm=False)
    assert pooled.columns == ("", "All subjects") and pooled.rows[0] == ("n", "8")


def test_adverse_event_and_deviation_tables_by_hand():
    subjects = [{"subject_id": s, "arm": a, "time": 28, "event": 0}
                for s, a in (("A", "control"), ("B", "control"), ("C", "msc"))]
    ae = [{"subject_id": "A", "term": "fever", "serious": 1, "severity_grade": 3,
           "causality": "possible", "related": 1},
          {"subject_id": "A", "term": "rash", "serious": 0, "severity_grade": 1,
           "causality": "unrelated", "related": 0},
          {"subject_id": "C", "term": "fever", "serious": 0, "severity_grade": 2,
           "causality": "definite", "related": 1}]
    dv = [{"subject_id": "B", "code": "WINDOW_MISSED"}, {"subject_id": "B", "code": "X"}]
    ds = AnalysisDataset.from_frames(subjects, adverse_events=ae, deviations=dv)
    rows = {r[0]: r[1:] for r in adverse_event_table(ds).rows}
    assert rows["Any adverse event"] == ("1 (50.0%); 2 events", "1 (100.0%); 1 event")
    assert rows["Serious"] == ("1 (50.0%); 1 event", "0 (0.0%); 0 events")
    assert rows["Related (possible, probable, definite)"] == ("1 (50.0%); 1 event",
                                                              "1 (100.0%); 1 event")
    assert rows["Serious and related"] == ("1 (50.0%); 1 event", "0 (0.0%); 0 events")
    assert rows["  Grade 3"] == ("1 (50.0%); 1 event", "0 (0.0%); 0 events")
    d = {r[0]: r[1:] for r in deviation_table(ds).rows}
    assert d["Any protocol deviation"] == ("1 (50.0%); 2 events", "0 (0.0%); 0 events")
    assert d["  WINDOW_MISSED"] == ("1 (50.0%); 1 event", "0 (0.0%); 0 events")
