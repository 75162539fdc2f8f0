"""A lock and a save at the same moment serialize: the save that began first completes and
the lock follows it; a save that reaches the patient while a lock is being set is refused.

Two threads, each with its own database connection, on whichever database the suite
runs on (SQLite by default: write transactions begin IMMEDIATE; PostgreSQL: the lock
rows taken FOR UPDATE). The first thread is held *inside* its transaction (a post_save
receiver waits there) while the second one starts; the outcome asserted does not depend
on how long anything takes. The order of commits is read from the audit hash chain,
whose links are appended one at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connections
from django.db.models.signals import post_save

from tests.web.datamgmt.test_datamgmt import entry
from trialdesk.errors import RecordLocked
from trialdesk.web.audit.models import ChainLink
from trialdesk.web.datamgmt import locks
from trialdesk.web.datamgmt.models import DataLock
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.safety.services import report_ae

pytestmark = pytest.mark.django_db(transaction=True)
#: time given to the second thread to reach the database while the first holds it; the
#: assertions hold whatever it is (it only makes the test exercise the contention)
HEAD_START_S = 0.5


class Held:
    """Runs ``first`` in a thread held inside its transaction right after it saves a
    ``model`` row, starts ``second`` in another thread, then lets ``first`` commit."""

    def __init__(self, model: type, first: Callable[[], object],
                 second: Callable[[], object]) -> None:
        self.model, self.first, self.second = model, first, second
        self.inside, self.release, self.started = (threading.Event(), threading.Event(),
                                                   threading.Event())
        self.errors: dict[str, BaseException] = {}

    def _hold(self, sender, **kwargs) -> None:
        if threading.current_thread().name == "first" and not self.inside.is_set():
            self.inside.set()
            self.release.wait(timeout=30)

    def _run(self, name: str, work: Callable[[], object]) -> None:
        try:
            if name == "second":
                self.started.set()
            work()
        except BaseException as exc:
            self.errors[name] = exc
        finally:
            connections.close_all()

    def run(self) -> dict[str, BaseException]:
        post_save.connect(self._hold, sender=self.model, weak=False)
        try:
            first = threading.Thread(target=self._run, args=("first", self.first),
                                     name="first")
            second = threading.Thread(target=self._run, args=("second", self.second),
                                      name="second")
            first.start()
            assert self.inside.wait(timeout=30), "the first thread never saved"
            second.start()
            assert self.started.wait(timeout=30)
            time.sleep(HEAD_START_S)
            self.release.set()
            first.join(timeout=60)
            second.join(timeout=60)
            assert not first.is_alive() and not second.is_alive()
        finally:
            self.release.set()
            post_save.disconnect(self._hold, sender=self.model)
        return self.errors


def _link(model: str) -> int:
    """Position in the audit chain of the latest history row of ``model``."""
    return ChainLink.objects.filter(history_model=model).latest("id").id


def test_a_save_in_progress_completes_and_the_lock_follows_it(patient, ivan, dora, rumcess):
    errors = Held(AdverseEvent,
                  first=lambda: report_ae(patient, ivan, entry(), protocol=rumcess),
                  second=lambda: locks.lock_patient(patient, dora,
                                                    reason="casebook complete")).run()
    assert errors == {}
    assert AdverseEvent.objects.filter(allocation=patient).count() == 1
    assert locks.lock_state(patient).patient_locked
    assert _link("safety.HistoricalAdverseEvent") < _link("datamgmt.HistoricalDataLock")


def test_a_save_that_arrives_while_the_lock_is_set_is_refused(patient, ivan, dora, rumcess):
    errors = Held(DataLock,
                  first=lambda: locks.lock_patient(patient, dora, reason="casebook complete"),
                  second=lambda: report_ae(patient, ivan, entry(), protocol=rumcess)).run()
    assert set(errors) == {"second"} and isinstance(errors["second"], RecordLocked)
    assert not AdverseEvent.objects.exists()
    assert locks.lock_state(patient).patient_locked


def test_a_save_after_a_trial_lock_is_refused(patient, ivan, dora, rumcess):
    locks.lock_trial(dora, reason="final database lock")
    with pytest.raises(RecordLocked, match="trial database is locked"):
        report_ae(patient, ivan, entry(), protocol=rumcess)
    assert not AdverseEvent.objects.exists()


def test_lock_rows_are_held_only_inside_a_transaction(patient):
    with pytest.raises(RuntimeError, match="inside the saving transaction"):
        locks.hold_unlocked(patient)
