"""Signing in: Argon2 hashes, lockout after repeated failures, access log."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from trialdesk.errors import InputRejected
from trialdesk.web.accounts.models import AccessEvent, Membership
from trialdesk.web.accounts.services import create_user

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery 1"


def _login(password: str, username: str = "alice") -> Client:
    client = Client(HTTP_HOST="localhost")
    client.post("/accounts/login/", {"username": username, "password": password})
    return client


def test_passwords_are_stored_as_argon2_hashes(alice):
    assert alice.password.startswith("argon2")


def test_a_coordinator_signs_in_and_the_login_is_logged(alice, nrch):
    Membership.objects.create(user=alice, role="coordinator", site=nrch)
    client = _login(PASSWORD)
    assert client.get("/").status_code == 200
    assert AccessEvent.objects.filter(username="alice", kind="login").count() == 1


@override_settings(TRIALDESK_LOCKOUT_FAILURES=3)
def test_three_wrong_passwords_lock_the_account_even_for_the_right_one(alice, nrch):
    Membership.objects.create(user=alice, role="coordinator", site=nrch)
    for _ in range(3):
        _login("wrong password")
    client = Client(HTTP_HOST="localhost")
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert "locked" in response.content.decode()
    assert client.get("/").status_code == 302  # still not signed in
    kinds = list(AccessEvent.objects.values_list("kind", flat=True))
    assert kinds.count("login_failed") == 3 and "locked" in kinds


def test_logout_needs_post_and_is_logged(alice, nrch):
    Membership.objects.create(user=alice, role="coordinator", site=nrch)
    client = _login(PASSWORD)
    assert client.get("/accounts/logout/").status_code == 405
    client.post("/accounts/logout/")
    assert AccessEvent.objects.filter(kind="logout").count() == 1
    assert client.get("/").status_code == 302


def test_create_user_refuses_weak_passwords_and_unknown_roles(nrch):
    with pytest.raises(InputRejected, match="Password refused"):
        create_user("bob", "123", role="coordinator", site_code="nrch")
    with pytest.raises(InputRejected, match="Unknown role"):
        create_user("bob", PASSWORD, role="nurse", site_code="nrch")
    with pytest.raises(InputRejected, match="Unknown site"):
        create_user("bob", PASSWORD, role="coordinator", site_code="elsewhere")


def test_create_user_gives_the_role_at_the_site(nrch):
    user = create_user("bob", PASSWORD, role="lab", site_code="nrch")
    assert Membership.objects.get(user=user).role == "lab"
    assert not user.is_staff


def test_an_idle_session_ends_after_the_session_age(alice, nrch, settings):
    import time

    Membership.objects.create(user=alice, role="coordinator", site=nrch)
    client = _login(PASSWORD)
    assert client.get("/").status_code == 200
    session = client.session
    session["trialdesk_last_seen"] = int(time.time()) - settings.SESSION_COOKIE_AGE - 1
    session.save()
    assert client.get("/").status_code == 302  # signed out, back to the login page
