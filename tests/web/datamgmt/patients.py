"""A randomized patient for data-management and safety tests, through the real services."""

from __future__ import annotations

import datetime as dt
import uuid

from tests.web.conftest import eligible_record, make_screening
from trialdesk.clinical.timeutil import utcnow
from trialdesk.randomization import generate_list
from trialdesk.web.randomization.services import import_list, randomize


def seal_list(protocol, user) -> None:
    alist = generate_list(protocol, seed="datamgmt-seed", size_per_stratum=8)
    import_list(protocol, alist.to_csv(), alist.commitment(), user=user)


def randomized_patient(site, user, protocol):
    """Screen an eligible, consented patient 2 h after onset and randomize them."""
    screening = make_screening(site, user, eligible_record(utcnow() - dt.timedelta(hours=2)))
    return randomize(screening.pk, user=user, request_id=uuid.uuid4().hex,
                     protocol=protocol).allocation
