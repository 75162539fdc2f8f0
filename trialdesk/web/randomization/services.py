"""Randomization use cases: import a sealed list, randomize, reconcile an emergency envelope.

Every entry point (web page, API, CLI) calls these functions; nothing else writes
allocations. See :mod:`trialdesk.web.randomization.models` for the locking design.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from trialdesk.clinical.timeutil import utcnow
from trialdesk.eligibility import EligibilityResult, evaluate
from trialdesk.eligibility.gate import check_randomizable
from trialdesk.errors import (
    AllocationError,
    AlreadyRandomized,
    InputRejected,
    ListExhausted,
    RequestIdReused,
    TrialError,
    UnknownStratum,
)
from trialdesk.protocol import Protocol
from trialdesk.protocol.schema import RandomizationMethod
from trialdesk.randomization import AllocationList, MarginalCounts, minimize, stratum_key
from trialdesk.web.randomization.models import (
    Allocation,
    AllocationSlot,
    AllocationSource,
    MinimizationState,
    RandomizationList,
    StratumCounter,
    SubjectCounter,
)
from trialdesk.web.screening.models import Screening, ScreeningStatus
from trialdesk.web.sites.models import Site

MAIN_LIST = "main"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AllocationOutcome:
    allocation: Allocation
    #: True when the request id had already been served (a retried request)
    replayed: bool


def emergency_label(site_code: str) -> str:
    return f"emergency-{site_code}"


# --- lists ---------------------------------------------------------------------------


@transaction.atomic
def import_list(protocol: Protocol, csv_text: str, commitment: str, *, user: Any,
                site: Site | None = None) -> RandomizationList:
    """Load a sealed list after checking it against its published commitment.

    Refuses a list made for another protocol version and a second active list with
    the same label; creates one counter per stratum so allocation never has to.
    """
    alist = AllocationList.from_csv(csv_text)
    alist.verify(commitment)
    if alist.protocol_sha256 != protocol.content_sha256:
        raise AllocationError(
            f"This list was generated for protocol sha256 {alist.protocol_sha256[:12]}…, but "
            f"the running protocol is {protocol.content_sha256[:12]}…: regenerate the list "
            "from the protocol in force.")
    expected_label = emergency_label(site.code) if site is not None else MAIN_LIST
    if alist.label != expected_label:
        raise AllocationError(f"This is the '{alist.label}' list; expected '{expected_label}'.")
    if RandomizationList.objects.filter(label=alist.label, active=True).exists():
        raise AllocationError(f"An active '{alist.label}' list is already loaded; a sealed "
                              "list is never replaced during a trial.")
    rlist = RandomizationList.objects.create(
        label=alist.label, site=site, protocol_id=alist.protocol_id,
        protocol_sha256=alist.protocol_sha256, method=str(alist.method),
        commitment_sha256=alist.commitment(), seed_fingerprint=alist.seed_fingerprint,
        csv_text=csv_text, imported_by=user)
    AllocationSlot.objects.bulk_create(
        AllocationSlot(rlist=rlist, stratum=e.stratum, sequence=e.sequence, block=e.block,
                       block_size=e.block_size, arm=e.arm)
        for e in alist.entries)
    StratumCounter.objects.bulk_create(
        StratumCounter(rlist=rlist, stratum=s) for s in sorted({e.stratum for e in alist.entries}))
    return rlist


def _active_list(label: str) -> RandomizationList:
    rlist = RandomizationList.objects.filter(label=label, active=True).first()
    if rlist is None:
        raise AllocationError(
            f"No '{label}' allocation list is loaded. The unblinded statistician must "
            "generate it (trialdesk randlist generate) and load it (trialdesk randlist import).")
    return rlist


# --- helpers -------------------------------------------------------------------------


def strata_levels(protocol: Protocol, record: dict[str, Any]) -> dict[str, str]:
    """The patient's level of every stratification factor, read from the screening record."""
    levels = {}
    for factor in protocol.stratification_factors:
        if factor.id in protocol.randomization.stratify_by:
            value = record.get(factor.field)
            if value is None:
                raise UnknownStratum(
                    f"{factor.label} is not recorded; it is needed to randomize. Enter it on "
                    "the screening record.", field=factor.field)
            levels[factor.id] = value
    return levels


