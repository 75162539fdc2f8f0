"""Onset of septic shock, and the enrolment window measured from it.

RUMCESS admits patients ≤10 h after septic-shock onset and infuses MSCs within the same
10 h (``domain.md`` §1.1), but no published text says how onset was timestamped
(§2.2, §10 item 4). This module makes the choice explicit and auditable:

* :attr:`OnsetDefinition.SSC_2012` — septic shock = sepsis-induced hypotension
  (SBP <90 mmHg or MAP <70 mmHg) persisting despite fluids, needing vasopressors
  (SSC 2012, §2.1). Onset = the first vasopressor start preceded, within a look-back
  (default 6 h), by a hypotensive reading. A vasopressor start is the most auditable
  time stamp in the chart (§2.2).
* :attr:`OnsetDefinition.SEPSIS_3` — vasopressors needed **and** lactate >2 mmol/L
  (Sepsis-3, §2.1). Onset = the earliest time at which both hold: the later of a
  vasopressor start and the first lactate >2 mmol/L within a window around it
  (default ±6 h).
* :attr:`OnsetDefinition.RECORDED` — the time the clinician recorded; nothing derived.

All times are aware and normalised to UTC (:mod:`trialdesk.clinical.timeutil`);
durations are real elapsed time, so a window crossing a daylight-saving change is
still exactly ``deadline_hours`` long.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from trialdesk.clinical.timeutil import (
    CLOCK_SKEW_TOLERANCE,
    ensure_aware,
    ensure_not_future,
    format_duration,
    format_utc,
    parse_aware,
)
from trialdesk.clinical.units import check_range, to_canonical
from trialdesk.errors import ImplausibleValue, MissingValue, TimeOrderError

#: Sepsis-induced hypotension, SSC 2012 (``domain.md`` §2.1): SBP <90 or MAP <70 mmHg.
SBP_HYPOTENSION_MMHG = 90.0
MAP_HYPOTENSION_MMHG = 70.0
#: Sepsis-3 septic-shock lactate threshold: strictly above 2 mmol/L (§2.1).
SEPSIS3_LACTATE_MMOL_L = 2.0

DEFAULT_LOOKBACK = timedelta(hours=6)
DEFAULT_LACTATE_WINDOW = timedelta(hours=6)


class OnsetDefinition(StrEnum):
    """How the onset time of septic shock is determined (stored with the onset)."""

    SSC_2012 = "ssc2012"
    SEPSIS_3 = "sepsis3"
    RECORDED = "recorded"

    @property
    def label(self) -> str:
        return _DEFINITION_LABELS[self]


_DEFINITION_LABELS = {
    OnsetDefinition.SSC_2012: "SSC 2012",
    OnsetDefinition.SEPSIS_3: "Sepsis-3",
    OnsetDefinition.RECORDED: "recorded by the clinician",
}


def _definition(value: OnsetDefinition | str) -> OnsetDefinition:
    try:
        return OnsetDefinition(value)
    except ValueError:
        choices = ", ".join(d.value for d in OnsetDefinition)
        raise ImplausibleValue(
            f"unknown onset definition '{value}'; use one of {choices}.", field="definition"
        ) from None


def _set_time(obj: object, name: str, field_name: str) -> None:
    """Normalise a frozen dataclass's time attribute to aware UTC (refusing naive times)."""
    object.__setattr__(obj, name, parse_aware(getattr(obj, name), field=field_name))


# --- timed evidence ------------------------------------------------------------------


