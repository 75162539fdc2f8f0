from django.apps import AppConfig


class DataMgmtConfig(AppConfig):
    """Data management: locks, queries, source-data verification, electronic signatures."""

    name = "trialdesk.web.datamgmt"
    label = "datamgmt"
    default_auto_field = "django.db.models.BigAutoField"