def _locked_subject_number(site: Site) -> int:
    """Lock the site's subject counter (creating it once) and return its next number."""
    counter = SubjectCounter.objects.select_for_update().filter(site=site).first()
    if counter is None:
        try:
            with transaction.atomic():
                SubjectCounter.objects.create(site=site)
        except IntegrityError:
            pass  # created concurrently: fine, lock it below
        counter = SubjectCounter.objects.select_for_update().get(site=site)
    number = counter.next_number
    counter.next_number = number + 1
    counter.save(update_fields=["next_number"])
    return number


def _subject_id(protocol: Protocol, site: Site, number: int) -> str:
    return f"{protocol.identifiers.acronym}-{site.code.upper()}-{number:03d}"


def _take_list_slot(rlist: RandomizationList, stratum: str,
                    sequence: int | None = None) -> tuple[AllocationSlot, StratumCounter]:
    counter = (StratumCounter.objects.select_for_update()
               .filter(rlist=rlist, stratum=stratum).first())
    if counter is None:
        raise UnknownStratum(f"Stratum '{stratum}' is not in the {rlist.label} list.")
    wanted = counter.next_sequence if sequence is None else sequence
    slot = AllocationSlot.objects.filter(rlist=rlist, stratum=stratum, sequence=wanted).first()
    if slot is None:
        raise ListExhausted(
            f"The {rlist.label} list has no slot {wanted} for stratum {stratum}: it is used up. "
            "Call the unblinded statistician; meanwhile use the emergency envelopes.")
    return slot, counter


def _minimization_decision(protocol: Protocol, levels: dict[str, str]) -> tuple[str, dict]:
    import random

    state = MinimizationState.objects.select_for_update().filter(
        protocol_id=protocol.protocol_id).first()
    if state is None:
        try:
            with transaction.atomic():
                MinimizationState.objects.create(protocol_id=protocol.protocol_id,
                                                 seed_secret=secrets.token_hex(32))
        except IntegrityError:
            pass
        state = MinimizationState.objects.select_for_update().get(
            protocol_id=protocol.protocol_id)
    counts = MarginalCounts.from_dict(state.counts) if state.counts else \
        MarginalCounts.empty(protocol)
    seed = hashlib.sha256(f"{state.seed_secret}:{state.allocations + 1}".encode()).hexdigest()
    decision = minimize(protocol, counts, levels, random.Random(seed))
    counts.add(levels, decision.arm)
    state.counts = counts.to_dict()
    state.allocations += 1
    state.save(update_fields=["counts", "allocations"])
    return decision.arm, {"decision": decision.to_dict(), "allocation_number": state.allocations}


# --- randomize -----------------------------------------------------------------------


def _replay(existing: Allocation, screening_id: int) -> AllocationOutcome:
    if existing.screening_id != screening_id:
        raise RequestIdReused(
            f"Request id '{existing.request_id}' was already used to randomize another "
            "patient. Reload the page and press Randomize again.")
    return AllocationOutcome(existing, replayed=True)


def randomize(screening_id: int, *, user: Any, request_id: str, protocol: Protocol,
              at: dt.datetime | None = None) -> AllocationOutcome:
    """Allocate the screened patient exactly once.

    ``request_id`` is chosen by the client: a retried request returns the same
    allocation (``replayed=True``). Refuses (typed :class:`TrialError`) when the
    patient is already randomized, the enrolment window has closed, consent is
    missing, or eligibility is not confirmed.
    """
    if not request_id or len(request_id) > 100:
        raise InputRejected("A request id of 1–100 characters is required.",
                            field="request_id")
    existing = Allocation.objects.filter(request_id=request_id).first()
    if existing is not None:
        return _replay(existing, screening_id)
    screening = Screening.objects.select_related("site").get(pk=screening_id)
    _refuse_if_randomized(screening)
    at = utcnow() if at is None else at
    result = evaluate(protocol, screening.record, at, site_id=screening.site.code)
    check_randomizable(protocol, result)
    levels = strata_levels(protocol, screening.record)
    stratum = stratum_key(protocol, levels)
    try:
        with transaction.atomic():
            allocation = allocate_locked(protocol, screening, levels, stratum, user=user,
                                         request_id=request_id, at=at, eligibility=result)
    except IntegrityError:
        # a concurrent request for the same patient or id won the race
        existing = Allocation.objects.filter(request_id=request_id).first()
        if existing is not None:
            return _replay(existing, screening_id)
        _refuse_if_randomized(Screening.objects.get(pk=screening_id))
        raise
    _notify_lab_safely(protocol, allocation)
    return AllocationOutcome(allocation, replayed=False)


