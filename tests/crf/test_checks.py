"""Edit checks at entry: what blocks saving (errors) and what needs confirming (warnings).

Reference values: SOFA's worked patient in domain.md §4.1 (17, 14 without coagulation),
lactate 36 mg/dL = 4 mmol/L (factor 1/9, domain.md §3.1), CRP 1 mg/dL = 10 mg/L.
"""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.crf.checks import VisitContext, canonical_values, check_form
from trialdesk.crf.findings import Severity
from trialdesk.crf.forms import FORMS, SOFA, parse_entry

UTC = dt.UTC
RANDOMIZED = dt.datetime(2026, 3, 1, 6, 0, tzinfo=UTC)  # 09:00 Moscow, day 0 = 1 March
NOW = dt.datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # day 5


def ctx(**changes) -> VisitContext:
    base = {"randomized_at": RANDOMIZED, "timezone": "Europe/Moscow", "arm": "msc",
            "now": NOW, "onset_at": RANDOMIZED - dt.timedelta(hours=4)}
    return VisitContext(**{**base, **changes})


def codes(result, severity=None):
    return {f.code for f in result.findings if severity is None or f.severity is severity}


WORKED_DAY = {"pao2_mmhg": 70, "fio2_fraction": 0.5, "respiratory_support": "invasive",
              "platelets_10e9_per_l": 35, "bilirubin_umol_l": 40, "map_mmhg": 62,
              "norepinephrine_ug_kg_min": 0.25, "gcs": 11, "creatinine_umol_l": 180,
              "urine_ml_per_day": 350}


def test_the_worked_sofa_day_is_clean_and_scores_17(rumcess):
    result = check_form(rumcess, "sofa", 1, WORKED_DAY, ctx())
    assert result.findings == ()
    assert result.derived["sofa"]["total"] == 17
    assert result.derived["sofa"]["total_without_coagulation"] == 14
    assert result.derived["sofa"]["components"] == {
        "respiration": 3, "coagulation": 3, "liver": 2, "cardiovascular": 4, "cns": 2,
        "renal": 3}


def test_fio2_as_a_percentage_is_an_error_naming_the_fraction(rumcess):
    as_percent = check_form(rumcess, "sofa", 1, {**WORKED_DAY, "fio2_fraction": 40}, ctx())
    as_fraction = check_form(rumcess, "sofa", 1, {**WORKED_DAY, "fio2_fraction": 0.4}, ctx())
    [problem] = as_percent.errors
    assert problem.code == "LIKELY_WRONG_UNIT" and problem.field == "fio2_fraction"
    assert "0.40" in problem.message
    assert as_fraction.ok and as_percent.sofa is None


def test_every_error_of_a_form_is_reported_at_once(rumcess):
    result = check_form(rumcess, "sofa", 1, {"fio2_fraction": 40, "pao2_mmhg": 70, "gcs": 2,
                                             "map_mmhg": "low", "platelets_10e9_per_l": 35000},
                        ctx())
    assert {f.field for f in result.errors} == {"fio2_fraction", "gcs", "map_mmhg",
                                               "platelets_10e9_per_l"}


def test_unusual_values_are_warnings_not_errors(rumcess):
    result = check_form(rumcess, "sofa", 1, {**WORKED_DAY, "map_mmhg": 30}, ctx())
    assert result.ok
    assert [w.key for w in result.warnings] == ["UNUSUAL_VALUE:map_mmhg"]


def test_both_units_of_one_lab_value_are_refused(rumcess):
    result = check_form(rumcess, "sofa", 1, {"bilirubin_umol_l": 40, "bilirubin_mg_dl": 2.3},
                        ctx())
    assert "INPUT_REJECTED" in codes(result, Severity.ERROR)