@dataclass(frozen=True)
class BloodPressureReading:
    """One arterial pressure reading, mmHg. Either value may be missing, not both."""

    at_utc: datetime
    sbp_mmhg: float | None = None
    map_mmhg: float | None = None

    def __post_init__(self) -> None:
        _set_time(self, "at_utc", "blood_pressure.at_utc")
        if self.sbp_mmhg is None and self.map_mmhg is None:
            raise MissingValue(
                "a blood-pressure reading needs a systolic (sbp_mmhg) or mean "
                "(map_mmhg) arterial pressure.",
                field="blood_pressure.sbp_mmhg",
            )
        if self.sbp_mmhg is not None:
            object.__setattr__(self, "sbp_mmhg", check_range(
                self.sbp_mmhg, low=0, high=300, label="systolic blood pressure",
                unit="mmHg", field="blood_pressure.sbp_mmhg"))
        if self.map_mmhg is not None:
            object.__setattr__(self, "map_mmhg", check_range(
                self.map_mmhg, low=0, high=250, label="mean arterial pressure",
                unit="mmHg", field="blood_pressure.map_mmhg"))

    @property
    def is_hypotensive(self) -> bool:
        """SSC 2012 sepsis-induced hypotension: SBP <90 mmHg or MAP <70 mmHg."""
        return (self.sbp_mmhg is not None and self.sbp_mmhg < SBP_HYPOTENSION_MMHG) or (
            self.map_mmhg is not None and self.map_mmhg < MAP_HYPOTENSION_MMHG
        )

    def __str__(self) -> str:
        parts = []
        if self.sbp_mmhg is not None:
            parts.append(f"SBP {self.sbp_mmhg:g}")
        if self.map_mmhg is not None:
            parts.append(f"MAP {self.map_mmhg:g}")
        return f"{' / '.join(parts)} mmHg at {format_utc(self.at_utc)}"

    def to_dict(self) -> dict[str, Any]:
        return {"at_utc": self.at_utc.isoformat(), "sbp_mmhg": self.sbp_mmhg,
                "map_mmhg": self.map_mmhg}


@dataclass(frozen=True)
class VasopressorStart:
    """Start of a vasopressor infusion (drug name as charted, e.g. "norepinephrine")."""

    at_utc: datetime
    drug: str

    def __post_init__(self) -> None:
        _set_time(self, "at_utc", "vasopressor.at_utc")
        drug = self.drug.strip() if isinstance(self.drug, str) else ""
        if not drug:
            raise MissingValue("a vasopressor start needs the drug name.",
                               field="vasopressor.drug")
        object.__setattr__(self, "drug", drug)

    def __str__(self) -> str:
        return f"{self.drug} started at {format_utc(self.at_utc)}"

    def to_dict(self) -> dict[str, Any]:
        return {"at_utc": self.at_utc.isoformat(), "drug": self.drug}


@dataclass(frozen=True)
class LactateValue:
    """A blood lactate in mmol/L (a value plausible only in mg/dL is refused with a hint)."""

    at_utc: datetime
    lactate_mmol_l: float

    def __post_init__(self) -> None:
        _set_time(self, "at_utc", "lactate.at_utc")
        object.__setattr__(self, "lactate_mmol_l", to_canonical(
            "lactate", self.lactate_mmol_l, "mmol/L", field="lactate.lactate_mmol_l"))

    def __str__(self) -> str:
        return f"lactate {self.lactate_mmol_l:g} mmol/L at {format_utc(self.at_utc)}"

    def to_dict(self) -> dict[str, Any]:
        return {"at_utc": self.at_utc.isoformat(), "lactate_mmol_l": self.lactate_mmol_l}


@dataclass(frozen=True)
class FluidBolus:
    """A fluid bolus in mL per kg body weight (SSC 2012 initial challenge: ≥30 mL/kg)."""

    at_utc: datetime
    volume_ml_per_kg: float

    def __post_init__(self) -> None:
        _set_time(self, "at_utc", "fluid_bolus.at_utc")
        object.__setattr__(self, "volume_ml_per_kg", check_range(
            self.volume_ml_per_kg, low=0, high=150, label="fluid bolus", unit="mL/kg",
            field="fluid_bolus.volume_ml_per_kg"))

    def __str__(self) -> str:
        return f"fluid bolus {self.volume_ml_per_kg:g} mL/kg at {format_utc(self.at_utc)}"

    def to_dict(self) -> dict[str, Any]:
        return {"at_utc": self.at_utc.isoformat(), "volume_ml_per_kg": self.volume_ml_per_kg}


