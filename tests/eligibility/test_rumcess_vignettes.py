"""RUMCESS eligibility, one patient story per test (NCT01849237; domain.md §1.1, §5).

Registry criteria (protocols/rumcess.yaml):
  I1 septic shock · I2 ≤10 h after its onset · I3 neutrophils ≤1 × 10^9/L ·
  I4 age ≥17 · I5 signed informed consent;
  E1 chemoresistant onco-haematological disease · E2 unsigned consent ·
  E3 age >75 (in completed years) · E4 pregnancy.

Every vignette starts from one fully eligible patient evaluated at a fixed instant
(1 March 2026, 09:00 UTC = 12:00 Moscow time) and changes one or two facts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from trialdesk.eligibility import CriterionStatus, Decision, EligibilityResult, evaluate
from trialdesk.errors import NaiveTime
from trialdesk.protocol import load_protocol

MET, NOT_MET, UNKNOWN = CriterionStatus.MET, CriterionStatus.NOT_MET, CriterionStatus.UNKNOWN
ELIGIBLE, INELIGIBLE, INCOMPLETE = Decision.ELIGIBLE, Decision.INELIGIBLE, Decision.INCOMPLETE

#: when the coordinator asks "can this patient be randomized?" (12:00 in Moscow)
AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def rumcess():
    return load_protocol()


def onset_hours_before(hours: float, at: datetime = AT) -> str:
    """Septic-shock onset ``hours`` before ``at``, as an ISO time stamp in UTC."""
    return (at - timedelta(hours=hours)).isoformat()


def eligible_patient(at: datetime = AT) -> dict[str, Any]:
    """A 50-year-old woman, not pregnant, in septic shock for 4 h, ANC 0.3 × 10^9/L,
    consent signed, neutropenic after chemotherapy that worked."""
    return {
        "birth_date": "1975-06-15",
        "sex": "female",
        "pregnant": False,
        "septic_shock": True,
        "septic_shock_onset": onset_hours_before(4, at),
        "neutrophils": {"value": 0.3, "unit": "10^9/L"},
        "consent_signed": True,
        "chemoresistant_oncohematological": False,
        "neutropenia_cause": "post_chemotherapy",
    }


def patient(*, without: tuple[str, ...] = (), at: datetime = AT, **changes: Any) -> dict:
    """The eligible patient with some facts changed and others not (yet) known."""
    record = {**eligible_patient(at), **changes}
    for key in without:
        del record[key]
    return record


class Screen:
    """Evaluate a record and look criteria up by id."""

    def __init__(self, result: EligibilityResult):
        self.result = result
        self.decision = result.decision
        self._by_id = {c.id: c for c in result.criteria}

    def __getitem__(self, criterion_id: str):
        return self._by_id[criterion_id]

    def status(self, criterion_id: str) -> CriterionStatus:
        return self._by_id[criterion_id].status


@pytest.fixture
def screen(rumcess):
    def run(record: dict, at: datetime = AT, **kwargs: Any) -> Screen:
        return Screen(evaluate(rumcess, record, at, **kwargs))

    return run


# --- the baseline --------------------------------------------------------------------


def test_baseline_patient_meets_every_inclusion_and_no_exclusion(screen):
    s = screen(eligible_patient())
    assert s.decision is ELIGIBLE
    for cid in ("I1", "I2", "I3", "I4", "I5"):
        assert s.status(cid) is MET, s[cid].reason
    for cid in ("E1", "E2", "E3", "E4"):
        assert s.status(cid) is NOT_MET, s[cid].reason
    assert s.result.missing_fields == ()
    assert s.result.input_problems == ()


def test_result_cites_the_protocol_version_and_file_hash(screen, rumcess):
    result = screen(eligible_patient()).result
    assert (result.protocol_id, result.protocol_version) == ("rumcess", "1.0")
    assert result.protocol_sha256 == rumcess.content_sha256
    assert result.evaluated_at_utc == AT


# --- I1 septic shock ------------------------------------------------------------------


def test_septic_shock_shown_by_its_onset_time_with_the_ssc2012_definition(screen):
    s = screen(eligible_patient())
    assert s.status("I1") is MET
    assert "ssc2012" in s["I1"].reason
    assert "12:00" not in s["I1"].reason  # onset 4 h earlier: 08:00 Moscow time
    assert "08:00 MSK" in s["I1"].reason


def test_explicit_no_septic_shock_excludes(screen):
    s = screen(patient(septic_shock=False, without=("septic_shock_onset",)))
    assert s.status("I1") is NOT_MET
    assert s["I1"].reason == "Septic shock present: no"
    assert s.decision is INELIGIBLE  # even though the onset (I2) is unknown


def test_septic_shock_without_an_onset_time_is_incomplete(screen):
    s = screen(patient(without=("septic_shock_onset",)))
    assert s.status("I1") is UNKNOWN
    assert s.status("I2") is UNKNOWN
    assert s.decision is INCOMPLETE
    assert s.result.missing_fields == ("septic_shock_onset",)


# --- I2 ≤10 h after onset ------------------------------------------------------------


def test_exactly_10_hours_after_onset_is_within_window(screen):
    s = screen(patient(septic_shock_onset=onset_hours_before(10)))
    assert s.status("I2") is MET
    assert s["I2"].data_used["hours_elapsed"] == "10.00"
    assert "0.0 h left" in s["I2"].reason
    assert s.decision is ELIGIBLE


def test_10_hours_and_1_second_is_too_late(screen):
    onset = (AT - timedelta(hours=10, seconds=1)).isoformat()
    s = screen(patient(septic_shock_onset=onset))
    assert s.status("I2") is NOT_MET
    assert s["I2"].reason.startswith("window closed")
    assert "deadline was 2026-03-01 11:59:59 MSK" in s["I2"].reason
    assert s.decision is INELIGIBLE


def test_onset_in_the_future_is_refused_not_guessed(screen):
    s = screen(patient(septic_shock_onset=(AT + timedelta(hours=1)).isoformat()))
    for cid in ("I1", "I2"):
        assert s.status(cid) is UNKNOWN
        assert s[cid].error_code == "FUTURE_TIME"
        assert s[cid].missing_fields == ("septic_shock_onset",)
    assert s.decision is INCOMPLETE
    assert [p["code"] for p in s.result.input_problems] == ["FUTURE_TIME"]


def test_onset_a_few_minutes_ahead_of_the_server_clock_is_tolerated(screen):
    s = screen(patient(septic_shock_onset=(AT + timedelta(minutes=3)).isoformat()))
    assert s.status("I1") is MET
    assert s.status("I2") is MET
    assert s.decision is ELIGIBLE


def test_naive_onset_time_is_refused_with_timezone_required(screen):
    s = screen(patient(septic_shock_onset="2026-03-01T05:00:00"))
    assert s.status("I1") is UNKNOWN
    assert s.status("I2") is UNKNOWN
    assert s["I2"].error_code == "TIMEZONE_REQUIRED"
    assert "no UTC offset" in s["I2"].reason
    assert s.decision is INCOMPLETE
    problem = s.result.input_problems[0]
    assert (problem["code"], problem["field"]) == ("TIMEZONE_REQUIRED", "septic_shock_onset")


def test_onset_given_in_moscow_offset_equals_the_same_instant_in_utc(screen):
    moscow = screen(patient(septic_shock_onset="2026-03-01T08:00:00+03:00"))
    utc = screen(patient(septic_shock_onset="2026-03-01T05:00:00Z"))
    assert moscow.status("I2") is utc.status("I2") is MET
    assert moscow["I2"].data_used == utc["I2"].data_used
    assert moscow["I2"].data_used["hours_elapsed"] == "4.00"
    assert moscow["I2"].reason == utc["I2"].reason


def test_evaluation_time_in_moscow_offset_is_the_same_instant(screen):
    local = screen(eligible_patient(), at=AT.astimezone(MOSCOW))
    assert local.result.evaluated_at_utc == AT
    assert [c.to_dict() for c in local.result.criteria] == [
        c.to_dict() for c in screen(eligible_patient()).result.criteria
    ]


def test_evaluation_time_without_offset_is_refused(rumcess):
    with pytest.raises(NaiveTime):
        evaluate(rumcess, eligible_patient(), datetime(2026, 3, 1, 9, 0))


# --- I3 neutrophils ≤1 × 10^9/L -------------------------------------------------------


def test_neutrophils_of_exactly_1_0_qualify(screen):
    s = screen(patient(neutrophils={"value": 1.0, "unit": "10^9/L"}))
    assert s.status("I3") is MET
    assert s.decision is ELIGIBLE


def test_neutrophils_of_1_01_do_not_qualify(screen):
    s = screen(patient(neutrophils={"value": 1.01, "unit": "10^9/L"}))
    assert s.status("I3") is NOT_MET
    assert "is not ≤ 1 10^9/L" in s["I3"].reason
    assert s.decision is INELIGIBLE


def test_1000_cells_per_ul_equals_the_threshold(screen):
    s = screen(patient(neutrophils={"value": 1000, "unit": "cells/µL"}))
    assert s.status("I3") is MET
    assert s["I3"].data_used["neutrophils"] == "1 10^9/L"


def test_1001_cells_per_ul_is_above_the_threshold(screen):
    s = screen(patient(neutrophils={"value": 1001, "unit": "/mm3"}))
    assert s.status("I3") is NOT_MET
    assert s.decision is INELIGIBLE


def test_count_in_k_per_ul_is_read_as_10e9_per_l(screen):
    s = screen(patient(neutrophils={"value": 0.8, "unit": "K/µL"}))
    assert s.status("I3") is MET
    assert s["I3"].data_used["neutrophils"] == "0.8 10^9/L"


def test_500_entered_as_10e9_per_l_is_flagged_as_likely_cells_per_ul(screen):
    s = screen(patient(neutrophils={"value": 500, "unit": "10^9/L"}))
    assert s.status("I3") is UNKNOWN
    assert s["I3"].error_code == "LIKELY_WRONG_UNIT"
    assert "cells/uL" in s["I3"].reason
    assert s.decision is INCOMPLETE
    assert s.result.missing_fields == ("neutrophils",)


def test_anc_from_wbc_and_differential(screen):
    # WBC 2.5 × 10^9/L with 40 % neutrophils: ANC = 1.0, exactly the threshold
    s = screen(patient(without=("neutrophils",), wbc_10e9_per_l=2.5, neutrophil_percent=40))
    assert s.status("I3") is MET
    assert s["I3"].data_used["neutrophils"] == "1 10^9/L"
    assert "WBC 2.5" in s["I3"].reason
    assert s.result.input_problems == ()  # the differential keys are not "unknown fields"


def test_band_forms_count_as_neutrophils(screen):
    # segmented alone: 3.0 × 25 % = 0.75 (would qualify); with 10 % bands: 1.05
    s = screen(patient(without=("neutrophils",), wbc_10e9_per_l=3.0, segmented_percent=25,
                       band_percent=10))
    assert s.status("I3") is NOT_MET
    assert s["I3"].data_used["neutrophils"] == "1.05 10^9/L"
    assert s.decision is INELIGIBLE


def test_white_count_alone_is_not_a_neutrophil_count(screen):
    s = screen(patient(without=("neutrophils",), wbc_10e9_per_l=0.4))
    assert s.status("I3") is UNKNOWN
    assert s.result.missing_fields == ("neutrophils",)
    assert s.decision is INCOMPLETE


def test_absolute_count_wins_over_the_differential(screen):
    s = screen(patient(neutrophils={"value": 0.4, "unit": "10^9/L"}, wbc_10e9_per_l=5.0,
                       neutrophil_percent=80))
    assert s.status("I3") is MET
    assert s["I3"].data_used["neutrophils"] == "0.4 10^9/L"


# --- I4 age ≥17 and E3 age >75 (completed years, Moscow calendar) ---------------------


def test_17th_birthday_qualifies(screen):
    s = screen(patient(birth_date="2009-03-01"))
    assert s.status("I4") is MET
    assert "age 17 years on 2026-03-01" in s["I4"].reason
    assert s.decision is ELIGIBLE


def test_day_before_17th_birthday_is_excluded(screen):
    s = screen(patient(birth_date="2009-03-02"))
    assert s.status("I4") is NOT_MET
    assert "age 16 years" in s["I4"].reason
    assert s.decision is INELIGIBLE


def test_patient_aged_75_is_eligible(screen):
    s = screen(patient(birth_date="1951-03-01"))  # 75th birthday today
    assert s.status("E3") is NOT_MET
    assert "age 75 years" in s["E3"].reason
    assert s.decision is ELIGIBLE


def test_day_after_75th_birthday_is_still_75_in_completed_years(screen):
    s = screen(patient(birth_date="1951-02-28"))
    assert s.status("E3") is NOT_MET
    assert "(completed years) is not > 75" in s["E3"].reason
    assert s.decision is ELIGIBLE


def test_day_before_76th_birthday_is_still_75(screen):
    s = screen(patient(birth_date="1950-03-02"))
    assert s.status("E3") is NOT_MET
    assert s.decision is ELIGIBLE


def test_76th_birthday_excludes(screen):
    s = screen(patient(birth_date="1950-03-01"))
    assert s.status("E3") is MET
    assert "age 76 years" in s["E3"].reason
    assert s.status("I4") is MET
    assert s.decision is INELIGIBLE


def test_born_29_february_is_still_16_on_28_february_of_a_common_year(screen):
    at = datetime(2025, 2, 28, 9, 0, tzinfo=UTC)
    s = screen(patient(birth_date="2008-02-29", at=at), at=at)
    assert s.status("I4") is NOT_MET
    assert s.decision is INELIGIBLE


def test_born_29_february_turns_17_on_1_march_of_a_common_year(screen):
    at = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    s = screen(patient(birth_date="2008-02-29", at=at), at=at)
    assert s.status("I4") is MET
    assert s.decision is ELIGIBLE


def test_age_uses_the_moscow_date_just_after_moscow_midnight(screen):
    # 21:30 UTC on 1 March is 00:30 on 2 March in Moscow: the 76th birthday has begun
    at = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
    s = screen(patient(birth_date="1950-03-02", at=at), at=at)
    assert s.status("E3") is MET
    assert "age 76 years on 2026-03-02" in s["E3"].reason
    assert s.decision is INELIGIBLE


def test_17th_birthday_in_moscow_counts_while_it_is_still_the_day_before_in_utc(screen):
    at = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
    s = screen(patient(birth_date="2009-03-02", at=at), at=at)
    assert s.status("I4") is MET
    assert s.decision is ELIGIBLE


def test_just_before_moscow_midnight_the_birthday_has_not_begun(screen):
    at = datetime(2026, 3, 1, 20, 59, tzinfo=UTC)  # 23:59 in Moscow
    s = screen(patient(birth_date="2009-03-02", at=at), at=at)
    assert s.status("I4") is NOT_MET
    assert s.decision is INELIGIBLE


def test_birth_date_in_the_future_is_refused(screen):
    s = screen(patient(birth_date="2030-01-01"))
    for cid in ("I4", "E3"):
        assert s.status(cid) is UNKNOWN
        assert s[cid].error_code == "FUTURE_TIME"
    assert s.decision is INCOMPLETE
    assert s.result.missing_fields == ("birth_date",)


def test_birth_date_in_day_month_year_order_is_refused(screen):
    s = screen(patient(birth_date="15/06/1975"))
    assert s.status("I4") is UNKNOWN
    assert s["I4"].error_code == "IMPLAUSIBLE_VALUE"
    assert "YYYY-MM-DD" in s["I4"].reason


# --- I5 signed consent and E2 unsigned consent ---------------------------------------


def test_unsigned_consent_excludes(screen):
    s = screen(patient(consent_signed=False))
    assert s.status("I5") is NOT_MET
    assert s.status("E2") is MET
    assert s.decision is INELIGIBLE
    assert {c.id for c in s.result.failing} == {"I5", "E2"}


def test_consent_not_yet_recorded_is_incomplete(screen):
    s = screen(patient(without=("consent_signed",)))
    assert s.status("I5") is UNKNOWN
    assert s.status("E2") is UNKNOWN
    assert s.decision is INCOMPLETE
    assert s.result.missing_fields == ("consent_signed",)


def test_consent_answered_yes_as_text_is_refused(screen):
    s = screen(patient(consent_signed="yes"))
    assert s.status("I5") is UNKNOWN
    assert s["I5"].error_code == "IMPLAUSIBLE_VALUE"
    assert s.decision is INCOMPLETE


# --- E1 chemoresistant onco-haematological disease -----------------------------------


def test_chemoresistant_oncohaematological_patient_is_excluded(screen):
    s = screen(patient(chemoresistant_oncohematological=True))
    assert s.status("E1") is MET
    assert s.decision is INELIGIBLE
    assert [c.id for c in s.result.failing] == ["E1"]


def test_chemosensitive_disease_does_not_exclude(screen):
    s = screen(patient(chemoresistant_oncohematological=False))
    assert s.status("E1") is NOT_MET
    assert s.decision is ELIGIBLE


def test_chemoresistance_unknown_is_incomplete(screen):
    s = screen(patient(without=("chemoresistant_oncohematological",)))
    assert s.status("E1") is UNKNOWN
    assert s.decision is INCOMPLETE
    assert s.result.missing_fields == ("chemoresistant_oncohematological",)


# --- E4 pregnancy --------------------------------------------------------------------


def test_pregnant_woman_is_excluded(screen):
    s = screen(patient(pregnant=True))
    assert s.status("E4") is MET
    assert s.decision is INELIGIBLE


def test_male_pregnancy_not_applicable(screen):
    s = screen(patient(sex="male", without=("pregnant",)))
    assert s.status("E4") is NOT_MET
    assert s["E4"].reason == "not applicable: sex is male"
    assert s.decision is ELIGIBLE


def test_female_with_unknown_pregnancy_is_incomplete(screen):
    s = screen(patient(without=("pregnant",)))
    assert s.status("E4") is UNKNOWN
    assert s["E4"].missing_fields == ("pregnant",)
    assert s.decision is INCOMPLETE


def test_sex_and_pregnancy_both_unknown_is_incomplete(screen):
    s = screen(patient(without=("sex", "pregnant")))
    assert s.status("E4") is UNKNOWN
    assert s.decision is INCOMPLETE


# --- the record as a whole -----------------------------------------------------------


def test_unknown_everything_is_incomplete_with_missing_fields_listed(screen):
    s = screen({})
    assert s.decision is INCOMPLETE
    assert all(c.status is UNKNOWN for c in s.result.criteria)
    assert set(s.result.missing_fields) == {
        "septic_shock_onset", "neutrophils", "birth_date", "consent_signed",
        "chemoresistant_oncohematological", "pregnant",
    }
    assert len(s.result.missing_fields) == len(set(s.result.missing_fields))


def test_unknown_key_reported_in_input_problems_and_ignored(screen):
    s = screen(patient(weight_kg=70))
    assert s.decision is ELIGIBLE
    (problem,) = s.result.input_problems
    assert (problem["code"], problem["field"]) == ("UNKNOWN_FIELD", "weight_kg")
    assert "rumcess" in problem["message"]


def test_one_exclusion_outweighs_unknowns(screen):
    s = screen({"birth_date": "1940-01-01"})  # 86 years old, nothing else known
    assert s.status("E3") is MET
    assert s.decision is INELIGIBLE


def test_every_problem_is_reported_at_once(screen):
    s = screen(patient(septic_shock_onset="2026-03-01T05:00:00",
                       neutrophils={"value": 500, "unit": "10^9/L"}, birth_date="2030-01-01"))
    codes = {p["field"]: p["code"] for p in s.result.input_problems}
    assert codes == {"septic_shock_onset": "TIMEZONE_REQUIRED",
                     "neutrophils": "LIKELY_WRONG_UNIT", "birth_date": "FUTURE_TIME"}
    assert s.decision is INCOMPLETE