def test_lab_values_in_another_unit_are_converted(rumcess):
    data = {"lactate_mmol_l": {"value": 36, "unit": "mg/dL"},
            "crp_mg_l": {"value": 1, "unit": "mg/dL"}}
    result = check_form(rumcess, "inflammatory_markers", 1, data, ctx())
    assert result.ok
    assert result.values["lactate_mmol_l"] == pytest.approx(4.0)
    assert result.values["crp_mg_l"] == pytest.approx(10.0)
    assert canonical_values("inflammatory_markers", data)["lactate_mmol_l"] == pytest.approx(4)


def test_a_unit_the_field_does_not_take_is_refused(rumcess):
    result = check_form(rumcess, "inflammatory_markers", 1,
                        {"il6_pg_per_ml": {"value": 5, "unit": "mg/dL"}}, ctx())
    assert codes(result, Severity.ERROR) == {"INPUT_REJECTED"}


def test_times_in_the_future_are_refused_within_clock_tolerance(rumcess):
    soon = (NOW + dt.timedelta(minutes=4)).isoformat()
    later = (NOW + dt.timedelta(minutes=6)).isoformat()
    ok = check_form(rumcess, "inflammatory_markers", 5, {"sampled_at": soon}, ctx())
    bad = check_form(rumcess, "inflammatory_markers", 5, {"sampled_at": later}, ctx())
    assert ok.ok and codes(bad, Severity.ERROR) == {"FUTURE_TIME"}


def test_a_product_expiry_may_lie_in_the_future(rumcess):
    """A released product expires after release: its expiry is the one time that is
    expected to be ahead of the clock."""
    expiry = (NOW + dt.timedelta(hours=4)).isoformat()
    result = check_form(rumcess, "msc_product", None, {"expiry_at": expiry}, ctx())
    assert "FUTURE_TIME" not in codes(result)


def test_a_time_without_offset_is_refused(rumcess):
    result = check_form(rumcess, "standard_therapy", 0,
                        {"antibiotics_first_dose_at": "2026-03-01T05:00:00"}, ctx())
    assert codes(result, Severity.ERROR) == {"TIMEZONE_REQUIRED"}


def test_infusion_end_before_start_is_an_error(rumcess):
    data = {"infusion_start_at": "2026-03-01T08:00:00+00:00",
            "infusion_end_at": "2026-03-01T07:59:00+00:00", "weight_kg": 70,
            "cells_infused": 70e6}
    result = check_form(rumcess, "msc_infusion", 0, data, ctx())
    assert codes(result, Severity.ERROR) == {"TIME_ORDER"}


def test_an_infusion_before_randomization_is_impossible(rumcess):
    one_minute_before = (RANDOMIZED - dt.timedelta(minutes=1)).isoformat()
    at_randomization = RANDOMIZED.isoformat()
    data = {"weight_kg": 70, "cells_infused": 70e6}
    before = check_form(rumcess, "msc_infusion", 0,
                        {**data, "infusion_start_at": one_minute_before}, ctx())
    at = check_form(rumcess, "msc_infusion", 0, {**data, "infusion_start_at": at_randomization},
                    ctx())
    assert codes(before, Severity.ERROR) == {"INFUSION_BEFORE_RANDOMIZATION"}
    assert at.ok


def test_a_dosing_weight_in_grams_is_refused(rumcess):
    data = {"infusion_start_at": "2026-03-01T08:00:00+00:00", "weight_kg": 70000,
            "cells_infused": 70e6}
    result = check_form(rumcess, "msc_infusion", 0, data, ctx())
    assert {f.field for f in result.errors} == {"weight_kg"}


def test_an_infusion_in_the_control_arm_is_a_warning_not_a_refusal(rumcess):
    data = {"infusion_start_at": "2026-03-01T08:00:00+00:00", "weight_kg": 70,
            "cells_infused": 70e6}
    result = check_form(rumcess, "msc_infusion", 0, data, ctx(arm="control"))
    assert result.ok and codes(result) == {"WRONG_ARM"}


def test_day_out_of_schedule_and_days_not_yet_begun(rumcess):
    assert codes(check_form(rumcess, "sofa", 29, {}, ctx()), Severity.ERROR) == {
        "DAY_OUT_OF_SCHEDULE"}
    assert check_form(rumcess, "sofa", 5, {}, ctx()).ok  # today is day 5
    assert codes(check_form(rumcess, "sofa", 6, {}, ctx()), Severity.ERROR) == {
        "DAY_IN_FUTURE"}


