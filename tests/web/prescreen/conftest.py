"""Fixtures for live pre-screening: the ICU feed's API user, Alice at the board, and a
RUMCESS-shaped patient sent as FHIR R4 resources with times relative to now."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest
from django.test import Client

from tests.prescreen.fhir_builders import ANC, MAP, NOREPI, obs, patient, pressor
from tests.web.conftest import member
from trialdesk.web.api.services import create_token


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Feed:
    """The hospital's FHIR bridge: an integration account at NRCH with an API token."""

    client: Client

    def post(self, resource, *, site: str | None = None, raw: bytes | None = None):
        path = "/api/fhir" + (f"?site={site}" if site else "")
        body = raw if raw is not None else json.dumps(resource)
        return self.client.post(path, data=body, content_type="application/fhir+json")


def feed_for(user) -> Feed:
    token = create_token(user, "ICU FHIR bridge")[1]
    return Feed(Client(HTTP_HOST="localhost", headers={"Authorization": f"Bearer {token}"}))


@pytest.fixture
def feed(nrch, django_user_model):
    return feed_for(member(django_user_model.objects.create_user("fhir-bridge"),
                           "integration", nrch))


@pytest.fixture
def now():
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Shock:
    """Patient ``pid``: MAP 62 mmHg 30 min before norepinephrine started 3 h ago, ANC 600
    cells/µL (= 0.6 × 10^9/L) 5 h ago, born 1970-05-01 (female)."""

    pid: str
    onset: dt.datetime

    def patient(self):
        return patient(self.pid, "1970-05-01", "female")

    def map(self, value: float = 62.0):
        return obs(f"{self.pid}-map", self.pid, MAP, value, "mm[Hg]",
                   iso(self.onset - dt.timedelta(minutes=30)))

    def pressor(self):
        return pressor(f"{self.pid}-ne", self.pid, NOREPI, 0.12, "ug/kg/min", iso(self.onset))

    def anc(self, value: float = 600, unit: str = "/uL", **kw):
        return obs(f"{self.pid}-anc", self.pid, ANC, value, unit,
                   iso(self.onset - dt.timedelta(hours=2)), **kw)

    def all(self):
        return [self.patient(), self.map(), self.pressor(), self.anc()]


@pytest.fixture
def shock(now):
    return Shock("icu-17", now - dt.timedelta(hours=3))
