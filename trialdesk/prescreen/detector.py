"""Detect RUMCESS candidates from the normalized event stream, one patient at a time.

Rules (configured from the protocol by :class:`~trialdesk.prescreen.config.PrescreenConfig`):

1. **Septic-shock onset** by the protocol's definition, computed by the clinical core's
   :func:`~trialdesk.clinical.onset.determine_onset` for each vasopressor *episode*
   (records less than ``episode_gap_h`` apart are one infusion; only its first record is
   a start; dobutamine never starts one). SSC 2012: a start with SBP < 90 or MAP < 70
   mmHg charted at or up to 6 h before it. Sepsis-3: a start preceded within 6 h by a
   MAP < 65 mmHg, with a lactate > 2 mmol/L within ±6 h; onset = the later of the two.
   Episodes are tried in time order: the first that makes the patient a candidate is
   reported, else the first ``possible`` one, else the first onset.
2. **Neutropenia**: the count closest in time to onset (ties: the earlier) among the
   absolute counts and WBC × neutrophil % pairs (same time) charted from
   ``neutrophil_lookback_h`` before onset to the deadline, compared with the protocol's
   threshold in 10^9/L with the eligibility engine's 1e-9 tolerance (1000 cells/µL is
   exactly 1.0 × 10^9/L and qualifies for "≤ 1").
3. **Age** criteria of the protocol at onset (local date of the site).
4. **Window**: every criterion met no later than onset + the protocol's window
   (inclusive: exactly 10 h is in time). Data count from the time they became
   available (lab result time), so ``detectable_utc`` is honest about lab delays.

A criterion is ``unknown`` when its data are missing (vasopressor but no blood pressure
charted in the look-back; no neutrophil count; no date of birth). Status: any
``not_met`` → ``no``; all ``met`` → ``candidate``; otherwise ``possible``.
:class:`PrescreenMonitor` keeps events per patient for incremental use: duplicates are
idempotent, a newer version of a message replaces the older one whatever the order of
arrival, and evaluation sorts by clinical time, so out-of-order delivery changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from trialdesk.clinical.neutrophils import anc_from_differential
from trialdesk.clinical.onset import (
    BloodPressureReading,
    EnrolmentWindow,
    LactateValue,
    OnsetDefinition,
    OnsetEvidence,
    VasopressorStart,
    determine_onset,
)
from trialdesk.clinical.timeutil import CLOCK_SKEW_TOLERANCE, format_duration, format_utc
from trialdesk.eligibility.age import completed_years, exact_age_for_comparison
from trialdesk.eligibility.results import CriterionStatus
from trialdesk.errors import InputRejected
from trialdesk.interop.events import ClinicalEvent, EventKind, PatientInfo
from trialdesk.prescreen.config import PrescreenConfig
from trialdesk.prescreen.results import Check, DataPoint, PatientAssessment, Status

MET, NOT_MET, UNKNOWN = CriterionStatus.MET, CriterionStatus.NOT_MET, CriterionStatus.UNKNOWN
_EPSILON = 1e-9
_OPS = {"<": lambda a, b: a < b - _EPSILON, "<=": lambda a, b: a <= b + _EPSILON,
        ">": lambda a, b: a > b + _EPSILON, ">=": lambda a, b: a >= b - _EPSILON}
_OP_TEXT = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
_HOUR = dt.timedelta(hours=1)


def _point(event: ClinicalEvent, label: str | None = None) -> DataPoint:
    return DataPoint(label or (event.drug or event.kind.value), event.value, event.unit,
                     event.at_utc, event.source)


@dataclass(frozen=True)
class _Anc:
    value_10e9_per_l: float
    at_utc: dt.datetime
    available_utc: dt.datetime
    points: tuple[DataPoint, ...]
    detail: str


@dataclass(frozen=True)
class _Episode:
    start: ClinicalEvent
    records: tuple[ClinicalEvent, ...]


@dataclass(frozen=True)
class _Shock:
    """The shock criterion of one vasopressor episode; ``reason`` is a template whose
    ``{name}`` placeholders are the ``times`` (see :class:`~.results.Check`)."""

    status: CriterionStatus
    reason: str
    onset_utc: dt.datetime | None = None
    available_utc: dt.datetime | None = None
    evidence: tuple[str, ...] = ()
    points: tuple[DataPoint, ...] = ()
    times: tuple[tuple[str, dt.datetime], ...] = ()

    def check(self, label: str, suffix: str = "") -> Check:
        return Check("shock_onset", label, self.status, self.reason + suffix, self.points,
                     self.times)


def vasopressor_episodes(events: Iterable[ClinicalEvent],
                         config: PrescreenConfig) -> list[_Episode]:
    """Group vasopressor records (rate > 0) into episodes; the first record starts one."""
    records = sorted((e for e in events if e.kind is EventKind.VASOPRESSOR
                      and e.drug in config.vasopressors and e.value > 0),
                     key=lambda e: (e.at_utc, e.source))
    episodes: list[list[ClinicalEvent]] = []
    end: dt.datetime | None = None
    for rec in records:
        if end is None or rec.at_utc > end + config.episode_gap:
            episodes.append([rec])
            end = rec.end_utc or rec.at_utc
        else:
            episodes[-1].append(rec)
            end = max(end, rec.end_utc or rec.at_utc)
    return [_Episode(ep[0], tuple(ep)) for ep in episodes]


def _bp(event: ClinicalEvent) -> BloodPressureReading:
    if event.kind is EventKind.SBP:
        return BloodPressureReading(event.at_utc, sbp_mmhg=event.value)
    return BloodPressureReading(event.at_utc, map_mmhg=event.value)


def _shock_for_episode(episode: _Episode, bps: list[ClinicalEvent],
                       lactates: list[ClinicalEvent], config: PrescreenConfig) -> _Shock:
    start = episode.start
    lookback_from = start.at_utc - config.hypotension_lookback
    before = [b for b in bps if lookback_from <= b.at_utc <= start.at_utc]
    start_point = _point(start, f"{start.drug} start")
    look = format_duration(config.hypotension_lookback)
    if config.definition is OnsetDefinition.SEPSIS_3:
        maps = [b for b in before if b.kind is EventKind.MAP]
        low = [b for b in maps if b.value < config.sepsis3_map_below_mmhg]
        if not low:
            status = NOT_MET if maps else UNKNOWN
            why = (f"no MAP < {config.sepsis3_map_below_mmhg:g} mmHg" if maps
                   else "no MAP charted")
            return _Shock(status, f"{start.drug} started {{start}} but {why} in the {look} "
                          "before it", points=(start_point,),
                          times=(("start", start.at_utc),))
        near = [lac for lac in lactates
                if abs(lac.at_utc - start.at_utc) <= config.lactate_window]
        evidence = OnsetEvidence(vasopressor_starts=(VasopressorStart(start.at_utc,
                                                                      start.drug or ""),),
                                 lactates=tuple(LactateValue(lac.at_utc, lac.value)
                                                for lac in near))
        onset = determine_onset(evidence, OnsetDefinition.SEPSIS_3,
                                lactate_window=config.lactate_window)
        if onset is None:
            status = NOT_MET if near else UNKNOWN
            why = "no lactate > 2 mmol/L" if near else "no lactate measured"
            return _Shock(status, f"{start.drug} started {{start}} for MAP "
                          f"{low[0].value:g} mmHg, but {why} within "
                          f"±{format_duration(config.lactate_window)}",
                          points=(start_point, _point(low[0], "MAP")),
                          times=(("start", start.at_utc),))
        high = next(lac for lac in near if lac.value > 2.0)
        available = max(start.available_utc, high.available_utc, low[0].available_utc)
        return _Shock(MET, "onset {onset}", onset.at_utc, available,
                      (f"MAP {low[0].value:g} mmHg at {format_utc(low[0].at_utc)}",
                       *onset.evidence),
                      (start_point, _point(low[0], "MAP"), _point(high, "lactate")),
                      (("onset", onset.at_utc),))
    evidence = OnsetEvidence(bp_readings=tuple(_bp(b) for b in before),
                             vasopressor_starts=(VasopressorStart(start.at_utc,
                                                                  start.drug or ""),))
    onset = determine_onset(evidence, OnsetDefinition.SSC_2012,
                            lookback=config.hypotension_lookback)
    if onset is None:
        status = NOT_MET if before else UNKNOWN
        why = ("no SBP < 90 or MAP < 70 mmHg" if before else "no blood pressure charted")
        return _Shock(status, f"{start.drug} started {{start}} but {why} in the {look} "
                      "before it", points=(start_point,), times=(("start", start.at_utc),))
    hypo = [b for b in before if _bp(b).is_hypotensive]
    lowest = min(hypo, key=lambda b: (b.value, b.at_utc))
    return _Shock(MET, f"{start.drug} started {{start}} after {lowest.kind.value.upper()} "
                  f"{lowest.value:g} mmHg at {{hypotension}}",
                  onset.at_utc, max(start.available_utc, lowest.available_utc),
                  onset.evidence, (start_point, _point(lowest, lowest.kind.value.upper())),
                  (("start", start.at_utc), ("hypotension", lowest.at_utc)))


def neutrophil_counts(events: Iterable[ClinicalEvent]) -> list[_Anc]:
    """Absolute counts, plus WBC × % where no absolute count exists at the same time."""
    events = list(events)
    out: list[_Anc] = []
    absolute_times = set()
    for e in events:
        if e.kind is EventKind.ANC:
            absolute_times.add(e.at_utc)
            out.append(_Anc(e.value, e.at_utc, e.available_utc, (_point(e, "ANC"),),
                            "absolute count"))
    wbcs = {e.at_utc: e for e in sorted(events, key=lambda e: e.source)
            if e.kind is EventKind.WBC}
    pcts = {e.at_utc: e for e in sorted(events, key=lambda e: e.source)
            if e.kind is EventKind.NEUTROPHIL_PCT}
    for at, wbc in wbcs.items():
        pct = pcts.get(at)
        if pct is None or at in absolute_times:
            continue
        try:
            anc = anc_from_differential(wbc.value, pct.value)
        except InputRejected:
            continue
        out.append(_Anc(anc.value_10e9_per_l, at, max(wbc.available_utc, pct.available_utc),
                        (_point(wbc, "WBC"), _point(pct, "neutrophils %")), anc.detail))
    return out


def _neutropenia(counts: list[_Anc], onset: dt.datetime, config: PrescreenConfig,
                 now: dt.datetime | None) -> tuple[Check, _Anc | None]:
    lo, hi = onset - config.neutrophil_lookback, onset + config.deadline
    usable = [c for c in counts if lo <= c.at_utc <= hi
              and (now is None or c.available_utc <= now)]
    label = config.neutrophil_criterion
    if not usable:
        return Check("neutropenia", label, UNKNOWN,
                     "no neutrophil count charted from {from} to {to} (look-back "
                     f"{config.neutrophil_lookback_h:g} h before onset to the deadline)",
                     times=(("from", lo), ("to", hi))), None
    best = min(usable, key=lambda c: (abs(c.at_utc - onset), c.at_utc))
    holds = _OPS[config.neutrophil_op](best.value_10e9_per_l,
                                       config.neutrophil_threshold_10e9_per_l)
    delta = best.at_utc - onset
    rel = (f"{format_duration(delta)} after" if delta >= dt.timedelta(0)
           else f"{format_duration(-delta)} before")
    reason = (f"ANC {best.value_10e9_per_l:g} ×10^9/L ({best.detail}) at {{count}}, {rel} "
              f"onset, is {'' if holds else 'not '}{_OP_TEXT[config.neutrophil_op]} "
              f"{config.neutrophil_threshold_10e9_per_l:g}")
    return Check("neutropenia", label, MET if holds else NOT_MET, reason, best.points,
                 (("count", best.at_utc),)), best


def _ages(info: PatientInfo | None, at: dt.datetime, config: PrescreenConfig) -> list[Check]:
    checks = []
    local = at.astimezone(ZoneInfo(config.timezone))
    for rule in config.age_rules:
        label = f"{rule.criterion_id}: {rule.text}"
        cid = f"age:{rule.criterion_id}"
        years, basis = (None, "no patient demographics received") if info is None \
            else info.age_years_at(local)
        if years is None:
            checks.append(Check(cid, label, UNKNOWN, basis))
            continue
        compared = float(years)
        if config.age_basis == "exact" and info is not None and info.birth_date is not None:
            compared = exact_age_for_comparison(info.birth_date, local.date())
            years = completed_years(info.birth_date, local.date())
        holds = _OPS[rule.op](compared, rule.years)
        ok = holds == rule.required
        checks.append(Check(cid, label, MET if ok else NOT_MET,
                            f"age {years} on {local.date().isoformat()} ({basis}) is "
                            f"{'' if holds else 'not '}{_OP_TEXT[rule.op]} {rule.years}",
                            (DataPoint("age", float(years), "years", None,
                                       info.source if info else ""),)))
    return checks


def _status(checks: Iterable[Check]) -> Status:
    statuses = [c.status for c in checks]
    if NOT_MET in statuses:
        return Status.NO
    if all(s is MET for s in statuses):
        return Status.CANDIDATE
    return Status.POSSIBLE


def _assess_onset(patient_id: str, shock: _Shock, counts: list[_Anc],
                  info: PatientInfo | None, config: PrescreenConfig,
                  now: dt.datetime | None) -> PatientAssessment:
    assert shock.onset_utc is not None
    onset = shock.onset_utc
    deadline = onset + config.deadline
    shock_check = shock.check(f"septic shock ({config.definition.label})")
    neutro, anc = _neutropenia(counts, onset, config, now)
    ages = _ages(info, onset, config)
    others = [shock_check, neutro, *ages]
    detectable = None
    window_label = f"within {config.deadline_hours:g} h of onset"
    if all(c.status is MET for c in others):
        detectable = max(onset, shock.available_utc or onset,
                         anc.available_utc if anc else onset)
        if detectable <= deadline:
            window = Check("window", window_label, MET,
                           f"all criteria met {format_duration(detectable - onset)} after "
                           "onset, deadline {deadline}", times=(("deadline", deadline),))
        else:
            window = Check("window", window_label, NOT_MET,
                           "criteria complete only at {complete}, "
                           f"{format_duration(detectable - deadline)} after the deadline "
                           "{deadline}",
                           times=(("complete", detectable), ("deadline", deadline)))
    elif now is not None and now > deadline:
        window = Check("window", window_label, NOT_MET,
                       "deadline {deadline} passed before the data were complete",
                       times=(("deadline", deadline),))
    else:
        window = Check("window", window_label, UNKNOWN,
                       "deadline {deadline}; waiting for the missing data",
                       times=(("deadline", deadline),))
    checks = (shock_check, window, neutro, *ages)
    status = (EnrolmentWindow(onset, config.deadline_hours).status(now)
              if now is not None else None)
    return PatientAssessment(patient_id, _status(checks), checks, onset, deadline,
                             detectable if window.status is MET else None, now, status,
                             shock.evidence)


def assess_patient(patient_id: str, events: Iterable[ClinicalEvent],
                   info: PatientInfo | None, config: PrescreenConfig,
                   now: dt.datetime | None = None) -> PatientAssessment:
    """Pre-screen one patient from all their events (``now``: live evaluation time, UTC).

    With ``now`` only data charted by then (plus the clock-skew tolerance) and labs
    available by then are used, and the window status (time left) is reported.
    """
    events = list(events)
    if now is not None:
        events = [e for e in events if e.at_utc <= now + CLOCK_SKEW_TOLERANCE]
    bps = sorted((e for e in events if e.kind in (EventKind.MAP, EventKind.SBP)),
                 key=lambda e: (e.at_utc, e.source))
    lactates = sorted((e for e in events if e.kind is EventKind.LACTATE
                       and (now is None or e.available_utc <= now)),
                      key=lambda e: (e.at_utc, e.source))
    counts = neutrophil_counts(events)
    episodes = vasopressor_episodes(events, config)
    shocks = [_shock_for_episode(ep, bps, lactates, config) for ep in episodes]
    assessments = [_assess_onset(patient_id, s, counts, info, config, now)
                   for s in shocks if s.status is MET]
    for wanted in (Status.CANDIDATE, Status.POSSIBLE):
        for a in assessments:
            if a.status is wanted:
                return a
    if assessments:
        return assessments[0]
    # no onset: why not, plus what else is known (reference time: now or the last event)
    if not shocks:
        shock_check = Check("shock_onset", f"septic shock ({config.definition.label})",
                            NOT_MET, "no vasopressor infusion charted")
    else:
        pick = next((s for s in shocks if s.status is UNKNOWN), shocks[0])
        more = f" ({len(shocks)} vasopressor episodes, none qualifies)" if len(shocks) > 1 \
            else ""
        shock_check = pick.check(f"septic shock ({config.definition.label})", more)
    reference = now or max((e.at_utc for e in events), default=None)
    checks = [shock_check]
    if reference is not None:
        checks += _ages(info, reference, config)
    return PatientAssessment(patient_id, _status(checks), tuple(checks), None, None, None,
                             now, None)


@dataclass
class FeedOutcome:
    """What one :meth:`PrescreenMonitor.feed` call changed."""

    added: int = 0
    duplicates: int = 0
    replaced: int = 0
    stale: int = 0
    retracted: int = 0
    patients: set[str] = field(default_factory=set)


def _same(a: ClinicalEvent, b: ClinicalEvent) -> bool:
    return (a.at_utc, a.value, a.unit, a.drug, a.end_utc, a.recorded_utc) == \
        (b.at_utc, b.value, b.unit, b.drug, b.end_utc, b.recorded_utc)


class PrescreenMonitor:
    """Incremental pre-screening state: feed events as they arrive, assess any time."""

    def __init__(self, config: PrescreenConfig) -> None:
        self.config = config
        self._events: dict[str, dict[tuple[str, str, str], ClinicalEvent]] = {}
        self._patients: dict[str, PatientInfo] = {}

    def feed(self, events: Iterable[ClinicalEvent] = (),
             patients: Iterable[PatientInfo] = (), retracted: Iterable[str] = ()
             ) -> FeedOutcome:
        out = FeedOutcome()
        for info in patients:
            self._patients[info.patient_id] = info
            out.patients.add(info.patient_id)
        for event in events:
            store = self._events.setdefault(event.patient_id, {})
            old = store.get(event.key)
            if old is None:
                out.added += 1
            elif _same(old, event):
                out.duplicates += 1
                continue
            elif event.version >= old.version:
                out.replaced += 1
            else:
                out.stale += 1
                continue
            store[event.key] = event
            out.patients.add(event.patient_id)
        for source in retracted:
            for pid, store in self._events.items():
                gone = [k for k in store if k[1] == source or k[1].startswith(source + "#")]
                for key in gone:
                    del store[key]
                    out.retracted += 1
                    out.patients.add(pid)
        return out

    @property
    def patient_ids(self) -> list[str]:
        return sorted(set(self._events) | set(self._patients))

    def events(self, patient_id: str) -> list[ClinicalEvent]:
        return sorted(self._events.get(patient_id, {}).values(),
                      key=lambda e: (e.at_utc, e.source))

    def assess(self, patient_id: str, now: dt.datetime | None = None) -> PatientAssessment:
        return assess_patient(patient_id, self.events(patient_id),
                              self._patients.get(patient_id), self.config, now)

    def assess_all(self, now: dt.datetime | None = None) -> list[PatientAssessment]:
        return [self.assess(pid, now) for pid in self.patient_ids]


def hours(delta: dt.timedelta) -> float:
    return delta / _HOUR
