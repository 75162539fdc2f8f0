"""A patient's case report forms and the protocol deviations they show.

``FormRecord.data`` is the form **as entered** (the JSON described in
:mod:`trialdesk.crf.forms`: numbers in the unit named by the field id, or
``{"value", "unit"}``; times ISO 8601 with offset). ``derived`` holds what the domain
core computed from it at save time (SOFA components and totals, bundle compliance, the
MSC dose in cells/kg, the release check) — always recomputable from ``data``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from trialdesk.web.audit.entered_in_error import EnteredInError
from trialdesk.web.randomization.models import Allocation


class FormRecord(EnteredInError):
    """One form of one patient for one study day (``day`` None: a once-per-patient form).

    A form marked ``entered_in_error`` is kept but leaves the schedule, the SOFA row, the
    checks and the export; the slot can then be entered again (the uniqueness of a form
    per day holds among the records in use).
    """

    allocation = models.ForeignKey(Allocation, on_delete=models.PROTECT,
                                   related_name="form_records")
    form_id = models.CharField(max_length=40)
    day = models.PositiveSmallIntegerField(null=True, blank=True,
                                           help_text="study day; empty for end of study")
    data = models.JSONField(default=dict, help_text="values as entered, with units")
    derived = models.JSONField(default=dict, help_text="computed by the domain core")
    confirmed_warnings = models.JSONField(
        default=list, help_text="soft warnings confirmed at entry: key, message, by, at")
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(history_change_reason_field=models.TextField(null=True))

    class Meta:
        ordering = ["allocation", "day", "form_id"]
        constraints = [
            models.UniqueConstraint(fields=["allocation", "form_id", "day"],
                                    condition=models.Q(entered_in_error=False),
                                    name="one_form_per_day_in_use"),
            models.UniqueConstraint(fields=["allocation", "form_id"],
                                    condition=models.Q(day__isnull=True,
                                                       entered_in_error=False),
                                    name="one_unscheduled_form_in_use"),
        ]

    def __str__(self) -> str:
        day = "" if self.day is None else f" day {self.day}"
        return f"{self.allocation.subject_id} {self.form_id}{day}"

    def signed_content(self) -> dict:
        """What a signature or source-data verification covers: the data as entered."""
        retired = {"entered_in_error": True} if self.entered_in_error else {}
        return {**retired, "form_id": self.form_id, "day": self.day, "data": self.data,
                "confirmed_warnings": self.confirmed_warnings}


class DeviationStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "No longer shown by the data"


class Deviation(models.Model):
    """A protocol deviation detected from the MSC records (``trialdesk.intervention``).

    One row per (patient, code). When corrected data no longer show it, it becomes
    ``resolved`` (kept, with its history); if it reappears it opens again.
    """

    allocation = models.ForeignKey(Allocation, on_delete=models.PROTECT,
                                   related_name="deviations")
    code = models.CharField(max_length=40)
    severity = models.CharField(max_length=10)
    message = models.TextField()
    source = models.ForeignKey(FormRecord, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="deviations")
    detected_at = models.DateTimeField(help_text="UTC, when first (or again) detected")
    status = models.CharField(max_length=20, choices=DeviationStatus.choices,
                              default=DeviationStatus.OPEN)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    history = HistoricalRecords(history_change_reason_field=models.TextField(null=True))

    class Meta:
        ordering = ["-detected_at"]
        constraints = [models.UniqueConstraint(fields=["allocation", "code"],
                                               name="one_deviation_per_code")]

    def __str__(self) -> str:
        return f"{self.allocation.subject_id} {self.code}"
