"""Reporting-clock durations read as days, hours and minutes, by size.

Rule (trialdesk/safety/durations.py): under 1 h → minutes; 1 h up to under 48 h → hours
and minutes; 48 h and more → days and hours; boundaries belong to the larger unit; the
value is truncated (never rounded up); negative seconds until a due time = overdue.
The expected strings are worked out by hand from those rules.
"""

from __future__ import annotations

import math

import pytest

from trialdesk.safety.durations import describe_duration, describe_time_left

MIN = 60
HOUR = 3600
DAY = 86_400


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0 min"),
    (59, "0 min"),
    (59 * MIN, "59 min"),
    (59 * MIN + 59, "59 min"),
    (60 * MIN, "1 h 0 min"),
    (5 * HOUR + 20 * MIN, "5 h 20 min"),
    (24 * HOUR, "24 h 0 min"),
    (47 * HOUR + 59 * MIN, "47 h 59 min"),
    (47 * HOUR + 59 * MIN + 59, "47 h 59 min"),
    (48 * HOUR, "2 d 0 h"),
    (2 * DAY + 3 * HOUR + 59 * MIN, "2 d 3 h"),
    (971 * HOUR, "40 d 11 h"),
])
def test_durations_take_their_units_from_their_size(seconds, shown):
    assert describe_duration(seconds) == shown


def test_the_sign_does_not_change_the_magnitude():
    assert describe_duration(-(59 * MIN)) == "59 min"
    assert describe_duration(-(48 * HOUR)) == "2 d 0 h"


@pytest.mark.parametrize(("seconds_left", "shown"), [
    (5 * HOUR + 20 * MIN, "5 h 20 min left"),
    (2 * DAY + 3 * HOUR, "2 d 3 h left"),
    (0, "0 min left"),  # exactly at the due time a report is still in time
    (-1, "0 min late"),
    (-(59 * MIN), "59 min late"),
    (-(60 * MIN), "1 h 0 min late"),
    (-(47 * HOUR + 59 * MIN), "47 h 59 min late"),
    (-(48 * HOUR), "2 d 0 h late"),
    (-(971 * HOUR), "40 d 11 h late"),
])
def test_a_negative_time_left_reads_as_late(seconds_left, shown):
    assert describe_time_left(seconds_left) == shown


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf])
def test_a_duration_must_be_finite(seconds):
    with pytest.raises(ValueError, match="finite"):
        describe_duration(seconds)
