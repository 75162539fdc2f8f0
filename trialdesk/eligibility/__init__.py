"""Eligibility engine: every protocol criterion evaluated against a screening record."""

from trialdesk.eligibility.engine import evaluate
from trialdesk.eligibility.record import ScreeningRecord, parse_record
from trialdesk.eligibility.results import (
    CriterionResult,
    CriterionStatus,
    Decision,
    EligibilityResult,
)

__all__ = [
    "CriterionResult",
    "CriterionStatus",
    "Decision",
    "EligibilityResult",
    "ScreeningRecord",
    "evaluate",
    "parse_record",
]
