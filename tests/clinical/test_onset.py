"""Onset of septic shock (SSC 2012, Sepsis-3, recorded) and the enrolment window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from trialdesk.clinical import timeutil
from trialdesk.clinical.onset import (
    BloodPressureReading,
    EnrolmentWindow,
    FluidBolus,
    LactateValue,
    OnsetDefinition,
    OnsetEvidence,
    ShockOnset,
    Urgency,
    VasopressorStart,
    determine_onset,
)
from trialdesk.errors import (
    FutureTime,
    ImplausibleValue,
    LikelyWrongUnit,
    MissingValue,
    NaiveTime,
    TimeOrderError,
)

T0 = datetime(2026, 3, 1, 2, 15, tzinfo=UTC)
H = timedelta(hours=1)
MIN = timedelta(minutes=1)
BERLIN = ZoneInfo("Europe/Berlin")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# --- timeutil ------------------------------------------------------------------------


class TestParseAware:
    def test_offset_converted_to_utc(self):
        t = timeutil.parse_aware("2026-03-01T05:15:00+03:00", field="onset")
        assert t == T0
        assert t.tzinfo is UTC

    @pytest.mark.parametrize("text", ["2026-03-01T02:15:00Z", "2026-03-01T02:15:00z",
                                      " 2026-03-01T02:15Z ", "2026-03-01 02:15:00+00:00"])
    def test_z_suffix_and_variants(self, text):
        assert timeutil.parse_aware(text, field="onset") == T0

    def test_naive_string_refused(self):
        with pytest.raises(NaiveTime) as info:
            timeutil.parse_aware("2026-03-01T02:15:00", field="onset")
        assert info.value.field == "onset"
        assert "has no UTC offset; add one, e.g. 2026-03-01T02:15:00+03:00" in str(info.value)
        assert info.value.code == "TIMEZONE_REQUIRED"

    def test_naive_datetime_refused(self):
        with pytest.raises(NaiveTime):
            timeutil.parse_aware(datetime(2026, 3, 1, 2, 15), field="onset")

    def test_aware_datetime_normalised(self):
        local = datetime(2026, 3, 1, 3, 15, tzinfo=BERLIN)
        assert timeutil.parse_aware(local, field="onset") == T0

    @pytest.mark.parametrize("garbage", ["yesterday", "", "2026-13-01T00:00Z", "01/03/2026 02:15"])
    def test_garbage_refused_with_field_and_example(self, garbage):
        with pytest.raises(ImplausibleValue) as info:
            timeutil.parse_aware(garbage, field="randomized_at")
        assert info.value.field == "randomized_at"
        assert "randomized_at" in str(info.value)
        assert timeutil.EXAMPLE in str(info.value)

    def test_date_without_time_refused(self):
        with pytest.raises(ImplausibleValue, match="date without a time"):
            timeutil.parse_aware("2026-03-01", field="onset")

    def test_non_string_refused(self):
        with pytest.raises(ImplausibleValue):
            timeutil.parse_aware(12345, field="onset")  # type: ignore[arg-type]


class TestNotFuture:
    def test_past_and_within_tolerance_accepted(self):
        assert timeutil.ensure_not_future(at(-1), T0, field="onset") == at(-1)
        assert timeutil.ensure_not_future(T0 + 5 * MIN, T0, field="onset") == T0 + 5 * MIN

    def test_future_refused_with_both_times(self):
        with pytest.raises(FutureTime) as info:
            timeutil.ensure_not_future(at(1), T0, field="onset")
        message = str(info.value)
        assert "2026-03-01 03:15 UTC" in message and "2026-03-01 02:15 UTC" in message
        assert info.value.field == "onset"

    def test_custom_tolerance(self):
        with pytest.raises(FutureTime):
            timeutil.ensure_not_future(T0 + MIN, T0, field="x", tolerance=timedelta(0))

    def test_naive_now_refused(self):
        with pytest.raises(NaiveTime):
            timeutil.ensure_not_future(T0, datetime(2026, 3, 1), field="onset")


class TestFormatLocal:
    def test_moscow(self):
        assert timeutil.format_local(datetime(2026, 2, 28, 23, 15, tzinfo=UTC),
                                     "Europe/Moscow") == "2026-03-01 02:15 MSK (UTC+03:00)"

    def test_berlin_summer_and_winter(self):
        assert timeutil.format_local(T0, "Europe/Berlin") == "2026-03-01 03:15 CET (UTC+01:00)"
        assert (timeutil.format_local(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "Europe/Berlin")
                == "2026-07-01 14:00 CEST (UTC+02:00)")

    def test_zone_without_abbreviation_and_negative_offset(self):
        assert timeutil.format_local(T0, "Asia/Dubai") == "2026-03-01 06:15 (UTC+04:00)"
        assert timeutil.format_local(T0, "America/St_Johns") == "2026-02-28 22:45 NST (UTC-03:30)"

    def test_seconds_shown_only_when_present(self):
        assert timeutil.format_utc(T0 + timedelta(seconds=1)) == "2026-03-01 02:15:01 UTC"

    def test_unknown_zone(self):
        with pytest.raises(ImplausibleValue, match="Europe/Moscow"):
            timeutil.format_local(T0, "Mars/Olympus")

    def test_utcnow_is_aware_utc(self):
        assert timeutil.utcnow().tzinfo is UTC


# --- evidence validation -------------------------------------------------------------


class TestEvidenceItems:
    def test_naive_time_refused(self):
        with pytest.raises(NaiveTime):
            VasopressorStart(datetime(2026, 3, 1, 2, 15), "norepinephrine")

    def test_string_times_accepted(self):
        assert VasopressorStart("2026-03-01T05:15+03:00", "noradrenaline").at_utc == T0  # type: ignore[arg-type]

    def test_reading_needs_a_pressure(self):
        with pytest.raises(MissingValue):
            BloodPressureReading(T0)

    def test_implausible_pressure(self):
        with pytest.raises(ImplausibleValue):
            BloodPressureReading(T0, sbp_mmhg=900)

    def test_lactate_in_mg_dl_hinted(self):
        with pytest.raises(LikelyWrongUnit, match="mg/dL"):
            LactateValue(T0, 36)

    def test_hypotension_thresholds_are_strict(self):
        assert BloodPressureReading(T0, sbp_mmhg=89).is_hypotensive
        assert not BloodPressureReading(T0, sbp_mmhg=90).is_hypotensive
        assert BloodPressureReading(T0, map_mmhg=69.9).is_hypotensive
        assert not BloodPressureReading(T0, map_mmhg=70).is_hypotensive
        assert BloodPressureReading(T0, sbp_mmhg=110, map_mmhg=65).is_hypotensive

    def test_evidence_accepts_lists_and_sorts(self):
        ev = OnsetEvidence(vasopressor_starts=[VasopressorStart(at(2), "b"),
                                               VasopressorStart(at(1), "a")])
        assert isinstance(ev.vasopressor_starts, tuple)
        assert [v.drug for v in ev.vasopressor_starts] == ["a", "b"]

    def test_evidence_wrong_item_type(self):
        with pytest.raises(ImplausibleValue):
            OnsetEvidence(lactates=[VasopressorStart(T0, "x")])  # type: ignore[list-item]


# --- SSC 2012 ------------------------------------------------------------------------


def ssc_case(**overrides) -> OnsetEvidence:
    base = dict(
        bp_readings=[BloodPressureReading(at(-2), sbp_mmhg=120, map_mmhg=85),
                     BloodPressureReading(at(-1), sbp_mmhg=84, map_mmhg=58),
                     BloodPressureReading(at(-0.5), sbp_mmhg=82)],
        vasopressor_starts=[VasopressorStart(T0, "norepinephrine")],
        fluid_boluses=[FluidBolus(at(-1.5), 20), FluidBolus(at(-0.75), 10)],
    )
    base.update(overrides)
    return OnsetEvidence(**base)


class TestSsc2012:
    def test_onset_is_vasopressor_start(self):
        onset = determine_onset(ssc_case(), OnsetDefinition.SSC_2012)
        assert onset is not None
        assert onset.at_utc == T0
        assert onset.definition is OnsetDefinition.SSC_2012

    def test_evidence_names_the_readings_used(self):
        onset = determine_onset(ssc_case(), "ssc2012")
        assert onset is not None
        text = "\n".join(onset.evidence)
        assert "norepinephrine started at 2026-03-01 02:15 UTC" in text
        assert "SBP 84 / MAP 58 mmHg at 2026-03-01 01:15 UTC, 1 h 00 min before" in text
        assert "SBP 82 mmHg at 2026-03-01 01:45 UTC, 30 min before" in text
        assert "SBP 120" not in text  # normotensive reading not used
        assert "30 mL/kg in 2 bolus(es)" in text

    def test_first_qualifying_vasopressor_wins(self):
        ev = ssc_case(vasopressor_starts=[VasopressorStart(at(-8), "dopamine"),
                                          VasopressorStart(T0, "norepinephrine"),
                                          VasopressorStart(at(1), "vasopressin")])
        onset = determine_onset(ev, OnsetDefinition.SSC_2012)
        assert onset is not None and onset.at_utc == T0  # dopamine had no hypotension before

    def test_no_vasopressor(self):
        assert determine_onset(ssc_case(vasopressor_starts=[]), OnsetDefinition.SSC_2012) is None

    def test_no_hypotension(self):
        ev = ssc_case(bp_readings=[BloodPressureReading(at(-1), sbp_mmhg=95, map_mmhg=72)])
        assert determine_onset(ev, OnsetDefinition.SSC_2012) is None

    def test_hypotension_only_after_vasopressor(self):
        ev = ssc_case(bp_readings=[BloodPressureReading(at(0.5), sbp_mmhg=80)])
        assert determine_onset(ev, OnsetDefinition.SSC_2012) is None

    def test_lookback_boundary_inclusive_and_configurable(self):
        ev = ssc_case(bp_readings=[BloodPressureReading(at(-6), map_mmhg=60)])
        assert determine_onset(ev, OnsetDefinition.SSC_2012) is not None
        ev = ssc_case(bp_readings=[BloodPressureReading(at(-6) - MIN, map_mmhg=60)])
        assert determine_onset(ev, OnsetDefinition.SSC_2012) is None
        assert determine_onset(ev, OnsetDefinition.SSC_2012, lookback=7 * H) is not None

    def test_same_minute_counts(self):
        ev = ssc_case(bp_readings=[BloodPressureReading(T0, map_mmhg=60)])
        assert determine_onset(ev, OnsetDefinition.SSC_2012) is not None

    def test_minimum_fluids_optional(self):
        assert determine_onset(ssc_case(), "ssc2012", min_fluid_ml_per_kg=30) is not None
        assert determine_onset(ssc_case(), "ssc2012", min_fluid_ml_per_kg=31) is None
        onset = determine_onset(ssc_case(fluid_boluses=[]), "ssc2012")
        assert onset is not None
        assert any("no fluid bolus recorded" in line for line in onset.evidence)

    def test_bad_lookback(self):
        with pytest.raises(ImplausibleValue):
            determine_onset(ssc_case(), "ssc2012", lookback=timedelta(0))


# --- Sepsis-3 ------------------------------------------------------------------------


def s3_case(lactates, starts=None) -> OnsetEvidence:
    return OnsetEvidence(
        vasopressor_starts=starts or [VasopressorStart(T0, "norepinephrine")],
        lactates=lactates,
    )


class TestSepsis3:
    def test_lactate_before_vasopressor_onset_is_vasopressor(self):
        onset = determine_onset(s3_case([LactateValue(at(-2), 3.5)]), OnsetDefinition.SEPSIS_3)
        assert onset is not None and onset.at_utc == T0
        text = "\n".join(onset.evidence)
        assert "lactate 3.5 mmol/L at 2026-03-01 00:15 UTC, 2 h 00 min before" in text
        assert "norepinephrine started" in text

    def test_lactate_after_vasopressor_onset_is_lactate(self):
        onset = determine_onset(s3_case([LactateValue(at(1.5), 2.1)]), "sepsis3")
        assert onset is not None and onset.at_utc == at(1.5)
        assert any("1 h 30 min after" in line for line in onset.evidence)

    def test_first_high_lactate_in_window_is_used(self):
        ev = s3_case([LactateValue(at(-7), 5.0), LactateValue(at(-3), 1.5),
                      LactateValue(at(1), 2.5), LactateValue(at(2), 4.0)])
        onset = determine_onset(ev, "sepsis3")
        assert onset is not None and onset.at_utc == at(1)
        assert not any("lactate 5 " in line for line in onset.evidence)

    def test_lactate_exactly_2_does_not_count(self):
        assert determine_onset(s3_case([LactateValue(at(-1), 2.0)]), "sepsis3") is None

    def test_no_vasopressor(self):
        ev = OnsetEvidence(lactates=[LactateValue(T0, 6.0)])
        assert determine_onset(ev, OnsetDefinition.SEPSIS_3) is None

    def test_window_boundaries(self):
        assert determine_onset(s3_case([LactateValue(at(6), 3)]), "sepsis3") is not None
        assert determine_onset(s3_case([LactateValue(at(-6), 3)]), "sepsis3") is not None
        outside = s3_case([LactateValue(at(6) + MIN, 3)])
        assert determine_onset(outside, "sepsis3") is None
        onset = determine_onset(outside, "sepsis3", lactate_window=8 * H)
        assert onset is not None and onset.at_utc == at(6) + MIN

    def test_earliest_over_vasopressor_starts(self):
        ev = s3_case([LactateValue(at(10), 4.0)],
                     starts=[VasopressorStart(T0, "norepinephrine"),
                             VasopressorStart(at(9), "vasopressin")])
        onset = determine_onset(ev, "sepsis3")
        assert onset is not None and onset.at_utc == at(10)
        assert any("vasopressin" in line for line in onset.evidence)

    def test_ssc_and_sepsis3_can_disagree(self):
        ev = OnsetEvidence(
            bp_readings=[BloodPressureReading(at(-1), sbp_mmhg=80)],
            vasopressor_starts=[VasopressorStart(T0, "norepinephrine")],
            lactates=[LactateValue(at(-1), 1.8)],
        )
        assert determine_onset(ev, "ssc2012") is not None
        assert determine_onset(ev, "sepsis3") is None


class TestRecorded:
    def test_recorded_time_used_as_is(self):
        ev = OnsetEvidence(recorded_onset_utc=datetime(2026, 3, 1, 5, 15,
                                                       tzinfo=ZoneInfo("Europe/Moscow")))
        onset = determine_onset(ev, OnsetDefinition.RECORDED)
        assert onset is not None and onset.at_utc == T0
        assert onset.evidence == ("onset recorded by the clinician: 2026-03-01 02:15 UTC",)

    def test_recorded_missing(self):
        assert determine_onset(OnsetEvidence(), "recorded") is None

    def test_unknown_definition(self):
        with pytest.raises(ImplausibleValue, match="ssc2012"):
            determine_onset(OnsetEvidence(), "sepsis2")


class TestShockOnset:
    def test_to_dict_and_str(self):
        onset = ShockOnset(T0, OnsetDefinition.SSC_2012, ("a", "b"))
        assert onset.to_dict() == {"at_utc": "2026-03-01T02:15:00+00:00",
                                   "definition": "ssc2012", "evidence": ["a", "b"]}
        assert str(onset).startswith("septic-shock onset 2026-03-01 02:15 UTC (SSC 2012)")

    def test_naive_refused(self):
        with pytest.raises(NaiveTime):
            ShockOnset(datetime(2026, 3, 1), OnsetDefinition.RECORDED)


# --- enrolment window ----------------------------------------------------------------


class TestEnrolmentWindow:
    window = EnrolmentWindow(T0, 10)

    def test_deadline(self):
        assert self.window.deadline_utc == at(10)

    def test_exactly_10_h_is_open(self):
        assert self.window.is_open(at(10))
        assert self.window.time_left(at(10)) == timedelta(0)
        assert self.window.status(at(10)).urgency is Urgency.URGENT

    def test_10_h_plus_1_s_is_closed(self):
        now = at(10) + timedelta(seconds=1)
        assert not self.window.is_open(now)
        assert self.window.time_left(now) == timedelta(seconds=-1)
        status = self.window.status(now)
        assert status.urgency is Urgency.CLOSED and not status.is_open
        assert "closed 1 s ago" in str(status)

    def test_elapsed_and_time_left(self):
        assert self.window.elapsed(at(4.5)) == timedelta(hours=4.5)
        assert self.window.time_left(at(4.5)) == timedelta(hours=5.5)

    @pytest.mark.parametrize(("hours", "urgency"), [
        (0, Urgency.OK), (7.99, Urgency.OK), (8, Urgency.SOON), (8.5, Urgency.SOON),
        (9, Urgency.URGENT), (9.99, Urgency.URGENT), (10.01, Urgency.CLOSED),
    ])
    def test_urgency_levels(self, hours, urgency):
        assert self.window.status(at(hours)).urgency is urgency

    def test_status_values(self):
        status = self.window.status(at(4.5))
        assert status.hours_elapsed == pytest.approx(4.5)
        assert status.hours_left == pytest.approx(5.5)
        assert status.is_open
        assert status.to_dict()["urgency"] == "ok"
        assert str(status) == ("4 h 30 min since onset, 5 h 30 min left "
                               "(deadline 2026-03-01 12:15 UTC) [ok]")

    def test_future_onset_refused(self):
        with pytest.raises(FutureTime) as info:
            self.window.status(at(-1))
        assert info.value.field == "onset"
        with pytest.raises(FutureTime):
            self.window.is_open(at(-1))

    def test_onset_a_few_minutes_ahead_tolerated(self):
        assert self.window.is_open(T0 - 2 * MIN)

    def test_naive_inputs_refused(self):
        with pytest.raises(NaiveTime):
            EnrolmentWindow(datetime(2026, 3, 1, 2, 15), 10)
        with pytest.raises(NaiveTime):
            self.window.is_open(datetime(2026, 3, 1, 5, 0))
        with pytest.raises(NaiveTime):
            self.window.check_not_before_onset(datetime(2026, 3, 1, 5, 0), "randomized_at")

    def test_randomization_before_onset(self):
        with pytest.raises(TimeOrderError) as info:
            self.window.check_not_before_onset(at(-0.5), "randomized_at")
        assert "onset after randomized_at" in str(info.value)
        assert info.value.field == "randomized_at"
        assert self.window.check_not_before_onset(T0, "randomized_at") == T0
        assert self.window.check_not_before_onset("2026-03-01T08:00Z", "randomized_at") == at(5.75)

    @pytest.mark.parametrize("hours", [0, -1, 1e9, float("nan")])
    def test_bad_deadline(self, hours):
        with pytest.raises(ImplausibleValue):
            EnrolmentWindow(T0, hours)

    def test_to_dict_and_str(self):
        assert self.window.to_dict() == {"onset_utc": "2026-03-01T02:15:00+00:00",
                                         "deadline_hours": 10.0,
                                         "deadline_utc": "2026-03-01T12:15:00+00:00"}
        assert "deadline inclusive" in str(self.window)


class TestDaylightSaving:
    """Durations are real hours: a window over a clock change is not 10 wall-clock hours."""

    def test_spring_forward_berlin(self):
        # 2026-03-29 02:00 CET clocks jump to 03:00 CEST: 10 real hours = 11 wall-clock hours.
        onset = datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN)
        window = EnrolmentWindow(onset, 10)
        assert timeutil.format_local(window.deadline_utc, "Europe/Berlin") == (
            "2026-03-29 11:30 CEST (UTC+02:00)")
        assert window.is_open(datetime(2026, 3, 29, 11, 30, tzinfo=BERLIN))
        assert not window.is_open(datetime(2026, 3, 29, 11, 30, 1, tzinfo=BERLIN))
        # at 10:30 local (what naive wall-clock arithmetic would call the deadline) 1 h is left
        assert window.time_left(datetime(2026, 3, 29, 10, 30, tzinfo=BERLIN)) == H

    def test_fall_back_berlin(self):
        # 2026-10-25 03:00 CEST clocks go back to 02:00 CET: 10 real hours = 9 wall-clock hours.
        onset = datetime(2026, 10, 25, 0, 30, tzinfo=BERLIN)
        window = EnrolmentWindow(onset, 10)
        assert timeutil.format_local(window.deadline_utc, "Europe/Berlin") == (
            "2026-10-25 09:30 CET (UTC+01:00)")
        assert window.elapsed(datetime(2026, 10, 25, 9, 30, tzinfo=BERLIN)) == 10 * H
        assert not window.is_open(datetime(2026, 10, 25, 10, 30, tzinfo=BERLIN))

    def test_offset_strings_across_change(self):
        onset = timeutil.parse_aware("2026-03-29T01:30:00+01:00", field="onset")
        now = timeutil.parse_aware("2026-03-29T03:30:00+02:00", field="now")
        assert EnrolmentWindow(onset, 10).elapsed(now) == H
