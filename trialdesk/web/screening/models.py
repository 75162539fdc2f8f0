"""Screening records: what the coordinator entered about a possible candidate.

The record is stored as entered (the ``screen`` JSON format, units included), never
only derived values; eligibility is recomputed from it by the domain engine.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from trialdesk.web.sites.models import Site


class ScreeningStatus(models.TextChoices):
    OPEN = "open", "Open"
    RANDOMIZED = "randomized", "Randomized"
    NOT_ENROLLED = "not_enrolled", "Not enrolled"
    ENTERED_IN_ERROR = "entered_in_error", "Entered in error"


class Screening(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="screenings")
    screening_number = models.CharField(max_length=40, unique=True)
    record = models.JSONField(default=dict, help_text="screening data as entered, with units")
    onset_utc = models.DateTimeField(null=True, blank=True,
                                     help_text="septic-shock onset, for sorting by deadline")
    status = models.CharField(max_length=20, choices=ScreeningStatus.choices,
                              default=ScreeningStatus.OPEN)
    not_enrolled_reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.screening_number


class ConsentType(models.TextChoices):
    PATIENT = "patient", "Patient"
    LEGAL_REPRESENTATIVE = "legal_representative", "Legal representative"
    DEFERRED = "deferred", "Deferred (emergency) consent, to be confirmed by the patient"


class Consent(models.Model):
    """Informed consent for one screening; deferred consent is confirmed later."""

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="consents")
    consent_type = models.CharField(max_length=30, choices=ConsentType.choices)
    document_version = models.CharField(max_length=40)
    obtained_at = models.DateTimeField(help_text="UTC")
    obtained_by = models.CharField(max_length=120, help_text="person who obtained consent")
    signed_by = models.CharField(max_length=120, blank=True,
                                 help_text="patient or representative's name")
    confirmed_by_patient_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["obtained_at"]
