from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Home page, protocol overview and bedside calculators."""

    name = "trialdesk.web.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from trialdesk.web.core import checks  # noqa: F401  (registers system checks)
