"""The protocol the web app runs, loaded once per process from settings."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from trialdesk.protocol import Protocol, load_protocol


@lru_cache(maxsize=4)
def _load(path: str) -> Protocol:
    return load_protocol(path)


def current_protocol() -> Protocol:
    """The validated protocol named by ``TRIALDESK_PROTOCOL`` (cached per process)."""
    return _load(str(settings.TRIALDESK_PROTOCOL))
