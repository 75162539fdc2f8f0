"""Locks per patient and per trial: locked data cannot change without an audited unlock.

Every service that changes a patient's data calls :func:`hold_unlocked` inside its
saving transaction (the casebook's form saves, adverse events, query answers, marks of
entered in error). It takes the trial's and the patient's :class:`DataLock` rows
``SELECT … FOR UPDATE`` (creating them, unlocked, when they do not exist yet) and
refuses when either is locked. :func:`set_lock` takes the same row FOR UPDATE, so a
save and a lock serialize: a save that began first completes and the lock follows it;
a save that comes after the lock is refused. (On SQLite, where FOR UPDATE does not
exist, write transactions begin IMMEDIATE and serialize the same way.)
:func:`assert_unlocked` is the plain read, for a check outside a transaction.

Locking and unlocking need a reason, are done by the data manager, and are kept in the
history of :class:`DataLock`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from trialdesk.errors import InputRejected, RecordLocked
from trialdesk.web.datamgmt.models import DataLock
from trialdesk.web.randomization.models import Allocation

TRIAL_SCOPE = "trial"


def _scope_key(allocation: Allocation | None) -> str:
    return TRIAL_SCOPE if allocation is None else f"allocation:{allocation.pk}"


@dataclass(frozen=True)
class LockState:
    """Whether a patient's data may change, and if not, which lock stops it and why."""

    trial_locked: bool
    patient_locked: bool
    reason: str

    @property
    def locked(self) -> bool:
        return self.trial_locked or self.patient_locked


def lock_state(allocation: Allocation | None) -> LockState:
    """The lock state of a patient (or of the trial alone when ``allocation`` is None)."""
    keys = [TRIAL_SCOPE] if allocation is None else [TRIAL_SCOPE, _scope_key(allocation)]
    rows = {row.scope_key: row for row in DataLock.objects.filter(scope_key__in=keys,
                                                                  locked=True)}
    trial = rows.get(TRIAL_SCOPE)
    patient = rows.get(_scope_key(allocation)) if allocation is not None else None
    reason = (trial or patient).reason if (trial or patient) else ""
    return LockState(trial is not None, patient is not None, reason)


def assert_unlocked(allocation: Allocation) -> None:
    """Raise :class:`RecordLocked` when the patient's data or the whole trial is locked.

    A plain read: a lock set a moment later is not seen. Saves use :func:`hold_unlocked`.
    """
    _refuse_if_locked(lock_state(allocation), allocation)


def _ensure_rows(keys: dict[str, Allocation | None]) -> None:
    """Create the missing lock rows, unlocked, without history (they record no event).

    ``ignore_conflicts``: a row another transaction is inserting at the same moment is
    left to it (PostgreSQL waits for that transaction, then skips the row).
    """
    missing = set(keys) - set(DataLock.objects.filter(scope_key__in=keys)
                              .values_list("scope_key", flat=True))
    if missing:
        DataLock.objects.bulk_create(
            [DataLock(scope_key=k, allocation=keys[k], locked=False, reason="")
             for k in sorted(missing)], ignore_conflicts=True)


def _held_rows(keys: dict[str, Allocation | None]) -> dict[str, DataLock]:
    """The lock rows of ``keys``, taken FOR UPDATE (always in scope-key order, so two
    transactions never wait for each other in a cycle)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock rows are held only inside the saving transaction: call "
                           "this within transaction.atomic()")
    _ensure_rows(keys)
    rows = DataLock.objects.select_for_update().filter(scope_key__in=keys).order_by(
        "scope_key")
    return {row.scope_key: row for row in rows}


def hold_unlocked(allocation: Allocation) -> LockState:
    """Inside a saving transaction: take the trial's and the patient's lock rows FOR
    UPDATE until the transaction ends, and raise :class:`RecordLocked` if either is
    locked. A concurrent :func:`set_lock` waits for the save, or the save for it."""
    rows = _held_rows({TRIAL_SCOPE: None, _scope_key(allocation): allocation})
    trial, patient = rows[TRIAL_SCOPE], rows[_scope_key(allocation)]
    reason = trial.reason if trial.locked else patient.reason if patient.locked else ""
    state = LockState(trial.locked, patient.locked, reason)
    _refuse_if_locked(state, allocation)
    return state


def _refuse_if_locked(state: LockState, allocation: Allocation) -> None:
    if state.trial_locked:
        raise RecordLocked(
            f"The trial database is locked ({state.reason}): no data can be changed. "
            "Ask the data manager to unlock it, with a reason, if a change is needed.")
    if state.patient_locked:
        raise RecordLocked(
            f"The data of {allocation.subject_id} are locked ({state.reason}). Ask the data "
            "manager to unlock this patient, with a reason, if a change is needed.")


def set_lock(allocation: Allocation | None, user: Any, *, locked: bool,
             reason: str) -> DataLock:
    """Lock or unlock one patient (or the trial when ``allocation`` is None); audited."""
    reason = (reason or "").strip()
    if not reason:
        what = "locking" if locked else "unlocking"
        raise InputRejected(f"Give a reason for {what} (e.g. 'database lock for the final "
                            "analysis', 'correction of day-3 SOFA after query').",
                            field="reason")
    key = _scope_key(allocation)
    with transaction.atomic():
        row = _held_rows({key: allocation})[key]
        if row.locked == locked:  # the refusal rolls back a row just created
            scope = "The trial" if allocation is None else allocation.subject_id
            raise InputRejected(f"{scope} is already {'locked' if locked else 'unlocked'}.",
                                field="locked")
        row.locked = locked
        row.reason = reason
        row.changed_by = user
        row.changed_at = datetime.now(UTC)
        row._history_user = user
        row._change_reason = f"{'locked' if locked else 'unlocked'}: {reason}"
        row.save()
    return row


def lock_patient(allocation: Allocation, user: Any, *, reason: str) -> DataLock:
    return set_lock(allocation, user, locked=True, reason=reason)


def unlock_patient(allocation: Allocation, user: Any, *, reason: str) -> DataLock:
    return set_lock(allocation, user, locked=False, reason=reason)


def lock_trial(user: Any, *, reason: str) -> DataLock:
    return set_lock(None, user, locked=True, reason=reason)


def unlock_trial(user: Any, *, reason: str) -> DataLock:
    return set_lock(None, user, locked=False, reason=reason)
