"""Pre-screening data: every FHIR message as received, every value taken from it (with its
source), and where each ICU patient stands.

Nothing here is ever deleted (``delete()`` refuses): a value that is replaced by a newer
version of its message, re-sent unchanged, arrives late with an older version, or is
withdrawn (``entered-in-error``) keeps its row and gets a ``state`` saying so. Every model
keeps its history (django-simple-history, hash-chained by the audit app).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from trialdesk.web.sites.models import Site


class _NeverDeleted(models.Model):
    class Meta:
        abstract = True

    def delete(self, *args, **kwargs):  # type: ignore[override]
        raise PermissionError(f"{type(self).__name__} rows are never deleted: pre-screening "
                              "data are retracted (status entered-in-error), not removed.")


class MessageOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected (not valid FHIR R4; nothing used)"


class FhirMessage(_NeverDeleted):
    """One request to the FHIR endpoint, kept as received, with what became of it."""

    received_at = models.DateTimeField(help_text="UTC, when the request arrived")
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+", help_text="the API token's user")
    content = models.TextField(help_text="the request body as received")
    outcome = models.CharField(max_length=10, choices=MessageOutcome.choices)
    error = models.TextField(blank=True)
    counts = models.JSONField(default=dict)
    report = models.JSONField(default=dict, help_text="the ingest report (IngestReport)")
    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"FHIR message #{self.pk} ({self.outcome}, {self.received_at:%Y-%m-%d %H:%M})"


class PrescreenStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    POSSIBLE = "possible", "Possible"
    NO = "no", "No"


class PrescreenPatient(models.Model):
    """Where one ICU patient stands: the detector's last answer, with its reasons.

    ``patient_id`` is the FHIR Patient id of the feed (unique across the feed). The
    site is assigned by the rule in docs/prescreen.md ("Live pre-screening").
    """

    patient_id = models.CharField(max_length=128, unique=True)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=PrescreenStatus.choices,
                              default=PrescreenStatus.NO)
    onset_utc = models.DateTimeField(null=True, blank=True,
                                     help_text="septic-shock onset (UTC)")
    deadline_utc = models.DateTimeField(null=True, blank=True,
                                        help_text="onset + the protocol's window (UTC)")
    detectable_utc = models.DateTimeField(null=True, blank=True,
                                          help_text="when every criterion was first met")
    reasons = models.JSONField(default=list,
                               help_text="per-criterion checks: id, label, status, reason, "
                                         "data used (value, unit, time, source)")
    assessed_at = models.DateTimeField(null=True, blank=True,
                                       help_text="UTC time of the last assessment")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["assessed_at", "updated_at"])

    class Meta:
        ordering = ["deadline_utc", "patient_id"]
        indexes = [models.Index(fields=["site", "status", "deadline_utc"])]

    def __str__(self) -> str:
        return f"ICU patient {self.patient_id} ({self.status})"

    def delete(self, *args, **kwargs):  # type: ignore[override]
        raise PermissionError("Pre-screening patients are never deleted.")


class EventState(models.TextChoices):
    ACTIVE = "active", "In use"
    DUPLICATE = "duplicate", "Duplicate of a value already received"
    SUPERSEDED = "superseded", "Replaced by a newer version"
    STALE = "stale", "Older version received after a newer one (not used)"
    RETRACTED = "retracted", "Withdrawn (entered-in-error)"


class IngestedEvent(_NeverDeleted):
    """One normalized value from a message (a :class:`~trialdesk.interop.events.ClinicalEvent`),
    in its canonical unit, with its source resource and the time it was received."""

    message = models.ForeignKey(FhirMessage, on_delete=models.PROTECT, related_name="events")
    patient = models.ForeignKey(PrescreenPatient, on_delete=models.PROTECT,
                                related_name="events")
    resource_type = models.CharField(max_length=40)
    resource_id = models.CharField(max_length=128)
    version = models.CharField(max_length=64, blank=True,
                               help_text="meta.lastUpdated (or versionId) of the resource")
    source = models.CharField(max_length=200, help_text="e.g. Observation/abc#component[0]")
    kind = models.CharField(max_length=20, help_text="EventKind: map, sbp, anc, …")
    drug = models.CharField(max_length=40, blank=True)
    value = models.FloatField(help_text="in the canonical unit named by ``unit``")
    unit = models.CharField(max_length=20)
    at_utc = models.DateTimeField(help_text="clinical time (effective[x] start)")
    recorded_utc = models.DateTimeField(null=True, blank=True,
                                        help_text="when the value became available (issued)")
    end_utc = models.DateTimeField(null=True, blank=True, help_text="infusion end")
    received_at = models.DateTimeField(help_text="UTC, when the message arrived")
    state = models.CharField(max_length=12, choices=EventState.choices,
                             default=EventState.ACTIVE)
    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["patient", "id"]), models.Index(fields=["source"])]


class ReceivedDemographics(_NeverDeleted):
    """A Patient resource: date of birth and sex, for the age criteria and the record."""

    message = models.ForeignKey(FhirMessage, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(PrescreenPatient, on_delete=models.PROTECT,
                                related_name="demographics")
    source = models.CharField(max_length=200)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=20, blank=True)
    organization = models.CharField(max_length=128, blank=True)
    received_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]


class Retraction(_NeverDeleted):
    """A resource re-sent with status ``entered-in-error``: its earlier values are withdrawn."""

    message = models.ForeignKey(FhirMessage, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=200, db_index=True)
    received_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]


class ScreeningReferral(models.Model):
    """A screening opened from the candidate board, with where each pre-filled value came
    from: ``provenance`` maps a record field to its value, unit, source message, clinical
    time and the time TrialDesk received it."""

    screening = models.OneToOneField("screening.Screening", on_delete=models.PROTECT,
                                     related_name="prescreen_referral")
    patient = models.ForeignKey(PrescreenPatient, on_delete=models.PROTECT,
                                related_name="referrals")
    provenance = models.JSONField(default=dict)
    status_at_referral = models.CharField(max_length=10, choices=PrescreenStatus.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]

    def delete(self, *args, **kwargs):  # type: ignore[override]
        raise PermissionError("Screening referrals are never deleted.")
