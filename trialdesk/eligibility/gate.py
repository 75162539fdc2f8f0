"""May this patient be randomized now? One rule, shared by the web app, API and CLI.

Refusals come in the order a coordinator can act on them: a closed enrolment window
(nothing more can be done), missing consent (record it), a criterion that excludes
(which one and why), and finally criteria still unknown (which data to enter).
"""

from __future__ import annotations

from trialdesk.eligibility.results import CriterionResult, Decision, EligibilityResult
from trialdesk.errors import ConsentMissing, EligibilityIncomplete, NotEligible, WindowClosed
from trialdesk.protocol.schema import Protocol, WithinHoursCriterion


def _summary(criteria: tuple[CriterionResult, ...]) -> str:
    return "; ".join(f"{c.id} {c.text}: {c.reason}" for c in criteria)


def check_randomizable(protocol: Protocol, result: EligibilityResult) -> None:
    """Raise the most actionable refusal, or return when the patient may be randomized."""
    by_id = {crit.id: crit for _, crit in protocol.criteria}
    window = tuple(
        c for c in result.failing
        if isinstance(by_id[c.id], WithinHoursCriterion)
        and by_id[c.id].field == protocol.onset.field
    )
    if window:
        raise WindowClosed(
            f"The enrolment window has closed ({_summary(window)}). The patient cannot be "
            "randomized: record the screening as not enrolled, reason 'missed window'.",
            field=protocol.onset.field,
        )
    consent_field = protocol.eligibility.consent_field
    if consent_field is not None:
        consent = tuple(
            c for c in result.criteria
            if getattr(by_id[c.id], "field", None) == consent_field
            and (c.excludes or c.status.value == "unknown")
        )
        if consent:
            raise ConsentMissing(
                "Informed consent is not recorded as signed "
                f"({', '.join(c.id for c in consent)}): record the consent, then randomize.",
                field=consent_field,
            )
    if result.decision is Decision.INELIGIBLE:
        raise NotEligible(f"Not eligible: {_summary(result.failing)}.")
    if result.decision is Decision.INCOMPLETE:
        raise EligibilityIncomplete(
            f"Eligibility cannot be confirmed yet; still unknown: {_summary(result.unknown)}. "
            f"Enter {', '.join(result.missing_fields)} and try again."
        )
