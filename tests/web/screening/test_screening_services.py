"""Deferred consent confirmation and 'entered in error' (nothing is hard-deleted)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.web.conftest import eligible_record, make_screening
from trialdesk.errors import InputRejected, TimeOrderError
from trialdesk.web.screening.models import Screening, ScreeningStatus
from trialdesk.web.screening.services import (
    confirm_deferred_consent,
    mark_entered_in_error,
    record_consent,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime.now(dt.UTC)


def _deferred(rumcess, alice, nrch):
    screening = make_screening(nrch, alice, eligible_record(NOW - dt.timedelta(hours=2),
                                                            consent_signed=None))
    return record_consent(rumcess, screening, alice, consent_type="deferred",
                          document_version="1.0", obtained_at=NOW - dt.timedelta(hours=1),
                          obtained_by="Dr Petrova")


def test_deferred_consent_is_confirmed_later_by_the_patient(rumcess, alice, nrch):
    consent = _deferred(rumcess, alice, nrch)
    confirm_deferred_consent(consent, alice, confirmed_at=NOW)
    consent.refresh_from_db()
    assert consent.confirmed_by_patient_at is not None
    assert consent.history.first().history_change_reason.startswith("deferred consent")


def test_confirmation_before_the_deferred_consent_is_refused(rumcess, alice, nrch):
    consent = _deferred(rumcess, alice, nrch)
    with pytest.raises(TimeOrderError):
        confirm_deferred_consent(consent, alice, confirmed_at=NOW - dt.timedelta(hours=3))


def test_a_screening_entered_in_error_is_kept_with_its_reason(alice, nrch):
    screening = make_screening(nrch, alice, eligible_record(NOW - dt.timedelta(hours=1)))
    mark_entered_in_error(screening, alice, reason="wrong patient")
    assert Screening.objects.get(pk=screening.pk).status == ScreeningStatus.ENTERED_IN_ERROR
    with pytest.raises(InputRejected):
        mark_entered_in_error(screening, alice, reason=" ")
