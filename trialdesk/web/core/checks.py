"""Django system checks with stable ids (``manage.py check`` runs them at start-up).

trialdesk.E001  the configured protocol file does not load or validate
trialdesk.W001  demo mode is on (generated secret key, not for real patients)
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register

from trialdesk.errors import ProtocolError


@register()
def protocol_loads(app_configs, **kwargs):
    from trialdesk.web.core.protocol_access import current_protocol

    try:
        current_protocol()
    except ProtocolError as exc:
        return [Error(str(exc), hint="Fix the file or point TRIALDESK_PROTOCOL at a valid one.",
                      id="trialdesk.E001")]
    return []


@register(deploy=True)
def demo_mode_off(app_configs, **kwargs):
    if getattr(settings, "DEMO", False):
        return [Warning("TRIALDESK_DEMO is on: the secret key is generated at start-up and "
                        "the database holds demonstration data.",
                        hint="Unset TRIALDESK_DEMO and set TRIALDESK_SECRET_KEY in production.",
                        id="trialdesk.W001")]
    return []
