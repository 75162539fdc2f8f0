"""The same eligibility engine driven by a deliberately different protocol.

tests/protocols/threearm.yaml (TRIDENT): exact-age basis, 6-h window, ANC < 500 cells/µL
(strict), lactate > 18 mg/dL, a choice criterion, two sites (Berlin first, Lisbon).
Nothing in the engine may assume RUMCESS's thresholds, units, zone or field names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from trialdesk.eligibility import CriterionStatus, Decision, evaluate
from trialdesk.errors import ProtocolError
from trialdesk.protocol import load_protocol

MET, NOT_MET, UNKNOWN = CriterionStatus.MET, CriterionStatus.NOT_MET, CriterionStatus.UNKNOWN
ELIGIBLE, INELIGIBLE, INCOMPLETE = Decision.ELIGIBLE, Decision.INELIGIBLE, Decision.INCOMPLETE

THREEARM = Path(__file__).resolve().parents[1] / "protocols" / "threearm.yaml"
#: 1 March 2026, 09:00 UTC = 10:00 in Berlin (CET) = 09:00 in Lisbon (WET)
AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def threearm():
    return load_protocol(THREEARM)


def eligible_patient(at: datetime = AT) -> dict[str, Any]:
    return {
        "birth_date": "1970-05-10",
        "sex": "male",
        "shock_time": (at - timedelta(hours=2)).isoformat(),
        "anc": {"value": 300, "unit": "cells/uL"},
        "lactate": {"value": 27, "unit": "mg/dL"},
        "on_dialysis": False,
        "consent": True,
        "cause": "chemo",
    }


def patient(*, without: tuple[str, ...] = (), at: datetime = AT, **changes: Any) -> dict:
    record = {**eligible_patient(at), **changes}
    for key in without:
        del record[key]
    return record


@pytest.fixture
def screen(threearm):
    def run(record: dict, at: datetime = AT, **kwargs: Any):
        result = evaluate(threearm, record, at, **kwargs)
        return result, {c.id: c for c in result.criteria}

    return run


def test_baseline_patient_is_eligible(screen, threearm):
    result, by_id = screen(eligible_patient())
    assert result.decision is ELIGIBLE
    assert [c.id for c in result.criteria] == ["IN-1", "IN-2", "IN-3", "IN-4", "IN-5", "IN-6",
                                               "IN-7", "EX-1", "EX-2"]
    assert all(by_id[f"IN-{n}"].status is MET for n in range(1, 8))
    assert by_id["EX-1"].status is by_id["EX-2"].status is NOT_MET
    assert result.protocol_id == "threearm-demo"
    assert result.protocol_sha256 == threearm.content_sha256
    assert "sepsis3" in by_id["IN-1"].reason


# --- exact age ------------------------------------------------------------------------


def test_80th_birthday_is_not_over_80(screen):
    result, by_id = screen(patient(birth_date="1946-03-01"))
    assert by_id["EX-1"].status is NOT_MET
    assert "(exact age) is not > 80" in by_id["EX-1"].reason
    assert result.decision is ELIGIBLE


def test_day_after_80th_birthday_is_over_80_on_exact_age(screen):
    result, by_id = screen(patient(birth_date="1946-02-28"))
    assert by_id["EX-1"].status is MET
    assert "age 80 years and some days" in by_id["EX-1"].reason
    assert result.decision is INELIGIBLE


def test_18th_birthday_qualifies(screen):
    result, by_id = screen(patient(birth_date="2008-03-01"))
    assert by_id["IN-5"].status is MET
    assert result.decision is ELIGIBLE


def test_day_before_18th_birthday_does_not(screen):
    result, by_id = screen(patient(birth_date="2008-03-02"))
    assert by_id["IN-5"].status is NOT_MET
    assert result.decision is INELIGIBLE


def test_born_29_february_is_18_only_from_1_march_in_a_common_year(screen):
    feb28 = datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    _, by_id = screen(patient(birth_date="2008-02-29", at=feb28), at=feb28)
    assert by_id["IN-5"].status is NOT_MET
    _, by_id = screen(patient(birth_date="2008-02-29"))  # 1 March 2026
    assert by_id["IN-5"].status is MET


# --- 6-hour window --------------------------------------------------------------------


def test_exactly_6_hours_after_shock_is_within_window(screen):
    result, by_id = screen(patient(shock_time=(AT - timedelta(hours=6)).isoformat()))
    assert by_id["IN-2"].status is MET
    assert result.decision is ELIGIBLE


def test_6_hours_and_1_second_is_too_late(screen):
    result, by_id = screen(patient(shock_time=(AT - timedelta(hours=6, seconds=1)).isoformat()))
    assert by_id["IN-2"].status is NOT_MET
    assert by_id["IN-2"].reason.startswith("window closed")
    assert result.decision is INELIGIBLE


def test_7_hours_is_too_late_here_although_rumcess_would_allow_it(screen):
    _, by_id = screen(patient(shock_time=(AT - timedelta(hours=7)).isoformat()))
    assert by_id["IN-2"].status is NOT_MET


def test_window_counts_real_hours_across_the_spring_clock_change_in_berlin(screen):
    # Clocks jump 02:00 CET -> 03:00 CEST on 29 March 2026: 00:00 to 07:00 is 6 real hours
    shock = "2026-03-29T00:00:00+01:00"
    at = datetime.fromisoformat("2026-03-29T07:00:00+02:00")
    _, by_id = screen(patient(shock_time=shock, at=at), at=at)
    assert by_id["IN-2"].status is MET
    assert by_id["IN-2"].data_used["hours_elapsed"] == "6.00"
    late = at + timedelta(seconds=1)
    _, by_id = screen(patient(shock_time=shock, at=late), at=late)
    assert by_id["IN-2"].status is NOT_MET


# --- ANC < 500 cells/µL (strict) ------------------------------------------------------


def test_anc_499_cells_per_ul_qualifies(screen):
    _, by_id = screen(patient(anc={"value": 499, "unit": "cells/uL"}))
    assert by_id["IN-3"].status is MET


def test_anc_500_cells_per_ul_does_not_qualify_strict_less_than(screen):
    result, by_id = screen(patient(anc={"value": 500, "unit": "cells/uL"}))
    assert by_id["IN-3"].status is NOT_MET
    assert "is not < 500 cells/uL" in by_id["IN-3"].reason
    assert result.decision is INELIGIBLE


def test_threshold_in_10e9_per_l_input_0_4_qualifies(screen):
    _, by_id = screen(patient(anc={"value": 0.4, "unit": "10^9/L"}))
    assert by_id["IN-3"].status is MET
    assert by_id["IN-3"].data_used["anc"] == "0.4 10^9/L"


def test_0_5_in_10e9_per_l_is_the_threshold_and_does_not_qualify(screen):
    _, by_id = screen(patient(anc={"value": 0.5, "unit": "10^9/L"}))
    assert by_id["IN-3"].status is NOT_MET


def test_anc_without_unit_is_read_in_the_protocols_default_cells_per_ul(screen):
    _, by_id = screen(patient(anc={"value": 300}))
    assert by_id["IN-3"].status is MET
    assert by_id["IN-3"].data_used["anc"] == "0.3 10^9/L"


def test_0_4_entered_as_cells_per_ul_is_flagged_as_likely_10e9_per_l(screen):
    result, by_id = screen(patient(anc={"value": 0.4, "unit": "cells/uL"}))
    assert by_id["IN-3"].status is UNKNOWN
    assert by_id["IN-3"].error_code == "LIKELY_WRONG_UNIT"
    assert "10^9/L" in by_id["IN-3"].reason
    assert result.decision is INCOMPLETE


def test_differential_keys_are_not_accepted_without_allow_wbc_differential(screen):
    result, by_id = screen(patient(without=("anc",), wbc_10e9_per_l=1.0, neutrophil_percent=30))
    assert by_id["IN-3"].status is UNKNOWN
    unknown = {p["field"] for p in result.input_problems if p["code"] == "UNKNOWN_FIELD"}
    assert unknown == {"wbc_10e9_per_l", "neutrophil_percent"}


# --- lactate > 18 mg/dL ---------------------------------------------------------------


def test_lactate_2_0_mmol_per_l_equals_18_mg_per_dl_and_is_not_above_it(screen):
    result, by_id = screen(patient(lactate={"value": 2.0, "unit": "mmol/L"}))
    assert by_id["IN-4"].status is NOT_MET
    assert "is not > 18 mg/dL" in by_id["IN-4"].reason
    assert result.decision is INELIGIBLE


def test_lactate_18_mg_per_dl_is_not_above_18(screen):
    _, by_id = screen(patient(lactate={"value": 18, "unit": "mg/dL"}))
    assert by_id["IN-4"].status is NOT_MET


def test_lactate_2_1_mmol_per_l_is_above_18_mg_per_dl(screen):
    _, by_id = screen(patient(lactate={"value": 2.1, "unit": "mmol/L"}))
    assert by_id["IN-4"].status is MET


def test_lactate_19_without_unit_is_read_in_mg_per_dl(screen):
    _, by_id = screen(patient(lactate={"value": 19}))
    assert by_id["IN-4"].status is MET


# --- choice criterion -----------------------------------------------------------------


def test_neutropenia_not_from_chemotherapy_does_not_qualify(screen):
    result, by_id = screen(patient(cause="other"))
    assert by_id["IN-6"].status is NOT_MET
    assert "other is not one of chemo" in by_id["IN-6"].reason
    assert result.decision is INELIGIBLE


def test_a_cause_that_is_not_a_choice_is_refused(screen):
    result, by_id = screen(patient(cause="radiotherapy"))
    assert by_id["IN-6"].status is UNKNOWN
    assert by_id["IN-6"].error_code == "IMPLAUSIBLE_VALUE"
    assert result.decision is INCOMPLETE


def test_cause_unknown_is_incomplete(screen):
    result, by_id = screen(patient(without=("cause",)))
    assert by_id["IN-6"].status is UNKNOWN
    assert result.missing_fields == ("cause",)


# --- flags ----------------------------------------------------------------------------


def test_chronic_dialysis_excludes(screen):
    result, by_id = screen(patient(on_dialysis=True))
    assert by_id["EX-2"].status is MET
    assert result.decision is INELIGIBLE


def test_no_consent_fails_the_inclusion(screen):
    result, by_id = screen(patient(consent=False))
    assert by_id["IN-7"].status is NOT_MET
    assert result.decision is INELIGIBLE


def test_rumcess_field_names_are_unknown_here(screen):
    result, by_id = screen(patient(septic_shock=False, consent_signed=True))
    assert by_id["IN-1"].status is MET  # no negated_by in this protocol
    assert result.decision is ELIGIBLE
    assert {p["field"] for p in result.input_problems} == {"septic_shock", "consent_signed"}


# --- sites and time zones -------------------------------------------------------------


def test_default_site_is_the_first_one_berlin(screen):
    _, default = screen(eligible_patient())
    _, berlin = screen(eligible_patient(), site_id="berlin")
    assert default["IN-1"].reason == berlin["IN-1"].reason


def test_site_id_picks_the_time_zone_of_the_reasons(screen):
    _, berlin = screen(eligible_patient(), site_id="berlin")
    _, lisbon = screen(eligible_patient(), site_id="lisbon")
    # shock at 07:00 UTC
    assert "08:00 CET (UTC+01:00)" in berlin["IN-1"].reason
    assert "07:00 WET (UTC+00:00)" in lisbon["IN-1"].reason
    assert "deadline 2026-03-01 14:00 CET" in berlin["IN-2"].reason
    assert "deadline 2026-03-01 13:00 WET" in lisbon["IN-2"].reason
    assert berlin["IN-2"].status is lisbon["IN-2"].status is MET


def test_site_decides_the_calendar_date_for_age_near_midnight(screen):
    # 23:30 UTC on 1 March: already 2 March in Berlin, still 1 March in Lisbon
    at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    record = patient(birth_date="2008-03-02", at=at)
    result, berlin = screen(record, at=at, site_id="berlin")
    assert berlin["IN-5"].status is MET
    assert "on 2026-03-02" in berlin["IN-5"].reason
    assert result.decision is ELIGIBLE
    result, lisbon = screen(record, at=at, site_id="lisbon")
    assert lisbon["IN-5"].status is NOT_MET
    assert "on 2026-03-01" in lisbon["IN-5"].reason
    assert result.decision is INELIGIBLE


def test_unknown_site_id_raises_protocol_error(threearm):
    with pytest.raises(ProtocolError) as exc:
        evaluate(threearm, eligible_patient(), AT, site_id="moscow")
    assert "moscow" in str(exc.value)
    assert "berlin, lisbon" in str(exc.value)
    assert exc.value.field == "site_id"


def test_rumcess_site_id_is_unknown_to_this_protocol(threearm):
    with pytest.raises(ProtocolError):
        evaluate(threearm, eligible_patient(), AT, site_id="nrch")
