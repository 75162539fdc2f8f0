"""MSC release, dose given and automatic protocol deviations, at the protocol's boundaries.

RUMCESS (protocols/rumcess.yaml, domain.md §1.1, §6.3): 1–2 × 10^6 viable cells/kg by
actual body weight, infusion no later than 10 h after septic-shock onset, viability
≥ 70 %, endotoxin ≤ 0.5 EU/mL, sterility no growth (or Gram stain negative before the
culture result), mycoplasma negative, ISCT identity.
"""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.intervention.deviations import detect_deviations, dose_given
from trialdesk.intervention.release import ItemStatus, check_release

UTC = dt.UTC
ONSET = dt.datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
RELEASED = {"product_id": "MSC-0001", "donor_id": "D-17", "viability_percent": 92,
            "concentration_cells_per_ml": 1e6, "sterility": "no_growth",
            "endotoxin_eu_per_ml": 0.1, "mycoplasma": "negative", "identity": "pass",
            "released_by": "Dr Kuzmina", "expiry_at": "2026-03-02T00:00:00+00:00"}


def infusion(hours_after_onset: float = 8, **changes):
    start = ONSET + dt.timedelta(hours=hours_after_onset)
    return {"infusion_start_at": start.isoformat(), "weight_kg": 70, "cells_infused": 70e6,
            "weight_basis": "actual", **changes}


def deviation_codes(rumcess, arm="msc", product=RELEASED, **infusion_changes):
    found = detect_deviations(rumcess, arm=arm, onset_at=ONSET,
                              infusion=infusion(**infusion_changes), product=product)
    return {d.code for d in found}


def test_a_released_product_given_on_time_at_target_dose_has_no_deviation(rumcess):
    assert deviation_codes(rumcess) == set()


@pytest.mark.parametrize("cells, expected", [
    (69_999_000, {"DOSE_BELOW_RANGE"}),  # 0.99999 × 10^6/kg
    (70e6, set()),  # exactly 1.0 × 10^6/kg
    (140e6, set()),  # exactly 2.0 × 10^6/kg
    (140_001_000, {"DOSE_ABOVE_RANGE"}),  # 2.00001 × 10^6/kg
])
def test_dose_range_is_inclusive_at_1_and_2_million_per_kg(rumcess, cells, expected):
    assert deviation_codes(rumcess, cells_infused=cells) == expected


def test_the_dose_is_cells_over_kg_and_from_volume_times_concentration(rumcess):
    by_cells = dose_given(rumcess, infusion(cells_infused=105e6), RELEASED)
    by_volume = dose_given(rumcess, {"weight_kg": 70, "volume_infused_ml": 84}, RELEASED)
    assert by_cells.dose_cells_per_kg == pytest.approx(1.5e6)
    assert by_volume.cells_infused == pytest.approx(84e6)  # 84 mL × 10^6 cells/mL
    assert by_volume.dose_cells_per_kg == pytest.approx(1.2e6)
    assert dose_given(rumcess, {"weight_kg": 70}, RELEASED) is None


@pytest.mark.parametrize("hours, late", [(9.99, False), (10.0, False), (10.01, True)])
def test_infusion_exactly_at_10_h_is_on_time(rumcess, hours, late):
    assert ("INFUSION_LATE" in deviation_codes(rumcess, hours_after_onset=hours)) is late


def test_late_message_says_by_how_much(rumcess):
    [late] = detect_deviations(rumcess, arm="msc", onset_at=ONSET,
                               infusion=infusion(hours_after_onset=11.5), product=RELEASED)
    assert "11 h 30 min after septic-shock onset" in late.message
    assert "1 h 30 min after the 10-h deadline" in late.message
    assert late.severity == "major"


def test_an_infusion_in_the_control_arm_is_a_deviation(rumcess):
    assert deviation_codes(rumcess, arm="control") == {"MSC_IN_NON_MSC_ARM"}


def test_no_infusion_no_deviation_even_for_a_bad_product(rumcess):
    bad = {**RELEASED, "viability_percent": 50, "sterility": "growth"}
    assert detect_deviations(rumcess, arm="control", onset_at=ONSET, infusion=None,
                             product=bad) == ()


@pytest.mark.parametrize("viability, deviates", [(69.9, True), (70, False)])
def test_viability_minimum_70_percent_inclusive(rumcess, viability, deviates):
    codes = deviation_codes(rumcess, product={**RELEASED, "viability_percent": viability})
    assert ("VIABILITY_BELOW_MINIMUM" in codes) is deviates


def test_expired_and_unreleased_products(rumcess):
    expired = {**RELEASED, "expiry_at": (ONSET + dt.timedelta(hours=7)).isoformat()}
    assert deviation_codes(rumcess, product=expired) == {"PRODUCT_EXPIRED"}
    pending = {**RELEASED, "mycoplasma": "pending", "released_by": ""}
    assert deviation_codes(rumcess, product=pending) == {"PRODUCT_NOT_RELEASED"}


def test_weight_basis_other_than_the_protocols_is_a_minor_deviation(rumcess):
    [d] = detect_deviations(rumcess, arm="msc", onset_at=ONSET,
                            infusion=infusion(weight_basis="predicted"), product=RELEASED)
    assert (d.code, d.severity) == ("WEIGHT_BASIS_DIFFERENT", "minor")


@pytest.mark.parametrize("endotoxin, status", [(0.5, ItemStatus.PASS), (0.51, ItemStatus.FAIL)])
def test_endotoxin_limit_is_inclusive(rumcess, endotoxin, status):
    check = check_release({**RELEASED, "endotoxin_eu_per_ml": endotoxin},
                          rumcess.intervention.release_criteria)
    assert check.item("endotoxin").status is status


def test_release_items_follow_the_protocol(rumcess):
    check = check_release(RELEASED, rumcess.intervention.release_criteria,
                          at=ONSET + dt.timedelta(hours=8))
    assert [i.id for i in check.items] == ["viability", "sterility", "endotoxin", "mycoplasma",
                                           "identity", "released_by", "expiry"]
    assert check.released
    gram = check_release({**RELEASED, "sterility": "gram_stain_negative"},
                         rumcess.intervention.release_criteria)
    assert gram.item("sterility").status is ItemStatus.PASS
    missing = check_release({}, rumcess.intervention.release_criteria)
    assert not missing.released
    assert {i.status for i in missing.items} == {ItemStatus.PENDING}
