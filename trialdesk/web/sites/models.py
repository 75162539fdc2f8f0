"""Trial sites. The protocol file lists them; :func:`services.sync_sites` mirrors them here."""

from __future__ import annotations

from django.db import models
from simple_history.models import HistoricalRecords


class Site(models.Model):
    code = models.SlugField(max_length=40, unique=True,
                            help_text="the site id used in the protocol file")
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, help_text="IANA zone, e.g. Europe/Moscow")
    active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
