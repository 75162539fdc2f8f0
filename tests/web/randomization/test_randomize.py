"""The randomize use case on the real database: allocate once, refuse with reasons."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.web.conftest import eligible_record, make_screening
from trialdesk.clinical.timeutil import utcnow
from trialdesk.errors import (
    AllocationError,
    AlreadyRandomized,
    CommitmentMismatch,
    ConsentMissing,
    EligibilityIncomplete,
    ListExhausted,
    NotEligible,
    RequestIdReused,
    UnknownStratum,
    WindowClosed,
)
from trialdesk.randomization import generate_list
from trialdesk.web.randomization.models import Allocation, StratumCounter
from trialdesk.web.randomization.services import import_list, randomize
from trialdesk.web.screening.models import ScreeningStatus
from trialdesk.web.sites.services import sync_sites

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(rumcess):
    return sync_sites(rumcess)[0]


@pytest.fixture
def sealed_list(rumcess, alice):
    alist = generate_list(rumcess, seed="test-seed", size_per_stratum=8)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice)
    return alist


def _rid() -> str:
    return uuid.uuid4().hex


def _screen(site, alice, hours_ago: float = 2.0, **changes):
    return make_screening(site, alice,
                          eligible_record(utcnow() - dt.timedelta(hours=hours_ago), **changes))


def test_eligible_consented_patient_gets_the_first_slot_of_the_stratum(
        rumcess, site, alice, sealed_list):
    screening = _screen(site, alice)
    outcome = randomize(screening.pk, user=alice, request_id=_rid(), protocol=rumcess)
    allocation = outcome.allocation
    first = sealed_list.entry("neutropenia_cause=post_chemotherapy", 1)
    assert not outcome.replayed
    assert allocation.subject_id == "RUMCESS-NRCH-001"
    assert (allocation.arm, allocation.sequence) == (first.arm, 1)
    assert allocation.protocol_sha256 == rumcess.content_sha256
    assert allocation.randomized_by == alice
    assert allocation.eligibility["decision"] == "eligible"
    screening.refresh_from_db()
    assert screening.status == ScreeningStatus.RANDOMIZED
    assert allocation.history.first().history_user == alice


def test_a_retried_request_returns_the_same_allocation(rumcess, site, alice, sealed_list):
    screening = _screen(site, alice)
    request_id = _rid()
    first = randomize(screening.pk, user=alice, request_id=request_id, protocol=rumcess)
    again = randomize(screening.pk, user=alice, request_id=request_id, protocol=rumcess)
    assert again.replayed and again.allocation.pk == first.allocation.pk
    assert Allocation.objects.count() == 1


def test_a_patient_cannot_be_randomized_twice(rumcess, site, alice, sealed_list):
    screening = _screen(site, alice)
    randomize(screening.pk, user=alice, request_id=_rid(), protocol=rumcess)
    with pytest.raises(AlreadyRandomized, match="already randomized as RUMCESS-NRCH-001"):
        randomize(screening.pk, user=alice, request_id=_rid(), protocol=rumcess)


def test_a_request_id_cannot_be_reused_for_another_patient(rumcess, site, alice, sealed_list):
    request_id = _rid()
    randomize(_screen(site, alice).pk, user=alice, request_id=request_id, protocol=rumcess)
    with pytest.raises(RequestIdReused):
        randomize(_screen(site, alice).pk, user=alice, request_id=request_id, protocol=rumcess)


def test_closed_window_refuses_with_missed_window_advice(rumcess, site, alice, sealed_list):
    screening = _screen(site, alice, hours_ago=10.5)
    with pytest.raises(WindowClosed, match="missed window"):
        randomize(screening.pk, user=alice, request_id=_rid(), protocol=rumcess)
    assert Allocation.objects.count() == 0


def test_exactly_at_the_deadline_is_still_in_time(rumcess, site, alice, sealed_list):
    onset = utcnow() - dt.timedelta(hours=1)
    screening = make_screening(site, alice, eligible_record(onset))
    outcome = randomize(screening.pk, user=alice, request_id=_rid(), protocol=rumcess,
                        at=onset + dt.timedelta(hours=10))
    assert outcome.allocation.sequence == 1


def test_missing_consent_refuses_before_anything_else(rumcess, site, alice, sealed_list):
    screening = _screen(site, alice, consent_signed=None)
    with pytest.raises(ConsentMissing, match="record the consent"):
        randomize(screening.pk, user=alice, request_id=_rid(), protocol=rumcess)


def test_ineligible_patient_is_refused_with_the_failing_criterion(
        rumcess, site, alice, sealed_list):
    screening = _screen(site, alice, neutrophils={"value": 1.4, "unit": "10^9/L"})
    with pytest.raises(NotEligible, match="I3"):
        randomize(screening.pk, user=alice, request_id=_rid(), protocol=rumcess)


def test_unknown_criteria_refuse_and_name_the_missing_fields(rumcess, site, alice, sealed_list):
    screening = _screen(site, alice, chemoresistant_oncohematological=None)
    with pytest.raises(EligibilityIncomplete, match="chemoresistant_oncohematological"):
        randomize(screening.pk, user=alice, request_id=_rid(), protocol=rumcess)


def test_missing_stratification_level_is_asked_for(rumcess, site, alice, sealed_list):
    screening = _screen(site, alice, neutropenia_cause=None)
    with pytest.raises(UnknownStratum, match="Cause of neutropenia"):
        randomize(screening.pk, user=alice, request_id=_rid(), protocol=rumcess)


def test_without_a_loaded_list_the_statistician_is_named(rumcess, site, alice):
    with pytest.raises(AllocationError, match="unblinded statistician"):
        randomize(_screen(site, alice).pk, user=alice, request_id=_rid(), protocol=rumcess)


def test_exhausted_list_refuses_and_points_to_emergency_envelopes(rumcess, site, alice):
    alist = generate_list(rumcess, seed="tiny", size_per_stratum=2)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice)
    size = len(alist.entries_for("neutropenia_cause=post_chemotherapy"))
    for _ in range(size):
        randomize(_screen(site, alice).pk, user=alice, request_id=_rid(), protocol=rumcess)
    with pytest.raises(ListExhausted, match="emergency"):
        randomize(_screen(site, alice).pk, user=alice, request_id=_rid(), protocol=rumcess)


def test_strata_are_allocated_from_their_own_sequences(rumcess, site, alice, sealed_list):
    a = randomize(_screen(site, alice).pk, user=alice, request_id=_rid(), protocol=rumcess)
    b = randomize(_screen(site, alice, neutropenia_cause="aplastic_anemia").pk, user=alice,
                  request_id=_rid(), protocol=rumcess)
    assert (a.allocation.sequence, b.allocation.sequence) == (1, 1)
    assert b.allocation.arm == sealed_list.entry("neutropenia_cause=aplastic_anemia", 1).arm
    assert b.allocation.subject_id == "RUMCESS-NRCH-002"


def test_import_refuses_a_list_that_does_not_match_its_commitment(rumcess, alice):
    alist = generate_list(rumcess, seed="s1", size_per_stratum=4)
    tampered = alist.to_csv().replace(",control\n", ",msc\n", 1)
    with pytest.raises(CommitmentMismatch):
        import_list(rumcess, tampered, alist.commitment(), user=alice)


def test_a_second_main_list_is_refused(rumcess, alice, sealed_list):
    other = generate_list(rumcess, seed="another", size_per_stratum=4)
    with pytest.raises(AllocationError, match="already loaded"):
        import_list(rumcess, other.to_csv(), other.commitment(), user=alice)


def test_import_creates_one_counter_per_stratum(rumcess, sealed_list):
    assert StratumCounter.objects.count() == 4
    assert set(StratumCounter.objects.values_list("next_sequence", flat=True)) == {1}
