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
    look up dotted keys). The user's roles are read once per request, on first use; an
    unknown action answers False.
    """

    def __init__(self, user):
        self._user = user
        self._roles = None  # the user's roles (at any site), read once per request

    def __getitem__(self, key: str) -> bool:
        from trialdesk.web.accounts.permissions import PERMISSIONS, roles_of

        action = key.replace("_", ".", 1)
        if action not in PERMISSIONS:
            return False
        if self._roles is None:
            self._roles = roles_of(self._user)
        return bool(self._roles & PERMISSIONS[action])


def permissions(request):
    """``may``: lets the navigation show a link only to roles that may use it."""
    return {"may": _May(getattr(request, "user", None))}