def _notify_lab_safely(protocol: Protocol, allocation: Allocation) -> None:
    """The allocation is committed; a mail failure must not undo or hide it."""
    from trialdesk.web.randomization.notifications import notify_lab

    try:
        notify_lab(protocol, allocation)
    except Exception:
        logger.exception("could not email the lab about %s", allocation.subject_id)


def _refuse_if_randomized(screening: Screening) -> None:
    done = Allocation.objects.filter(screening=screening).first()
    if done is not None:
        raise AlreadyRandomized(
            f"{screening.screening_number} is already randomized as {done.subject_id} "
            f"({done.arm}, {done.randomized_at:%Y-%m-%d %H:%M} UTC); it cannot be "
            "randomized twice.")


def allocate_locked(protocol: Protocol, screening: Screening, levels: dict[str, str],
                    stratum: str, *, user: Any, request_id: str, at: dt.datetime,
                    eligibility: EligibilityResult) -> Allocation:
    """The critical section; must run inside ``transaction.atomic()``.

    Takes the locks in a fixed order (site subject counter, then the method's state),
    re-checks under the lock, takes the slot and writes the allocation.
    """
    number = _locked_subject_number(screening.site)
    existing = Allocation.objects.filter(request_id=request_id).first()
    if existing is not None:
        return existing
    _refuse_if_randomized(screening)
    method = protocol.randomization.method
    rlist = slot = None
    if method is RandomizationMethod.MINIMIZATION:
        arm, state = _minimization_decision(protocol, levels)
    else:
        rlist = _active_list(MAIN_LIST)
        slot, counter = _take_list_slot(rlist, stratum)
        arm = slot.arm
        counter.next_sequence += 1
        counter.save(update_fields=["next_sequence"])
        state = {"list_commitment": rlist.commitment_sha256, "sequence": slot.sequence,
                 "block": slot.block, "block_size": slot.block_size}
    allocation = Allocation(
        subject_id=_subject_id(protocol, screening.site, number), screening=screening,
        site=screening.site, arm=arm, stratum=stratum, levels=levels, rlist=rlist,
        sequence=slot.sequence if slot else None, request_id=request_id,
        randomized_by=user, randomized_at=at, protocol_id=protocol.protocol_id,
        protocol_version=protocol.protocol_version, protocol_sha256=protocol.content_sha256,
        method=method.value, method_state=state, eligibility=eligibility.to_dict())
    allocation._history_user = user
    allocation.save()
    screening.status = ScreeningStatus.RANDOMIZED
    screening._history_user = user
    screening._change_reason = f"randomized as {allocation.subject_id}"
    screening.save(update_fields=["status", "updated_at"])
    return allocation


# --- emergency envelopes ----------------------------------------------------------------


