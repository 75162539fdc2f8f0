"""Bearer-token authentication, and the permission every API route declares.

A route is declared with ``**permission("screening.view")``: its token must belong to
an active user (else 401) who holds the action at some site (else 403), checked
before the body is read. The route then checks the record's site itself
(:func:`require_site`), as the pages do. A route that declares no action is refused
(403), like a page without ``@requires``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja.security import HttpBearer

from trialdesk.web.accounts.permissions import PERMISSIONS, check_site, has_permission
from trialdesk.web.api.services import authenticate_key
from trialdesk.web.sites.models import Site

#: key of the declared action in each operation of the OpenAPI schema
PERMISSION_KEY = "x-trialdesk-permission"


class TokenAuth(HttpBearer):
    """``Authorization: Bearer td_…``: looks the token's SHA-256 up, then checks ``action``.

    Unknown or revoked tokens and inactive users get 401; a user without the action
    at any site gets 403.
    """

    def __init__(self, action: str | None = None) -> None:
        if action is not None and action not in PERMISSIONS:
            raise KeyError(f"unknown permission '{action}'")
        self.action = action
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> Any | None:
        user = authenticate_key(token.strip())
        if user is None:
            return None
        request.user = user  # the audit trail and the permission checks read it
        if self.action is None:
            raise PermissionDenied("This API route declares no permission and is refused.")
        if not has_permission(user, self.action):
            raise PermissionDenied(f"Your role does not allow '{self.action}'.")
        request.trialdesk_permission = self.action  # type: ignore[attr-defined]
        return user


def permission(action: str) -> dict[str, Any]:
    """Keyword arguments of a route: token auth checking ``action``, shown in the schema."""
    return {"auth": TokenAuth(action), "openapi_extra": {PERMISSION_KEY: action}}


def require_site(request: HttpRequest, site: Site) -> None:
    """Refuse (403) unless the user holds the route's action at ``site``."""
    check_site(request.auth, request.trialdesk_permission, site)  # type: ignore[attr-defined]
