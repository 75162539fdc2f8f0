"""What an adverse event is, for reporting: serious? related? expected? exempt?

Definitions (ICH E2A):

* **Serious** = at least one seriousness criterion: death, life-threatening, inpatient
  hospitalisation or its prolongation, persistent or significant disability, congenital
  anomaly, or another medically important event. Seriousness is about the outcome, not
  the intensity: **severity** is a separate CTCAE grade (1 mild … 4 life-threatening,
  5 death related to the AE).
* **Related** (a "suspected adverse reaction"): causality to the MSC infusion on the
  WHO-UMC scale is *certain*, *probable* or *possible*; *unlikely* and *unrelated* are
  not related. *Not yet assessed* counts as related until the investigator assesses it
  (ICH E2A: when in doubt, the event is reported).
* **Unexpected**: not listed (in nature or severity) in the reference safety information
  (the investigator's brochure). Not yet assessed counts as unexpected.
* **SUSAR** = serious + related + unexpected.
* **Exempt**: the protocol's pre-specified disease-related events (``safety.exempt_events``)
  are not reported in expedited fashion unless related (``exempt_unless_related``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from trialdesk.errors import InputRejected


class Seriousness(StrEnum):
    """ICH E2A seriousness criteria."""

    DEATH = "death"
    LIFE_THREATENING = "life_threatening"
    HOSPITALISATION = "hospitalisation"
    DISABILITY = "disability"
    CONGENITAL_ANOMALY = "congenital_anomaly"
    MEDICALLY_IMPORTANT = "medically_important"

    @property
    def label(self) -> str:
        return SERIOUSNESS_LABELS[self]


SERIOUSNESS_LABELS = {
    Seriousness.DEATH: "Results in death",
    Seriousness.LIFE_THREATENING: "Life-threatening",
    Seriousness.HOSPITALISATION: "Requires inpatient hospitalisation or prolongs it",
    Seriousness.DISABILITY: "Persistent or significant disability or incapacity",
    Seriousness.CONGENITAL_ANOMALY: "Congenital anomaly or birth defect",
    Seriousness.MEDICALLY_IMPORTANT: "Other medically important event",
}


class Causality(StrEnum):
    """WHO-UMC causality categories, relation to the MSC infusion."""

    CERTAIN = "certain"
    PROBABLE = "probable"
    POSSIBLE = "possible"
    UNLIKELY = "unlikely"
    UNRELATED = "unrelated"
    NOT_ASSESSED = "not_assessed"

    @property
    def related(self) -> bool:
        """Certain, probable, possible — and not yet assessed (conservatively)."""
        return self in (Causality.CERTAIN, Causality.PROBABLE, Causality.POSSIBLE,
                        Causality.NOT_ASSESSED)


class Expectedness(StrEnum):
    EXPECTED = "expected"
    UNEXPECTED = "unexpected"
    NOT_ASSESSED = "not_assessed"

    @property
    def unexpected(self) -> bool:
        return self is not Expectedness.EXPECTED


class Outcome(StrEnum):
    RECOVERED = "recovered"
    RECOVERING = "recovering"
    NOT_RECOVERED = "not_recovered"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae"
    FATAL = "fatal"
    UNKNOWN = "unknown"


#: CTCAE v5 grade meanings (grade 5 = death related to the adverse event)
CTCAE_GRADES = {1: "Mild", 2: "Moderate", 3: "Severe or medically significant",
                4: "Life-threatening consequences", 5: "Death related to the AE"}


@dataclass(frozen=True)
class EventFacts:
    """The investigator's assessment of one adverse event, as needed for reporting."""

    seriousness: frozenset[Seriousness] = frozenset()
    severity_grade: int = 1
    causality: Causality = Causality.NOT_ASSESSED
    expectedness: Expectedness = Expectedness.NOT_ASSESSED
    outcome: Outcome = Outcome.UNKNOWN
    exempt_event_id: str = ""

    @classmethod
    def build(cls, *, seriousness: Iterable[str] = (), severity_grade: int = 1,
              causality: str = "not_assessed", expectedness: str = "not_assessed",
              outcome: str = "unknown", exempt_event_id: str = "") -> EventFacts:
        """Build from plain strings, refusing unknown codes and contradictions."""
        facts = cls(
            seriousness=frozenset(_choice(Seriousness, s, "seriousness") for s in seriousness),
            severity_grade=severity_grade,
            causality=_choice(Causality, causality, "causality"),
            expectedness=_choice(Expectedness, expectedness, "expectedness"),
            outcome=_choice(Outcome, outcome, "outcome"),
            exempt_event_id=exempt_event_id or "")
        facts.check()
        return facts

    def check(self) -> None:
        """Refuse an assessment that contradicts itself (the message says how to fix it)."""
        if not isinstance(self.severity_grade, int) or isinstance(self.severity_grade, bool) \
                or self.severity_grade not in CTCAE_GRADES:
            raise InputRejected(
                f"Severity: CTCAE grade must be 1 to 5, got {self.severity_grade!r}.",
                field="severity_grade")
        fatal = self.outcome is Outcome.FATAL
        if self.severity_grade == 5 and not fatal:
            raise InputRejected("Severity grade 5 means death related to the event: set the "
                                "outcome to fatal, or choose grade 1–4.", field="severity_grade")
        if fatal and Seriousness.DEATH not in self.seriousness:
            raise InputRejected("The outcome is fatal: tick the seriousness criterion "
                                "'Results in death'.", field="seriousness")
        if Seriousness.DEATH in self.seriousness and not fatal:
            raise InputRejected("'Results in death' is ticked but the outcome is not fatal: "
                                "set the outcome to fatal or untick the criterion.",
                                field="outcome")


