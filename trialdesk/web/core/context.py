"""Template context: the running protocol's identity, on every page."""

from __future__ import annotations

from trialdesk.errors import ProtocolError
from trialdesk.web.core.protocol_access import current_protocol


def protocol(request):
    try:
        p = current_protocol()
    except ProtocolError:
        return {"protocol": None}
    return {"protocol": p, "protocol_sha_short": p.content_sha256[:12]}


class _May:
    """``{% if may.report_open %}``: whether the user holds the action's permission.

    The key is the action with its first dot written as an underscore (templates cannot
    look up dotted keys); each answer is computed on first use and cached per request.
    """

    def __init__(self, user):
        self._user = user
        self._cache: dict[str, bool] = {}

    def __getitem__(self, key: str) -> bool:
        from trialdesk.web.accounts.permissions import PERMISSIONS, has_permission

        if key not in self._cache:
            action = key.replace("_", ".", 1)
            self._cache[key] = action in PERMISSIONS and has_permission(self._user, action)
        return self._cache[key]


def permissions(request):
    """``may``: lets the navigation show a link only to roles that may use it."""
    return {"may": _May(getattr(request, "user", None))}
