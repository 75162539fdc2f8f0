"""SOFA score (Vincent 1996; table in ../shared/domain.md §4.1, conventions §4.2).

Boundary tables give, for every cut-off of every component and both unit systems,
a value just below, at, and just above the cut-off with the score the table
assigns when read as the module docstring of ``trialdesk.clinical.sofa`` states.
"""

from __future__ import annotations

import doctest
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialdesk.clinical import sofa
from trialdesk.clinical.sofa import (
    COMPONENTS,
    RespiratorySupport,
    SofaConventions,
    SofaInputs,
    SofaResult,
    compute_sofa,
    score_cardiovascular,
    score_cns,
    score_coagulation,
    score_liver,
    score_renal,
    score_respiration,
)
from trialdesk.errors import ImplausibleValue, InputRejected, LikelyWrongUnit, MissingValue

INVASIVE = RespiratorySupport.INVASIVE
NONINVASIVE = RespiratorySupport.NONINVASIVE
NONE = RespiratorySupport.NONE
NIV_NOT_SUPPORT = SofaConventions(noninvasive_counts_as_support=False)


def table(*rows: tuple[float, int]) -> list:
    """Parametrize rows ``(value, expected)`` with readable ids such as ``149.9->1``."""
    return [pytest.param(value, expected, id=f"{value:g}->{expected}") for value, expected in rows]


# --- coagulation: platelets ×10^9/L, "<X" rows -----------------------------------------


def test_platelets_exactly_150_score_zero():
    assert score_coagulation(150) == 0


def test_platelets_149_9_score_one():
    assert score_coagulation(149.9) == 1


@pytest.mark.parametrize("platelets, expected", table(
    (2000, 0), (150.1, 0), (150, 0), (149.9, 1),
    (100.1, 1), (100, 1), (99.9, 2),
    (50.1, 2), (50, 2), (49.9, 3),
    (20.1, 3), (20, 3), (19.9, 4), (0, 4),
))
def test_platelets_below_each_cutoff_score_the_next_band_and_at_it_the_lower(platelets, expected):
    assert score_coagulation(platelets) == expected


def test_platelets_missing_scores_none():
    assert score_coagulation(None) is None


# --- liver: bilirubin, banded rows -----------------------------------------------------


@pytest.mark.parametrize("bilirubin_mg_dl, expected", table(
    (0, 0), (1.19, 0), (1.2, 1), (1.21, 1),
    (1.95, 1), (1.99, 1), (2.0, 2), (2.01, 2),
    (5.95, 2), (5.99, 2), (6.0, 3), (6.01, 3),
    (11.95, 3), (12.0, 3), (12.01, 4), (80, 4),
))
def test_bilirubin_mg_dl_band_lower_bounds_belong_to_the_band_and_gt_12_is_strict(
    bilirubin_mg_dl, expected
):
    assert score_liver(bilirubin_mg_dl=bilirubin_mg_dl) == expected


@pytest.mark.parametrize("bilirubin_umol_l, expected", table(
    (0, 0), (19.9, 0), (20, 1), (20.1, 1),
    (32.5, 1), (32.9, 1), (33, 2), (33.1, 2),
    (101.5, 2), (101.9, 2), (102, 3), (102.1, 3),
    (204, 3), (204.1, 4), (1368, 4),
))
def test_bilirubin_umol_l_scored_on_the_tables_own_umol_bands(bilirubin_umol_l, expected):
    assert score_liver(bilirubin_umol_l=bilirubin_umol_l) == expected


def test_bilirubin_in_printed_gap_stays_in_lower_band():
    assert score_liver(bilirubin_mg_dl=1.95) == 1


def test_bilirubin_exactly_12_mg_dl_scores_three_not_four():
    assert score_liver(bilirubin_mg_dl=12.0) == 3


def test_bilirubin_umol_l_not_converted_to_mg_dl():
    # 20 µmol/L = 1.17 mg/dL would score 0 after conversion; the µmol band says 1.
    assert score_liver(bilirubin_umol_l=20) == 1
    # 204 µmol/L = 11.93 mg/dL; 205 µmol/L = 11.99 mg/dL would score 3 converted; band says 4.
    assert score_liver(bilirubin_umol_l=205) == 4


