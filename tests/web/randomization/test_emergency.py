"""Reconciling sealed emergency envelopes: every departure is recorded, never refused.

The patient has already been treated from the envelope when the site reconciles it, so
the allocation is stored whatever happened; what went wrong (envelope out of order, the
wrong arm given, a patient not randomizable at the time) becomes a discrepancy for the
data manager. Only impossible input is refused: an unknown arm, an envelope used twice.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.web.conftest import eligible_record, make_screening
from trialdesk.clinical.timeutil import utcnow
from trialdesk.errors import AllocationError, InputRejected
from trialdesk.randomization import generate_emergency_lists, generate_list
from trialdesk.web.randomization.models import Allocation, AllocationSource, StratumCounter
from trialdesk.web.randomization.services import (
    emergency_label,
    import_list,
    randomize,
    reconcile_emergency,
)
from trialdesk.web.screening.models import ScreeningStatus
from trialdesk.web.sites.services import sync_sites

pytestmark = pytest.mark.django_db

STRATUM = "neutropenia_cause=post_chemotherapy"


@pytest.fixture
def site(rumcess):
    return sync_sites(rumcess)[0]


@pytest.fixture
def envelopes(rumcess, site, alice):
    """The site's emergency list, imported; the sealed envelopes hold these arms."""
    alist = generate_emergency_lists(rumcess, seed="envelope-seed")[site.code]
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice, site=site)
    return alist


def _rid() -> str:
    return uuid.uuid4().hex


def _other_arm(rumcess, arm: str) -> str:
    return next(a for a in rumcess.arm_ids if a != arm)


def _treated(site, alice, hours_before_opening: float = 2.0, opened_at=None, **changes):
    """A screened patient and the time the envelope was opened."""
    opened_at = opened_at or utcnow() - dt.timedelta(minutes=30)
    onset = opened_at - dt.timedelta(hours=hours_before_opening)
    return make_screening(site, alice, eligible_record(onset, **changes)), opened_at


def _reconcile(rumcess, alice, screening, opened_at, envelope: int, arm: str,
               request_id: str | None = None):
    return reconcile_emergency(screening.pk, user=alice, protocol=rumcess,
                               envelope_sequence=envelope, arm_given=arm, opened_at=opened_at,
                               request_id=request_id or _rid())


def _counter(site, stratum: str = STRATUM) -> int:
    return StratumCounter.objects.get(rlist__label=emergency_label(site.code),
                                      stratum=stratum).next_sequence


def test_import_checks_the_site_label(rumcess, site, alice):
    lists = generate_emergency_lists(rumcess, seed="envelope-seed")
    main = generate_list(rumcess, seed="envelope-seed", size_per_stratum=4)
    with pytest.raises(AllocationError, match=f"expected 'emergency-{site.code}'"):
        import_list(rumcess, main.to_csv(), main.commitment(), user=alice, site=site)
    rlist = import_list(rumcess, lists[site.code].to_csv(), lists[site.code].commitment(),
                        user=alice, site=site)
    assert (rlist.label, rlist.site) == (f"emergency-{site.code}", site)


def test_in_order_envelope_with_the_right_arm_has_no_discrepancy(
        rumcess, site, alice, envelopes):
    screening, opened_at = _treated(site, alice)
    arm = envelopes.entry(STRATUM, 1).arm
    outcome = _reconcile(rumcess, alice, screening, opened_at, 1, arm)
    allocation = outcome.allocation
    assert not outcome.replayed
    assert allocation.discrepancy == ""
    assert allocation.source == AllocationSource.EMERGENCY
    assert (allocation.arm, allocation.arm_recorded_by_site) == (arm, arm)
    assert (allocation.stratum, allocation.sequence) == (STRATUM, 1)
    assert allocation.rlist.label == f"emergency-{site.code}"
    assert allocation.randomized_at == opened_at
    assert allocation.method_state == {"emergency_list": envelopes.commitment(), "envelope": 1}
    assert allocation.subject_id == "RUMCESS-NRCH-001"
    assert _counter(site) == 2
    screening.refresh_from_db()
    assert screening.status == ScreeningStatus.RANDOMIZED


def test_subject_numbers_are_shared_with_online_allocations(rumcess, site, alice, envelopes):
    main = generate_list(rumcess, seed="main-seed", size_per_stratum=8)
    import_list(rumcess, main.to_csv(), main.commitment(), user=alice)
    online = make_screening(site, alice, eligible_record(utcnow() - dt.timedelta(hours=1)))
    first = randomize(online.pk, user=alice, request_id=_rid(), protocol=rumcess).allocation
    screening, opened_at = _treated(site, alice)
    second = _reconcile(rumcess, alice, screening, opened_at, 1,
                        envelopes.entry(STRATUM, 1).arm).allocation
    later = make_screening(site, alice, eligible_record(utcnow() - dt.timedelta(hours=1)))
    third = randomize(later.pk, user=alice, request_id=_rid(), protocol=rumcess).allocation
    assert [a.subject_id for a in (first, second, third)] == \
        ["RUMCESS-NRCH-001", "RUMCESS-NRCH-002", "RUMCESS-NRCH-003"]
    assert (first.source, second.source, third.source) == \
        (AllocationSource.ONLINE, AllocationSource.EMERGENCY, AllocationSource.ONLINE)
    # the envelope does not consume the main list, nor the main list the envelopes
    assert (first.sequence, third.sequence) == (1, 2)
    assert _counter(site) == 2


