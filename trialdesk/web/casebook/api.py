"""API routes of the casebook (mounted at ``/api/casebooks`` by trialdesk.web.api.api).

Same services and permissions as the pages: reading needs ``casebook.view``, saving a
daily form ``casebook.edit``, saving the MSC product or infusion ``msc.record``,
marking any form entered in error ``casebook.edit`` (investigator, coordinator); each
checks the patient's site. A refused save is 422 with ``EDIT_CHECK_FAILED`` or
``CONFIRMATION_REQUIRED`` and every finding in ``error.problems``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from trialdesk.clinical.timeutil import format_local
from trialdesk.errors import InputRejected
from trialdesk.web.api.auth import permission, require_site
from trialdesk.web.casebook.models import Deviation, FormRecord
from trialdesk.web.casebook.services import (
    MSC_DAYS,
    casebook,
    is_lab_form,
    mark_form_entered_in_error,
    save_form,
)
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.randomization.models import Allocation

router = Router(tags=["casebooks"])


class FormSave(Schema):
    data: dict[str, Any] = Field(
        description="the form as entered: field id → value (numbers in the unit named by "
                    "the id, or {value, unit}; times ISO 8601 with a UTC offset)",
        examples=[{"pao2_mmhg": 70, "fio2_fraction": 0.5, "respiratory_support": "invasive"}])
    reason: str = Field("", description="required when the form is already saved")
    confirm: list[str] = Field(default_factory=list,
                               description="keys of the soft warnings you confirm")


class FormRecordOut(Schema):
    id: int
    subject_id: str
    form_id: str
    day: int | None
    data: dict[str, Any]
    derived: dict[str, Any]
    confirmed_warnings: list[dict[str, Any]]
    entered_by: str
    created_at: Any
    updated_at: Any
    entered_in_error: bool
    entered_in_error_reason: str


class EnteredInErrorIn(Schema):
    reason: str = Field(description="why the form was entered in error (required)")


class SaveResult(FormRecordOut):
    created: bool
    changed: bool
    deviations: list[dict[str, Any]]


class CasebookOut(Schema):
    subject_id: str
    site: str
    arm: str
    randomized_at: Any
    randomized_local: str
    death_date: str | None
    schedule: dict[str, Any]
    sofa_by_day: dict[str, Any]
    records: list[FormRecordOut]
    entered_in_error: list[FormRecordOut] = Field(
        description="forms marked entered in error: kept, left out of everything else")
    deviations: list[dict[str, Any]]


def _allocation(request: HttpRequest, subject_id: str) -> Allocation:
    allocation = get_object_or_404(Allocation.objects.select_related("site", "screening"),
                                   subject_id=subject_id)
    require_site(request, allocation.site)
    return allocation


def record_out(record: FormRecord) -> dict[str, Any]:
    return {"id": record.pk, "subject_id": record.allocation.subject_id,
            "form_id": record.form_id, "day": record.day, "data": record.data,
            "derived": record.derived, "confirmed_warnings": record.confirmed_warnings,
            "entered_by": record.entered_by.get_username(), "created_at": record.created_at,
            "updated_at": record.updated_at, "entered_in_error": record.entered_in_error,
            "entered_in_error_reason": record.entered_in_error_reason}


def deviation_out(d: Deviation) -> dict[str, Any]:
    return {"id": d.pk, "code": d.code, "severity": d.severity, "message": d.message,
            "status": d.status, "detected_at": d.detected_at.isoformat(),
            "source_form": d.source.form_id if d.source_id else None}


def _day(day: str) -> int | None:
    if day == "once":
        return None
    if not day.isdigit():
        raise InputRejected(f"'{day}' is not a study day (a whole number, or 'once' for "
                            "end of study).", field="day")
    return int(day)


@router.get("/{subject_id}", **permission("casebook.view"), response=CasebookOut,
            url_name="casebook_detail", operation_id="casebook_detail",
            summary="A patient's casebook: schedule, forms, SOFA per day, deviations")
def detail(request: HttpRequest, subject_id: str):
    allocation = _allocation(request, subject_id)
    book = casebook(current_protocol(), allocation)
    records = (FormRecord.objects.filter(allocation=allocation)
               .select_related("allocation", "entered_by"))
    return {"subject_id": allocation.subject_id, "site": allocation.site.code,
            "arm": allocation.arm, "randomized_at": allocation.randomized_at,
            "randomized_local": format_local(allocation.randomized_at,
                                             allocation.site.timezone),
            "death_date": book.death_date.isoformat() if book.death_date else None,
            "schedule": book.schedule.to_dict(),
            "sofa_by_day": {str(day): s for day, s in sorted(book.sofa_by_day.items())},
            "records": [record_out(r) for r in records if not r.entered_in_error],
            "entered_in_error": [record_out(r) for r in records if r.entered_in_error],
            "deviations": [deviation_out(d) for d in book.deviations]}


def _save(request: HttpRequest, allocation: Allocation, form_id: str, day: int | None,
          payload: FormSave):
    outcome = save_form(current_protocol(), allocation, form_id, day, payload.data,
                        user=request.auth, reason=payload.reason, confirm=payload.confirm)
    body = {**record_out(outcome.record), "created": outcome.created,
            "changed": outcome.changed,
            "deviations": [deviation_out(d) for d in outcome.deviations]}
    return Status(201 if outcome.created else 200, body)


@router.put("/{subject_id}/forms/{form_id}/{day}", **permission("casebook.edit"),
            response={200: SaveResult, 201: SaveResult}, url_name="casebook_form_save",
            operation_id="casebook_form_save",
            summary="Save a daily form (day = study day, or 'once' for end of study)")
def save_daily(request: HttpRequest, subject_id: str, form_id: str, day: str,
               payload: FormSave):
    """201 when first saved, 200 when changed (``reason`` required) or unchanged."""
    allocation = _allocation(request, subject_id)
    if is_lab_form(form_id):
        raise InputRejected(f"{form_id} is recorded by the cell-therapy lab: use "
                            f"/api/casebooks/{subject_id}/msc/{form_id}.", field="form_id")
    return _save(request, allocation, form_id, _day(day), payload)


@router.put("/{subject_id}/msc/{form_id}", **permission("msc.record"),
            response={200: SaveResult, 201: SaveResult}, url_name="casebook_msc_save",
            operation_id="casebook_msc_save",
            summary="Save the MSC product (msc_product), infusion (msc_infusion) or dose "
                    "not given (msc_not_given)")
def save_msc(request: HttpRequest, subject_id: str, form_id: str, payload: FormSave):
    allocation = _allocation(request, subject_id)
    if not is_lab_form(form_id):
        raise InputRejected(f"'{form_id}' is not an MSC form; use msc_product, "
                            "msc_infusion or msc_not_given.", field="form_id")
    return _save(request, allocation, form_id, MSC_DAYS[form_id], payload)


@router.post("/{subject_id}/forms/{form_id}/{day}/entered-in-error",
             **permission("casebook.edit"), response=FormRecordOut,
             url_name="casebook_form_entered_in_error",
             operation_id="casebook_form_entered_in_error",
             summary="Mark a saved form entered in error (reason required; kept, audited)")
def form_entered_in_error(request: HttpRequest, subject_id: str, form_id: str, day: str,
                          payload: EnteredInErrorIn):
    """Any form, the MSC ones included (day ``once`` for the product, ``0`` for the
    infusion); the slot can then be saved again."""
    allocation = _allocation(request, subject_id)
    return record_out(mark_form_entered_in_error(
        current_protocol(), allocation, form_id, _day(day), request.auth,
        reason=payload.reason))
