"""Request and response bodies of the API (pydantic, via django-ninja).

Times are ISO 8601 with a UTC offset: sent with any offset, returned in UTC (``Z``).
Durations and quantities carry their unit in the key (``hours_left``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Field, Schema

TIME_EXAMPLE = "2026-03-01T02:15:00+03:00"


# --- requests --------------------------------------------------------------------------


class ScreeningCreate(Schema):
    site: str = Field(description="site code from the protocol, e.g. 'nrch'",
                      examples=["nrch"])
    record: dict[str, Any] = Field(
        description="the screening record, in the `screen` JSON format of docs/formats.md "
                    "(units given with each measurement, times with a UTC offset)",
        examples=[{"birth_date": "1980-05-17", "sex": "female", "septic_shock": True,
                   "septic_shock_onset": TIME_EXAMPLE,
                   "neutrophils": {"value": 0.3, "unit": "10^9/L"}}])


class ScreeningUpdate(Schema):
    record: dict[str, Any] = Field(
        description="the whole corrected record (replaces the stored one; a key left out "
                    "means 'not known')")
    reason: str = Field(description="why the record changes, kept in the audit trail",
                        examples=["lab result corrected"])


class ConsentCreate(Schema):
    consent_type: str = Field(description="patient, legal_representative or deferred",
                              examples=["legal_representative"])
    document_version: str = Field(description="version of the consent document used",
                                  examples=["2.0"])
    obtained_at: str = Field(description="when consent was given: ISO 8601 with UTC offset",
                             examples=[TIME_EXAMPLE], json_schema_extra={"format": "date-time"})
    obtained_by: str = Field(description="person who obtained consent")
    signed_by: str = Field("", description="patient or representative who signed")


class CloseRequest(Schema):
    reason_code: str = Field(description="ineligible, declined, missed_window or other",
                             examples=["declined"])
    detail: str = Field("", description="free text, kept with the reason")


class RandomizeRequest(Schema):
    request_id: str = Field(
        description="chosen by the client, 1–100 characters, unique per patient: resending "
                    "the same id returns the same allocation (`replayed: true`)",
        examples=["6f1c0a3e9b6d4c1e8f7a2b3c4d5e6f70"])


# --- responses -------------------------------------------------------------------------


class ProtocolRef(Schema):
    id: str
    version: str
    sha256: str = Field(description="SHA-256 of the protocol file's bytes")


class Problem(Schema):
    code: str = Field(description="stable error code (docs/formats.md), e.g. LIKELY_WRONG_UNIT")
    field: str | None
    message: str


class Criterion(Schema):
    id: str
    type: str = Field(description="inclusion or exclusion")
    text: str
    status: str = Field(description="met, not_met or unknown (an exclusion met excludes)")
    reason: str
    data_used: dict[str, str]
    error_code: str | None
    missing_fields: list[str]


class Eligibility(Schema):
    decision: str = Field(description="eligible, ineligible or incomplete")
    evaluated_at: dt.datetime
    protocol: ProtocolRef
    criteria: list[Criterion]
    failing: list[str]
    missing_fields: list[str]
    input_problems: list[Problem]


class OnsetClock(Schema):
    onset_at: dt.datetime = Field(description="septic-shock onset (UTC)")
    deadline_at: dt.datetime = Field(description="end of the enrolment window (UTC)")
    deadline_hours: float = Field(description="length of the enrolment window, hours")
    hours_elapsed: float = Field(description="hours since onset, at the time of the request")
    hours_left: float = Field(description="hours until the deadline; negative once passed")
    is_open: bool
    urgency: str = Field(description="ok, soon (≤2 h left), urgent (≤1 h) or closed")
    onset_local: str = Field(description="onset in the site's time zone, for display")
    deadline_local: str = Field(description="deadline in the site's time zone, for display")


class ConsentOut(Schema):
    id: int
    screening_id: int
    consent_type: str
    document_version: str
    obtained_at: dt.datetime
    obtained_by: str
    signed_by: str
    recorded_by: str
    recorded_at: dt.datetime


class ScreeningSummary(Schema):
    id: int
    screening_number: str
    site: str = Field(description="site code")
    status: str = Field(description="open, randomized, not_enrolled or entered_in_error")
    onset_at: dt.datetime | None
    clock: OnsetClock | None = Field(description="null without a usable onset time")
    subject_id: str | None = Field(description="set once randomized")
    created_at: dt.datetime
    updated_at: dt.datetime


class ScreeningDetail(ScreeningSummary):
    record: dict[str, Any] = Field(description="the record as entered, with units")
    not_enrolled_reason: str
    created_by: str
    eligibility: Eligibility = Field(description="recomputed now from the record")
    consents: list[ConsentOut]


class AllocationOut(Schema):
    subject_id: str
    screening_id: int
    screening_number: str
    site: str
    arm: str = Field(description="arm id from the protocol")
    arm_label: str
    levels: dict[str, str] = Field(description="stratification factor -> level")
    source: str = Field(description="online or emergency")
    randomized_at: dt.datetime
    randomized_by: str
    protocol: ProtocolRef = Field(description="the protocol the allocation was made under")


class RandomizeResult(AllocationOut):
    replayed: bool = Field(description="true when this request id had already been served")
