from django.apps import AppConfig


class RandomizationConfig(AppConfig):
    """Sealed allocation lists, minimization state and the allocations themselves."""

    name = "trialdesk.web.randomization"
    label = "randomization"
    default_auto_field = "django.db.models.BigAutoField"
