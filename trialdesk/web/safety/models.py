"""Adverse events as the site reports them; reporting obligations are computed, not stored.

The investigator's assessment (seriousness criteria, CTCAE grade, causality to MSC on
the WHO-UMC scale, expectedness, outcome) is stored as entered; SAE/SUSAR status and
due times come from the domain core (:mod:`trialdesk.safety`) each time they are shown,
so a change of assessment or of the protocol's timelines can never leave a stale
deadline behind. ``serious`` and ``susar`` are copies kept for filtering the dashboard.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from trialdesk.safety.classification import Causality, Expectedness, Outcome
from trialdesk.web.audit.entered_in_error import EnteredInError
from trialdesk.web.randomization.models import Allocation


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(m.value, m.value.replace("_", " ")) for m in enum]


class AdverseEvent(EnteredInError):
    """An adverse event; ``entered_in_error`` retires it (kept, out of every list, the
    obligations and the export; see :mod:`trialdesk.web.audit.entered_in_error`)."""

    allocation = models.ForeignKey(Allocation, on_delete=models.PROTECT,
                                   related_name="adverse_events")
    term = models.CharField(max_length=200, help_text="event term as the investigator names it")
    description = models.TextField(blank=True)
    onset_at = models.DateTimeField(help_text="UTC")
    awareness_at = models.DateTimeField(help_text="UTC; the site's first knowledge")
    seriousness = models.JSONField(default=list, blank=True,
                                   help_text="ICH E2A criteria codes; empty = not serious")
    severity_grade = models.PositiveSmallIntegerField(help_text="CTCAE grade 1–5")
    causality = models.CharField(max_length=20, choices=_choices(Causality),
                                 default=Causality.NOT_ASSESSED.value)
    expectedness = models.CharField(max_length=20, choices=_choices(Expectedness),
                                    default=Expectedness.NOT_ASSESSED.value)
    outcome = models.CharField(max_length=30, choices=_choices(Outcome),
                               default=Outcome.UNKNOWN.value)
    exempt_event_id = models.CharField(max_length=60, blank=True,
                                       help_text="protocol's disease-related event id")
    reported_to_sponsor_at = models.DateTimeField(null=True, blank=True, help_text="UTC")
    reported_to_regulator_at = models.DateTimeField(null=True, blank=True, help_text="UTC")
    serious = models.BooleanField(default=False)
    susar = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["awareness_at", "pk"]
        indexes = [models.Index(fields=["serious", "awareness_at"])]

    def __str__(self) -> str:
        return f"AE {self.pk} {self.allocation.subject_id}: {self.term}"

    def signed_content(self) -> dict[str, Any]:
        """What an investigator's signature on this event covers (see datamgmt.signing).

        The entered-in-error mark is part of it once set (so a signature no longer stands
        for a retired event); it is absent otherwise, so older signatures stay valid.
        """
        retired = {"entered_in_error": True} if self.entered_in_error else {}
        return {**retired,
            "subject_id": self.allocation.subject_id, "term": self.term,
            "description": self.description, "onset_at": self.onset_at,
            "awareness_at": self.awareness_at, "seriousness": sorted(self.seriousness),
            "severity_grade": self.severity_grade, "causality": self.causality,
            "expectedness": self.expectedness, "outcome": self.outcome,
            "exempt_event_id": self.exempt_event_id,
            "reported_to_sponsor_at": self.reported_to_sponsor_at,
            "reported_to_regulator_at": self.reported_to_regulator_at,
        }