def test_bilirubin_missing_scores_none():
    assert score_liver() is None


def test_bilirubin_in_both_units_is_rejected_give_one():
    with pytest.raises(InputRejected, match="give one") as err:
        score_liver(bilirubin_mg_dl=1.0, bilirubin_umol_l=17.1)
    assert err.value.field == "bilirubin_umol_l"


# --- renal: creatinine and urine --------------------------------------------------------


@pytest.mark.parametrize("creatinine_mg_dl, expected", table(
    (0.5, 0), (1.19, 0), (1.2, 1), (1.21, 1),
    (1.95, 1), (1.99, 1), (2.0, 2), (2.01, 2),
    (3.45, 2), (3.49, 2), (3.5, 3), (3.51, 3),
    (4.95, 3), (5.0, 3), (5.01, 4), (30, 4),
))
def test_creatinine_mg_dl_band_lower_bounds_belong_to_the_band_and_gt_5_is_strict(
    creatinine_mg_dl, expected
):
    assert score_renal(creatinine_mg_dl=creatinine_mg_dl) == expected


@pytest.mark.parametrize("creatinine_umol_l, expected", table(
    (50, 0), (109.9, 0), (110, 1), (110.1, 1),
    (170.5, 1), (170.9, 1), (171, 2), (171.1, 2),
    (299.5, 2), (299.9, 2), (300, 3), (300.1, 3),
    (440, 3), (440.1, 4), (2652, 4),
))
def test_creatinine_umol_l_scored_on_the_tables_own_umol_bands(creatinine_umol_l, expected):
    assert score_renal(creatinine_umol_l=creatinine_umol_l) == expected


def test_creatinine_umol_l_not_converted_to_mg_dl():
    # 1.2 mg/dL = 106 µmol/L: converted it would score 1; the µmol band (≥110) says 0.
    assert score_renal(creatinine_umol_l=106) == 0
    # 300 µmol/L = 3.39 mg/dL: converted 2; band (≥300) says 3.
    assert score_renal(creatinine_umol_l=300) == 3


def test_creatinine_exactly_5_mg_dl_scores_three_not_four():
    assert score_renal(creatinine_mg_dl=5.0) == 3


@pytest.mark.parametrize("urine_ml_per_day, expected", table(
    (20000, 0), (500.1, 0), (500, 0), (499.9, 3),
    (200.1, 3), (200, 3), (199.9, 4), (20, 4), (0, 4),
))
def test_urine_below_500_scores_three_below_200_scores_four(urine_ml_per_day, expected):
    assert score_renal(urine_ml_per_day=urine_ml_per_day) == expected


@pytest.mark.parametrize("creatinine_mg_dl, urine, expected", [
    pytest.param(1.0, 150, 4, id="normal-creatinine-anuric->urine-wins"),
    pytest.param(5.5, 3000, 4, id="high-creatinine-good-urine->creatinine-wins"),
    pytest.param(2.5, 400, 3, id="creat-2-urine-3->3"),
    pytest.param(3.6, 450, 3, id="both-3->3"),
    pytest.param(1.5, 2000, 1, id="creat-1-urine-0->1"),
])
def test_renal_score_is_the_worse_of_creatinine_and_urine(creatinine_mg_dl, urine, expected):
    assert score_renal(creatinine_mg_dl=creatinine_mg_dl, urine_ml_per_day=urine) == expected


def test_renal_worse_of_also_with_creatinine_in_umol_l():
    assert score_renal(creatinine_umol_l=120, urine_ml_per_day=180) == 4


def test_renal_with_only_urine_scores_urine():
    assert score_renal(urine_ml_per_day=450) == 3


def test_renal_missing_only_if_creatinine_and_urine_both_missing():
    assert score_renal() is None
    assert score_renal(urine_ml_per_day=1500) == 0
    assert score_renal(creatinine_mg_dl=0.8) == 0


def test_creatinine_in_both_units_is_rejected_give_one():
    with pytest.raises(InputRejected, match="give one"):
        score_renal(creatinine_mg_dl=1.0, creatinine_umol_l=88.4)
    with pytest.raises(InputRejected, match="give one"):
        SofaInputs(creatinine_mg_dl=1.0, creatinine_umol_l=88.4)


# --- CNS: GCS ---------------------------------------------------------------------------