def reconcile_emergency(screening_id: int, *, user: Any, protocol: Protocol,
                        envelope_sequence: int, arm_given: str, opened_at: dt.datetime,
                        request_id: str) -> AllocationOutcome:
    """Record an allocation made from a site's sealed emergency envelope.

    The envelope is consumed from the site's emergency list; every departure from
    the procedure (envelope out of order, arm given differs from the envelope,
    patient not eligible at the time) is recorded as a discrepancy for the data
    manager rather than refused: the patient has already been treated.
    """
    if arm_given not in protocol.arm_ids:
        raise InputRejected(f"Unknown arm '{arm_given}'; arms are "
                            f"{', '.join(protocol.arm_ids)}.", field="arm_given")
    existing = Allocation.objects.filter(request_id=request_id).first()
    if existing is not None:
        return _replay(existing, screening_id)
    screening = Screening.objects.select_related("site").get(pk=screening_id)
    _refuse_if_randomized(screening)
    levels = strata_levels(protocol, screening.record)
    stratum = stratum_key(protocol, levels)
    result = evaluate(protocol, screening.record, opened_at, site_id=screening.site.code)
    problems: list[str] = []
    try:
        check_randomizable(protocol, result)
    except TrialError as exc:
        problems.append(f"not randomizable at {opened_at:%Y-%m-%d %H:%M} UTC: {exc.message}")
    with transaction.atomic():
        number = _locked_subject_number(screening.site)
        rlist = _active_list(emergency_label(screening.site.code))
        try:
            slot, counter = _take_list_slot(rlist, stratum, envelope_sequence)
        except ListExhausted:
            size = AllocationSlot.objects.filter(rlist=rlist, stratum=stratum).count()
            raise AllocationError(
                f"There is no emergency envelope {envelope_sequence} for {stratum}: the "
                f"{rlist.label} envelopes of this stratum are numbered 1–{size}. Check the "
                "envelope number.", field="envelope_sequence") from None
        used = set(Allocation.objects.filter(rlist=rlist, stratum=stratum)
                   .values_list("sequence", flat=True))
        if envelope_sequence in used:
            raise AllocationError(
                f"Emergency envelope {envelope_sequence} ({stratum}) was already used for "
                "another patient; check the envelope number.", field="envelope_sequence")
        lowest_unused = min(set(range(1, counter.next_sequence + 1)) - used)
        if envelope_sequence != lowest_unused:
            problems.append(f"envelope {envelope_sequence} opened, but the next unused "
                            f"envelope was {lowest_unused}")
        if arm_given != slot.arm:
            problems.append(f"the envelope assigns '{slot.arm}' but '{arm_given}' was given")
        counter.next_sequence = max(counter.next_sequence, envelope_sequence + 1)
        counter.save(update_fields=["next_sequence"])
        if protocol.randomization.method is RandomizationMethod.MINIMIZATION:
            _count_emergency_in_minimization(protocol, levels, slot.arm)
        allocation = Allocation(
            subject_id=_subject_id(protocol, screening.site, number), screening=screening,
            site=screening.site, arm=slot.arm, stratum=stratum, levels=levels, rlist=rlist,
            sequence=envelope_sequence, source=AllocationSource.EMERGENCY,
            request_id=request_id, randomized_by=user, randomized_at=opened_at,
            protocol_id=protocol.protocol_id, protocol_version=protocol.protocol_version,
            protocol_sha256=protocol.content_sha256, method=protocol.randomization.method.value,
            method_state={"emergency_list": rlist.commitment_sha256,
                          "envelope": envelope_sequence},
            eligibility=result.to_dict(), arm_recorded_by_site=arm_given,
            discrepancy="; ".join(problems))
        allocation._history_user = user
        allocation.save()
        screening.status = ScreeningStatus.RANDOMIZED
        screening._history_user = user
        screening._change_reason = f"emergency envelope {envelope_sequence} reconciled"
        screening.save(update_fields=["status", "updated_at"])
    return AllocationOutcome(allocation, replayed=False)


def _count_emergency_in_minimization(protocol: Protocol, levels: dict[str, str],
                                     arm: str) -> None:
    state, _ = MinimizationState.objects.select_for_update().get_or_create(
        protocol_id=protocol.protocol_id, defaults={"seed_secret": secrets.token_hex(32)})
    counts = MarginalCounts.from_dict(state.counts) if state.counts else \
        MarginalCounts.empty(protocol)
    counts.add(levels, arm)
    state.counts = counts.to_dict()
    state.save(update_fields=["counts"])
