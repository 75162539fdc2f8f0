"""SSC 2012 bundle compliance (domain.md §3.1) relative to septic-shock onset."""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.crf.bundles import ElementStatus, bundle_compliance

UTC = dt.UTC
ONSET = dt.datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
MET, NOT_MET, NA, UNKNOWN = (ElementStatus.MET, ElementStatus.NOT_MET,
                             ElementStatus.NOT_APPLICABLE, ElementStatus.UNKNOWN)


def at(hours: float) -> str:
    return (ONSET + dt.timedelta(hours=hours)).isoformat()


FULL = {"lactate_measured_at": at(0.5), "lactate_mmol_l": 4.5, "blood_cultures_at": at(0.7),
        "antibiotics_first_dose_at": at(1), "crystalloid_ml_per_kg_3h": 30,
        "vasopressor_start_at": at(0), "cvp_mmhg": 9, "cvp_measured_at": at(4),
        "scvo2_percent": 72, "scvo2_measured_at": at(4), "repeat_lactate_at": at(5)}


def status(values, element, **kw):
    return bundle_compliance(values, ONSET, **kw).element(element).status


def test_a_fully_compliant_patient_completes_both_bundles():
    result = bundle_compliance(FULL, ONSET)
    assert result.complete(3) is True and result.complete(6) is True
    assert {e.status for e in result.elements} == {MET}


@pytest.mark.parametrize("hours, expected", [(3.0, MET), (3.01, NOT_MET), (-2, MET)])
def test_antibiotics_deadline_is_inclusive_and_earlier_counts(hours, expected):
    assert status({**FULL, "antibiotics_first_dose_at": at(hours),
                   "blood_cultures_at": at(min(hours, 0) - 1)}, "antibiotics") is expected


def test_cultures_after_antibiotics_are_not_met_and_missing_times_unknown():
    assert status({**FULL, "blood_cultures_at": at(1.5)},
                  "cultures_before_antibiotics") is NOT_MET
    assert status({k: v for k, v in FULL.items() if k != "antibiotics_first_dose_at"},
                  "cultures_before_antibiotics") is UNKNOWN


@pytest.mark.parametrize("ml_per_kg, expected", [(29.9, NOT_MET), (30, MET)])
def test_30_ml_per_kg_crystalloid(ml_per_kg, expected):
    assert status({**FULL, "crystalloid_ml_per_kg_3h": ml_per_kg}, "crystalloid") is expected


def test_without_hypotension_fluids_depend_on_lactate_4():
    low = {**FULL, "lactate_mmol_l": 3.9}
    assert status(low, "crystalloid", hypotension=False) is NA
    assert status({**FULL, "lactate_mmol_l": 4.0}, "crystalloid", hypotension=False) is MET
    assert status(low, "cvp_scvo2", hypotension=False) is NA
    assert status(low, "vasopressors", hypotension=False) is NA


@pytest.mark.parametrize("lactate, expected", [(2.0, NA), (2.1, MET)])
def test_repeat_lactate_only_when_initial_is_elevated(lactate, expected):
    assert status({**FULL, "lactate_mmol_l": lactate}, "repeat_lactate") is expected


def test_late_cvp_is_not_met_and_missing_scvo2_unknown():
    assert status({**FULL, "cvp_measured_at": at(6.5)}, "cvp_scvo2") is NOT_MET
    missing = {k: v for k, v in FULL.items() if not k.startswith("scvo2")}
    result = bundle_compliance(missing, ONSET)
    assert result.element("cvp_scvo2").status is UNKNOWN
    assert result.complete(6) is None


def test_the_reason_names_the_time_after_onset():
    element = bundle_compliance({**FULL, "lactate_measured_at": at(3.5)},
                                ONSET).element("lactate_measured")
    assert element.status is NOT_MET
    assert element.reason == "lactate measured 3 h 30 min after onset (deadline 3 h)"
