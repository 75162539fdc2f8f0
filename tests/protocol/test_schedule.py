"""Visit schedules: Protocol.schedule_by_day() for both protocols and every arm."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialdesk.protocol import load_protocol

THREEARM = Path(__file__).resolve().parents[1] / "protocols" / "threearm.yaml"


@pytest.fixture(scope="module")
def rumcess():
    return load_protocol()


@pytest.fixture(scope="module")
def threearm():
    return load_protocol(THREEARM)


# --- RUMCESS: day 0 = randomization; SOFA daily to day 28; vital status 28 and 90 -------


def test_rumcess_day_0_in_the_msc_arm_includes_the_infusion(rumcess):
    assert rumcess.schedule_by_day("msc")[0] == (
        "sofa", "standard_therapy", "inflammatory_markers", "msc_infusion")


def test_rumcess_control_arm_has_no_msc_infusion_on_any_day(rumcess):
    schedule = rumcess.schedule_by_day("control")
    assert schedule[0] == ("sofa", "standard_therapy", "inflammatory_markers")
    assert all("msc_infusion" not in forms for forms in schedule.values())


def test_rumcess_msc_infusion_is_only_on_day_0(rumcess):
    days = [d for d, forms in rumcess.schedule_by_day("msc").items() if "msc_infusion" in forms]
    assert days == [0]


def test_rumcess_arms_differ_only_by_the_infusion(rumcess):
    msc, control = rumcess.schedule_by_day("msc"), rumcess.schedule_by_day("control")
    assert msc.keys() == control.keys()
    for day in msc:
        assert tuple(f for f in msc[day] if f != "msc_infusion") == control[day]


def test_rumcess_without_an_arm_lists_every_form(rumcess):
    assert rumcess.schedule_by_day() == rumcess.schedule_by_day("msc")


@pytest.mark.parametrize("arm", ["control", "msc"])
def test_rumcess_days_are_0_to_28_then_90_in_order(rumcess, arm):
    assert list(rumcess.schedule_by_day(arm)) == [*range(29), 90]


@pytest.mark.parametrize(
    ("day", "forms"),
    [
        (1, ("sofa", "standard_therapy", "inflammatory_markers")),
        (4, ("sofa", "standard_therapy")),
        (7, ("sofa", "standard_therapy", "inflammatory_markers")),
        (8, ("sofa",)),
        (14, ("sofa", "inflammatory_markers")),
        (28, ("sofa", "inflammatory_markers", "vital_status")),
        (90, ("vital_status",)),
    ],
)
@pytest.mark.parametrize("arm", ["control", "msc"])
def test_rumcess_forms_due_on_a_day(rumcess, arm, day, forms):
    assert rumcess.schedule_by_day(arm)[day] == forms


def test_rumcess_sofa_is_daily_through_day_28(rumcess):
    schedule = rumcess.schedule_by_day("control")
    assert [d for d, forms in schedule.items() if "sofa" in forms] == list(range(29))


def test_rumcess_inflammatory_markers_days(rumcess):
    schedule = rumcess.schedule_by_day("msc")
    days = [d for d, forms in schedule.items() if "inflammatory_markers" in forms]
    assert days == [0, 1, 2, 3, 5, 7, 14, 28]


# --- threearm: SOFA days 0–14, vital status 28 and 60, infusion in both MSC arms -------


@pytest.mark.parametrize("arm", ["low_dose", "high_dose"])
def test_threearm_both_msc_arms_get_the_infusion_on_day_0(threearm, arm):
    schedule = threearm.schedule_by_day(arm)
    assert schedule[0] == ("sofa", "msc_infusion")
    assert [d for d, f in schedule.items() if "msc_infusion" in f] == [0]


def test_threearm_usual_care_has_no_infusion(threearm):
    schedule = threearm.schedule_by_day("usual_care")
    assert schedule[0] == ("sofa",)
    assert all("msc_infusion" not in forms for forms in schedule.values())


@pytest.mark.parametrize("arm", ["usual_care", "low_dose", "high_dose", None])
def test_threearm_days(threearm, arm):
    schedule = threearm.schedule_by_day(arm)
    assert list(schedule) == [*range(15), 28, 60]
    assert schedule[14] == ("sofa",)
    assert schedule[28] == schedule[60] == ("vital_status",)