@pytest.mark.parametrize("gcs, expected", table(
    (15, 0), (14, 1), (13, 1), (12, 2), (10, 2), (9, 3), (6, 3), (5, 4), (3, 4),
))
def test_gcs_15_scores_0_13_14_one_10_12_two_6_9_three_below_6_four(gcs, expected):
    assert score_cns(gcs) == expected


def test_gcs_missing_scores_none():
    assert score_cns(None) is None


def test_gcs_given_as_whole_float_is_accepted():
    assert score_cns(14.0) == 1
    assert SofaInputs(gcs=14.0).gcs == 14


# --- respiration -----------------------------------------------------------------------


@pytest.mark.parametrize("pao2, fio2, expected", [
    pytest.param(84, 0.21, 0, id="84/0.21=400->0"),
    pytest.param(120, 0.3, 0, id="120/0.3=400->0"),
    pytest.param(200, 0.5, 0, id="200/0.5=400->0"),
    pytest.param(400, 1.0, 0, id="400/1.0=400->0"),
    pytest.param(400.1, 1.0, 0, id="400.1->0"),
    pytest.param(399.9, 1.0, 1, id="399.9->1"),
    pytest.param(90, 0.3, 1, id="90/0.3=300->1"),
    pytest.param(300, 1.0, 1, id="300->1"),
    pytest.param(300.1, 1.0, 1, id="300.1->1"),
    pytest.param(299.9, 1.0, 2, id="299.9->2"),
    pytest.param(100, 0.5, 2, id="100/0.5=200->2"),
    pytest.param(42, 0.21, 2, id="42/0.21=200->2"),
    pytest.param(200.1, 1.0, 2, id="200.1->2"),
    pytest.param(199.9, 1.0, 3, id="199.9->3"),
    pytest.param(70, 0.7, 3, id="70/0.7=100->3"),
    pytest.param(100, 1.0, 3, id="100->3"),
    pytest.param(100.1, 1.0, 3, id="100.1->3"),
    pytest.param(99.9, 1.0, 4, id="99.9->4"),
    pytest.param(15, 1.0, 4, id="15->4"),
])
def test_pao2_fio2_cutoffs_with_invasive_ventilation(pao2, fio2, expected):
    assert score_respiration(pao2, fio2, INVASIVE) == expected


def test_pao2_fio2_exactly_400_scores_zero():
    assert score_respiration(84, 0.21, NONE) == 0


@pytest.mark.parametrize("pao2, expected", table((199.9, 2), (150, 2), (99.9, 2), (15, 2)))
def test_pao2_fio2_below_200_without_support_is_capped_at_two(pao2, expected):
    assert score_respiration(pao2, 1.0, NONE) == expected


@pytest.mark.parametrize("pao2, expected", table((300, 1), (299.9, 2), (250, 2), (200, 2)))
def test_pao2_fio2_scores_one_and_two_need_no_support(pao2, expected):
    assert score_respiration(pao2, 1.0, NONE) == expected


def test_missing_respiratory_support_is_treated_as_none_and_capped():
    assert score_respiration(60, 1.0, None) == 2
    assert score_respiration(60, 1.0) == 2


def test_noninvasive_counts_as_support_by_default():
    assert score_respiration(90, 1.0, NONINVASIVE) == 4
    assert score_respiration(150, 1.0, NONINVASIVE) == 3


def test_noninvasive_not_support_when_convention_says_so():
    assert score_respiration(90, 1.0, NONINVASIVE, NIV_NOT_SUPPORT) == 2
    assert score_respiration(150, 1.0, NONINVASIVE, NIV_NOT_SUPPORT) == 2


def test_invasive_counts_as_support_under_either_niv_convention():
    assert score_respiration(90, 1.0, INVASIVE, NIV_NOT_SUPPORT) == 4


def test_niv_convention_flows_through_compute_sofa():
    day = SofaInputs(pao2_mmhg=90, fio2_fraction=1.0, respiratory_support="noninvasive")
    assert compute_sofa(day).components["respiration"] == 4
    assert compute_sofa(day, NIV_NOT_SUPPORT).components["respiration"] == 2


