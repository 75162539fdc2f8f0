"""What an edit check says about a form: hard errors and soft warnings.

A hard error (an impossible value, an end before its start, a visit after death) blocks
saving. A soft warning (an unusual but possible value) blocks saving until the person
entering the data confirms it; the confirmation is stored with the form and audited.
Each finding has a stable ``key`` (``code:field``) by which a warning is confirmed, so a
confirmation given for one value does not carry over to a different problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"  # blocks saving
    WARNING = "warning"  # saving needs a confirmation


@dataclass(frozen=True)
class Finding:
    """One problem with a form: severity, stable code, the field concerned, a message."""

    severity: Severity
    code: str
    field: str | None
    message: str

    @property
    def key(self) -> str:
        """``code:field``: what a user confirms (warnings) or what a page highlights."""
        return f"{self.code}:{self.field or ''}"

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity.value, "code": self.code, "field": self.field,
                "message": self.message, "key": self.key}

    def __str__(self) -> str:
        return self.message


def error(code: str, field: str | None, message: str) -> Finding:
    return Finding(Severity.ERROR, code, field, message)


def warning(code: str, field: str | None, message: str) -> Finding:
    return Finding(Severity.WARNING, code, field, message)


def errors_of(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(f for f in findings if f.severity is Severity.ERROR)


def warnings_of(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(f for f in findings if f.severity is Severity.WARNING)
