from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """The analysis dataset built from the database, and the trial reports made from it."""

    name = "trialdesk.web.reports"
    label = "reports"
    default_auto_field = "django.db.models.BigAutoField"
