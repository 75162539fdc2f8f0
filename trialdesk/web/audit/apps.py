from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit trail: readable history per record and a tamper-evident hash chain."""

    name = "trialdesk.web.audit"
    label = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from simple_history.signals import post_create_historical_record

        from trialdesk.web.audit.chain import chain_history_row

        # The one framework hook we use: every audit row, from any code path, is chained
        # in the same transaction that writes it (an explicit call could be forgotten).
        post_create_historical_record.connect(chain_history_row,
                                              dispatch_uid="trialdesk-audit-chain")
