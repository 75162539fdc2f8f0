"""MSC dosing: weight basis, plausibility, cells, volume and the protocol range."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialdesk.clinical.dosing import (
    DosingWeight,
    WeightBasis,
    check_dose_in_range,
    compute_msc_dose,
    delivered_dose_cells_per_kg,
    dosing_weight_kg,
    format_cell_range,
    format_cells,
    predicted_body_weight_kg,
)
from trialdesk.errors import ImplausibleValue, LikelyWrongUnit, MissingValue


class TestFormat:
    @pytest.mark.parametrize(("n", "text"), [
        (70e6, "70×10^6"), (1.4e6, "1.4×10^6"), (1e6, "1×10^6"), (140e6, "140×10^6"),
        (66.016e6, "66×10^6"), (0.5e6, "0.5×10^6"), (1234.6e6, "1235×10^6"), (0, "0×10^6"),
    ])
    def test_format_cells(self, n, text):
        assert format_cells(n) == text

    def test_format_range(self):
        assert format_cell_range(1e6, 2e6) == "1–2×10^6"


class TestDosingWeight:
    def test_actual(self):
        w = dosing_weight_kg(70)
        assert w == DosingWeight(70.0, WeightBasis.ACTUAL, "actual body weight")
        assert str(w) == "70 kg (actual body weight)"
        assert w.to_dict() == {"weight_kg": 70.0, "basis": "actual",
                               "detail": "actual body weight"}

    @pytest.mark.parametrize(("sex", "expected"), [("male", 66.02), ("female", 61.52),
                                                   ("M", 66.02), ("f", 61.52)])
    def test_predicted_170_cm(self, sex, expected):
        # male 50 + 0.91 × (170 − 152.4) = 66.016; female 45.5 + 0.91 × 17.6 = 61.516
        w = dosing_weight_kg(90, basis="predicted", height_cm=170, sex=sex)
        assert w.weight_kg == pytest.approx(expected)
        assert w.basis is WeightBasis.PREDICTED
        assert "ARDSnet" in w.detail and "actual 90 kg" in w.detail

    def test_predicted_at_152_4_cm_is_the_base(self):
        assert predicted_body_weight_kg(152.4, "male") == pytest.approx(50.0)
        assert predicted_body_weight_kg(152.4, "female") == pytest.approx(45.5)

    def test_predicted_needs_height_and_sex(self):
        with pytest.raises(MissingValue) as info:
            dosing_weight_kg(70, basis=WeightBasis.PREDICTED, sex="male")
        assert info.value.field == "height_cm"
        with pytest.raises(MissingValue) as info:
            dosing_weight_kg(70, basis=WeightBasis.PREDICTED, height_cm=170)
        assert info.value.field == "sex"
        with pytest.raises(ImplausibleValue):
            dosing_weight_kg(70, basis="predicted", height_cm=170, sex="unknown")

    @pytest.mark.parametrize("height", [120, 230])
    def test_height_boundaries_inclusive(self, height):
        assert dosing_weight_kg(70, basis="predicted", height_cm=height, sex="male")

    @pytest.mark.parametrize("height", [119.9, 230.1, 0])
    def test_height_out_of_range(self, height):
        with pytest.raises(ImplausibleValue):
            dosing_weight_kg(70, basis="predicted", height_cm=height, sex="male")

    @pytest.mark.parametrize(("height", "unit"), [(1.75, "metres"), (69, "inches")])
    def test_height_wrong_unit(self, height, unit):
        with pytest.raises(LikelyWrongUnit, match=unit):
            predicted_body_weight_kg(height, "male")

    @pytest.mark.parametrize("kg", [30, 30.0, 250, 249.99])
    def test_weight_boundaries_inclusive(self, kg):
        assert dosing_weight_kg(kg).weight_kg == kg

    @pytest.mark.parametrize("kg", [29.9, 0, -70, 25])
    def test_weight_too_low(self, kg):
        with pytest.raises(ImplausibleValue) as info:
            dosing_weight_kg(kg)
        assert not isinstance(info.value, LikelyWrongUnit)
        assert "30–250 kg" in str(info.value)
        assert "lb or g" in str(info.value)
        assert info.value.field == "actual_weight_kg"

    def test_grams(self):
        with pytest.raises(LikelyWrongUnit) as info:
            dosing_weight_kg(150000)
        assert "looks like grams" in str(info.value)
        assert "150 kg" in str(info.value)

    def test_pounds(self):
        with pytest.raises(LikelyWrongUnit, match="looks like pounds"):
            dosing_weight_kg(330)  # 330 lb = 149.7 kg

    def test_neither_unit(self):
        with pytest.raises(ImplausibleValue) as info:
            dosing_weight_kg(5000)
        assert not isinstance(info.value, LikelyWrongUnit)

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), "70", None, True])
    def test_not_a_number(self, bad):
        with pytest.raises(ImplausibleValue):
            dosing_weight_kg(bad)

    def test_custom_range(self):
        assert dosing_weight_kg(20, plausible_range_kg=(15, 200)).weight_kg == 20
        with pytest.raises(ImplausibleValue, match="40–150 kg"):
            dosing_weight_kg(35, plausible_range_kg=(40, 150))
        with pytest.raises(ImplausibleValue):
            dosing_weight_kg(70, plausible_range_kg=(100, 50))

    def test_unknown_basis(self):
        with pytest.raises(ImplausibleValue):
            dosing_weight_kg(70, basis="ideal")


class TestComputeDose:
    def test_70_kg_at_1e6_per_kg(self):
        dose = compute_msc_dose(dosing_weight_kg(70), concentration_cells_per_ml=2e6)
        assert dose.target_cells == pytest.approx(70e6)
        assert dose.min_cells == pytest.approx(70e6)
        assert dose.max_cells == pytest.approx(140e6)
        assert dose.volume_ml == pytest.approx(35.0)
        assert str(dose) == ("70×10^6 viable cells (1×10^6 cells/kg × 70 kg (actual body "
                             "weight)); protocol range 70–140×10^6 cells; 35 mL at "
                             "2×10^6 cells/mL")
        d = dose.to_dict()
        assert d["weight"]["basis"] == "actual" and d["volume_ml"] == pytest.approx(35.0)

    def test_no_concentration_no_volume(self):
        dose = compute_msc_dose(dosing_weight_kg(70))
        assert dose.volume_ml is None and dose.concentration_cells_per_ml is None

    def test_predicted_weight_used(self):
        w = dosing_weight_kg(100, basis="predicted", height_cm=170, sex="male")
        dose = compute_msc_dose(w, target_cells_per_kg=10e6, max_cells_per_kg=10e6)
        assert dose.target_cells == pytest.approx(660.2e6)

    @pytest.mark.parametrize("target", [1e6, 2e6, 1.5e6])
    def test_target_range_inclusive(self, target):
        assert compute_msc_dose(dosing_weight_kg(70), target_cells_per_kg=target)

    @pytest.mark.parametrize("target", [0.99e6, 2.01e6])
    def test_target_outside_range(self, target):
        with pytest.raises(ImplausibleValue, match="1–2×10\\^6 cells/kg"):
            compute_msc_dose(dosing_weight_kg(70), target_cells_per_kg=target)

    @pytest.mark.parametrize("conc", [0, -1e6, 1e9, float("nan")])
    def test_implausible_concentration(self, conc):
        with pytest.raises(ImplausibleValue) as info:
            compute_msc_dose(dosing_weight_kg(70), concentration_cells_per_ml=conc)
        assert info.value.field == "concentration_cells_per_ml"

    def test_concentration_in_millions_hinted(self):
        with pytest.raises(LikelyWrongUnit, match="×10\\^6 cells/mL"):
            compute_msc_dose(dosing_weight_kg(70), concentration_cells_per_ml=2)

    def test_concentration_boundaries(self):
        w = dosing_weight_kg(70)
        assert compute_msc_dose(w, concentration_cells_per_ml=1e4).volume_ml == pytest.approx(7000)
        assert compute_msc_dose(w, concentration_cells_per_ml=1e8).volume_ml == pytest.approx(0.7)

    def test_per_kg_in_millions_hinted(self):
        with pytest.raises(LikelyWrongUnit):
            compute_msc_dose(dosing_weight_kg(70), target_cells_per_kg=1.0,
                             min_cells_per_kg=1.0, max_cells_per_kg=2.0)

    @given(weight=st.floats(min_value=30, max_value=125),
           per_kg=st.floats(min_value=1e6, max_value=2e6))
    def test_target_cells_linear_in_weight(self, weight, per_kg):
        one = compute_msc_dose(dosing_weight_kg(weight), target_cells_per_kg=per_kg)
        two = compute_msc_dose(dosing_weight_kg(2 * weight), target_cells_per_kg=per_kg)
        assert one.target_cells == pytest.approx(per_kg * weight)
        assert two.target_cells == pytest.approx(2 * one.target_cells)
        assert one.min_cells <= one.target_cells <= one.max_cells


class TestDelivered:
    def test_delivered_dose(self):
        assert delivered_dose_cells_per_kg(98e6, 70) == pytest.approx(1.4e6)

    def test_delivered_refuses_bad_input(self):
        with pytest.raises(ImplausibleValue):
            delivered_dose_cells_per_kg(-1, 70)
        with pytest.raises(ImplausibleValue):
            delivered_dose_cells_per_kg(70e6, 0)

    def test_within(self):
        check = check_dose_in_range(1.4e6, 1e6, 2e6)
        assert check.in_range
        assert check.message == "1.4×10^6 cells/kg is within the protocol range 1–2×10^6 cells/kg"
        assert str(check) == check.message
        assert check.to_dict()["in_range"] is True

    @pytest.mark.parametrize("dose", [1e6, 2e6, 140e6 / 70, 70e6 / 70])
    def test_boundaries_inclusive(self, dose):
        assert check_dose_in_range(dose, 1e6, 2e6).in_range

    def test_rounding_at_boundary_tolerated(self):
        dose = delivered_dose_cells_per_kg(63.3e6 * 2, 63.3)
        assert check_dose_in_range(dose, 1e6, 2e6).in_range

    def test_below(self):
        check = check_dose_in_range(0.8e6, 1e6, 2e6)
        assert not check.in_range
        assert check.message == "0.8×10^6 cells/kg is below the protocol range 1–2×10^6 cells/kg"

    def test_above_just_past_boundary_is_not_printed_as_the_boundary(self):
        check = check_dose_in_range(2.0004e6, 1e6, 2e6)
        assert not check.in_range
        assert check.message.startswith("2.0004×10^6 cells/kg is above")

    def test_bad_range(self):
        with pytest.raises(ImplausibleValue):
            check_dose_in_range(1e6, 2e6, 1e6)
