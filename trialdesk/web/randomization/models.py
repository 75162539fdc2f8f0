"""Persistence of allocation: sealed lists, counters that hand out slots, allocations.

Concurrency design: every allocation runs in one transaction that first locks the
site's :class:`SubjectCounter` row and then the method's state row (a
:class:`StratumCounter` for list methods, :class:`MinimizationState` for
minimization) — always in that order, so there is no deadlock. PostgreSQL takes row
locks (``SELECT … FOR UPDATE``); SQLite begins write transactions IMMEDIATE, which
serializes writers. Unique constraints are the last guard: one allocation per
screening, per request id, per list slot. A transaction that dies rolls back the
counter with the allocation, so no slot is skipped.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from trialdesk.web.screening.models import Screening
from trialdesk.web.sites.models import Site


class RandomizationList(models.Model):
    """A sealed allocation list as imported, with the commitment published beforehand."""

    label = models.CharField(max_length=80, help_text="'main' or 'emergency-<site>'")
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT,
                             help_text="set for a site's emergency list")
    protocol_id = models.CharField(max_length=80)
    protocol_sha256 = models.CharField(max_length=64)
    method = models.CharField(max_length=40)
    commitment_sha256 = models.CharField(max_length=64, unique=True)
    seed_fingerprint = models.CharField(max_length=64)
    csv_text = models.TextField(help_text="the list exactly as imported (re-verifiable)")
    active = models.BooleanField(default=True)
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["label"], condition=models.Q(active=True),
                                    name="one_active_list_per_label"),
        ]

    def __str__(self) -> str:
        return f"{self.label} list {self.commitment_sha256[:12]}"


class AllocationSlot(models.Model):
    rlist = models.ForeignKey(RandomizationList, on_delete=models.PROTECT, related_name="slots")
    stratum = models.CharField(max_length=200)
    sequence = models.PositiveIntegerField()
    block = models.PositiveIntegerField()
    block_size = models.PositiveIntegerField()
    arm = models.CharField(max_length=40)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rlist", "stratum", "sequence"],
                                               name="unique_slot")]


class StratumCounter(models.Model):
    """Next unused slot of one stratum of one list (locked while allocating)."""

    rlist = models.ForeignKey(RandomizationList, on_delete=models.PROTECT,
                              related_name="counters")
    stratum = models.CharField(max_length=200)
    next_sequence = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rlist", "stratum"],
                                               name="unique_stratum_counter")]


class SubjectCounter(models.Model):
    """Numbers subjects per site (RUMCESS-NRCH-001 …); the first lock every allocation takes."""

    site = models.OneToOneField(Site, on_delete=models.PROTECT, related_name="subject_counter")
    next_number = models.PositiveIntegerField(default=1)


class MinimizationState(models.Model):
    """Marginal counts for Pocock–Simon minimization, one row per protocol."""

    protocol_id = models.CharField(max_length=80, unique=True)
    counts = models.JSONField(default=dict)
    allocations = models.PositiveIntegerField(default=0)
    #: secret part of the per-allocation random seed (never shown to site staff)
    seed_secret = models.CharField(max_length=128)


class AllocationSource(models.TextChoices):
    ONLINE = "online", "Online"
    EMERGENCY = "emergency", "Emergency envelope (reconciled)"


class Allocation(models.Model):
    """One randomized patient. Created once, never edited or deleted."""

    subject_id = models.CharField(max_length=60, unique=True)
    screening = models.OneToOneField(Screening, on_delete=models.PROTECT,
                                     related_name="allocation")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="allocations")
    arm = models.CharField(max_length=40)
    stratum = models.CharField(max_length=200)
    levels = models.JSONField(default=dict)
    rlist = models.ForeignKey(RandomizationList, null=True, blank=True,
                              on_delete=models.PROTECT, related_name="allocations")
    sequence = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=AllocationSource.choices,
                              default=AllocationSource.ONLINE)
    request_id = models.CharField(max_length=100, unique=True)
    randomized_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                      related_name="+")
    randomized_at = models.DateTimeField(help_text="UTC")
    recorded_at = models.DateTimeField(auto_now_add=True)
    protocol_id = models.CharField(max_length=80)
    protocol_version = models.CharField(max_length=40)
    protocol_sha256 = models.CharField(max_length=64)
    method = models.CharField(max_length=40)
    method_state = models.JSONField(default=dict)
    eligibility = models.JSONField(default=dict)
    arm_recorded_by_site = models.CharField(max_length=40, blank=True,
                                            help_text="emergency: the arm the site gave")
    discrepancy = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["randomized_at"]
        constraints = [
            models.UniqueConstraint(fields=["rlist", "stratum", "sequence"],
                                    condition=models.Q(rlist__isnull=False),
                                    name="one_allocation_per_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.subject_id} → {self.arm}"