def test_respiratory_support_accepts_text_case_insensitively():
    assert score_respiration(90, 1.0, "Invasive") == 4
    assert SofaInputs(respiratory_support=" NONINVASIVE ").respiratory_support is NONINVASIVE


def test_respiration_missing_if_pao2_or_fio2_missing():
    assert score_respiration(None, 0.5, INVASIVE) is None
    assert score_respiration(80, None, INVASIVE) is None


# --- cardiovascular --------------------------------------------------------------------


@pytest.mark.parametrize("map_mmhg, expected", table(
    (250, 0), (70.1, 0), (70, 0), (69.9, 1), (10, 1),
))
def test_map_below_70_scores_one_without_drugs(map_mmhg, expected):
    assert score_cardiovascular(map_mmhg) == expected


@pytest.mark.parametrize("dopamine, expected", table(
    (0, 0), (0.1, 2), (4.9, 2), (5.0, 2), (5.01, 3), (14.9, 3), (15.0, 3), (15.01, 4), (50, 4),
))
def test_dopamine_up_to_5_scores_two_above_5_three_above_15_four(dopamine, expected):
    assert score_cardiovascular(75, dopamine_ug_kg_min=dopamine) == expected


def test_dopamine_exactly_5_scores_two_as_in_the_1996_paper():
    assert score_cardiovascular(75, dopamine_ug_kg_min=5.0) == 2


@pytest.mark.parametrize("dose, expected", table(
    (0, 0), (0.01, 3), (0.09, 3), (0.1, 3), (0.1001, 4), (0.11, 4), (5, 4),
))
@pytest.mark.parametrize("drug", ["epinephrine_ug_kg_min", "norepinephrine_ug_kg_min"])
def test_epinephrine_and_norepinephrine_any_dose_three_above_0_1_four(drug, dose, expected):
    assert score_cardiovascular(75, **{drug: dose}) == expected


@pytest.mark.parametrize("dobutamine, expected", table((0, 0), (0.5, 2), (20, 2), (40, 2)))
def test_dobutamine_any_dose_scores_two(dobutamine, expected):
    assert score_cardiovascular(75, dobutamine_ug_kg_min=dobutamine) == expected


def test_drugs_outrank_map():
    assert score_cardiovascular(55, dobutamine_ug_kg_min=5) == 2
    assert score_cardiovascular(55, norepinephrine_ug_kg_min=0.05) == 3
    assert score_cardiovascular(90, norepinephrine_ug_kg_min=0.3, dopamine_ug_kg_min=3) == 4


def test_cardiovascular_takes_the_worst_drug():
    assert score_cardiovascular(65, dopamine_ug_kg_min=3, epinephrine_ug_kg_min=0.2) == 4


def test_missing_drugs_count_as_not_given_when_map_present():
    assert score_cardiovascular(65) == 1
    assert score_cardiovascular(75, None, None, None, None) == 0


def test_cardiovascular_missing_only_if_map_and_all_drugs_missing():
    assert score_cardiovascular() is None
    assert score_cardiovascular(None, norepinephrine_ug_kg_min=0.2) == 4


# --- input checks ----------------------------------------------------------------------


@pytest.mark.parametrize("key, value, unit_words", [
    pytest.param("fio2_fraction", 40, ["percentage", "0.40"], id="fio2-percent"),
    pytest.param("fio2_fraction", 100, ["percentage", "1.00"], id="fio2-100-percent"),
    pytest.param("creatinine_mg_dl", 150, ["umol/L", "creatinine_umol_l"], id="creat-umol"),
    pytest.param("bilirubin_mg_dl", 200, ["umol/L", "bilirubin_umol_l"], id="bili-umol"),
    pytest.param("norepinephrine_ug_kg_min", 10, ["µg/min"], id="norepi-ug-min"),
    pytest.param("epinephrine_ug_kg_min", 8, ["µg/min"], id="epi-ug-min"),
    pytest.param("dopamine_ug_kg_min", 400, ["µg/min"], id="dopamine-ug-min"),
    pytest.param("dobutamine_ug_kg_min", 350, ["µg/min"], id="dobutamine-ug-min"),
    pytest.param("urine_ml_per_day", 1.5, ["litres", "1500 mL"], id="urine-litres"),
    pytest.param("pao2_mmhg", 10, ["kPa", "75"], id="pao2-kpa"),
    pytest.param("platelets_10e9_per_l", 150000, ["cells/uL", "150"], id="platelets-per-ul"),
])
def test_value_plausible_only_in_another_unit_names_the_likely_unit(key, value, unit_words):
    with pytest.raises(LikelyWrongUnit) as err:
        SofaInputs.from_mapping({key: value})
    assert err.value.field == key
    for word in unit_words:
        assert word in err.value.message


