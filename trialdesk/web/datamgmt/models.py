"""Data-management records: locks, queries, source-data verification, signatures.

Queries, SDV marks and signatures point at any record through Django contenttypes
(``content_type``, ``object_id``, optional ``field``): a casebook form, an adverse
event, … — the data-management layer does not need to know the clinical models.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from simple_history.models import HistoricalRecords

from trialdesk.datamanagement.queries import QueryState
from trialdesk.datamanagement.signatures import SignatureMeaning
from trialdesk.web.randomization.models import Allocation


class DataLock(models.Model):
    """The lock state of one patient's data (``allocation`` set) or of the whole trial.

    One row per patient and one trial-wide row (``allocation`` empty); locking and
    unlocking update the row, so the history is the audited sequence of locks, each
    with its reason. Every save takes the trial's and the patient's rows FOR UPDATE in
    its transaction (:func:`trialdesk.web.datamgmt.locks.hold_unlocked`), so the rows
    are created on demand, unlocked and without history, when first needed.
    """

    scope_key = models.CharField(max_length=40, unique=True,
                                 help_text="'trial' or 'allocation:<id>' (one row per scope)")
    allocation = models.OneToOneField(Allocation, null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="data_lock",
                                      help_text="empty = the trial-wide lock")
    locked = models.BooleanField(default=False)
    reason = models.CharField(max_length=300)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+",
                                   help_text="empty: never locked (a row created for a save "
                                             "to hold; see locks.hold_unlocked)")
    changed_at = models.DateTimeField(null=True, blank=True, help_text="UTC")
    history = HistoricalRecords()

    def __str__(self) -> str:
        scope = self.allocation.subject_id if self.allocation_id else "trial"
        return f"{scope}: {'locked' if self.locked else 'unlocked'}"


class TargetMixin(models.Model):
    """Points at any record of a patient: (content_type, object_id) and optionally a field."""

    allocation = models.ForeignKey(Allocation, on_delete=models.PROTECT, related_name="+",
                                   help_text="the patient the target record belongs to")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")

    class Meta:
        abstract = True


class Query(TargetMixin):
    """A data query on a record (or one field of it), raised by a data manager or monitor."""

    field = models.CharField(max_length=120, blank=True,
                             help_text="field of the record queried; empty = whole record")
    state = models.CharField(max_length=20, default=QueryState.OPEN.value,
                             choices=[(s.value, s.value) for s in QueryState])
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+")
    raised_at = models.DateTimeField(help_text="UTC")
    updated_at = models.DateTimeField(help_text="UTC, last step")
    history = HistoricalRecords()

    class Meta:
        ordering = ["raised_at", "pk"]
        indexes = [models.Index(fields=["content_type", "object_id"]),
                   models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"query {self.pk} ({self.state}) on {self.content_type.model} {self.object_id}"


class QueryMessage(models.Model):
    """One step of a query's thread: the question, an answer, a closing or reopening note."""

    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="messages")
    action = models.CharField(max_length=10,
                              help_text="raise, answer, close, reopen or withdraw")
    text = models.TextField()
    state_after = models.CharField(max_length=20)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    at = models.DateTimeField(help_text="UTC")
    history = HistoricalRecords()

    class Meta:
        ordering = ["at", "pk"]


class SdvMark(TargetMixin):
    """Source-data verification of one record by a monitor (one row per record)."""

    verified = models.BooleanField(default=False)
    digest = models.CharField(max_length=64, blank=True,
                              help_text="record digest when verified (a later change shows)")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    changed_at = models.DateTimeField(help_text="UTC")
    note = models.CharField(max_length=300, blank=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["content_type", "object_id"],
                                               name="one_sdv_mark_per_record")]


class SignatureScope(models.TextChoices):
    RECORD = "record", "One record (form)"
    CASEBOOK = "casebook", "Whole casebook of the patient"


class Signature(TargetMixin):
    """An investigator's electronic signature (21 CFR 11.50/11.70), never edited.

    For a casebook signature the target is the patient's Allocation and the digest is
    the casebook digest of all the patient's signable records.
    """

    scope = models.CharField(max_length=10, choices=SignatureScope.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    printed_name = models.CharField(max_length=200)
    meaning = models.CharField(max_length=20,
                               choices=[(m.value, m.value) for m in SignatureMeaning])
    signed_at = models.DateTimeField(help_text="UTC")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the content signed")
    history = HistoricalRecords()

    class Meta:
        ordering = ["signed_at", "pk"]
        indexes = [models.Index(fields=["content_type", "object_id"])]


class SignatureRefusal(models.Model):
    """A refused signing attempt (wrong password …): kept, never edited (audited)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="+")
    allocation = models.ForeignKey(Allocation, on_delete=models.PROTECT, related_name="+")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    scope = models.CharField(max_length=10, choices=SignatureScope.choices)
    reason = models.CharField(max_length=200)
    at = models.DateTimeField(help_text="UTC")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-at"]
