"""Pre-screening rules read from the protocol, with the look-backs the protocol leaves open.

From the protocol: the onset definition (``onset.definition``: ``ssc2012`` or
``sepsis3``), the enrolment window (:attr:`Protocol.enrolment_deadline_hours`, 10 h for
RUMCESS), the neutrophil criterion (the ``measurement`` criterion on the screening
field whose measure is ``neutrophils``: RUMCESS ``≤ 1 × 10^9/L``) and the age criteria
(RUMCESS ``≥ 17`` inclusion, ``> 75`` exclusion, in completed years).

Chosen here (documented in docs/prescreen.md, all configurable):

* ``hypotension_lookback_h`` 6: SSC 2012 hypotension must be charted at or up to 6 h
  before the vasopressor start (as :func:`trialdesk.clinical.onset.determine_onset`).
* ``lactate_window_h`` 6: Sepsis-3 lactate > 2 mmol/L within ±6 h of the start.
* ``sepsis3_map_below_mmhg`` 65: Sepsis-3 "vasopressors to hold MAP ≥ 65" is read as
  a start preceded within the look-back by a MAP < 65 mmHg.
* ``neutrophil_lookback_h`` 48: the relevant count is the one closest to onset among
  those charted from 48 h before onset to the deadline.
* ``episode_gap_h`` 1: vasopressor records less than 1 h apart (end to next start)
  are one infusion episode; only an episode's first record is a "start".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from trialdesk.clinical.onset import OnsetDefinition
from trialdesk.clinical.units import to_canonical
from trialdesk.interop.events import VASOPRESSORS
from trialdesk.protocol.schema import AgeCriterion, MeasurementCriterion, Protocol


@dataclass(frozen=True)
class AgeRule:
    """One age criterion: candidacy needs ``age op years`` to be ``required`` (True/False)."""

    criterion_id: str
    text: str
    op: str
    years: int
    #: inclusion: the comparison must hold; exclusion: it must not
    required: bool


@dataclass(frozen=True)
class PrescreenConfig:
    definition: OnsetDefinition = OnsetDefinition.SSC_2012
    deadline_hours: float = 10.0
    neutrophil_op: str = "<="
    neutrophil_threshold_10e9_per_l: float = 1.0
    neutrophil_criterion: str = "ANC ≤ 1 × 10^9/L"
    age_rules: tuple[AgeRule, ...] = ()
    hypotension_lookback_h: float = 6.0
    lactate_window_h: float = 6.0
    sepsis3_map_below_mmhg: float = 65.0
    neutrophil_lookback_h: float = 48.0
    episode_gap_h: float = 1.0
    vasopressors: frozenset[str] = field(default_factory=lambda: VASOPRESSORS)
    protocol_id: str = ""
    #: "completed_years" or "exact" (the protocol's eligibility.age_basis)
    age_basis: str = "completed_years"
    #: the site's IANA zone: ages are taken on the local calendar date
    timezone: str = "UTC"

    @property
    def hypotension_lookback(self) -> timedelta:
        return timedelta(hours=self.hypotension_lookback_h)

    @property
    def lactate_window(self) -> timedelta:
        return timedelta(hours=self.lactate_window_h)

    @property
    def neutrophil_lookback(self) -> timedelta:
        return timedelta(hours=self.neutrophil_lookback_h)

    @property
    def deadline(self) -> timedelta:
        return timedelta(hours=self.deadline_hours)

    @property
    def episode_gap(self) -> timedelta:
        return timedelta(hours=self.episode_gap_h)

    @classmethod
    def from_protocol(cls, protocol: Protocol, **overrides: object) -> PrescreenConfig:
        """The protocol's onset definition, window, neutrophil and age criteria."""
        measures = {f.id: f.measure for f in protocol.screening_fields}
        neutro: MeasurementCriterion | None = None
        ages: list[AgeRule] = []
        for kind, crit in protocol.criteria:
            if isinstance(crit, MeasurementCriterion) and measures.get(crit.field) == \
                    "neutrophils" and kind == "inclusion" and neutro is None:
                neutro = crit
            if isinstance(crit, AgeCriterion):
                ages.append(AgeRule(crit.id, crit.text, crit.op, crit.years,
                                    required=kind == "inclusion"))
        values: dict[str, object] = {
            "definition": OnsetDefinition(protocol.onset.definition),
            "deadline_hours": protocol.enrolment_deadline_hours,
            "age_rules": tuple(ages),
            "protocol_id": protocol.protocol_id,
            "age_basis": str(protocol.eligibility.age_basis),
            "timezone": protocol.sites[0].timezone if protocol.sites else "UTC",
        }
        if neutro is not None:
            values["neutrophil_op"] = neutro.op
            values["neutrophil_threshold_10e9_per_l"] = to_canonical(
                "neutrophils", neutro.value, neutro.unit, field=neutro.id)
            values["neutrophil_criterion"] = f"{neutro.id}: {neutro.text}"
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
