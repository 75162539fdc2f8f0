"""Pre-screening rules on synthetic patients built to sit on every rule and boundary.

Each patient is sent as FHIR R4 resources (so ingest, normalization and detection are
exercised together). Expected values come from the protocol text (RUMCESS: SSC 2012
onset, ≤ 10 h, ANC ≤ 1 × 10^9/L, age ≥ 17 and not > 75) and the conventions in
docs/conventions.md, worked out by hand below.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.prescreen.fhir_builders import (
    ANC,
    DOBUTAMINE,
    LACTATE,
    MAP,
    NEUT_PCT,
    NOREPI,
    SBP,
    WBC,
    obs,
    patient,
    pressor,
    transaction,
)
from trialdesk.eligibility.results import CriterionStatus
from trialdesk.interop.fhir import ingest_resources
from trialdesk.prescreen.config import PrescreenConfig
from trialdesk.prescreen.detector import PrescreenMonitor
from trialdesk.prescreen.results import Status
from trialdesk.protocol.loader import load_protocol

ROOT = Path(__file__).resolve().parents[2]
RUMCESS = PrescreenConfig.from_protocol(load_protocol(ROOT / "protocols" / "rumcess.yaml"))
THREEARM = PrescreenConfig.from_protocol(load_protocol(ROOT / "tests/protocols/threearm.yaml"))
MET, NOT_MET, UNKNOWN = CriterionStatus.MET, CriterionStatus.NOT_MET, CriterionStatus.UNKNOWN
ONSET = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def utc(hhmmss: str, day: int = 1) -> dt.datetime:
    return dt.datetime.fromisoformat(f"2026-03-{day:02d}T{hhmmss}+00:00")


def monitor(*resources, config=RUMCESS) -> PrescreenMonitor:
    result = ingest_resources(resources)
    m = PrescreenMonitor(config)
    m.feed(result.events, result.patients.values(), result.retracted)
    return m


def typical(pid="p1", *, anc=(0.8, "10*9/L"), anc_at="2026-03-01T07:00:00Z",
            birth="1970-05-01", map_value=65.0, map_at="2026-03-01T08:00:00Z", issued=None):
    """Shock at 09:00 UTC (norepinephrine after MAP 65 at 08:00), ANC 0.8 at 07:00."""
    items = [obs(f"{pid}-map", pid, MAP, map_value, "mm[Hg]", map_at),
             pressor(f"{pid}-ne", pid, NOREPI, 0.1, "ug/kg/min", "2026-03-01T09:00:00Z")]
    if birth is not None:
        items.append(patient(pid, birth))
    if anc is not None:
        items.append(obs(f"{pid}-anc", pid, ANC, anc[0], anc[1], anc_at, issued=issued))
    return items


def test_typical_candidate_with_onset_deadline_and_time_left():
    m = monitor(*typical())
    a = m.assess("p1", now=utc("18:00:00"))
    assert a.status is Status.CANDIDATE
    assert a.onset_utc == ONSET
    assert a.deadline_utc == utc("19:00:00")
    assert a.hours_left == pytest.approx(1.0)
    assert [c.status for c in a.checks] == [MET] * 5
    sources = {d.source for d in a.data_used()}
    assert {"MedicationAdministration/p1-ne", "Observation/p1-map",
            "Observation/p1-anc", "Patient/p1"} <= sources


def test_window_is_inclusive_at_exactly_10_hours():
    m = monitor(*typical())
    at_deadline = m.assess("p1", now=utc("19:00:00"))
    assert at_deadline.window.is_open and at_deadline.hours_left == 0
    one_second_late = m.assess("p1", now=utc("19:00:01"))
    assert not one_second_late.window.is_open


def test_neutrophil_count_charted_exactly_10_h_after_onset_counts():
    m = monitor(*typical(anc_at="2026-03-01T19:00:00Z"))
    a = m.assess("p1")
    assert a.status is Status.CANDIDATE
    assert a.hours_to_detection == 10.0


def test_result_available_after_the_deadline_is_too_late():
    m = monitor(*typical(anc_at="2026-03-01T19:00:00Z", issued="2026-03-01T19:01:00Z"))
    a = m.assess("p1")
    assert a.status is Status.NO
    assert a.check("window").status is NOT_MET
    assert "after the deadline" in a.check("window").reason


def test_neutrophil_count_10_h_and_1_s_after_onset_is_outside_the_search():
    m = monitor(*typical(anc_at="2026-03-01T19:00:01Z"))
    a = m.assess("p1")
    assert a.check("neutropenia").status is UNKNOWN
    assert a.status is Status.POSSIBLE


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (1.0, "10*9/L", MET),          # exactly 1.0 × 10^9/L qualifies for "≤ 1"
    (1000, "/uL", MET),            # 1000 cells/µL is exactly 1.0 × 10^9/L
    (1.01, "10*9/L", NOT_MET),
    (1001, "/uL", NOT_MET),
    (0.5, "10*3/uL", MET),
])
def test_neutropenia_threshold_in_any_unit(value, unit, expected):
    a = monitor(*typical(anc=(value, unit))).assess("p1")
    assert a.check("neutropenia").status is expected


def test_unit_error_500_as_10e9_per_l_is_reported_and_not_used():
    result = ingest_resources(typical(anc=(500, "10*9/L")))
    assert result.report.implausible == {"anc:LIKELY_WRONG_UNIT": 1}
    assert "cells/uL" in result.report.examples["implausible:anc:LIKELY_WRONG_UNIT"][0]
    m = PrescreenMonitor(RUMCESS)
    m.feed(result.events, result.patients.values())
    assert m.assess("p1").check("neutropenia").status is UNKNOWN


def test_unit_error_0_5_cells_per_ul_is_reported_and_not_used():
    result = ingest_resources(typical(anc=(0.5, "/uL")))
    assert sum(result.report.implausible.values()) == 1
    assert not [e for e in result.events if e.kind.value == "anc"]


def test_anc_from_wbc_and_differential():
    pid = "p1"
    items = [*typical(anc=None),
             obs("wbc", pid, WBC, 2.5, "10*9/L", "2026-03-01T08:30:00Z"),
             obs("pct", pid, NEUT_PCT, 40, "%", "2026-03-01T08:30:00Z")]
    a = monitor(*items).assess(pid)
    neutro = a.check("neutropenia")
    assert neutro.status is MET and "ANC 1 ×10^9/L" in neutro.reason  # 2.5 × 40 % = 1.0
    assert {d.source for d in neutro.data_used} == {"Observation/wbc", "Observation/pct"}


def test_count_closest_to_onset_is_used():
    pid = "p1"
    items = [*typical(anc=(0.4, "10*9/L"), anc_at="2026-03-01T05:00:00Z"),
             obs("later", pid, ANC, 1.6, "10*9/L", "2026-03-01T10:00:00Z")]
    a = monitor(*items).assess(pid)
    assert a.check("neutropenia").status is NOT_MET  # 1 h after beats 4 h before


@pytest.mark.parametrize(("map_value", "map_at", "expected"), [
    (69.0, "2026-03-01T03:00:00Z", MET),        # exactly 6 h before the start
    (70.0, "2026-03-01T08:00:00Z", NOT_MET),    # MAP 70 is not < 70
    (69.0, "2026-03-01T02:59:59Z", UNKNOWN),    # 6 h 1 s before: no BP in the look-back
    (69.0, "2026-03-01T09:00:00Z", MET),        # at the start itself
])
def test_ssc_2012_hypotension_look_back(map_value, map_at, expected):
    a = monitor(*typical(map_value=map_value, map_at=map_at)).assess("p1")
    assert a.check("shock_onset").status is expected


def test_systolic_below_90_is_hypotension():
    items = [*typical(map_value=75), obs("sbp", "p1", SBP, 89, "mm[Hg]", "2026-03-01T08:30:00Z")]
    assert monitor(*items).assess("p1").onset_utc == ONSET


def test_no_vasopressor_no_shock_and_dobutamine_is_not_a_vasopressor():
    items = [patient("p1"), obs("m", "p1", MAP, 55, "mm[Hg]", "2026-03-01T08:00:00Z"),
             pressor("dob", "p1", DOBUTAMINE, 5, "ug/kg/min", "2026-03-01T09:00:00Z"),
             obs("a", "p1", ANC, 0.2, "10*9/L", "2026-03-01T08:00:00Z")]
    a = monitor(*items).assess("p1")
    assert a.status is Status.NO
    assert a.check("shock_onset").reason == "no vasopressor infusion charted"


def test_continuation_record_is_not_a_new_start():
    pid = "p1"
    items = [patient(pid), obs("a", pid, ANC, 0.2, "10*9/L", "2026-03-01T08:00:00Z"),
             obs("m1", pid, MAP, 80, "mm[Hg]", "2026-03-01T08:30:00Z"),
             pressor("ne1", pid, NOREPI, 0.05, "ug/kg/min", "2026-03-01T09:00:00Z",
                     "2026-03-01T11:00:00Z"),
             obs("m2", pid, MAP, 60, "mm[Hg]", "2026-03-01T11:30:00Z"),
             # 1 h after the end of the first record: same episode, not a start
             pressor("ne2", pid, NOREPI, 0.2, "ug/kg/min", "2026-03-01T12:00:00Z")]
    assert monitor(*items).assess(pid).check("shock_onset").status is NOT_MET
    # a start 1 h 1 min after the previous end opens a new episode
    items[-1] = pressor("ne2", pid, NOREPI, 0.2, "ug/kg/min", "2026-03-01T12:01:00Z")
    a = monitor(*items).assess(pid)
    assert a.status is Status.CANDIDATE
    assert a.onset_utc == utc("12:01:00")


@pytest.mark.parametrize(("birth", "expected"), [
    ("1950-03-02", Status.CANDIDATE),  # 75 on the day of onset (76th birthday tomorrow)
    ("1950-03-01", Status.NO),         # 76th birthday on the day of onset: > 75
    ("2009-03-01", Status.CANDIDATE),  # 17th birthday (Moscow date)
    ("2009-03-02", Status.NO),         # 16
    (None, Status.POSSIBLE),           # no Patient resource: age unknown
])
def test_age_limits_in_completed_years(birth, expected):
    assert monitor(*typical(birth=birth)).assess("p1").status is expected


def test_out_of_order_and_duplicate_messages_give_the_same_result():
    items = typical()
    in_order = monitor(*items).assess("p1")
    reverse = PrescreenMonitor(RUMCESS)
    for resource in reversed(items):
        r = ingest_resources([resource])
        reverse.feed(r.events, r.patients.values())
    again = ingest_resources([transaction(*items)])
    outcome = reverse.feed(again.events, again.patients.values())
    assert outcome.duplicates == 3 and outcome.added == 0
    assert reverse.assess("p1") == in_order


def test_newer_version_wins_whatever_the_arrival_order():
    old = obs("p1-anc", "p1", ANC, 0.5, "10*9/L", "2026-03-01T07:00:00Z",
              updated="2026-03-01T07:30:00Z")
    corrected = obs("p1-anc", "p1", ANC, 1.5, "10*9/L", "2026-03-01T07:00:00Z",
                    updated="2026-03-01T08:30:00Z")
    m = monitor(*typical(anc=None), corrected)
    late = ingest_resources([old])
    assert m.feed(late.events).stale == 1
    assert m.assess("p1").check("neutropenia").status is NOT_MET


def test_entered_in_error_retracts_the_value():
    m = monitor(*typical())
    withdrawn = obs("p1-anc", "p1", ANC, 0.8, "10*9/L", "2026-03-01T07:00:00Z",
                    status="entered-in-error")
    r = ingest_resources([withdrawn])
    assert m.feed(retracted=r.retracted).retracted == 1
    assert m.assess("p1").check("neutropenia").status is UNKNOWN


def test_live_view_before_the_count_arrives_is_possible_then_candidate():
    m = monitor(*typical(anc=(0.8, "10*9/L"), anc_at="2026-03-01T10:00:00Z",
                         issued="2026-03-01T11:00:00Z"))
    assert m.assess("p1", now=utc("10:30:00")).status is Status.POSSIBLE
    late = m.assess("p1", now=utc("11:00:00"))
    assert late.status is Status.CANDIDATE and late.hours_to_detection == 2.0


# --- Sepsis-3 (the three-arm test protocol: 6-h window, ANC < 500/µL, age ≥ 18) -------


def sepsis3(lactate: float, lactate_at: str, map_value: float = 60):
    pid = "s3"
    return [patient(pid, "1980-01-01"),
            obs("m", pid, MAP, map_value, "mm[Hg]", "2026-03-01T08:30:00Z"),
            pressor("ne", pid, NOREPI, 0.1, "ug/kg/min", "2026-03-01T09:00:00Z"),
            obs("lac", pid, LACTATE, lactate, "mmol/L", lactate_at),
            obs("anc", pid, ANC, 400, "/uL", "2026-03-01T08:00:00Z")]


def test_sepsis3_onset_is_the_later_of_vasopressor_and_lactate():
    a = monitor(*sepsis3(2.5, "2026-03-01T11:00:00Z"), config=THREEARM).assess("s3")
    assert a.status is Status.CANDIDATE
    assert a.onset_utc == utc("11:00:00")
    assert a.deadline_utc == utc("17:00:00")  # the protocol's 6-h window


@pytest.mark.parametrize(("lactate", "at", "map_value", "expected"), [
    (2.0, "2026-03-01T11:00:00Z", 60, NOT_MET),   # lactate must exceed 2 mmol/L
    (2.1, "2026-03-01T15:00:00Z", 60, MET),       # exactly +6 h
    (2.1, "2026-03-01T15:00:01Z", 60, UNKNOWN),   # no lactate within ±6 h
    (3.0, "2026-03-01T10:00:00Z", 65, NOT_MET),   # MAP 65 is not < 65
])
def test_sepsis3_boundaries(lactate, at, map_value, expected):
    a = monitor(*sepsis3(lactate, at, map_value), config=THREEARM).assess("s3")
    assert a.check("shock_onset").status is expected
