"""``POST /api/fhir``: FHIR R4 resources and transaction Bundles into live pre-screening.

The body is one FHIR R4 resource (Patient, Encounter, Observation,
MedicationAdministration, Medication) or a Bundle (transaction, batch, collection) as
JSON (``application/fhir+json`` or ``application/json``). The answer is an
OperationOutcome-like object with counts, the ingest report and the patients' new
status (docs/api.md, "FHIR ingest").
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from trialdesk.web.api.auth import permission
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.prescreen.services import INGEST, ingest_message

router = Router(tags=["pre-screening"])


@router.post("/fhir", **permission(INGEST), response={200: dict[str, Any], 422: dict[str, Any]},
             url_name="fhir_ingest", operation_id="fhir_ingest",
             summary="Send FHIR R4 resources or a transaction Bundle for pre-screening")
def fhir_ingest(request: HttpRequest, site: str | None = None):
    """Every value is kept with its source and the patients are re-assessed at once.

    ``site`` (site code) places patients the message does not place itself (no
    Encounter.serviceProvider or Patient.managingOrganization, not seen before).
    A body that is not valid FHIR R4 is refused as a whole (422 ``INGEST_INVALID``,
    nothing used; the message is kept as rejected).
    """
    outcome, body = ingest_message(request.body, request.auth, current_protocol(),
                                   site_code=site)
    return Status(outcome.status, body)
