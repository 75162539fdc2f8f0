"""The export log: who exported the trial record, when, in which format, with what hash.

One row per export, written when the export starts and completed once when its last
byte is produced (SHA-256 of the bytes, size, counts); an export cut short (a closed
browser tab) stays without ``finished_at``. Rows are never edited otherwise or deleted;
the history keeps both writes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class ExportFormat(models.TextChoices):
    ODM = "odm", "CDISC ODM 1.3.2 XML"
    CSV = "csv", "Long CSV"


class ExportLog(models.Model):
    format = models.CharField(max_length=10, choices=ExportFormat.choices)
    channel = models.CharField(max_length=10, help_text="web or cli")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.PROTECT, related_name="+",
                             help_text="signed-in user (web); empty from the command line")
    requested_by = models.CharField(max_length=150, help_text="login name or OS user (cli)")
    sites = models.CharField(max_length=500, help_text="site codes exported, comma-separated")
    file_oid = models.CharField(max_length=100)
    started_at = models.DateTimeField(help_text="UTC")
    as_of = models.DateTimeField(help_text="UTC; audit rows up to this instant are exported")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="UTC; empty: cut short")
    sha256 = models.CharField(max_length=64, blank=True, help_text="of the bytes produced")
    size_bytes = models.PositiveBigIntegerField(default=0)
    subjects = models.PositiveIntegerField(default=0)
    forms = models.PositiveIntegerField(default=0)
    form_transactions = models.PositiveIntegerField(default=0)
    item_data = models.PositiveIntegerField(default=0)
    signatures = models.PositiveIntegerField(default=0)
    removed_forms = models.PositiveIntegerField(default=0)
    screenings = models.PositiveIntegerField(
        default=0, help_text="patients screened but never randomized (screening log)")
    query_steps = models.PositiveIntegerField(default=0)
    sdv_marks = models.PositiveIntegerField(default=0)
    locks = models.PositiveIntegerField(default=0, help_text="lock and unlock changes")
    deviations = models.PositiveIntegerField(default=0, help_text="deviation changes")
    allocation_included = models.BooleanField(
        default=False, help_text="the allocated arm is in the file (open-label protocol)")
    note = models.TextField(blank=True, help_text="why the arm is or is not in the file")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.format} export {self.started_at:%Y-%m-%d %H:%M:%S} by {self.requested_by}"
