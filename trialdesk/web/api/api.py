"""The API routes (listed in docs/api.md).

Each route declares its action from the permission table with ``**permission(...)``
(checked, with the token, before the body is read) and checks the record's site with
:func:`~trialdesk.web.api.auth.require_site`, as the pages do. Every use case is the
pages' own service function; errors go through the one mapping in
:mod:`trialdesk.web.api.errors`.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, Status

from trialdesk.clinical.onset import EnrolmentWindow
from trialdesk.clinical.timeutil import format_local, utcnow
from trialdesk.eligibility import EligibilityResult
from trialdesk.errors import InputRejected, TrialError
from trialdesk.web.accounts.permissions import public, sites_for
from trialdesk.web.api import errors
from trialdesk.web.api.auth import TokenAuth, permission, require_site
from trialdesk.web.api.schemas import (
    AllocationOut,
    CloseRequest,
    ConsentCreate,
    ConsentOut,
    RandomizeRequest,
    RandomizeResult,
    ScreeningCreate,
    ScreeningDetail,
    ScreeningSummary,
    ScreeningUpdate,
)
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import randomize
from trialdesk.web.screening.models import Consent, Screening, ScreeningStatus
from trialdesk.web.screening.services import (
    assess,
    close_screening,
    create_screening,
    record_consent,
    update_screening,
)
from trialdesk.web.sites.models import Site


class TrialDeskAPI(NinjaAPI):
    """NinjaAPI whose documentation pages pass the deny-by-default middleware.

    The OpenAPI schema, the docs page and ``/api/`` (ninja's 404 naming the docs URL)
    hold no trial data and are public; every route requires a token.
    """

    @property
    def urls(self):  # type: ignore[override]
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if pattern.name in ("openapi-json", "openapi-view", "api-root"):
                public(pattern.callback)
        return patterns, app_name, namespace


# auth=TokenAuth() without an action refuses every route that declares no permission
api = TrialDeskAPI(title="TrialDesk API", version="1", docs_url="/docs", auth=TokenAuth(),
                   urls_namespace="api",
                   description="Screening and randomization for the trial the server runs. "
                               "Authenticate with `Authorization: Bearer <token>`. Errors: "
                               '`{"error": {"code", "field", "message"}}` (docs/api.md).')
errors.install(api)


# --- site scoping ----------------------------------------------------------------------


def _screening(request: HttpRequest, screening_id: int) -> Screening:
    """The screening, if the route's action is allowed at its site (else 404 / 403)."""
    screening = get_object_or_404(Screening.objects.select_related("site", "created_by"),
                                  pk=screening_id)
    require_site(request, screening.site)
    return screening


# --- serialisation ---------------------------------------------------------------------


def _clock(screening: Screening, now) -> dict[str, Any] | None:
    if screening.onset_utc is None:
        return None
    window = EnrolmentWindow(screening.onset_utc, current_protocol().enrolment_deadline_hours)
    try:
        status = window.status(now)
    except TrialError:  # onset in the future: reported in the eligibility's input problems
        return None
    zone = screening.site.timezone
    return {"onset_at": window.onset_utc, "deadline_at": window.deadline_utc,
            "deadline_hours": window.deadline_hours,
            "hours_elapsed": round(status.hours_elapsed, 2),
            "hours_left": round(status.hours_left, 2), "is_open": status.is_open,
            "urgency": status.urgency.value,
            "onset_local": format_local(window.onset_utc, zone),
            "deadline_local": format_local(window.deadline_utc, zone)}


def _summary(screening: Screening, now) -> dict[str, Any]:
    allocation = getattr(screening, "allocation", None)
    return {"id": screening.pk, "screening_number": screening.screening_number,
            "site": screening.site.code, "status": screening.status,
            "onset_at": screening.onset_utc, "clock": _clock(screening, now),
            "subject_id": allocation.subject_id if allocation else None,
            "created_at": screening.created_at, "updated_at": screening.updated_at}


def _consent(consent: Consent) -> dict[str, Any]:
    return {"id": consent.pk, "screening_id": consent.screening_id,
            "consent_type": consent.consent_type, "document_version": consent.document_version,
            "obtained_at": consent.obtained_at, "obtained_by": consent.obtained_by,
            "signed_by": consent.signed_by, "recorded_by": consent.recorded_by.get_username(),
            "recorded_at": consent.recorded_at}


def _detail(screening: Screening, eligibility: EligibilityResult | None = None
            ) -> dict[str, Any]:
    now = utcnow()
    if eligibility is None:
        eligibility = assess(current_protocol(), screening, now)
    return {**_summary(screening, now), "record": screening.record,
            "not_enrolled_reason": screening.not_enrolled_reason,
            "created_by": screening.created_by.get_username(),
            "eligibility": eligibility.to_dict(),
            "consents": [_consent(c) for c in
                         screening.consents.select_related("recorded_by")]}


def _allocation(allocation: Allocation) -> dict[str, Any]:
    protocol = current_protocol()
    label = next((a.label for a in protocol.arms if a.id == allocation.arm), allocation.arm)
    return {"subject_id": allocation.subject_id, "screening_id": allocation.screening_id,
            "screening_number": allocation.screening.screening_number,
            "site": allocation.site.code, "arm": allocation.arm, "arm_label": label,
            "levels": allocation.levels, "source": allocation.source,
            "randomized_at": allocation.randomized_at,
            "randomized_by": allocation.randomized_by.get_username(),
            "protocol": {"id": allocation.protocol_id, "version": allocation.protocol_version,
                         "sha256": allocation.protocol_sha256}}


# --- screenings ------------------------------------------------------------------------


@api.get("/screenings", **permission("screening.view"), response=list[ScreeningSummary],
         url_name="screening_list", operation_id="screening_list", tags=["screenings"],
         summary="Screenings at your sites")
def list_screenings(request: HttpRequest, status: ScreeningStatus | None = None):
    """Screenings at the sites where you may view them, newest first; filter by ``status``."""
    screenings = (Screening.objects.select_related("site", "allocation")
                  .filter(site__in=sites_for(request.auth, "screening.view")))
    if status is not None:
        screenings = screenings.filter(status=status)
    now = utcnow()
    return [_summary(s, now) for s in screenings]


@api.post("/screenings", **permission("screening.edit"), response={201: ScreeningDetail},
          url_name="screening_create", operation_id="screening_create", tags=["screenings"],
          summary="Log a screened patient")
def create(request: HttpRequest, payload: ScreeningCreate):
    """Save the record as entered (unusable values are kept and reported in
    ``eligibility.input_problems``) and return it with its eligibility."""
    site = Site.objects.filter(code=payload.site).first()
    if site is None or not site.active:
        allowed = ", ".join(s.code for s in sites_for(request.auth, "screening.edit"))
        raise InputRejected(f"Unknown or closed site '{payload.site}'; your sites: {allowed}.",
                            field="site")
    require_site(request, site)
    view = create_screening(current_protocol(), site, request.auth, payload.record)
    return Status(201, _detail(view.screening, view.eligibility))


@api.get("/screenings/{screening_id}", **permission("screening.view"),
         response=ScreeningDetail, url_name="screening_detail", operation_id="screening_detail",
         tags=["screenings"], summary="A screening with its eligibility and onset clock")
def detail(request: HttpRequest, screening_id: int):
    return _detail(_screening(request, screening_id))


@api.put("/screenings/{screening_id}", **permission("screening.edit"),
         response=ScreeningDetail, url_name="screening_update", operation_id="screening_update",
         tags=["screenings"], summary="Correct a screening record (reason required)")
def update(request: HttpRequest, screening_id: int, payload: ScreeningUpdate):
    screening = _screening(request, screening_id)
    view = update_screening(current_protocol(), screening, request.auth, payload.record,
                            payload.reason)
    return _detail(view.screening, view.eligibility)


@api.post("/screenings/{screening_id}/consent", **permission("consent.record"),
          response={201: ConsentOut}, url_name="screening_consent",
          operation_id="screening_consent", tags=["screenings"],
          summary="Record informed consent")
def consent(request: HttpRequest, screening_id: int, payload: ConsentCreate):
    screening = _screening(request, screening_id)
    recorded = record_consent(current_protocol(), screening, request.auth,
                              consent_type=payload.consent_type,
                              document_version=payload.document_version,
                              obtained_at=payload.obtained_at,  # type: ignore[arg-type]
                              obtained_by=payload.obtained_by, signed_by=payload.signed_by)
    return Status(201, _consent(recorded))


@api.post("/screenings/{screening_id}/close", **permission("screening.edit"),
          response=ScreeningDetail, url_name="screening_close", operation_id="screening_close",
          tags=["screenings"], summary="Close a screening without enrolment")
def close(request: HttpRequest, screening_id: int, payload: CloseRequest):
    screening = _screening(request, screening_id)
    close_screening(screening, request.auth, reason_code=payload.reason_code,
                    detail=payload.detail)
    return _detail(screening)


@api.post("/screenings/{screening_id}/randomize", **permission("randomization.randomize"),
          response={200: RandomizeResult, 201: RandomizeResult}, url_name="screening_randomize",
          operation_id="screening_randomize", tags=["screenings"], summary="Randomize (once)")
def randomize_screening(request: HttpRequest, screening_id: int, payload: RandomizeRequest):
    """201 with the new allocation; 200 with ``replayed: true`` when the same
    ``request_id`` was already served for this patient (a retried request)."""
    screening = _screening(request, screening_id)
    outcome = randomize(screening.pk, user=request.auth, request_id=payload.request_id,
                        protocol=current_protocol())
    allocation = (Allocation.objects.select_related("site", "screening", "randomized_by")
                  .get(pk=outcome.allocation.pk))
    body = {**_allocation(allocation), "replayed": outcome.replayed}
    return Status(200 if outcome.replayed else 201, body)


# --- allocations -----------------------------------------------------------------------


@api.get("/allocations/{subject_id}", **permission("randomization.view"),
         response=AllocationOut, url_name="allocation_detail", operation_id="allocation_detail",
         tags=["allocations"], summary="A randomized subject's allocation")
def allocation_detail(request: HttpRequest, subject_id: str):
    allocation = get_object_or_404(
        Allocation.objects.select_related("site", "screening", "randomized_by"),
        subject_id=subject_id)
    require_site(request, allocation.site)
    return _allocation(allocation)


# --- casebooks (routes in trialdesk/web/casebook/api.py) ---------------------------------

from trialdesk.web.casebook.api import router as casebook_router  # noqa: E402

api.add_router("/casebooks", casebook_router)

# --- adverse events and data queries (trialdesk/web/safety/api.py, datamgmt/api.py) ------

from trialdesk.web.datamgmt.api import router as datamgmt_router  # noqa: E402
from trialdesk.web.safety.api import router as safety_router  # noqa: E402

api.add_router("", safety_router)
api.add_router("", datamgmt_router)

# --- live pre-screening: FHIR ingest (trialdesk/web/prescreen/api.py) ------------------

from trialdesk.web.prescreen.api import router as prescreen_router  # noqa: E402

api.add_router("", prescreen_router)
