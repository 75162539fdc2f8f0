from __future__ import annotations

import pytest

from tests.web.conftest import member
from tests.web.datamgmt.patients import randomized_patient, seal_list

PASSWORD = "correct horse battery 1"


@pytest.fixture
def patient(rumcess, nrch, alice):
    """A randomized patient at NRCH; Alice (coordinator) randomized them."""
    member(alice, "coordinator", nrch)
    seal_list(rumcess, alice)
    return randomized_patient(nrch, alice, rumcess)


@pytest.fixture
def ivan(django_user_model, nrch):
    """Dr Ivan Petrov, investigator at NRCH."""
    user = django_user_model.objects.create_user("ivan", password=PASSWORD,
                                                 first_name="Ivan", last_name="Petrov")
    return member(user, "investigator", nrch)


@pytest.fixture
def dora(django_user_model):
    """Dora, trial-wide data manager."""
    return member(django_user_model.objects.create_user("dora", password=PASSWORD),
                  "data_manager")


@pytest.fixture
def monty(django_user_model):
    """Monty, trial-wide monitor."""
    return member(django_user_model.objects.create_user("monty", password=PASSWORD),
                  "monitor")
