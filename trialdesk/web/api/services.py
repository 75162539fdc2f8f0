"""API token use cases: create (the plaintext is returned once), look up, revoke.

A token is ``td_`` followed by 43 URL-safe characters (256 random bits). Only its
SHA-256 is stored, so a copy of the database does not give anyone API access; the
first characters (``prefix``) are kept to tell tokens apart. Tokens are revoked,
never deleted, so the audit trail keeps who held which token when.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.db import transaction

from trialdesk.clinical.timeutil import utcnow
from trialdesk.errors import InputRejected
from trialdesk.web.api.models import ApiToken

TOKEN_PREFIX = "td_"  # noqa: S105 - a marker, not a secret
PREFIX_LENGTH = 10
#: ``last_used_at`` is written at most this often per token (a write per request is waste)
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_key(plaintext: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@transaction.atomic
def create_token(user: Any, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the token row and the plaintext (shown once)."""
    name = (name or "").strip()
    if not name:
        raise InputRejected("Give the token a name saying what it is for (e.g. 'EHR bridge').",
                            field="name")
    if len(name) > 100:
        raise InputRejected("A token name has at most 100 characters.", field="name")
    if not getattr(user, "is_active", False):
        raise InputRejected(f"User '{user}' is not active: no token can be issued.",
                            field="user")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, key_sha256=hash_key(plaintext),
                     prefix=plaintext[:PREFIX_LENGTH])
    token._change_reason = "API token created"
    token.save()
    return token, plaintext


def revoke_token(token: ApiToken, *, reason: str = "revoked") -> ApiToken:
    """Revoke a token (idempotent); it stops working at once."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        token._change_reason = reason
        token.save(update_fields=["revoked_at"])
    return token


def authenticate_key(plaintext: str) -> Any | None:
    """The active user holding the active token ``plaintext``, or None.

    Refuses unknown and revoked tokens and inactive users; records the use.
    """
    if not plaintext or not plaintext.startswith(TOKEN_PREFIX):
        return None
    token = (ApiToken.objects.select_related("user")
             .filter(key_sha256=hash_key(plaintext), revoked_at=None).first())
    if token is None or not token.user.is_active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # a plain UPDATE: no history row per request, no race with a revocation
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
