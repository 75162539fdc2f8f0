"""Minimization through the randomize use case (TRIDENT: three arms 2:1:1, two factors).

The stored marginal counts must always equal a recount of the Allocation rows, every
decision must be replayable from what was stored with it, and simultaneous requests
must not lose an update.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import Any

import pytest

from tests.web.conftest import make_screening, randomize_simultaneously
from trialdesk.clinical.timeutil import utcnow
from trialdesk.randomization import MarginalCounts, generate_emergency_lists, minimize
from trialdesk.web.randomization.models import Allocation, MinimizationState
from trialdesk.web.randomization.services import import_list, randomize, reconcile_emergency
from trialdesk.web.sites.services import sync_sites

#: sexes of the 24 patients, in order of arrival (not alternating, not sorted)
SEXES = ["female", "male", "male", "female", "female", "female", "male", "female",
         "male", "male", "female", "male", "female", "female", "male", "male",
         "female", "male", "female", "female", "male", "female", "male", "male"]


def trident_record(onset: dt.datetime, **changes: Any) -> dict[str, Any]:
    """An eligible TRIDENT patient (the threearm protocol's screening fields)."""
    record = {
        "birth_date": "1970-01-01", "sex": "female", "shock_time": onset.isoformat(),
        "anc": {"value": 300, "unit": "cells/uL"},
        "lactate": {"value": 36, "unit": "mg/dL"},
        "on_dialysis": False, "consent": True, "cause": "chemo",
    }
    record.update(changes)
    return record


def _recount(protocol) -> dict[str, Any]:
    rows = Allocation.objects.order_by("pk").values_list("levels", "arm")
    return MarginalCounts.from_allocations(protocol, rows).to_dict()


class _Draw:
    """A generator whose one draw is the stored one (to replay a decision)."""

    def __init__(self, value: float):
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.django_db
def test_24_patients_are_minimized_and_the_state_matches_the_allocations(threearm, alice):
    berlin, lisbon = sync_sites(threearm)
    onset = utcnow() - dt.timedelta(hours=2)
    at = onset + dt.timedelta(hours=1)  # inside the 6-hour window
    allocations = []
    for i, sex in enumerate(SEXES):
        site = berlin if i % 3 else lisbon
        screening = make_screening(site, alice, trident_record(onset, sex=sex))
        outcome = randomize(screening.pk, user=alice, request_id=uuid.uuid4().hex,
                            protocol=threearm, at=at)
        allocations.append(outcome.allocation)

    assert {a.method for a in allocations} == {"minimization"}
    assert all(a.rlist is None and a.sequence is None for a in allocations)
    assert [a.method_state["allocation_number"] for a in allocations] == list(range(1, 25))
    for a in allocations:
        decision = a.method_state["decision"]
        assert decision["arm"] == a.arm
        assert set(decision["scores"]) == set(threearm.arm_ids)
        assert 0 <= decision["random_draw"] < 1
        assert decision["probability"] == 0.8
        assert a.levels == {"cause": "chemo", "sex_factor": a.screening.record["sex"]}
        assert a.stratum == f"cause=chemo|sex_factor={a.levels['sex_factor']}"

    state = MinimizationState.objects.get(protocol_id=threearm.protocol_id)
    assert state.allocations == 24
    assert state.counts == _recount(threearm)
    arms = Counter(a.arm for a in allocations)
    assert 8 <= arms["usual_care"] <= 16, arms
    assert arms["low_dose"] > 0 and arms["high_dose"] > 0

    by_site = {site.code: sorted(a.subject_id for a in allocations if a.site == site)
               for site in (berlin, lisbon)}
    assert by_site["berlin"] == [f"TRIDENT-BERLIN-{n:03d}" for n in range(1, 17)]
    assert by_site["lisbon"] == [f"TRIDENT-LISBON-{n:03d}" for n in range(1, 9)]


@pytest.mark.django_db
def test_every_decision_replays_from_the_stored_counts_and_draw(threearm, alice):
    berlin, _ = sync_sites(threearm)
    onset = utcnow() - dt.timedelta(hours=3)
    for sex in SEXES[:12]:
        screening = make_screening(berlin, alice, trident_record(onset, sex=sex))
        randomize(screening.pk, user=alice, request_id=uuid.uuid4().hex, protocol=threearm)
    counts = MarginalCounts.empty(threearm)
    rows = sorted(Allocation.objects.all(), key=lambda a: a.method_state["allocation_number"])
    for a in rows:
        stored = a.method_state["decision"]
        replayed = minimize(threearm, counts, a.levels, _Draw(stored["random_draw"]))
        assert replayed.to_dict() == stored, a.subject_id
        counts.add(a.levels, a.arm)


@pytest.mark.django_db
def test_an_emergency_envelope_is_counted_in_the_minimization_state(threearm, alice):
    berlin, _ = sync_sites(threearm)
    onset = utcnow() - dt.timedelta(hours=2)
    for sex in ("female", "male", "male"):
        screening = make_screening(berlin, alice, trident_record(onset, sex=sex))
        randomize(screening.pk, user=alice, request_id=uuid.uuid4().hex, protocol=threearm)
    envelopes = generate_emergency_lists(threearm, seed="trident-envelopes")["berlin"]
    import_list(threearm, envelopes.to_csv(), envelopes.commitment(), user=alice, site=berlin)
    stratum = "cause=chemo|sex_factor=female"
    arm = envelopes.entry(stratum, 1).arm
    screening = make_screening(berlin, alice, trident_record(onset, sex="female"))
    allocation = reconcile_emergency(
        screening.pk, user=alice, protocol=threearm, envelope_sequence=1, arm_given=arm,
        opened_at=onset + dt.timedelta(hours=1), request_id=uuid.uuid4().hex).allocation
    assert (allocation.arm, allocation.discrepancy, allocation.subject_id) == \
        (arm, "", "TRIDENT-BERLIN-004")
    assert allocation.method == "minimization"
    state = MinimizationState.objects.get(protocol_id=threearm.protocol_id)
    assert state.counts == _recount(threearm)
    assert sum(state.counts["sex_factor"]["female"].values()) == 2

    after = make_screening(berlin, alice, trident_record(onset, sex="male"))
    randomize(after.pk, user=alice, request_id=uuid.uuid4().hex, protocol=threearm)
    state.refresh_from_db()
    assert state.counts == _recount(threearm)


CLIENTS = 16


@pytest.mark.django_db(transaction=True)
def test_16_simultaneous_minimizations_lose_no_update(threearm, alice):
    sites = sync_sites(threearm)
    onset = utcnow() - dt.timedelta(hours=1)
    screenings = [
        make_screening(sites[i % 2], alice, trident_record(onset, sex=SEXES[i]))
        for i in range(CLIENTS)
    ]
    randomize_simultaneously(screenings, user=alice, protocol=threearm)
    allocations = list(Allocation.objects.all())
    assert len(allocations) == CLIENTS
    state = MinimizationState.objects.get(protocol_id=threearm.protocol_id)
    assert state.allocations == CLIENTS
    assert state.counts == _recount(threearm)
    numbers = sorted(a.method_state["allocation_number"] for a in allocations)
    assert numbers == list(range(1, CLIENTS + 1))
    for site in sites:
        mine = sorted(int(a.subject_id.rsplit("-", 1)[1]) for a in allocations
                      if a.site_id == site.pk)
        assert mine == list(range(1, CLIENTS // 2 + 1)), site.code
