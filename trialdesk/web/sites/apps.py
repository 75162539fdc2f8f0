from django.apps import AppConfig


class SitesConfig(AppConfig):
    """Trial sites (from the protocol file) and who works at which."""

    name = "trialdesk.web.sites"
    label = "trial_sites"
    verbose_name = "Sites"
    default_auto_field = "django.db.models.BigAutoField"
