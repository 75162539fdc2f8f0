from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    """The screening log: every patient assessed for eligibility (CONSORT)."""

    name = "trialdesk.web.screening"
    label = "screening"
    default_auto_field = "django.db.models.BigAutoField"