def test_out_of_order_envelope_with_the_wrong_arm_is_recorded_with_both_problems(
        rumcess, site, alice, envelopes):
    screening, opened_at = _treated(site, alice)
    assigned = envelopes.entry(STRATUM, 3).arm
    given = _other_arm(rumcess, assigned)
    allocation = _reconcile(rumcess, alice, screening, opened_at, 3, given).allocation
    assert allocation.arm == assigned  # analysed as randomized
    assert allocation.arm_recorded_by_site == given
    assert "envelope 3 opened, but the next unused envelope was 1" in allocation.discrepancy
    assert f"the envelope assigns '{assigned}' but '{given}' was given" in \
        allocation.discrepancy
    assert allocation.sequence == 3
    assert _counter(site) == 4


def test_the_same_envelope_cannot_be_used_twice(rumcess, site, alice, envelopes):
    arm = envelopes.entry(STRATUM, 1).arm
    first, opened_at = _treated(site, alice)
    _reconcile(rumcess, alice, first, opened_at, 1, arm)
    second, opened_at = _treated(site, alice)
    with pytest.raises(AllocationError, match=r"envelope 1 .* already used"):
        _reconcile(rumcess, alice, second, opened_at, 1, arm)
    assert Allocation.objects.count() == 1
    second.refresh_from_db()
    assert second.status != ScreeningStatus.RANDOMIZED
    assert _counter(site) == 2


def test_an_envelope_opened_after_a_later_one_is_judged_by_the_lowest_unused(
        rumcess, site, alice, envelopes):
    """3 opened first skips 1 and 2; 1 is then the lowest unused (in order); 4 skips 2."""
    found = {}
    for envelope in (3, 1, 4, 2):
        screening, opened_at = _treated(site, alice)
        arm = envelopes.entry(STRATUM, envelope).arm
        found[envelope] = _reconcile(rumcess, alice, screening, opened_at, envelope,
                                     arm).allocation.discrepancy
    assert found == {3: "envelope 3 opened, but the next unused envelope was 1", 1: "",
                     4: "envelope 4 opened, but the next unused envelope was 2", 2: ""}
    assert _counter(site) == 5


def test_an_envelope_number_beyond_the_list_is_refused(rumcess, site, alice, envelopes):
    screening, opened_at = _treated(site, alice)
    size = len(envelopes.entries_for(STRATUM))
    with pytest.raises(AllocationError, match=rf"no emergency envelope {size + 1} .* 1–{size}"
                       ) as caught:
        _reconcile(rumcess, alice, screening, opened_at, size + 1, rumcess.arm_ids[0])
    assert "use the emergency envelopes" not in caught.value.message
    assert caught.value.field == "envelope_sequence"
    assert Allocation.objects.count() == 0


def test_a_patient_not_randomizable_when_the_envelope_was_opened_is_recorded(
        rumcess, site, alice, envelopes):
    screening, opened_at = _treated(site, alice, hours_before_opening=12)  # window is 10 h
    arm = envelopes.entry(STRATUM, 1).arm
    allocation = _reconcile(rumcess, alice, screening, opened_at, 1, arm).allocation
    assert allocation.discrepancy.startswith(
        f"not randomizable at {opened_at:%Y-%m-%d %H:%M} UTC: ")
    assert "window" in allocation.discrepancy.lower()
    assert allocation.eligibility["decision"] == "ineligible"
    assert allocation.arm == arm
    assert _counter(site) == 2


def test_missing_consent_at_the_time_is_a_discrepancy_too(rumcess, site, alice, envelopes):
    screening, opened_at = _treated(site, alice, consent_signed=None)
    allocation = _reconcile(rumcess, alice, screening, opened_at, 1,
                            envelopes.entry(STRATUM, 1).arm).allocation
    assert "not randomizable" in allocation.discrepancy
    assert "consent" in allocation.discrepancy.lower()


def test_a_replayed_request_returns_the_same_allocation(rumcess, site, alice, envelopes):
    screening, opened_at = _treated(site, alice)
    arm = envelopes.entry(STRATUM, 1).arm
    request_id = _rid()
    first = _reconcile(rumcess, alice, screening, opened_at, 1, arm, request_id)
    again = _reconcile(rumcess, alice, screening, opened_at, 1, arm, request_id)
    assert again.replayed and again.allocation.pk == first.allocation.pk
    assert Allocation.objects.count() == 1
    assert _counter(site) == 2


def test_an_unknown_arm_is_rejected(rumcess, site, alice, envelopes):
    screening, opened_at = _treated(site, alice)
    with pytest.raises(InputRejected, match="Unknown arm 'placebo'"):
        _reconcile(rumcess, alice, screening, opened_at, 1, "placebo")
    assert Allocation.objects.count() == 0
    assert _counter(site) == 1


def test_without_an_imported_emergency_list_the_statistician_is_named(rumcess, site, alice):
    screening, opened_at = _treated(site, alice)
    with pytest.raises(AllocationError, match="unblinded statistician"):
        _reconcile(rumcess, alice, screening, opened_at, 1, rumcess.arm_ids[0])
    assert Allocation.objects.count() == 0
