from django.apps import AppConfig


class ExportsConfig(AppConfig):
    """The complete trial record as CDISC ODM 1.3.2 and long CSV, with the export log."""

    name = "trialdesk.web.exports"
    label = "exports"
    default_auto_field = "django.db.models.BigAutoField"
