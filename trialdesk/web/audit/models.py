"""A hash chain over every audit (history) row, so edits outside the app are detected."""

from __future__ import annotations

from django.db import models


class ChainLink(models.Model):
    """One audit row's fingerprint: sha256(previous link's hash + the row's content)."""

    history_model = models.CharField(max_length=120, help_text="app_label.HistoricalModel")
    history_id = models.BigIntegerField()
    row_sha256 = models.CharField(max_length=64)
    chain_sha256 = models.CharField(max_length=64)
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["history_model", "history_id"],
                                               name="one_link_per_history_row")]


class ChainHead(models.Model):
    """A single row locked while appending, so links are appended one at a time."""

    last_link = models.ForeignKey(ChainLink, null=True, on_delete=models.PROTECT,
                                  related_name="+")
