"""CONSORT's "did not receive allocated intervention (give reasons)" from msc_not_given.

In the reports fixture (conftest) the third patient (msc arm) is never infused; here the
lab records why. By hand: the MSC arm has 2 allocated, 1 received (the day-5 death), 1 not
received, for the reason recorded on the form.
"""

from __future__ import annotations

import pytest

from tests.web.reports.conftest import local
from trialdesk.analysis.consort import consort_counts, consort_svg
from trialdesk.web.casebook.services import save_form
from trialdesk.web.reports.export import build_dataset, export_tables

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab(django_user_model):
    return django_user_model.objects.get(username="lena")  # the trial fixture's lab member


def test_the_recorded_reason_is_the_disposition_and_the_consort_reason(rumcess, trial, lab):
    save_form(rumcess, trial.lost, "msc_not_given", None,
              {"reason": "product_failed_release", "decided_at": local(trial.lost, 3)},
              user=lab)
    row = {r["subject_id"]: r for r in export_tables(rumcess).tables["disposition"]}[
        trial.lost.subject_id]
    assert (row["received_allocated_intervention"], row["not_received_reason"]) == (
        0, "Product failed a release criterion")
    dataset, _ = build_dataset(rumcess)
    msc = {a.arm: a for a in consort_counts(dataset).arms}["msc"]
    assert (msc.allocated, msc.received, msc.not_received) == (2, 1, 1)
    assert msc.not_received_reasons == {"Product failed a release criterion": 1}
    assert "Product failed a release criterion (n = 1)" in consort_svg(
        consort_counts(dataset))


def test_other_carries_its_detail_into_the_export(rumcess, trial, lab):
    save_form(rumcess, trial.lost, "msc_not_given", None,
              {"reason": "other", "reason_detail": "no central line available",
               "decided_at": local(trial.lost, 3)}, user=lab)
    row = {r["subject_id"]: r for r in export_tables(rumcess).tables["disposition"]}[
        trial.lost.subject_id]
    assert row["not_received_reason"] == "Other: no central line available"
    deviations = {(r["subject_id"], r["code"]) for r in export_tables(rumcess
                                                                      ).tables["deviations"]}
    assert (trial.lost.subject_id, "MSC_NOT_GIVEN") in deviations
