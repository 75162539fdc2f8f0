"""Result objects of an eligibility evaluation (small, frozen, printable, JSON-ready)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal


class CriterionStatus(StrEnum):
    """Whether the criterion's condition holds (for an exclusion, ``met`` excludes)."""

    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"


class Decision(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    #: nothing excludes the patient yet, but some criteria cannot be decided
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class CriterionResult:
    id: str
    type: Literal["inclusion", "exclusion"]
    text: str
    status: CriterionStatus
    reason: str
    #: field id -> the value used, as shown to the coordinator
    data_used: dict[str, str] = field(default_factory=dict)
    #: stable error code when the data could not be used (e.g. LIKELY_WRONG_UNIT)
    error_code: str | None = None
    #: fields that must be entered to decide an unknown criterion
    missing_fields: tuple[str, ...] = ()

    @property
    def excludes(self) -> bool:
        """True when this criterion alone makes the patient ineligible."""
        if self.type == "inclusion":
            return self.status is CriterionStatus.NOT_MET
        return self.status is CriterionStatus.MET

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "text": self.text,
            "status": self.status.value,
            "reason": self.reason,
            "data_used": self.data_used,
            "error_code": self.error_code,
            "missing_fields": list(self.missing_fields),
        }


@dataclass(frozen=True)
class EligibilityResult:
    decision: Decision
    criteria: tuple[CriterionResult, ...]
    evaluated_at_utc: datetime
    protocol_id: str
    protocol_version: str
    protocol_sha256: str
    #: problems with the record itself (unknown keys, unusable values), as error dicts
    input_problems: tuple[dict[str, Any], ...] = ()

    @property
    def failing(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if c.excludes)

    @property
    def unknown(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if c.status is CriterionStatus.UNKNOWN)

    @property
    def missing_fields(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for crit in self.unknown:
            for name in crit.missing_fields:
                seen.setdefault(name, None)
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "evaluated_at": self.evaluated_at_utc.isoformat(),
            "protocol": {"id": self.protocol_id, "version": self.protocol_version,
                         "sha256": self.protocol_sha256},
            "criteria": [c.to_dict() for c in self.criteria],
            "failing": [c.id for c in self.failing],
            "missing_fields": list(self.missing_fields),
            "input_problems": list(self.input_problems),
        }

    def __str__(self) -> str:
        lines = [f"Decision: {self.decision.value.upper()} "
                 f"({self.protocol_id} v{self.protocol_version})"]
        for c in self.criteria:
            lines.append(f"  {c.id:<4} {c.type:<9} {c.status.value:<8} {c.text} — {c.reason}")
        if self.missing_fields:
            lines.append(f"Still needed: {', '.join(self.missing_fields)}")
        return "\n".join(lines)
