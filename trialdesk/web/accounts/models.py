"""Who may do what, where: a user holds roles, each at one site or trial-wide.

Also the access log (logins, failures, lockouts, logouts) that ICH E6(R3) §4 asks
for, and the failed-login counter behind the lockout.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from trialdesk.web.sites.models import Site


class Role(models.TextChoices):
    """What a user does in the trial (docs/permissions.md says what each role may do).

    The trial statistician stays blind to comparative results; the unblinded statistician
    holds the allocation list and prepares the closed report for the DMC. The sponsor
    oversees read-only. ``integration`` is a machine account (the ICU data feed): API
    token only, refused at the web sign-in.
    """

    INVESTIGATOR = "investigator", "Investigator"
    COORDINATOR = "coordinator", "Research coordinator"
    LAB = "lab", "Cell-therapy lab"
    DATA_MANAGER = "data_manager", "Data manager"
    MONITOR = "monitor", "Monitor"
    STATISTICIAN = "statistician", "Trial statistician"
    DMC_STATISTICIAN = "dmc_statistician", "Unblinded statistician (DMC support)"
    DMC = "dmc", "Data monitoring committee member"
    SPONSOR = "sponsor", "Sponsor (read-only oversight)"
    ADMINISTRATOR = "administrator", "Administrator"
    INTEGRATION = "integration", "System integration (ICU data feed)"


class Membership(models.Model):
    """A role held by a user at a site, or at every site when ``site`` is empty."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT,
                             help_text="empty = all sites (trial-wide roles)")
    active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "role", "site"],
                                               name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} @ {self.site or 'all sites'}"


class LoginThrottle(models.Model):
    """Failed logins per username; locks the account after repeated failures."""

    username = models.CharField(max_length=150, unique=True)
    failures = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)


class AccessEvent(models.Model):
    """Append-only log of account access (never edited through the app)."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Login"
        LOGIN_FAILED = "login_failed", "Failed login"
        API_ONLY_REFUSED = "api_only_refused", "Sign-in refused: API-only account"
        SIGNATURE_FAILED = "signature_failed", "Wrong password at an electronic signature"
        LOCKED = "locked", "Account locked"
        LOGOUT = "logout", "Logout"

    username = models.CharField(max_length=150)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
