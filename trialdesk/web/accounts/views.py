"""Login with lockout, and logout."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse

from trialdesk.web.accounts.permissions import public
from trialdesk.web.accounts.services import (
    is_api_only,
    lockout_until,
    record_api_only_refusal,
    record_failure,
    record_login,
    record_logout,
)

#: shown when a machine account (integration role) tries the web sign-in
API_ONLY_MESSAGE = ("This is a system account for the ICU data feed: it sends data through "
                    "its API token only and cannot sign in to TrialDesk's pages. Sign in "
                    "with your personal account.")


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


class LockoutAuthenticationForm(AuthenticationForm):
    """Refuses a locked account before checking the password; counts failures; refuses
    a machine account (integration role only) after it, without counting a failure."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if is_api_only(user):
            raise forms.ValidationError(API_ONLY_MESSAGE, code="api_only")

    def clean(self):
        username = (self.data.get("username") or "").strip()
        until = lockout_until(username) if username else None
        if until is not None:
            raise forms.ValidationError(
                f"This account is locked after repeated failed logins until "
                f"{until.astimezone(dt.UTC):%H:%M} UTC. Try again then, or "
                "ask the trial administrator to unlock it.", code="locked")
        try:
            return super().clean()
        except forms.ValidationError as exc:
            if getattr(exc, "code", None) == "api_only":
                record_api_only_refusal(username, _ip(self.request))
                raise
            if username:
                until = record_failure(username, _ip(self.request))
                if until is not None:
                    raise forms.ValidationError(
                        "Too many failed logins: the account is locked until "
                        f"{until.astimezone(dt.UTC):%H:%M} UTC.",
                        code="locked") from None
            raise


@public
def login_view(request: HttpRequest) -> HttpResponse:
    view = auth_views.LoginView.as_view(
        template_name="accounts/login.html", authentication_form=LockoutAuthenticationForm,
        redirect_authenticated_user=True)
    response = view(request)
    if request.method == "POST" and request.user.is_authenticated:
        record_login(request.user.get_username(), _ip(request))
    return response


@public
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and request.user.is_authenticated:
        record_logout(request.user.get_username(), _ip(request))
    return auth_views.LogoutView.as_view(next_page="accounts:login")(request)
