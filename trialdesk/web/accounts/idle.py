"""Idle session expiry without a database write on every request.

Django's SESSION_SAVE_EVERY_REQUEST writes the session row on every page view; under
concurrent use on SQLite those writes queue behind one another. Instead the session
remembers when it was last refreshed and is saved at most once per
``TRIALDESK_SESSION_REFRESH_SECONDS``; a session idle longer than the session age is
ended (the user signs in again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout

_KEY = "trialdesk_last_seen"


class IdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[..., Any]):
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        if request.user.is_authenticated:
            now = int(time.time())
            last = request.session.get(_KEY, now)
            if now - last > settings.SESSION_COOKIE_AGE:
                logout(request)
            elif now - last >= settings.TRIALDESK_SESSION_REFRESH_SECONDS or \
                    _KEY not in request.session:
                request.session[_KEY] = now  # marks the session modified: saved once
        return self.get_response(request)
