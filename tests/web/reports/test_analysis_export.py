"""The analysis dataset built from the database matches the trial as recorded.

Expectations are worked out by hand from what the fixture entered (tests/web/reports/
conftest.py): SOFA from domain.md §4.1's table, times as study days, CONSORT counts.
"""

from __future__ import annotations

import pytest

from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.web.casebook.services import save_form
from trialdesk.web.reports.export import build_dataset, export_tables

pytestmark = pytest.mark.django_db


def _rows(export, table, key="subject_id"):
    return {r[key]: r for r in export.tables[table]}


def test_time_and_event_death_day5_survivor_censored_at_28_lost_at_10(rumcess, trial):
    subjects = _rows(export_tables(rumcess), "subjects")
    assert len(subjects) == 3
    died = subjects[trial.died_day5.subject_id]
    survivor = subjects[trial.survivor.subject_id]
    lost = subjects[trial.lost.subject_id]
    assert (died["arm"], died["time"], died["event"]) == ("msc", 5.0, 1)
    # alive on day 30: censored at the primary timeframe, 28 days
    assert (survivor["arm"], survivor["time"], survivor["event"]) == ("control", 28.0, 0)
    # last contact on day 10 (end of study), the later SOFA on day 3 is earlier
    assert (lost["arm"], lost["time"], lost["event"]) == ("msc", 10.0, 0)


def test_covariates_come_from_the_screening_record_and_day0_sofa(rumcess, trial):
    subjects = _rows(export_tables(rumcess), "subjects")
    died = subjects[trial.died_day5.subject_id]
    survivor = subjects[trial.survivor.subject_id]
    assert died["age_years"] == 50  # 50th birthday on day 0
    assert survivor["age_years"] == 39  # 40th birthday the day after day 0
    assert died["sex"] == "female" and died["neutropenia_cause"] == "post_chemotherapy"
    assert died["stratum"] == "neutropenia_cause=post_chemotherapy"
    assert died["sofa_total_day0"] == 17 and survivor["sofa_total_day0"] == 17
    assert subjects[trial.lost.subject_id]["sofa_total_day0"] is None


def test_daily_rows_sofa_components_markers_in_canonical_units_and_support(rumcess, trial):
    daily = {(r["subject_id"], r["day"]): r for r in export_tables(rumcess).tables["daily"]}
    s = trial.survivor.subject_id
    assert sorted(k for k in daily if k[0] == s) == [(s, 0), (s, 3)]
    day0 = daily[(s, 0)]
    # domain.md §4.1: P/F 140 on invasive ventilation → 3; platelets 35 → 3; bilirubin
    # 40 µmol/L → 2; norepinephrine 0.25 > 0.1 → 4; GCS 11 → 2; creatinine 180 µmol/L → 3
    assert {c: day0[f"sofa_{c}"] for c in ("respiration", "coagulation", "liver",
                                            "cardiovascular", "cns", "renal")} == {
        "respiration": 3, "coagulation": 3, "liver": 2, "cardiovascular": 4, "cns": 2,
        "renal": 3}
    assert day0["sofa_total"] == 17
    assert (day0["on_vasopressor"], day0["on_invasive_ventilation"]) == (1, 1)
    assert day0["crp_mg_per_l"] == pytest.approx(36.0)  # 3.6 mg/dL × 10
    assert day0["il6_pg_per_ml"] == 850 and day0["procalcitonin_ng_per_ml"] == 12.5
    assert day0["lactate_mmol_per_l"] == pytest.approx(4.2)
    day3 = daily[(s, 3)]
    assert day3["sofa_total"] == 1 and day3["sofa_cns"] == 1  # GCS 14 → 1, all else 0
    # oxygen alone is no ventilation; no drug entered = none given
    assert (day3["on_vasopressor"], day3["on_invasive_ventilation"]) == (0, 0)
    assert "il6_pg_per_ml" not in day3