@dataclass(frozen=True)
class OnsetEvidence:
    """The charted events an onset is derived from. Any iterable is accepted; kept as tuples.

    ``bp_readings`` holds all blood-pressure readings (hypotensive or not; only the
    hypotensive ones count). ``recorded_onset_utc`` is the clinician's own onset time,
    used only by :attr:`OnsetDefinition.RECORDED`.
    """

    bp_readings: tuple[BloodPressureReading, ...] = ()
    vasopressor_starts: tuple[VasopressorStart, ...] = ()
    lactates: tuple[LactateValue, ...] = ()
    fluid_boluses: tuple[FluidBolus, ...] = ()
    recorded_onset_utc: datetime | None = None

    def __post_init__(self) -> None:
        for name, kind in (("bp_readings", BloodPressureReading),
                           ("vasopressor_starts", VasopressorStart),
                           ("lactates", LactateValue), ("fluid_boluses", FluidBolus)):
            items: Iterable[Any] = getattr(self, name)
            values = tuple(items)
            for item in values:
                if not isinstance(item, kind):
                    raise ImplausibleValue(
                        f"{name}: expected {kind.__name__} items, got {type(item).__name__}.",
                        field=name,
                    )
            object.__setattr__(self, name, tuple(sorted(values, key=lambda i: i.at_utc)))
        if self.recorded_onset_utc is not None:
            _set_time(self, "recorded_onset_utc", "recorded_onset_utc")

    def to_dict(self) -> dict[str, Any]:
        return {
            "bp_readings": [r.to_dict() for r in self.bp_readings],
            "vasopressor_starts": [v.to_dict() for v in self.vasopressor_starts],
            "lactates": [lac.to_dict() for lac in self.lactates],
            "fluid_boluses": [f.to_dict() for f in self.fluid_boluses],
            "recorded_onset_utc": (self.recorded_onset_utc.isoformat()
                                   if self.recorded_onset_utc else None),
        }


