from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The JSON API: bearer tokens and the routes mounted at /api/."""

    name = "trialdesk.web.api"
    label = "api"
    verbose_name = "API"
    default_auto_field = "django.db.models.BigAutoField"