def test_fio2_40_message_says_enter_0_40():
    with pytest.raises(LikelyWrongUnit, match=r"looks like a percentage: enter 0\.40"):
        SofaInputs.from_mapping({"fio2_fraction": 40})


def test_norepinephrine_10_message_says_ug_min_not_ug_kg_min():
    with pytest.raises(LikelyWrongUnit, match="µg/min, not µg/kg/min"):
        SofaInputs.from_mapping({"norepinephrine_ug_kg_min": 10})


@pytest.mark.parametrize("key, value", [
    pytest.param("pao2_mmhg", 800, id="pao2-too-high"),
    pytest.param("pao2_mmhg", -5, id="pao2-negative"),
    pytest.param("fio2_fraction", 0.1, id="fio2-below-room-air"),
    pytest.param("fio2_fraction", 1.5, id="fio2-neither-fraction-nor-percent"),
    pytest.param("fio2_fraction", 150, id="fio2-above-100-percent"),
    pytest.param("platelets_10e9_per_l", -1, id="platelets-negative"),
    pytest.param("map_mmhg", 5, id="map-too-low"),
    pytest.param("map_mmhg", 300, id="map-too-high"),
    pytest.param("gcs", 2, id="gcs-below-3"),
    pytest.param("gcs", 16, id="gcs-above-15"),
    pytest.param("gcs", 13.5, id="gcs-not-whole"),
    pytest.param("urine_ml_per_day", -10, id="urine-negative"),
    pytest.param("urine_ml_per_day", 25000, id="urine-too-high"),
    pytest.param("dopamine_ug_kg_min", -1, id="dopamine-negative"),
    pytest.param("norepinephrine_ug_kg_min", 5000, id="norepi-impossible-in-any-unit"),
    pytest.param("creatinine_umol_l", 5000, id="creatinine-umol-too-high"),
    pytest.param("bilirubin_umol_l", 2000, id="bilirubin-umol-too-high"),
])
def test_impossible_value_is_refused_with_its_field(key, value):
    with pytest.raises(ImplausibleValue) as err:
        SofaInputs.from_mapping({key: value})
    assert err.value.field == key
    assert not isinstance(err.value, LikelyWrongUnit)


@pytest.mark.parametrize("value", ["72", "seventy", True, float("nan"), float("inf"), [70]])
def test_non_number_is_refused_as_implausible(value):
    with pytest.raises(ImplausibleValue, match="not a number") as err:
        SofaInputs.from_mapping({"map_mmhg": value})
    assert err.value.field == "map_mmhg"


def test_gcs_not_whole_message_explains_gcs():
    with pytest.raises(ImplausibleValue, match="not a whole number"):
        score_cns(13.5)


def test_component_functions_check_their_inputs_too():
    with pytest.raises(LikelyWrongUnit):
        score_respiration(80, 40, INVASIVE)
    with pytest.raises(LikelyWrongUnit):
        score_renal(creatinine_mg_dl=150)


def test_unknown_key_is_rejected_naming_it_and_listing_accepted_keys():
    with pytest.raises(InputRejected) as err:
        SofaInputs.from_mapping({"creatinine_umol": 120})
    assert err.value.field == "creatinine_umol"
    assert "'creatinine_umol'" in err.value.message
    for key in SofaInputs.accepted_keys():
        assert key in err.value.message


def test_accepted_keys_are_exactly_the_dataclass_fields():
    assert SofaInputs.accepted_keys() == (
        "pao2_mmhg", "fio2_fraction", "respiratory_support", "platelets_10e9_per_l",
        "bilirubin_mg_dl", "bilirubin_umol_l", "map_mmhg", "dopamine_ug_kg_min",
        "dobutamine_ug_kg_min", "epinephrine_ug_kg_min", "norepinephrine_ug_kg_min", "gcs",
        "creatinine_mg_dl", "creatinine_umol_l", "urine_ml_per_day",
    )


