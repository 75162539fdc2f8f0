"""Expedited-reporting deadlines (domain.md §7.5), against hand-computed calendar times.

Every expected instant below was worked out by hand from the rule (24 real hours;
7 or 15 calendar days, day 0 = the local date of the sponsor's first knowledge, the
report in time until the end of the last day in the sponsor's zone) and the time-zone
facts: Moscow is UTC+3 all year since 2014; Berlin is UTC+1 (CET) and UTC+2 (CEST)
from 02:00 CET on 29 March 2026 to 03:00 CEST on 25 October 2026.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from trialdesk.errors import InputRejected, NaiveTime, TimeOrderError
from trialdesk.protocol import load_protocol
from trialdesk.safety import (
    EventFacts,
    ObligationKind,
    ObligationStatus,
    ReportingRules,
    obligations,
)

ROOT = Path(__file__).resolve().parents[2]
MSK = timezone(timedelta(hours=3))
CET = timezone(timedelta(hours=1))
CEST = timezone(timedelta(hours=2))
US = timedelta(microseconds=1)

SAE = EventFacts.build(seriousness=["hospitalisation"], severity_grade=3,
                       causality="unrelated", expectedness="unexpected", outcome="recovering")
FATAL_SUSAR = EventFacts.build(seriousness=["death"], severity_grade=5, causality="probable",
                               expectedness="unexpected", outcome="fatal")
OTHER_SUSAR = EventFacts.build(seriousness=["hospitalisation"], severity_grade=3,
                               causality="possible", expectedness="unexpected",
                               outcome="recovering")
LIFE_THREATENING_SUSAR = EventFacts.build(seriousness=["life_threatening"], severity_grade=4,
                                          causality="certain", expectedness="unexpected",
                                          outcome="recovering")


def _by_kind(result):
    _, obls = result
    return {o.kind: o for o in obls}


def sae_obligation(facts, awareness, at, rules=None, **reports):
    return _by_kind(obligations(facts, awareness=awareness, at=at, rules=rules,
                                **reports))[ObligationKind.SAE_TO_SPONSOR]


def susar_obligation(facts, awareness, at, rules=None, **reports):
    return _by_kind(obligations(facts, awareness=awareness, at=at, rules=rules,
                                **reports))[ObligationKind.SUSAR_TO_REGULATOR]


# --- SAE: investigator → sponsor within 24 h of awareness --------------------------------

AWARE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_sae_due_exactly_24_hours_after_awareness():
    o = sae_obligation(SAE, AWARE, AWARE + timedelta(hours=1))
    assert o.due_utc == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert o.status is ObligationStatus.DUE
    assert o.time_left == timedelta(hours=23)


def test_sae_unreported_at_exactly_24_hours_is_still_due_and_one_microsecond_later_overdue():
    assert sae_obligation(SAE, AWARE, AWARE + timedelta(hours=24)).status \
        is ObligationStatus.DUE
    late = sae_obligation(SAE, AWARE, AWARE + timedelta(hours=24) + US)
    assert late.status is ObligationStatus.OVERDUE
    assert late.lateness == US


def test_sae_reported_at_exactly_24_hours_is_met_one_second_later_is_met_late():
    at = AWARE + timedelta(days=3)
    met = sae_obligation(SAE, AWARE, at, reported_to_sponsor=AWARE + timedelta(hours=24))
    assert met.status is ObligationStatus.MET
    late = sae_obligation(SAE, AWARE, at,
                          reported_to_sponsor=AWARE + timedelta(hours=24, seconds=1))
    assert late.status is ObligationStatus.MET_LATE
    assert late.lateness == timedelta(seconds=1)


def test_a_report_recorded_after_the_moment_asked_does_not_count_yet():
    o = sae_obligation(SAE, AWARE, AWARE + timedelta(hours=2),
                       reported_to_sponsor=AWARE + timedelta(hours=5))
    assert o.status is ObligationStatus.DUE


def test_sae_24_hours_are_real_hours_across_the_berlin_spring_change():
    # 28 March 2026 12:00 CET = 11:00 UTC; 24 h later is 29 March 11:00 UTC = 13:00 CEST
    aware = datetime(2026, 3, 28, 12, 0, tzinfo=CET)
    o = sae_obligation(SAE, aware, aware)
    assert o.due_utc == datetime(2026, 3, 29, 11, 0, tzinfo=UTC)
    assert o.due_utc == datetime(2026, 3, 29, 13, 0, tzinfo=CEST)


def test_sae_24_hours_in_moscow_are_a_plain_day():
    aware = datetime(2026, 3, 28, 12, 0, tzinfo=MSK)
    assert sae_obligation(SAE, aware, aware).due_utc == datetime(2026, 3, 29, 9, 0, tzinfo=UTC)


def test_the_protocol_can_shorten_the_sponsor_deadline():
    rules = ReportingRules(sae_to_sponsor_hours=12)
    assert sae_obligation(SAE, AWARE, AWARE, rules).due_utc == \
        datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


# --- SUSAR: 7 or 15 calendar days from the sponsor's first knowledge -----------------------

MOSCOW = ReportingRules(reporting_timezone="Europe/Moscow")
BERLIN = ReportingRules(reporting_timezone="Europe/Berlin")


def test_fatal_susar_due_at_the_end_of_day_7_and_other_susar_of_day_15_moscow():
    known = datetime(2026, 3, 2, 10, 0, tzinfo=MSK)  # day 0 = Monday 2 March
    fatal = susar_obligation(FATAL_SUSAR, known, known, MOSCOW, reported_to_sponsor=known)
    assert fatal.due_utc == datetime(2026, 3, 9, 20, 59, 59, 999999, tzinfo=UTC)
    other = susar_obligation(OTHER_SUSAR, known, known, MOSCOW, reported_to_sponsor=known)
    assert other.due_utc == datetime(2026, 3, 17, 20, 59, 59, 999999, tzinfo=UTC)
    lt = susar_obligation(LIFE_THREATENING_SUSAR, known, known, MOSCOW,
                          reported_to_sponsor=known)
    assert lt.due_utc == fatal.due_utc


def test_day_0_is_the_local_date_in_the_sponsors_zone_not_the_utc_date():
    # 1 March 22:30 UTC is already 2 March 01:30 in Moscow: day 0 = 2 March
    known = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)
    o = susar_obligation(FATAL_SUSAR, known, known, MOSCOW, reported_to_sponsor=known)
    assert o.due_utc == datetime(2026, 3, 9, 23, 59, 59, 999999, tzinfo=MSK)
    # counted in UTC the same instant is day 0 = 1 March, due end of 8 March UTC
    utc = susar_obligation(FATAL_SUSAR, known, known, ReportingRules(),
                           reported_to_sponsor=known)
    assert utc.due_utc == datetime(2026, 3, 8, 23, 59, 59, 999999, tzinfo=UTC)


def test_calendar_days_across_the_berlin_spring_change_end_at_local_midnight():
    # day 0 = Wed 25 March (CET); day 7 = Wed 1 April, in CEST: ends 21:59:59.999999 UTC
    known = datetime(2026, 3, 25, 9, 0, tzinfo=CET)
    o = susar_obligation(FATAL_SUSAR, known, known, BERLIN, reported_to_sponsor=known)
    assert o.due_utc == datetime(2026, 4, 1, 21, 59, 59, 999999, tzinfo=UTC)
    # 7 × 24 h after the start of day 0 would be one hour later than the calendar rule
    naive_days = datetime(2026, 3, 25, 0, 0, tzinfo=CET) + timedelta(days=8) - US
    assert o.due_utc == naive_days - timedelta(hours=1)


def test_calendar_days_across_the_berlin_autumn_change_end_at_local_midnight():
    # day 0 = Tue 20 October (CEST); day 15 = Wed 4 November, in CET: ends 22:59:59 UTC
    known = datetime(2026, 10, 20, 12, 0, tzinfo=CEST)
    other = susar_obligation(OTHER_SUSAR, known, known, BERLIN, reported_to_sponsor=known)
    assert other.due_utc == datetime(2026, 11, 4, 22, 59, 59, 999999, tzinfo=UTC)
    fatal = susar_obligation(FATAL_SUSAR, known, known, BERLIN, reported_to_sponsor=known)
    assert fatal.due_utc == datetime(2026, 10, 27, 22, 59, 59, 999999, tzinfo=UTC)


def test_moscow_has_no_daylight_saving_change_in_october():
    known = datetime(2026, 10, 20, 12, 0, tzinfo=MSK)
    o = susar_obligation(FATAL_SUSAR, known, known, MOSCOW, reported_to_sponsor=known)
    assert o.due_utc == datetime(2026, 10, 27, 20, 59, 59, 999999, tzinfo=UTC)


def test_susar_report_at_the_last_instant_is_met_one_microsecond_later_met_late():
    known = datetime(2026, 3, 2, 10, 0, tzinfo=MSK)
    last = datetime(2026, 3, 9, 23, 59, 59, 999999, tzinfo=MSK)
    at = last + timedelta(days=1)
    met = susar_obligation(FATAL_SUSAR, known, at, MOSCOW, reported_to_sponsor=known,
                           reported_to_regulator=last)
    assert met.status is ObligationStatus.MET
    late = susar_obligation(FATAL_SUSAR, known, at, MOSCOW, reported_to_sponsor=known,
                            reported_to_regulator=last + US)
    assert late.status is ObligationStatus.MET_LATE
    overdue = susar_obligation(FATAL_SUSAR, known, last + US, MOSCOW,
                               reported_to_sponsor=known)
    assert overdue.status is ObligationStatus.OVERDUE


def test_susar_clock_starts_at_the_sponsors_knowledge_once_the_site_has_reported():
    aware = datetime(2026, 3, 2, 10, 0, tzinfo=MSK)
    sponsor_knows = datetime(2026, 3, 3, 9, 0, tzinfo=MSK)  # site reported next day
    before = susar_obligation(OTHER_SUSAR, aware, aware + timedelta(hours=1), MOSCOW)
    assert before.clock_start_utc == aware
    assert "not been informed" in before.clock_start_basis
    assert before.due_utc == datetime(2026, 3, 17, 23, 59, 59, 999999, tzinfo=MSK)
    after = susar_obligation(OTHER_SUSAR, aware, sponsor_knows, MOSCOW,
                             reported_to_sponsor=sponsor_knows)
    assert after.clock_start_utc == sponsor_knows
    assert after.due_utc == datetime(2026, 3, 18, 23, 59, 59, 999999, tzinfo=MSK)


# --- which events carry which obligation ---------------------------------------------------


def test_non_serious_event_has_no_expedited_obligation():
    facts = EventFacts.build(severity_grade=2, causality="probable",
                             expectedness="unexpected", outcome="recovered")
    cls, obls = obligations(facts, awareness=AWARE, at=AWARE)
    assert not cls.serious
    assert [o.status for o in obls] == [ObligationStatus.NOT_DUE] * 2


def test_serious_but_unrelated_or_expected_event_is_an_sae_not_a_susar():
    for causality, expectedness in [("unlikely", "unexpected"), ("unrelated", "unexpected"),
                                    ("probable", "expected")]:
        facts = EventFacts.build(seriousness=["hospitalisation"], severity_grade=3,
                                 causality=causality, expectedness=expectedness,
                                 outcome="recovering")
        cls, (sae, susar) = obligations(facts, awareness=AWARE, at=AWARE)
        assert cls.serious and not cls.susar
        assert sae.status is ObligationStatus.DUE
        assert susar.status is ObligationStatus.NOT_DUE


def test_related_means_certain_probable_possible_and_unassessed_counts_as_related():
    related = {c: EventFacts.build(seriousness=["hospitalisation"], severity_grade=3,
                                   causality=c, expectedness="unexpected",
                                   outcome="recovering")
               for c in ("certain", "probable", "possible", "unlikely", "unrelated",
                         "not_assessed")}
    susar = {c: obligations(f, awareness=AWARE, at=AWARE)[0].susar for c, f in related.items()}
    assert susar == {"certain": True, "probable": True, "possible": True, "unlikely": False,
                     "unrelated": False, "not_assessed": True}


EXEMPT = ReportingRules(exempt_event_ids=frozenset({"death_from_septic_shock"}))


def test_pre_specified_disease_related_event_is_exempt_from_expedited_reporting():
    facts = EventFacts.build(seriousness=["death"], severity_grade=5, causality="unrelated",
                             expectedness="unexpected", outcome="fatal",
                             exempt_event_id="death_from_septic_shock")
    cls, obls = obligations(facts, awareness=AWARE, at=AWARE + timedelta(days=30),
                            rules=EXEMPT)
    assert cls.serious and cls.exempt
    assert [o.status for o in obls] == [ObligationStatus.NOT_DUE] * 2
    assert all("exempt" in o.reason for o in obls)


def test_an_exempt_event_judged_related_to_msc_is_reported_after_all():
    facts = EventFacts.build(seriousness=["death"], severity_grade=5, causality="possible",
                             expectedness="unexpected", outcome="fatal",
                             exempt_event_id="death_from_septic_shock")
    cls, (sae, susar) = obligations(facts, awareness=AWARE, at=AWARE, rules=EXEMPT)
    assert not cls.exempt and cls.susar
    assert sae.status is ObligationStatus.DUE and susar.status is ObligationStatus.DUE


def test_exempt_even_when_related_if_the_protocol_says_so():
    rules = ReportingRules(exempt_event_ids=frozenset({"death_from_septic_shock"}),
                           exempt_unless_related=False)
    facts = EventFacts.build(seriousness=["death"], severity_grade=5, causality="possible",
                             expectedness="unexpected", outcome="fatal",
                             exempt_event_id="death_from_septic_shock")
    cls, _ = obligations(facts, awareness=AWARE, at=AWARE, rules=rules)
    assert cls.exempt and not cls.susar


def test_an_exempt_id_the_protocol_does_not_list_is_refused():
    facts = EventFacts.build(seriousness=["death"], severity_grade=5, outcome="fatal",
                             exempt_event_id="sunburn")
    with pytest.raises(InputRejected, match="sunburn"):
        obligations(facts, awareness=AWARE, at=AWARE, rules=EXEMPT)


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, field", [
    ({"severity_grade": 6}, "severity_grade"),
    ({"severity_grade": 0}, "severity_grade"),
    ({"severity_grade": 5, "outcome": "recovering"}, "severity_grade"),
    ({"outcome": "fatal", "severity_grade": 5}, "seriousness"),
    ({"seriousness": ["death"], "outcome": "recovering"}, "outcome"),
    ({"seriousness": ["hangover"]}, "seriousness"),
    ({"causality": "likely"}, "causality"),
])
def test_contradictory_or_unknown_assessments_are_refused(kwargs, field):
    with pytest.raises(InputRejected) as exc:
        EventFacts.build(**{"severity_grade": 2, **kwargs})
    assert exc.value.field == field


def test_a_report_before_awareness_is_refused():
    with pytest.raises(TimeOrderError):
        obligations(SAE, awareness=AWARE, at=AWARE + timedelta(days=1),
                    reported_to_sponsor=AWARE - timedelta(minutes=1))


def test_a_time_without_offset_is_refused():
    with pytest.raises(NaiveTime):
        obligations(SAE, awareness=datetime(2026, 3, 1, 10, 0), at=AWARE)


# --- the protocol file -------------------------------------------------------------------------


def test_rumcess_timelines_are_24_hours_7_and_15_days_in_moscow_with_exempt_events():
    rules = ReportingRules.from_protocol(load_protocol())
    assert (rules.sae_to_sponsor_hours, rules.susar_fatal_or_life_threatening_days,
            rules.susar_other_days) == (24, 7, 15)
    assert rules.reporting_timezone == "Europe/Moscow"
    assert "death_from_septic_shock" in rules.exempt_event_ids


def test_a_protocol_without_a_safety_section_gets_the_ich_defaults(threearm_path):
    protocol = load_protocol(threearm_path)
    rules = ReportingRules.from_protocol(protocol)
    assert rules == ReportingRules(reporting_timezone=protocol.sites[0].timezone)


@pytest.fixture
def threearm_path():
    return ROOT / "tests" / "protocols" / "threearm.yaml"


def test_a_safety_section_with_an_unknown_zone_or_duplicate_ids_is_refused(tmp_path):
    from trialdesk.errors import ProtocolError

    text = (ROOT / "protocols" / "rumcess.yaml").read_text(encoding="utf-8")
    bad_zone = text.replace("  causality_scale: who_umc\n",
                            "  causality_scale: who_umc\n  reporting_timezone: Europe/Moskau\n")
    (tmp_path / "zone.yaml").write_text(bad_zone, encoding="utf-8")
    with pytest.raises(ProtocolError, match="Moskau"):
        load_protocol(tmp_path / "zone.yaml")
    dup = text.replace("    - id: ards\n", "    - id: dic\n")
    (tmp_path / "dup.yaml").write_text(dup, encoding="utf-8")
    with pytest.raises(ProtocolError, match="unique"):
        load_protocol(tmp_path / "dup.yaml")
