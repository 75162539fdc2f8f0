"""Account use cases: lockout bookkeeping, access log, creating users with roles."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from trialdesk.errors import InputRejected
from trialdesk.web.accounts.models import AccessEvent, LoginThrottle, Membership, Role
from trialdesk.web.sites.models import Site


def lockout_until(username: str) -> dt.datetime | None:
    """When the account is locked, the UTC time it unlocks; else None."""
    throttle = LoginThrottle.objects.filter(username=username.lower()).first()
    if throttle and throttle.locked_until and throttle.locked_until > timezone.now():
        return throttle.locked_until
    return None


@transaction.atomic
def record_failure(username: str, ip: str | None, *,
                   kind: str = AccessEvent.Kind.LOGIN_FAILED) -> dt.datetime | None:
    """Count a failed login (or, with ``kind`` SIGNATURE_FAILED, a wrong password at an
    electronic signature: 21 CFR 11.300 counts both toward the one lockout); lock the
    account at the threshold. Returns the lock end, or None while not locked."""
    throttle, _ = LoginThrottle.objects.select_for_update().get_or_create(
        username=username.lower())
    throttle.failures += 1
    AccessEvent.objects.create(username=username, kind=kind, ip=ip)
    if throttle.failures >= settings.TRIALDESK_LOCKOUT_FAILURES:
        throttle.locked_until = timezone.now() + dt.timedelta(
            minutes=settings.TRIALDESK_LOCKOUT_MINUTES)
        throttle.failures = 0
        AccessEvent.objects.create(username=username, kind=AccessEvent.Kind.LOCKED, ip=ip)
    throttle.save()
    return throttle.locked_until


def clear_failures(username: str) -> None:
    """A correct password re-entered (at a signature) resets the failure count, as a
    login does; an account already locked stays locked until its time is up."""
    LoginThrottle.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=timezone.now()),
        username=username.lower()).update(failures=0)


def record_login(username: str, ip: str | None) -> None:
    LoginThrottle.objects.filter(username=username.lower()).update(failures=0,
                                                                  locked_until=None)
    AccessEvent.objects.create(username=username, kind=AccessEvent.Kind.LOGIN, ip=ip)


def record_logout(username: str, ip: str | None) -> None:
    AccessEvent.objects.create(username=username, kind=AccessEvent.Kind.LOGOUT, ip=ip)


#: roles of machine accounts: they act through an API token and never sign in to the pages
API_ONLY_ROLES = frozenset({Role.INTEGRATION})


def is_api_only(user: object) -> bool:
    """Whether every active role of ``user`` is a machine role (e.g. the ICU data feed).

    Such an account is refused at the web sign-in even with the right password; a person
    who also holds a human role signs in as usual.
    """
    roles = set(Membership.objects.filter(user=user, active=True)
                .values_list("role", flat=True))
    return bool(roles) and roles <= {r.value for r in API_ONLY_ROLES}


def record_api_only_refusal(username: str, ip: str | None) -> None:
    """Log a sign-in refused because the account is API-only (not counted to the lockout:
    the password was right)."""
    AccessEvent.objects.create(username=username, kind=AccessEvent.Kind.API_ONLY_REFUSED,
                               ip=ip)


@transaction.atomic
def create_user(username: str, password: str, *, role: str, site_code: str | None,
                email: str = "") -> object:
    """Create an account with one role (at a site, or trial-wide when site is None)."""
    try:
        role_value = Role(role)
    except ValueError:
        raise InputRejected(f"Unknown role '{role}'; roles: "
                            f"{', '.join(r.value for r in Role)}.", field="role") from None
    site = None
    if site_code is not None:
        site = Site.objects.filter(code=site_code).first()
        if site is None:
            raise InputRejected(f"Unknown site '{site_code}'.", field="site")
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise InputRejected(f"User '{username}' already exists.", field="username")
    user = user_model(username=username, email=email)
    try:
        validate_password(password, user)
    except Exception as exc:  # django ValidationError: list of messages
        raise InputRejected("Password refused: " + " ".join(getattr(exc, "messages", [])),
                            field="password") from None
    user.set_password(password)
    user.is_staff = role_value is Role.ADMINISTRATOR
    user.is_superuser = role_value is Role.ADMINISTRATOR
    user.save()
    Membership.objects.create(user=user, role=role_value, site=site)
    return user
