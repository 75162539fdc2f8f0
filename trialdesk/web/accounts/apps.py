from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Roles at sites, login with lockout, and the access log."""

    name = "trialdesk.web.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
