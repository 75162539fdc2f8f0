from django.apps import AppConfig


class CasebookConfig(AppConfig):
    """The patient casebook: daily CRFs, the MSC product and infusion, protocol deviations."""

    name = "trialdesk.web.casebook"
    label = "casebook"
    default_auto_field = "django.db.models.BigAutoField"
