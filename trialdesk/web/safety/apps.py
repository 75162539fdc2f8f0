from django.apps import AppConfig


class SafetyConfig(AppConfig):
    """Adverse events, their expedited-reporting obligations and the safety dashboard."""

    name = "trialdesk.web.safety"
    label = "safety"
    default_auto_field = "django.db.models.BigAutoField"