def _choice(enum: type[StrEnum], value: str, name: str):
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InputRejected(f"{name}: '{value}' is not one of {allowed}.", field=name) from None


@dataclass(frozen=True)
class Classification:
    """Reporting category of one event, each flag with the reason it was set."""

    serious: bool
    related: bool
    unexpected: bool
    susar: bool
    fatal_or_life_threatening: bool
    exempt: bool
    reasons: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        if self.susar:
            return "SUSAR"
        if self.serious:
            return "SAE (exempt: disease-related)" if self.exempt else "SAE"
        return "AE"


def classify(facts: EventFacts, *, exempt_event_ids: Iterable[str] = (),
             exempt_unless_related: bool = True) -> Classification:
    """Classify an event for expedited reporting (ICH E2A definitions, module docstring)."""
    facts.check()
    serious = bool(facts.seriousness)
    related = facts.causality.related
    unexpected = facts.expectedness.unexpected
    fatal_lt = bool(facts.seriousness & {Seriousness.DEATH, Seriousness.LIFE_THREATENING})
    reasons: list[str] = []
    if serious:
        reasons.append("serious: " + ", ".join(
            SERIOUSNESS_LABELS[s].lower() for s in Seriousness if s in facts.seriousness))
    else:
        reasons.append("not serious: no ICH E2A seriousness criterion")
    listed = facts.exempt_event_id != "" and facts.exempt_event_id in set(exempt_event_ids)
    if facts.exempt_event_id and not listed:
        raise InputRejected(f"'{facts.exempt_event_id}' is not one of the protocol's "
                            "disease-related events exempt from expedited reporting.",
                            field="exempt_event_id")
    exempt = listed and not (exempt_unless_related and related)
    if listed and exempt:
        reasons.append("pre-specified disease-related event: exempt from expedited reporting")
    elif listed:
        reasons.append("pre-specified disease-related event, but related to the MSC "
                       f"infusion ({facts.causality.value}): reported as usual")
    susar = serious and related and unexpected and not exempt
    if serious:
        reasons.append(f"causality {facts.causality.value} → "
                       f"{'related' if related else 'not related'}; "
                       f"{facts.expectedness.value} → "
                       f"{'unexpected' if unexpected else 'expected'}")
    return Classification(serious=serious, related=related, unexpected=unexpected,
                          susar=susar, fatal_or_life_threatening=fatal_lt, exempt=exempt,
                          reasons=tuple(reasons))