def test_both_bilirubin_units_in_mapping_are_rejected():
    with pytest.raises(InputRejected, match="give one"):
        SofaInputs.from_mapping({"bilirubin_mg_dl": 2.0, "bilirubin_umol_l": 34})


def test_unknown_respiratory_support_lists_the_accepted_values():
    with pytest.raises(InputRejected) as err:
        SofaInputs.from_mapping({"respiratory_support": "cpap"})
    assert err.value.field == "respiratory_support"
    assert not isinstance(err.value, ImplausibleValue)
    for value in ("none", "noninvasive", "invasive"):
        assert value in err.value.message


def test_from_mapping_refuses_a_non_mapping():
    with pytest.raises(InputRejected, match="mapping"):
        SofaInputs.from_mapping([("gcs", 15)])  # type: ignore[arg-type]


def test_absent_and_null_keys_are_missing():
    assert SofaInputs.from_mapping({"gcs": None}) == SofaInputs()
    assert SofaInputs.from_mapping({}) == SofaInputs()


# --- totals and missing ----------------------------------------------------------------


def test_worked_patient_from_module_docstring():
    """Module docstring's day-1 patient, scored by hand from the domain.md §4.1 table."""
    day1 = SofaInputs(
        pao2_mmhg=70, fio2_fraction=0.5, respiratory_support=INVASIVE,  # 140 → 3
        platelets_10e9_per_l=35,  # <50 → 3
        bilirubin_umol_l=40,  # 33–101 → 2
        map_mmhg=62, norepinephrine_ug_kg_min=0.25,  # >0.1 → 4
        gcs=11,  # 10–12 → 2
        creatinine_umol_l=180, urine_ml_per_day=350,  # 171–299 → 2; <500 → 3; worse 3
    )
    result = compute_sofa(day1)
    assert result.components == {
        "respiration": 3, "coagulation": 3, "liver": 2, "cardiovascular": 4, "cns": 2,
        "renal": 3,
    }
    assert result.total == 17
    assert result.total_without_coagulation == 14
    assert result.missing == ()


def test_module_docstring_example_runs():
    failures, tried = doctest.testmod(sofa)
    assert tried > 0 and failures == 0


def test_healthy_day_scores_zero():
    day = SofaInputs(pao2_mmhg=95, fio2_fraction=0.21, platelets_10e9_per_l=250,
                     bilirubin_mg_dl=0.6, map_mmhg=85, gcs=15, creatinine_mg_dl=0.8,
                     urine_ml_per_day=1800)
    result = compute_sofa(day)
    assert result.total == 0 and result.missing == ()


def test_missing_components_count_zero_and_are_flagged_in_order():
    day = SofaInputs(gcs=8, platelets_10e9_per_l=10)
    result = compute_sofa(day)
    assert result.components["cns"] == 3
    assert result.components["coagulation"] == 4
    assert result.missing == ("respiration", "liver", "cardiovascular", "renal")
    assert result.total == 7
    assert result.total_without_coagulation == 3


def test_nothing_entered_gives_zero_with_every_component_missing():
    result = compute_sofa(SofaInputs())
    assert result.total == 0
    assert result.missing == COMPONENTS


def test_missing_raises_when_missing_components_must_not_score_zero():
    strict = SofaConventions(missing_component_scores_zero=False)
    day = SofaInputs(pao2_mmhg=80, platelets_10e9_per_l=100, bilirubin_mg_dl=1.0,
                     map_mmhg=75, gcs=15, creatinine_mg_dl=1.0)
    with pytest.raises(MissingValue) as err:
        compute_sofa(day, strict)
    assert "respiration" in err.value.message
    assert "fio2_fraction" in err.value.message
    assert "coagulation" not in err.value.message
    assert err.value.field == "fio2_fraction"


def test_complete_day_totals_normally_when_missing_must_not_score_zero():
    strict = SofaConventions(missing_component_scores_zero=False)
    day = SofaInputs(pao2_mmhg=80, fio2_fraction=0.4, platelets_10e9_per_l=100,
                     bilirubin_mg_dl=1.0, map_mmhg=75, gcs=15, urine_ml_per_day=900)
    result = compute_sofa(day, strict)
    assert result.total == 2 + 1
    assert result.conventions == strict


