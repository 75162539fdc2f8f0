"""Simultaneous requests and killed processes: no duplicate, no skipped slot.

Runs on whichever database the suite runs on: SQLite (a file; write transactions
begin IMMEDIATE) by default, PostgreSQL (row locks) when ``make test`` re-runs the
web tests with ``DATABASE_URL`` set.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from django.db import connection, connections

from tests.web.conftest import eligible_record, make_screening, randomize_simultaneously
from trialdesk.clinical.timeutil import utcnow
from trialdesk.randomization import generate_list
from trialdesk.web.randomization.models import Allocation, StratumCounter
from trialdesk.web.randomization.services import import_list, randomize
from trialdesk.web.sites.services import sync_sites

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = 32
CAUSES = ["post_chemotherapy", "drug_induced_non_chemotherapy", "aplastic_anemia", "other"]


@pytest.mark.django_db(transaction=True)
def test_32_simultaneous_requests_get_32_distinct_consecutive_slots(rumcess, alice):
    site = sync_sites(rumcess)[0]
    alist = generate_list(rumcess, seed="race", size_per_stratum=CLIENTS)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice)
    onset = utcnow() - dt.timedelta(hours=1)
    screenings = [
        make_screening(site, alice, eligible_record(onset, neutropenia_cause=CAUSES[i % 4]))
        for i in range(CLIENTS)
    ]
    randomize_simultaneously(screenings, user=alice, protocol=rumcess)
    allocations = list(Allocation.objects.all())
    assert len(allocations) == CLIENTS
    numbers = sorted(int(a.subject_id.rsplit("-", 1)[1]) for a in allocations)
    assert numbers == list(range(1, CLIENTS + 1))
    by_stratum: dict[str, list[int]] = defaultdict(list)
    for a in allocations:
        by_stratum[a.stratum].append(a.sequence)
        assert a.arm == alist.entry(a.stratum, a.sequence).arm
    for stratum, sequences in by_stratum.items():
        assert sorted(sequences) == list(range(1, len(sequences) + 1)), stratum
        counter = StratumCounter.objects.get(stratum=stratum)
        assert counter.next_sequence == len(sequences) + 1


def _database_env() -> dict[str, str]:
    """Environment for a child process that must use the test database."""
    settings = connection.settings_dict
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRIALDESK_", "DATABASE_URL", "DJANGO_"))}
    env.update({"TRIALDESK_SECRET_KEY": "x" * 50, "TRIALDESK_SECURE_COOKIES": "0",
                "DJANGO_SETTINGS_MODULE": "trialdesk.web.settings",
                "PYTHONPATH": str(ROOT)})
    if connection.vendor == "sqlite":
        env["TRIALDESK_SQLITE_PATH"] = str(settings["NAME"])
    else:
        env["DATABASE_URL"] = (f"postgres://{settings['USER']}:{settings['PASSWORD']}@"
                               f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/"
                               f"{settings['NAME']}")
    return env


CHILD = textwrap.dedent("""
    import sys, time, django
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from trialdesk.clinical.timeutil import utcnow
    from trialdesk.eligibility import evaluate
    from trialdesk.protocol import load_protocol
    from trialdesk.randomization import stratum_key
    from trialdesk.web.randomization.services import allocate_locked, strata_levels
    from trialdesk.web.screening.models import Screening

    protocol = load_protocol()
    screening = Screening.objects.select_related("site").get(pk=int(sys.argv[1]))
    user = get_user_model().objects.get(username="alice")
    levels = strata_levels(protocol, screening.record)
    result = evaluate(protocol, screening.record, site_id=screening.site.code)
    with transaction.atomic():
        allocation = allocate_locked(protocol, screening, levels, stratum_key(protocol, levels),
                                     user=user, request_id="killed-request", at=utcnow(),
                                     eligibility=result)
        print("ALLOCATED-NOT-COMMITTED", allocation.sequence, flush=True)
        time.sleep(600)
""")


@pytest.mark.django_db(transaction=True)
def test_a_process_killed_mid_allocation_leaves_no_half_allocation_and_no_gap(rumcess, alice):
    site = sync_sites(rumcess)[0]
    alist = generate_list(rumcess, seed="kill", size_per_stratum=4)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice)
    onset = utcnow() - dt.timedelta(hours=1)
    victim = make_screening(site, alice, eligible_record(onset))
    connections.close_all()  # let the child take the write lock
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(victim.pk)], cwd=ROOT,
                             env=_database_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith("ALLOCATED-NOT-COMMITTED 1"), child.stderr.read()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert Allocation.objects.count() == 0
    stratum = "neutropenia_cause=post_chemotherapy"
    assert StratumCounter.objects.get(stratum=stratum).next_sequence == 1
    outcome = randomize(victim.pk, user=alice, request_id=uuid.uuid4().hex, protocol=rumcess)
    assert (outcome.allocation.sequence, outcome.allocation.subject_id) == \
        (1, "RUMCESS-NRCH-001")
