"""Locks per patient and per trial: locked data cannot change without an audited unlock.

Every service that changes a patient's data calls :func:`assert_unlocked` first (the
casebook's form saves, adverse events, query answers). Locking and unlocking need a
reason, are done by the data manager, and are kept in the history of :class:`DataLock`.
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
    """Raise :class:`RecordLocked` when the patient's data or the whole trial is locked."""
    state = lock_state(allocation)
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
        row = DataLock.objects.select_for_update().filter(scope_key=key).first()
        if (row.locked if row is not None else False) == locked:
            scope = "The trial" if allocation is None else allocation.subject_id
            raise InputRejected(f"{scope} is already {'locked' if locked else 'unlocked'}.",
                                field="locked")
        if row is None:
            row = DataLock(scope_key=key, allocation=allocation)
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
