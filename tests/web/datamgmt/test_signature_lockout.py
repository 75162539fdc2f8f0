"""21 CFR 11.300(d): wrong passwords at an electronic signature count toward the same
account lockout as failed logins; past the threshold the account is locked as at login,
and no signature is accepted, even with the right password, until it unlocks.

The threshold is the setting the login uses (``TRIALDESK_LOCKOUT_FAILURES``), set here
to 3 so the count is written out.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.web.datamgmt.conftest import PASSWORD
from tests.web.datamgmt.test_datamgmt import entry
from trialdesk.errors import SignatureRefused
from trialdesk.web.accounts.models import AccessEvent
from trialdesk.web.accounts.services import lockout_until, record_failure
from trialdesk.web.datamgmt.models import Signature, SignatureRefusal
from trialdesk.web.datamgmt.services import sign
from trialdesk.web.safety.services import report_ae

pytestmark = pytest.mark.django_db
WRONG = "not my password"


@pytest.fixture(autouse=True)
def three_failures(settings):
    settings.TRIALDESK_LOCKOUT_FAILURES = 3
    settings.TRIALDESK_LOCKOUT_MINUTES = 15


@pytest.fixture
def ae(patient, ivan, rumcess):
    return report_ae(patient, ivan, entry(), protocol=rumcess)


def kinds(username: str) -> list[str]:
    return list(AccessEvent.objects.filter(username=username).order_by("pk")
                .values_list("kind", flat=True))


def test_the_third_wrong_password_locks_the_account_and_the_right_one_is_then_refused(
        ae, ivan):
    for _ in range(2):
        with pytest.raises(SignatureRefused, match="password is not correct"):
            sign(ae, ivan, password=WRONG, meaning="responsibility")
        assert lockout_until("ivan") is None
    with pytest.raises(SignatureRefused, match="locked"):
        sign(ae, ivan, password=WRONG, meaning="responsibility")
    assert lockout_until("ivan") is not None
    assert kinds("ivan") == ["signature_failed"] * 3 + ["locked"]
    with pytest.raises(SignatureRefused, match="account is locked"):
        sign(ae, ivan, password=PASSWORD, meaning="responsibility")
    assert not Signature.objects.exists()
    assert list(SignatureRefusal.objects.order_by("pk").values_list("reason", flat=True)) \
        == ["wrong password"] * 3 + ["account locked"]
    # locked as at login: the right password does not sign in either
    client = Client(HTTP_HOST="localhost")
    client.post("/accounts/login/", {"username": "ivan", "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_failed_logins_and_wrong_signature_passwords_count_together(ae, ivan):
    for _ in range(2):
        record_failure("ivan", "10.0.0.7")  # what the login form records on a failure
    with pytest.raises(SignatureRefused, match="locked"):
        sign(ae, ivan, password=WRONG, meaning="review")
    assert kinds("ivan") == ["login_failed", "login_failed", "signature_failed", "locked"]


def test_a_correct_signature_resets_the_count_as_a_login_does(ae, ivan):
    for _ in range(2):
        with pytest.raises(SignatureRefused):
            sign(ae, ivan, password=WRONG, meaning="review")
    sign(ae, ivan, password=PASSWORD, meaning="review")
    for _ in range(2):
        with pytest.raises(SignatureRefused, match="password is not correct"):
            sign(ae, ivan, password=WRONG, meaning="review")
    assert lockout_until("ivan") is None and Signature.objects.count() == 1


def test_the_signing_page_ends_the_session_of_a_locked_account(ae, ivan):
    client = Client(HTTP_HOST="localhost")
    client.force_login(ivan)
    url = f"/data/record/safety.adverseevent/{ae.pk}/sign/"
    for _ in range(2):
        response = client.post(url, {"password": WRONG, "meaning": "responsibility"})
        assert response.status_code == 422 and "_auth_user_id" in client.session
    response = client.post(url, {"password": WRONG, "meaning": "responsibility"})
    assert response.status_code == 422 and "account is locked" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert kinds("ivan")[-2:] == ["locked", "logout"]
    assert client.get(f"/safety/ae/{ae.pk}/").status_code == 302  # to the login page
