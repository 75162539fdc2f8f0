"""Shared fixtures for the web layer: real database, real protocol, named people."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest

from trialdesk.protocol import load_protocol

ROOT = Path(__file__).resolve().parents[2]
_numbers = itertools.count(1)


@pytest.fixture
def rumcess():
    return load_protocol()


@pytest.fixture
def threearm():
    return load_protocol(ROOT / "tests" / "protocols" / "threearm.yaml")


@pytest.fixture
def alice(django_user_model):
    """Alice, research coordinator at the NRCH site."""
    return django_user_model.objects.create_user("alice", password="correct horse battery 1")


@pytest.fixture
def nrch(rumcess):
    from trialdesk.web.sites.services import sync_sites

    return sync_sites(rumcess)[0]


def member(user, role: str, site=None):
    from trialdesk.web.accounts.models import Membership

    Membership.objects.create(user=user, role=role, site=site)
    return user


@pytest.fixture
def coordinator_client(alice, nrch):
    """A browser session of Alice, coordinator at NRCH."""
    from django.test import Client

    member(alice, "coordinator", nrch)
    client = Client(HTTP_HOST="localhost")
    client.force_login(alice)
    return client


def eligible_record(onset: dt.datetime, **changes: Any) -> dict[str, Any]:
    record = {
        "birth_date": "1980-05-17", "sex": "female", "pregnant": False, "septic_shock": True,
        "septic_shock_onset": onset.isoformat(),
        "neutrophils": {"value": 0.3, "unit": "10^9/L"}, "consent_signed": True,
        "chemoresistant_oncohematological": False, "neutropenia_cause": "post_chemotherapy",
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def make_screening(site, user, record: dict[str, Any]):
    from trialdesk.clinical.timeutil import parse_aware
    from trialdesk.web.screening.models import Screening

    onset = record.get("septic_shock_onset") or record.get("shock_time")
    return Screening.objects.create(
        site=site, screening_number=f"S-{site.code}-{next(_numbers):05d}", record=record,
        onset_utc=parse_aware(onset, field="onset") if onset else None, created_by=user)


def randomize_simultaneously(screenings, *, user, protocol) -> None:
    """Start one thread per screening, release them together at a barrier, and call the
    production ``randomize`` in each; fail with every exception any thread raised."""
    import threading
    import uuid

    from django.db import connections

    from trialdesk.web.randomization.services import randomize

    barrier = threading.Barrier(len(screenings))
    errors: list[BaseException] = []

    def worker(screening_id: int) -> None:
        try:
            barrier.wait(timeout=30)
            randomize(screening_id, user=user, request_id=uuid.uuid4().hex, protocol=protocol)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(s.pk,)) for s in screenings]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
