from django.apps import AppConfig


class PrescreenConfig(AppConfig):
    """Live pre-screening: ingested ICU events, per-patient state, the candidate board."""

    name = "trialdesk.web.prescreen"
    label = "prescreen"
    default_auto_field = "django.db.models.BigAutoField"