def test_no_visit_after_a_recorded_death(rumcess):
    died = ctx(death_date=dt.date(2026, 3, 3))  # day 2
    assert check_form(rumcess, "sofa", 2, {}, died).ok
    assert codes(check_form(rumcess, "sofa", 3, {}, died), Severity.ERROR) == {
        "VISIT_AFTER_DEATH"}


def test_a_death_dated_before_recorded_visits_is_refused(rumcess):
    visits = ctx(recorded=[("sofa", 0), ("sofa", 1), ("sofa", 2)],
                 now=dt.datetime(2026, 3, 29, 9, tzinfo=UTC))  # day 28
    early = check_form(rumcess, "vital_status", 28,
                       {"status": "dead", "date_of_death": "2026-03-02"}, visits)  # day 1
    on_last_visit = check_form(rumcess, "vital_status", 28,
                               {"status": "dead", "date_of_death": "2026-03-03"}, visits)
    assert "VISIT_AFTER_DEATH" in codes(early, Severity.ERROR)
    [problem] = early.errors
    assert "sofa day 2" in problem.message
    assert on_last_visit.ok


def test_a_dead_patient_needs_a_date_and_a_living_one_none(rumcess):
    assert "MISSING_VALUE" in codes(check_form(rumcess, "end_of_study", None,
                                               {"status": "withdrawn", "date": "2026-03-04"},
                                               ctx()), Severity.ERROR)
    dead = check_form(rumcess, "end_of_study", None, {"status": "died", "date": "2026-03-04"},
                      ctx())
    assert dead.ok
    alive_with_date = check_form(rumcess, "vital_status", 28,
                                 {"status": "alive", "date_of_death": "2026-03-04"},
                                 ctx(now=dt.datetime(2026, 3, 29, 9, tzinfo=UTC)))
    assert "INPUT_REJECTED" in codes(alive_with_date, Severity.ERROR)


def test_unknown_fields_and_missing_required_ones(rumcess):
    result = check_form(rumcess, "msc_product", None, {"lot": "A1"}, ctx())
    assert codes(result, Severity.ERROR) == {"UNKNOWN_FIELD", "MISSING_VALUE"}
    assert {f.field for f in result.errors} == {"lot", "product_id", "donor_id"}


def test_parse_entry_reads_browser_text_in_site_time():
    raw = {"pao2_mmhg": "70,5", "fio2_fraction": "0.4", "gcs": "", "map_mmhg": "abc",
           "respiratory_support": "invasive"}
    data, problems = parse_entry(SOFA, raw, "Europe/Moscow")
    assert data == {"pao2_mmhg": 70.5, "fio2_fraction": 0.4, "map_mmhg": "abc",
                    "respiratory_support": "invasive"}
    assert [p.field for p in problems] == ["map_mmhg"]
    therapy, _ = parse_entry(FORMS["standard_therapy"],
                             {"antibiotics_first_dose_at": "2026-03-01T02:15",
                              "lactate_mmol_l": "36", "lactate_mmol_l__unit": "mg/dL"},
                             "Europe/Moscow")
    assert therapy["antibiotics_first_dose_at"] == "2026-03-01T02:15:00+03:00"
    assert therapy["lactate_mmol_l"] == {"value": 36, "unit": "mg/dL"}


def test_the_wrong_arm_warning_names_the_arms_by_their_labels(rumcess):
    data = {"infusion_start_at": "2026-03-01T08:00:00+00:00", "weight_kg": 70,
            "cells_infused": 70e6}
    result = check_form(rumcess, "msc_infusion", 0, data, ctx(arm="control"))
    [finding] = [f for f in result.warnings if f.code == "WRONG_ARM"]
    assert "given only in the MSC + standard therapy arm" in finding.message
    assert "this subject is in the Standard therapy arm" in finding.message