@dataclass(frozen=True)
class ShockOnset:
    """A septic-shock onset time (UTC), the definition used and the readings that support it."""

    at_utc: datetime
    definition: OnsetDefinition
    evidence: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        _set_time(self, "at_utc", "onset")
        object.__setattr__(self, "definition", _definition(self.definition))
        object.__setattr__(self, "evidence", tuple(self.evidence))

    def __str__(self) -> str:
        text = f"septic-shock onset {format_utc(self.at_utc)} ({self.definition.label})"
        return text + "".join(f"\n  - {line}" for line in self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {"at_utc": self.at_utc.isoformat(), "definition": self.definition.value,
                "evidence": list(self.evidence)}


# --- deriving the onset ------------------------------------------------------------


def _positive(window: timedelta, name: str) -> timedelta:
    if not isinstance(window, timedelta) or window <= timedelta(0):
        raise ImplausibleValue(f"{name} must be a positive duration, got {window!r}.",
                               field=name)
    return window


def _fluid_lines(events: OnsetEvidence, start: datetime) -> tuple[float, list[str]]:
    before = [f for f in events.fluid_boluses if f.at_utc <= start]
    total = sum(f.volume_ml_per_kg for f in before)
    if not before:
        return 0.0, ["no fluid bolus recorded before the vasopressor start"]
    return total, [f"fluids before the vasopressor start: {total:g} mL/kg in "
                   f"{len(before)} bolus(es), first at {format_utc(before[0].at_utc)}"]


def _fluids_ok(total: float, min_fluid_ml_per_kg: float | None) -> bool:
    return min_fluid_ml_per_kg is None or total >= min_fluid_ml_per_kg


def _ssc_2012(events: OnsetEvidence, lookback: timedelta,
              min_fluid: float | None) -> ShockOnset | None:
    for start in events.vasopressor_starts:
        hypotension = [r for r in events.bp_readings if r.is_hypotensive
                       and start.at_utc - lookback <= r.at_utc <= start.at_utc]
        if not hypotension:
            continue
        total, fluid_lines = _fluid_lines(events, start.at_utc)
        if not _fluids_ok(total, min_fluid):
            continue
        lines = [f"vasopressor: {start}"]
        lines += [f"hypotension: {r}, {format_duration(start.at_utc - r.at_utc)} before the "
                  f"vasopressor start (look-back {format_duration(lookback)})"
                  for r in hypotension]
        lines += fluid_lines
        lines.append("onset = first vasopressor start preceded by hypotension "
                     "(SBP <90 or MAP <70 mmHg)")
        return ShockOnset(start.at_utc, OnsetDefinition.SSC_2012, tuple(lines))
    return None


def _sepsis_3(events: OnsetEvidence, window: timedelta,
              min_fluid: float | None) -> ShockOnset | None:
    best: tuple[datetime, VasopressorStart, LactateValue] | None = None
    for start in events.vasopressor_starts:
        total, _ = _fluid_lines(events, start.at_utc)
        if not _fluids_ok(total, min_fluid):
            continue
        high = [lac for lac in events.lactates if lac.lactate_mmol_l > SEPSIS3_LACTATE_MMOL_L
                and abs(lac.at_utc - start.at_utc) <= window]
        if not high:
            continue
        at = max(start.at_utc, high[0].at_utc)
        if best is None or at < best[0]:
            best = (at, start, high[0])
    if best is None:
        return None
    at, start, lactate = best
    delta = lactate.at_utc - start.at_utc
    relation = (f"{format_duration(delta)} after" if delta >= timedelta(0)
                else f"{format_duration(-delta)} before")
    lines = [f"vasopressor: {start}",
             f"lactate >2 mmol/L: {lactate}, {relation} the vasopressor start "
             f"(window ±{format_duration(window)})"]
    lines += _fluid_lines(events, start.at_utc)[1]
    lines.append("onset = the later of the vasopressor start and the first lactate "
                  ">2 mmol/L (both criteria met)")
    return ShockOnset(at, OnsetDefinition.SEPSIS_3, tuple(lines))


def determine_onset(
    events: OnsetEvidence,
    definition: OnsetDefinition | str,
    *,
    lookback: timedelta = DEFAULT_LOOKBACK,
    lactate_window: timedelta = DEFAULT_LACTATE_WINDOW,
    min_fluid_ml_per_kg: float | None = None,
) -> ShockOnset | None:
    """Derive the septic-shock onset from charted events, or None if the definition is not met.

    * SSC 2012: the first vasopressor start with a hypotensive reading (SBP <90 or
      MAP <70 mmHg) at or up to ``lookback`` before it (both ends inclusive).
    * Sepsis-3: for each vasopressor start, the first lactate >2 mmol/L within
      ±``lactate_window`` of it (inclusive); onset = the later of the two, the earliest
      such time over all starts. A lactate of exactly 2 mmol/L does not count.
    * Recorded: ``events.recorded_onset_utc`` as entered.

    "Despite adequate fluids" has no number in either definition (``domain.md`` §2.1),
    so fluids are only reported in the evidence unless ``min_fluid_ml_per_kg`` is set
    (e.g. 30, the SSC 2012 initial challenge): then a vasopressor start counts only if
    at least that many mL/kg were given at or before it.
    """
    chosen = _definition(definition)
    if min_fluid_ml_per_kg is not None:
        min_fluid_ml_per_kg = check_range(min_fluid_ml_per_kg, low=0, high=150,
                                          label="minimum fluid volume", unit="mL/kg",
                                          field="min_fluid_ml_per_kg")
    if chosen is OnsetDefinition.SSC_2012:
        return _ssc_2012(events, _positive(lookback, "lookback"), min_fluid_ml_per_kg)
    if chosen is OnsetDefinition.SEPSIS_3:
        return _sepsis_3(events, _positive(lactate_window, "lactate_window"),
                         min_fluid_ml_per_kg)
    if events.recorded_onset_utc is None:
        return None
    recorded = events.recorded_onset_utc
    return ShockOnset(recorded, OnsetDefinition.RECORDED,
                      (f"onset recorded by the clinician: {format_utc(recorded)}",))


# --- the enrolment window ------------------------------------------------------------


class Urgency(StrEnum):
    """How close the enrolment deadline is: ok, soon (≤2 h left), urgent (≤1 h), closed."""

    OK = "ok"
    SOON = "soon"
    URGENT = "urgent"
    CLOSED = "closed"


SOON_HOURS = 2.0
URGENT_HOURS = 1.0


@dataclass(frozen=True)
class WindowStatus:
    """Where ``now`` falls in the enrolment window (hours are real elapsed hours)."""

    now_utc: datetime
    onset_utc: datetime
    deadline_utc: datetime
    hours_elapsed: float
    hours_left: float
    is_open: bool
    urgency: Urgency

    def __str__(self) -> str:
        elapsed = format_duration(self.now_utc - self.onset_utc)
        if self.is_open:
            left = f"{format_duration(self.deadline_utc - self.now_utc)} left"
        else:
            left = f"closed {format_duration(self.now_utc - self.deadline_utc)} ago"
        return (f"{elapsed} since onset, {left} (deadline {format_utc(self.deadline_utc)}) "
                f"[{self.urgency}]")

    def to_dict(self) -> dict[str, Any]:
        return {"now_utc": self.now_utc.isoformat(), "onset_utc": self.onset_utc.isoformat(),
                "deadline_utc": self.deadline_utc.isoformat(),
                "hours_elapsed": self.hours_elapsed, "hours_left": self.hours_left,
                "is_open": self.is_open, "urgency": self.urgency.value}


_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class EnrolmentWindow:
    """The interval [onset, onset + ``deadline_hours``] in which a patient may be randomized.

    Inclusive at the deadline: with a 10-h window, exactly onset + 10 h is still open,
    onset + 10 h + 1 s is closed (the protocol says "≤10 h", ``domain.md`` §1.1).
    Every ``now`` must be aware; an onset more than a few minutes
    (:data:`~trialdesk.clinical.timeutil.CLOCK_SKEW_TOLERANCE`) after ``now`` raises
    :class:`~trialdesk.errors.FutureTime`.
    """

    onset_utc: datetime
    deadline_hours: float

    def __post_init__(self) -> None:
        _set_time(self, "onset_utc", "onset")
        hours = check_range(self.deadline_hours, low=0, high=24 * 30, label="enrolment window",
                            unit="h", field="deadline_hours")
        if hours == 0:
            raise ImplausibleValue("enrolment window: 0 h leaves no time to enrol; give the "
                                   "protocol's deadline in hours, e.g. 10.",
                                   field="deadline_hours")
        object.__setattr__(self, "deadline_hours", hours)

    @property
    def deadline_utc(self) -> datetime:
        return self.onset_utc + timedelta(hours=self.deadline_hours)

    def _now(self, now: datetime) -> datetime:
        now_utc = ensure_aware(now, field="now")
        ensure_not_future(self.onset_utc, now_utc, field="onset", tolerance=CLOCK_SKEW_TOLERANCE)
        return now_utc

    def elapsed(self, now: datetime) -> timedelta:
        """Real time since onset (slightly negative only within the clock-skew tolerance)."""
        return self._now(now) - self.onset_utc

    def time_left(self, now: datetime) -> timedelta:
        """Real time until the deadline; negative once it has passed."""
        return self.deadline_utc - self._now(now)

    def is_open(self, now: datetime) -> bool:
        """True up to and including the deadline instant."""
        return self._now(now) <= self.deadline_utc

    def status(self, now: datetime) -> WindowStatus:
        now_utc = self._now(now)
        left = self.deadline_utc - now_utc
        is_open = left >= timedelta(0)
        if not is_open:
            urgency = Urgency.CLOSED
        elif left <= URGENT_HOURS * _HOUR:
            urgency = Urgency.URGENT
        elif left <= SOON_HOURS * _HOUR:
            urgency = Urgency.SOON
        else:
            urgency = Urgency.OK
        return WindowStatus(now_utc, self.onset_utc, self.deadline_utc,
                            (now_utc - self.onset_utc) / _HOUR, left / _HOUR, is_open, urgency)

    def check_not_before_onset(self, t: datetime, field: str) -> datetime:
        """Return ``t`` in UTC; raise :class:`TimeOrderError` if it is before the onset.

        E.g. a randomization time stamped before the onset it depends on means one of
        the two times (or its UTC offset) was entered wrongly.
        """
        t_utc = parse_aware(t, field=field)
        if t_utc < self.onset_utc:
            raise TimeOrderError(
                f"{field} at {format_utc(t_utc)} is {format_duration(self.onset_utc - t_utc)} "
                f"before septic-shock onset at {format_utc(self.onset_utc)} (onset after "
                f"{field}); check both times and their UTC offsets.",
                field=field,
            )
        return t_utc

    def __str__(self) -> str:
        return (f"enrolment window {format_utc(self.onset_utc)} → {format_utc(self.deadline_utc)}"
                f" ({self.deadline_hours:g} h from onset, deadline inclusive)")

    def to_dict(self) -> dict[str, Any]:
        return {"onset_utc": self.onset_utc.isoformat(), "deadline_hours": self.deadline_hours,
                "deadline_utc": self.deadline_utc.isoformat()}