def test_adverse_events_deviations_screening_and_disposition(rumcess, trial):
    export = export_tables(rumcess)
    events = {r["term"]: r for r in export.tables["adverse_events"]}
    assert events["Septic shock progression"] | {"ae_id": None} == {
        "subject_id": trial.died_day5.subject_id, "ae_id": None,
        "term": "Septic shock progression", "serious": 1, "severity_grade": 5,
        "causality": "unlikely", "related": 0}
    # not yet assessed counts as related (possible) until the investigator assesses it
    assert (events["Rash"]["serious"], events["Rash"]["causality"],
            events["Rash"]["related"]) == (0, "possible", 1)
    [deviation] = export.tables["deviations"]
    assert (deviation["subject_id"], deviation["code"]) == (trial.died_day5.subject_id,
                                                            "INFUSION_LATE")
    log = export.tables["screening"]
    assert sorted(r["status"] for r in log) == ["excluded", "randomized", "randomized",
                                                "randomized"]
    [excluded] = [r for r in log if r["status"] == "excluded"]
    assert excluded["exclusion_reason"] == "Missed the enrolment window"
    disposition = _rows(export, "disposition")
    d, s, lost = (disposition[p.subject_id] for p in (trial.died_day5, trial.survivor,
                                                      trial.lost))
    assert (d["received_allocated_intervention"], d["lost_to_follow_up"]) == (1, 0)
    assert (s["received_allocated_intervention"], s["lost_to_follow_up"]) == (1, 0)
    assert lost["received_allocated_intervention"] == 0
    assert lost["not_received_reason"] == "no MSC infusion recorded"
    assert (lost["lost_to_follow_up"], lost["discontinued"]) == (1, 0)
    assert [r["analysed"] for r in disposition.values()] == [1, 1, 1]


def test_the_frozen_dataset_feeds_consort_and_validates(rumcess, trial):
    from trialdesk.analysis.consort import consort_counts

    dataset, _ = build_dataset(rumcess)
    counts = consort_counts(dataset)
    assert counts.randomized == 3
    by_arm = {a.arm: a for a in counts.arms}
    assert (by_arm["msc"].allocated, by_arm["msc"].received,
            by_arm["msc"].lost_to_follow_up) == (2, 1, 1)
    assert (by_arm["control"].allocated, by_arm["control"].received) == (1, 1)


def test_hash_is_stable_and_changes_when_a_form_is_corrected(rumcess, trial, investigator):
    first, _ = build_dataset(rumcess)
    second, _ = build_dataset(rumcess)
    assert first.content_sha256 == second.content_sha256
    assert len(first.content_sha256) == 64
    save_form(rumcess, trial.survivor, "sofa", 3, {**_good_day(), "gcs": 15},
              user=investigator, reason="GCS corrected from the chart")
    third, export = build_dataset(rumcess)
    assert third.content_sha256 != first.content_sha256
    assert third.table_sha256["daily"] != first.table_sha256["daily"]
    assert third.table_sha256["subjects"] == first.table_sha256["subjects"]
    row = {(r["subject_id"], r["day"]): r for r in export.tables["daily"]}[
        (trial.survivor.subject_id, 3)]
    assert row["sofa_total"] == 0  # the form as saved now, not its history


def test_the_dataset_written_as_csv_reads_back_to_the_same_hash(rumcess, trial, tmp_path):
    dataset, export = build_dataset(rumcess)
    for name in dataset.tables:
        export.frame(name).to_csv(tmp_path / f"{name}.csv", index=False)
    again = AnalysisDataset.from_csv_dir(tmp_path, rumcess)
    assert again.content_sha256 == dataset.content_sha256


def test_nothing_randomized_yet_is_a_clear_error(rumcess, db):
    from trialdesk.errors import DatasetError

    with pytest.raises(DatasetError, match="no subjects"):
        build_dataset(rumcess)


def _good_day():
    from tests.web.reports.conftest import GOOD_DAY

    return dict(GOOD_DAY)