def test_result_to_dict_shape_is_json_ready():
    result = compute_sofa(SofaInputs(gcs=14))
    as_dict = result.to_dict()
    assert set(as_dict) == {"total", "total_without_coagulation", "missing", "components",
                            "conventions"}
    assert list(as_dict["components"]) == list(COMPONENTS)
    assert as_dict["missing"] == ["respiration", "coagulation", "liver", "cardiovascular",
                                  "renal"]
    assert as_dict["conventions"] == {"missing_component_scores_zero": True,
                                      "noninvasive_counts_as_support": True}
    assert json.loads(json.dumps(as_dict)) == as_dict


def test_result_str_shows_total_and_flags_missing():
    text = str(compute_sofa(SofaInputs(gcs=14, platelets_10e9_per_l=40)))
    lines = text.splitlines()
    assert lines[0] == "SOFA 4 (without coagulation 1)"
    assert len(lines) == 1 + len(COMPONENTS)
    assert any("renal" in line and "missing" in line for line in lines)
    assert any("cns" in line and line.rstrip().endswith("1") for line in lines)


# --- properties ------------------------------------------------------------------------

finite = {"allow_nan": False, "allow_infinity": False}
pao2s = st.floats(15, 760, **finite)
fio2s = st.floats(0.21, 1.0, **finite)
supports = st.sampled_from([None, *RespiratorySupport])
conventions = st.builds(SofaConventions, missing_component_scores_zero=st.just(True),
                        noninvasive_counts_as_support=st.booleans())
urines = st.one_of(st.just(0.0), st.floats(20, 20000, **finite))


def ordered(strategy):
    return st.tuples(strategy, strategy).map(sorted)


@given(ordered(pao2s), fio2s, supports, conventions)
def test_respiration_non_increasing_in_pao2(pair, fio2, support, conv):
    low, high = pair
    assert score_respiration(low, fio2, support, conv) >= score_respiration(
        high, fio2, support, conv)


@given(pao2s, ordered(fio2s), supports, conventions)
def test_respiration_non_decreasing_in_fio2_ie_non_increasing_in_ratio(pao2, pair, support, conv):
    low, high = pair  # higher FiO2 → lower PaO2/FiO2
    assert score_respiration(pao2, low, support, conv) <= score_respiration(
        pao2, high, support, conv)


@given(pao2s, fio2s, conventions)
def test_respiration_support_never_lowers_the_score(pao2, fio2, conv):
    unsupported = score_respiration(pao2, fio2, NONE, conv)
    assert unsupported <= 2
    assert score_respiration(pao2, fio2, INVASIVE, conv) >= unsupported


@given(ordered(st.floats(0, 2000, **finite)))
def test_coagulation_non_increasing_in_platelets(pair):
    low, high = pair
    assert score_coagulation(low) >= score_coagulation(high)


@given(ordered(st.floats(0, 80, **finite)))
def test_liver_non_decreasing_in_bilirubin_mg_dl(pair):
    low, high = pair
    assert score_liver(bilirubin_mg_dl=low) <= score_liver(bilirubin_mg_dl=high)


@given(ordered(st.floats(0, 1368, **finite)))
def test_liver_non_decreasing_in_bilirubin_umol_l(pair):
    low, high = pair
    assert score_liver(bilirubin_umol_l=low) <= score_liver(bilirubin_umol_l=high)


@given(ordered(st.floats(0, 30, **finite)), st.one_of(st.none(), urines))
def test_renal_non_decreasing_in_creatinine_mg_dl(pair, urine):
    low, high = pair
    assert score_renal(creatinine_mg_dl=low, urine_ml_per_day=urine) <= score_renal(
        creatinine_mg_dl=high, urine_ml_per_day=urine)


@given(ordered(st.floats(0, 2652, **finite)), st.one_of(st.none(), urines))
def test_renal_non_decreasing_in_creatinine_umol_l(pair, urine):
    low, high = pair
    assert score_renal(creatinine_umol_l=low, urine_ml_per_day=urine) <= score_renal(
        creatinine_umol_l=high, urine_ml_per_day=urine)


