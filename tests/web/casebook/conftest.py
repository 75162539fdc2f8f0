"""Randomized patients for casebook tests, allocated by the production randomize service."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.test import Client

from tests.web.conftest import eligible_record, make_screening, member
from trialdesk.clinical.timeutil import utcnow
from trialdesk.randomization import generate_list
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import import_list, randomize
from trialdesk.web.screening.models import Screening

#: patients are randomized this long ago, so days 0–5 have begun (whatever the hour)
RANDOMIZED_DAYS_AGO = 5
#: and their septic shock began this long before randomization
ONSET_BEFORE_RANDOMIZATION = dt.timedelta(hours=4)


@pytest.fixture
def sealed_list(rumcess, alice):
    alist = generate_list(rumcess, seed="casebook-tests", size_per_stratum=8)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice)
    return alist


@pytest.fixture
def randomize_into(rumcess, nrch, alice, sealed_list):
    """randomize_into("msc") → an Allocation of that arm, randomized 5 days ago.

    Patients are randomized with the real service (blocks of 2 or 4 at 1:1, so an arm
    comes up within four patients); the time stamps are then moved back five days so
    that the study days 0–5 lie in the past.
    """
    def make(arm: str) -> Allocation:
        for _ in range(4):
            screening = make_screening(nrch, alice, eligible_record(
                utcnow() - dt.timedelta(hours=2)))
            allocation = randomize(screening.pk, user=alice, request_id=uuid.uuid4().hex,
                                   protocol=rumcess).allocation
            if allocation.arm == arm:
                randomized = (utcnow() - dt.timedelta(days=RANDOMIZED_DAYS_AGO)).replace(
                    second=0, microsecond=0)
                Allocation.objects.filter(pk=allocation.pk).update(randomized_at=randomized)
                Screening.objects.filter(pk=screening.pk).update(
                    onset_utc=randomized - ONSET_BEFORE_RANDOMIZATION)
                return Allocation.objects.select_related("site", "screening").get(
                    pk=allocation.pk)
        raise AssertionError(f"no {arm} allocation in four patients")

    return make


@pytest.fixture
def msc_patient(randomize_into):
    return randomize_into("msc")


@pytest.fixture
def control_patient(randomize_into):
    return randomize_into("control")


def browser(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


@pytest.fixture
def investigator(django_user_model, nrch):
    return member(django_user_model.objects.create_user("ivan", password="x" * 16),
                  "investigator", nrch)


@pytest.fixture
def lab_user(django_user_model, nrch):
    return member(django_user_model.objects.create_user("lena", password="x" * 16), "lab",
                  nrch)


@pytest.fixture
def data_manager(django_user_model):
    return member(django_user_model.objects.create_user("dora", password="x" * 16),
                  "data_manager")
