"""Generated trial reports, stored as produced: HTML, PDF and the manifest they cite.

A report is never edited: regenerating makes a new row. The HTML and PDF bytes are kept
with their SHA-256 so a copy can be checked against the stored artefact; the history
table records who generated what (without duplicating the documents).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class ReportVersion(models.TextChoices):
    OPEN = "open", "Open (pooled, no arm-level results)"
    CLOSED = "closed", "Closed (unblinded, by arm; DMC)"


class ReportArtefact(models.Model):
    version = models.CharField(max_length=10, choices=ReportVersion.choices)
    dataset_sha256 = models.CharField(max_length=64)
    protocol_id = models.CharField(max_length=80)
    protocol_version = models.CharField(max_length=40)
    protocol_sha256 = models.CharField(max_length=64)
    n_subjects = models.PositiveIntegerField()
    html = models.TextField()
    html_sha256 = models.CharField(max_length=64)
    pdf = models.BinaryField()
    pdf_sha256 = models.CharField(max_length=64)
    manifest = models.JSONField(default=dict, help_text="hashes, protocol, caveats")
    generated_at = models.DateTimeField(help_text="UTC")
    generated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    history = HistoricalRecords(excluded_fields=["html", "pdf"])

    class Meta:
        ordering = ["-generated_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.version} report {self.generated_at:%Y-%m-%d %H:%M} " \
               f"(dataset {self.dataset_sha256[:12]})"