@given(ordered(urines), st.one_of(st.none(), st.floats(0, 30, **finite)))
def test_renal_non_increasing_in_urine(pair, creatinine):
    low, high = pair
    assert score_renal(creatinine_mg_dl=creatinine, urine_ml_per_day=low) >= score_renal(
        creatinine_mg_dl=creatinine, urine_ml_per_day=high)


@given(ordered(st.integers(3, 15)))
def test_cns_non_increasing_in_gcs(pair):
    low, high = pair
    assert score_cns(low) >= score_cns(high)


maps = st.floats(10, 250, **finite)
DRUG_TOPS = {"dopamine_ug_kg_min": 50, "dobutamine_ug_kg_min": 40,
             "epinephrine_ug_kg_min": 5, "norepinephrine_ug_kg_min": 5}
drug_doses = st.fixed_dictionaries(
    {}, optional={name: st.floats(0, top, **finite) for name, top in DRUG_TOPS.items()})


@given(ordered(maps), drug_doses)
def test_cardiovascular_non_increasing_in_map(pair, doses):
    low, high = pair
    assert score_cardiovascular(low, **doses) >= score_cardiovascular(high, **doses)


@given(st.sampled_from(sorted(DRUG_TOPS)), st.data(), st.one_of(st.none(), maps), drug_doses)
def test_cardiovascular_non_decreasing_in_each_drug_dose(drug, data, map_mmhg, doses):
    low, high = data.draw(ordered(st.floats(0, DRUG_TOPS[drug], **finite)))
    assert score_cardiovascular(map_mmhg, **{**doses, drug: low}) <= score_cardiovascular(
        map_mmhg, **{**doses, drug: high})


def _maybe(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def sofa_inputs(draw) -> SofaInputs:
    bilirubin_unit = draw(st.sampled_from(["bilirubin_mg_dl", "bilirubin_umol_l"]))
    creatinine_unit = draw(st.sampled_from(["creatinine_mg_dl", "creatinine_umol_l"]))
    values = {
        "pao2_mmhg": draw(_maybe(pao2s)),
        "fio2_fraction": draw(_maybe(fio2s)),
        "respiratory_support": draw(supports),
        "platelets_10e9_per_l": draw(_maybe(st.floats(0, 2000, **finite))),
        bilirubin_unit: draw(_maybe(st.floats(0, 80 if "mg" in bilirubin_unit else 1368,
                                              **finite))),
        "map_mmhg": draw(_maybe(maps)),
        **{name: draw(_maybe(st.floats(0, top, **finite))) for name, top in DRUG_TOPS.items()},
        "gcs": draw(_maybe(st.integers(3, 15))),
        creatinine_unit: draw(_maybe(st.floats(0, 30 if "mg" in creatinine_unit else 2652,
                                               **finite))),
        "urine_ml_per_day": draw(_maybe(urines)),
    }
    return SofaInputs.from_mapping(values)


@given(sofa_inputs(), conventions)
def test_total_is_sum_of_components_with_missing_as_zero(inputs, conv):
    result = compute_sofa(inputs, conv)
    assert result.total == sum(score or 0 for score in result.components.values())
    assert result.missing == tuple(n for n in COMPONENTS if result.components[n] is None)


@given(sofa_inputs(), conventions)
def test_total_between_0_and_24_and_each_component_between_0_and_4(inputs, conv):
    result = compute_sofa(inputs, conv)
    assert 0 <= result.total <= 24
    assert all(score is None or 0 <= score <= 4 for score in result.components.values())


@given(sofa_inputs())
def test_total_without_coagulation_is_total_minus_coagulation(inputs):
    result = compute_sofa(inputs)
    assert result.total_without_coagulation == result.total - (
        result.components["coagulation"] or 0)


@given(sofa_inputs())
def test_compute_sofa_agrees_with_the_component_functions(inputs):
    result = compute_sofa(inputs)
    assert result.components["coagulation"] == score_coagulation(inputs.platelets_10e9_per_l)
    assert result.components["cns"] == score_cns(inputs.gcs)
    assert isinstance(result, SofaResult)


@given(sofa_inputs())
def test_from_mapping_round_trips_the_fields(inputs):
    mapping = {key: getattr(inputs, key) for key in SofaInputs.accepted_keys()}
    assert SofaInputs.from_mapping(mapping) == inputs
