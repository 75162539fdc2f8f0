"""One exception tree for TrialDesk, rooted at :class:`TrialError`.

Every error carries a stable ``code`` (for the API, the CLI and the docs), the
``field`` it concerns when there is one, and a message a coordinator can act on
at 3 a.m.: what is wrong, and what to do about it.
"""

from __future__ import annotations

from typing import Any


class TrialError(Exception):
    """Root of every error TrialDesk raises on purpose."""

    code: str = "TRIAL_ERROR"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shared by the CLI (``--json``) and the API."""
        return {"code": self.code, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        return self.message


# --- protocol files -----------------------------------------------------------------


class ProtocolError(TrialError):
    """A protocol file cannot be read or does not validate."""

    code = "PROTOCOL_INVALID"


class ProtocolNotFound(ProtocolError):
    code = "PROTOCOL_NOT_FOUND"


# --- rejected input -----------------------------------------------------------------


class InputRejected(TrialError):
    """A value was refused before it could reach a calculation or the database."""

    code = "INPUT_REJECTED"


class ImplausibleValue(InputRejected):
    """Outside the physiologically possible range for the unit given."""

    code = "IMPLAUSIBLE_VALUE"


class LikelyWrongUnit(ImplausibleValue):
    """Implausible in the unit given but plausible in another: names the likely unit."""

    code = "LIKELY_WRONG_UNIT"


class UnknownUnit(InputRejected):
    code = "UNKNOWN_UNIT"


class MissingValue(InputRejected):
    code = "MISSING_VALUE"


class FutureTime(InputRejected):
    """A clinical time stamp lies after the moment of evaluation."""

    code = "FUTURE_TIME"


class NaiveTime(InputRejected):
    """A time stamp without a UTC offset: ambiguous, so refused."""

    code = "TIMEZONE_REQUIRED"


class TimeOrderError(InputRejected):
    """Two time stamps in an impossible order (e.g. onset after randomization)."""

    code = "TIME_ORDER"


class EditCheckFailed(InputRejected):
    """A case report form has hard errors; ``problems`` lists every finding at once."""

    code = "EDIT_CHECK_FAILED"

    def __init__(self, message: str, *, problems: list[dict[str, Any]] | None = None,
                 field: str | None = None):
        super().__init__(message, field=field)
        self.problems = list(problems or [])

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "problems": self.problems}


class ConfirmationRequired(EditCheckFailed):
    """A form has unusual values (soft warnings) that must be confirmed before saving."""

    code = "CONFIRMATION_REQUIRED"


# --- randomization refusals (the patient cannot be allocated now) ------------------------


class NotRandomizable(TrialError):
    """The screening record does not allow randomization; the message says why."""

    code = "NOT_RANDOMIZABLE"


class NotEligible(NotRandomizable):
    code = "NOT_ELIGIBLE"


class EligibilityIncomplete(NotRandomizable):
    code = "ELIGIBILITY_INCOMPLETE"


class ConsentMissing(NotRandomizable):
    code = "CONSENT_MISSING"


class WindowClosed(NotRandomizable):
    code = "WINDOW_CLOSED"


class AlreadyRandomized(NotRandomizable):
    code = "ALREADY_RANDOMIZED"


class RequestIdReused(NotRandomizable):
    """A client request id already used for a different patient."""

    code = "REQUEST_ID_REUSED"


# --- allocation (the allocation machinery cannot give an arm) ---------------------------


class AllocationError(TrialError):
    """The allocation machinery cannot give an arm: a design, list or state problem."""

    code = "ALLOCATION_ERROR"


class ListExhausted(AllocationError):
    """Every entry of a stratum's allocation list is used: nothing may be improvised."""

    code = "LIST_EXHAUSTED"


class CommitmentMismatch(AllocationError):
    """An allocation list's sha256 differs from the commitment published before enrolment."""

    code = "COMMITMENT_MISMATCH"


class UnknownStratum(InputRejected):
    """A stratification factor's level is missing or is not one of the protocol's levels."""

    code = "UNKNOWN_STRATUM"


# --- statistical analysis ---------------------------------------------------------------


class AnalysisError(TrialError):
    """The analysis cannot be carried out on the data given (an arm without subjects, …)."""

    code = "ANALYSIS_ERROR"


class DatasetError(InputRejected):
    """A subjects dataset (CSV or records) is malformed; the message names the row and column."""

    code = "DATASET_INVALID"


class IngestError(InputRejected):
    """An ICU data source cannot be read at all (missing folder, table or column)."""

    code = "INGEST_INVALID"


class DesignError(TrialError):
    """A group-sequential design cannot be built: bad looks, fractions, alpha or type."""

    code = "DESIGN_INVALID"


# --- data management (locks, queries, signatures) -------------------------------------


class RecordLocked(TrialError):
    """The patient's data or the whole trial is locked: unlock (with a reason) to change it."""

    code = "RECORD_LOCKED"


class QueryTransitionRefused(TrialError):
    """A data query cannot move to the requested state (e.g. answering a closed query)."""

    code = "QUERY_TRANSITION_REFUSED"


class SignatureRefused(TrialError):
    """An electronic signature was refused: wrong password, or the signer may not sign."""

    code = "SIGNATURE_REFUSED"
