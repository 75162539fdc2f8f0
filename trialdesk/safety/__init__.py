"""Adverse-event classification and expedited-reporting deadlines (pure domain core).

* :mod:`.classification` — seriousness (ICH E2A), severity (CTCAE grade), causality to
  the MSC infusion (WHO-UMC scale), expectedness, and whether an event is an SAE, a
  SUSAR, or a pre-specified disease-related event exempt from expedited reporting.
* :mod:`.deadlines` — the reporting obligations of one event with their due times in
  UTC and their status (not due, due, met, met late, overdue) at a given moment.
"""

from trialdesk.safety.classification import (
    Causality,
    Classification,
    EventFacts,
    Expectedness,
    Outcome,
    Seriousness,
    classify,
)
from trialdesk.safety.deadlines import (
    Obligation,
    ObligationKind,
    ObligationStatus,
    ReportingRules,
    obligations,
)

__all__ = [
    "Causality",
    "Classification",
    "EventFacts",
    "Expectedness",
    "Obligation",
    "ObligationKind",
    "ObligationStatus",
    "Outcome",
    "ReportingRules",
    "Seriousness",
    "classify",
    "obligations",
]
