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
