"""The visit schedule of RUMCESS (protocols/rumcess.yaml ``schedule``), day by day.

Expected days come from the protocol text: SOFA days 0–28, standard therapy 0–7,
markers on 0, 1, 2, 3, 5, 7, 14, 28, MSC product and infusion on day 0 in the MSC arm,
vital status on days 28 and 90 ± 3 days. Day 0 = the calendar day of randomization in
Moscow time.
"""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.crf.schedule import (
    SlotStatus,
    day_date,
    schedule_problem,
    study_day,
    subject_schedule,
)

UTC = dt.UTC
# 2026-03-01 22:30 UTC is 2026-03-02 01:30 in Moscow (UTC+3): day 0 is 2 March
RANDOMIZED = dt.datetime(2026, 3, 1, 22, 30, tzinfo=UTC)
MSK = "Europe/Moscow"


def schedule(rumcess, today: dt.date, arm: str = "msc", **kw):
    return subject_schedule(rumcess, randomized_at=RANDOMIZED, timezone=MSK, arm=arm,
                            today=today, **kw)


def test_day_zero_is_the_calendar_day_of_randomization_in_site_time():
    assert day_date(0, RANDOMIZED, MSK) == dt.date(2026, 3, 2)
    assert day_date(28, RANDOMIZED, MSK) == dt.date(2026, 3, 30)
    # 20:59 UTC on 2 March is 23:59 Moscow: still day 0; one minute later is day 1
    assert study_day(dt.datetime(2026, 3, 2, 20, 59, tzinfo=UTC), RANDOMIZED, MSK) == 0
    assert study_day(dt.datetime(2026, 3, 2, 21, 0, tzinfo=UTC), RANDOMIZED, MSK) == 1
    # in UTC the randomization day would be 1 March: the site's calendar decides
    assert study_day(dt.datetime(2026, 3, 1, 23, 0, tzinfo=UTC), RANDOMIZED, MSK) == 0


def test_the_slots_are_the_protocol_days(rumcess):
    s = schedule(rumcess, dt.date(2026, 3, 2))
    days = lambda form: [slot.day for slot in s.slots if slot.form == form]  # noqa: E731
    assert days("sofa") == list(range(29))
    assert days("standard_therapy") == list(range(8))
    assert days("inflammatory_markers") == [0, 1, 2, 3, 5, 7, 14, 28]
    assert days("msc_infusion") == [0]
    assert days("vital_status") == [28, 90]
    assert [u.form for u in s.unscheduled] == ["msc_product", "msc_not_given", "end_of_study"]


def test_on_day_two_earlier_forms_are_overdue_todays_due_later_upcoming(rumcess):
    s = schedule(rumcess, dt.date(2026, 3, 4), done={("sofa", 0)})  # day 2
    assert s.today_day == 2
    assert s.slot("sofa", 0).status is SlotStatus.DONE
    # day 1 (3 March) has one grace day: due until 4 March
    assert s.slot("sofa", 1).status is SlotStatus.DUE
    assert s.slot("standard_therapy", 0).status is SlotStatus.OVERDUE
    assert s.slot("sofa", 2).status is SlotStatus.DUE
    assert s.slot("sofa", 3).status is SlotStatus.UPCOMING


def test_vital_status_window_is_three_days_either_side(rumcess):
    day28 = dt.date(2026, 3, 30)
    before = schedule(rumcess, day28 - dt.timedelta(days=4))
    opens = schedule(rumcess, day28 - dt.timedelta(days=3))
    last_due = schedule(rumcess, day28 + dt.timedelta(days=4))  # 3 window + 1 grace
    late = schedule(rumcess, day28 + dt.timedelta(days=5))
    assert before.slot("vital_status", 28).status is SlotStatus.UPCOMING
    assert opens.slot("vital_status", 28).status is SlotStatus.DUE
    assert last_due.slot("vital_status", 28).status is SlotStatus.DUE
    assert late.slot("vital_status", 28).status is SlotStatus.OVERDUE


def test_msc_forms_are_not_required_in_the_control_arm(rumcess):
    s = schedule(rumcess, dt.date(2026, 3, 2), arm="control")
    assert s.slot("msc_infusion", 0).status is SlotStatus.NOT_REQUIRED
    # the reason names the arm by its protocol label ("Standard therapy"), not its id
    assert "Standard therapy" in s.slot("msc_infusion", 0).reason
    assert "Standard therapy" in s.slot("msc_product", None).reason
    assert s.slot("sofa", 0).status is SlotStatus.DUE


def test_nothing_is_required_after_death_but_what_was_done_stays_done(rumcess):
    died = dt.date(2026, 3, 6)  # day 4
    s = schedule(rumcess, dt.date(2026, 4, 30), death_date=died, done={("sofa", 5)})
    assert s.slot("sofa", 4).status is SlotStatus.OVERDUE  # the death day itself is needed
    assert s.slot("sofa", 5).status is SlotStatus.DONE
    assert s.slot("sofa", 6).status is SlotStatus.NOT_REQUIRED
    assert s.slot("vital_status", 28).status is SlotStatus.NOT_REQUIRED
    assert "2026-03-06" in s.slot("sofa", 6).reason


def test_end_of_study_is_done_once_recorded(rumcess):
    s = schedule(rumcess, dt.date(2026, 3, 5), done={("end_of_study", None)})
    assert s.slot("end_of_study", None).status is SlotStatus.DONE
    assert schedule(rumcess, dt.date(2026, 3, 5)).slot(
        "end_of_study", None).status is SlotStatus.NOT_REQUIRED


@pytest.mark.parametrize("form, day, allowed", [
    ("sofa", 0, True), ("sofa", 28, True), ("sofa", 29, False),
    ("standard_therapy", 7, True), ("standard_therapy", 8, False),
    ("inflammatory_markers", 4, False), ("inflammatory_markers", 14, True),
    ("vital_status", 90, True), ("vital_status", 60, False),
    ("end_of_study", None, True), ("end_of_study", 3, False), ("sofa", None, False),
    ("msc_product", None, True), ("msc_product", 0, False),
    ("no_such_form", 0, False),
])
def test_days_outside_the_schedule_are_named(rumcess, form, day, allowed):
    assert (schedule_problem(rumcess, form, day) is None) is allowed


def test_a_form_of_the_other_arm_says_so_with_the_arm_label(rumcess):
    """protocols/rumcess.yaml: arm ``control`` is labelled "Standard therapy"; the MSC
    product and infusion forms are given in the ``msc`` arm only."""
    s = schedule(rumcess, dt.date(2026, 3, 2), arm="control")
    product = next(u for u in s.unscheduled if u.form == "msc_product")
    assert product.status is SlotStatus.NOT_REQUIRED
    assert product.reason == "not given in the Standard therapy arm"
    infusion = [slot for slot in s.slots if slot.form == "msc_infusion"]
    assert infusion and all(slot.reason == "not given in the Standard therapy arm"
                            for slot in infusion)
