"""API tokens: only the SHA-256 of a token is stored; tokens are revoked, never deleted."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class ApiToken(models.Model):
    """A bearer token of one user. The plaintext is shown once, at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="what the token is for, e.g. 'EHR bridge'")
    key_sha256 = models.CharField(max_length=64, unique=True,
                                  help_text="SHA-256 (hex) of the token; the token itself is "
                                            "never stored")
    prefix = models.CharField(max_length=16, help_text="first characters, to recognise a token")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["last_used_at"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.prefix}… {self.name} ({self.user}, {state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def delete(self, *args, **kwargs):  # type: ignore[override]
        raise PermissionError("API tokens are never deleted: revoke the token instead "
                              "(trialdesk.web.api.services.revoke_token).")
