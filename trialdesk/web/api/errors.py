"""The one mapping from exceptions to API error responses.

Every refusal has the same body as the CLI's ``--json`` errors (docs/formats.md,
"API errors")::

    {"error": {"code": "NOT_ELIGIBLE", "field": null, "message": "Not eligible: …"}}

The HTTP status comes from the exception's class, the first match in :data:`STATUS`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from trialdesk.errors import (
    AllocationError,
    InputRejected,
    NotRandomizable,
    ProtocolError,
    QueryTransitionRefused,
    RecordLocked,
    TrialError,
)

logger = logging.getLogger(__name__)

#: (exception class, HTTP status, code for exceptions that carry none), first match wins
STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (InputRejected, 422, InputRejected.code),
    (NotRandomizable, 409, NotRandomizable.code),
    (AllocationError, 409, AllocationError.code),
    (RecordLocked, 409, RecordLocked.code),
    (QueryTransitionRefused, 409, QueryTransitionRefused.code),
    (ProtocolError, 500, ProtocolError.code),
    (TrialError, 400, TrialError.code),
    (ValidationError, 422, InputRejected.code),  # a body or parameter of the wrong shape
    (PermissionDenied, 403, "PERMISSION_DENIED"),
    (Http404, 404, "NOT_FOUND"),
    (AuthenticationError, 401, "NOT_AUTHENTICATED"),
    (HttpError, 400, "HTTP_ERROR"),  # ninja's own, with its own status (400: body not JSON)
)

_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file", "payload"}


def _validation_error(exc: ValidationError) -> tuple[str | None, str]:
    """First failing field (dotted path inside the body) and every problem, readable."""
    fields, problems = [], []
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ()) if str(p) not in _SOURCES]
        name = ".".join(loc) or None
        fields.append(name)
        problems.append(f"{name}: {err.get('msg', 'invalid')}" if name
                        else str(err.get("msg", "invalid")))
    message = "; ".join(problems) or "The request does not have the expected shape."
    return (fields[0] if fields else None), message


def error_body(exc: Exception) -> tuple[int, dict[str, Any]]:
    """The status and ``{"error": {...}}`` body for ``exc``."""
    match = next(((status, code) for cls, status, code in STATUS if isinstance(exc, cls)), None)
    if match is None:  # pragma: no cover - only registered classes reach here
        raise exc
    status, code = match
    if isinstance(exc, TrialError):
        error = exc.to_dict()
    elif isinstance(exc, ValidationError):
        field, message = _validation_error(exc)
        error = {"code": code, "field": field, "message": message}
    elif isinstance(exc, AuthenticationError):
        error = {"code": code, "field": None, "message": "A valid API token is required: "
                 "send 'Authorization: Bearer <token>'."}
    elif isinstance(exc, HttpError):
        status = exc.status_code
        if status == 400:  # ninja could not parse the body
            code = InputRejected.code
        error = {"code": code, "field": None, "message": f"{exc}."}
    else:
        message = str(exc) or {403: "Permission denied.", 404: "Not found."}[status]
        error = {"code": code, "field": None, "message": message}
    return status, {"error": error}


def install(api: NinjaAPI) -> None:
    """Register :func:`handle` for every class of :data:`STATUS` on ``api``."""

    def handle(request: HttpRequest, exc: Exception) -> HttpResponse:
        status, body = error_body(exc)
        if status >= 500:
            logger.error("API %s %s: %s", request.method, request.path, body["error"])
        response = api.create_response(request, body, status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="trialdesk"'
        return response

    for cls, _, _ in STATUS:
        api.add_exception_handler(cls, handle)
