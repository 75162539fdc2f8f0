"""Queries and signatures attach to a casebook form exactly as to an adverse event."""

from __future__ import annotations

import pytest

from tests.web.datamgmt.conftest import PASSWORD
from trialdesk.errors import InputRejected
from trialdesk.web.casebook.models import FormRecord
from trialdesk.web.datamgmt.services import raise_query, sign, signatures_of
from trialdesk.web.datamgmt.targets import casebook_records, resolve

pytestmark = pytest.mark.django_db


@pytest.fixture
def day1(patient, alice):
    return FormRecord.objects.create(allocation=patient, form_id="sofa", day=1,
                                     data={"platelets": {"value": 45, "unit": "10^9/L"}},
                                     entered_by=alice)


def test_a_query_on_a_key_of_the_form_data(day1, dora):
    q = raise_query(day1, dora, text="Platelets 45: transfusion before the sample?",
                    field="platelets")
    assert (q.content_type.model, q.object_id, q.field) == ("formrecord", day1.pk, "platelets")
    assert resolve("casebook.formrecord", day1.pk) == day1
    with pytest.raises(InputRejected):
        raise_query(day1, dora, text="?", field="bilirubin")


def test_a_changed_form_invalidates_the_form_and_the_casebook_signature(day1, patient, ivan):
    assert day1 in casebook_records(patient)
    sign(day1, ivan, password=PASSWORD, meaning="review")
    sign(patient, ivan, password=PASSWORD, meaning="responsibility")
    day1.data = {"platelets": {"value": 54, "unit": "10^9/L"}}
    day1.save()
    assert [v.valid for v in signatures_of(day1)] == [False]
    assert [v.valid for v in signatures_of(patient)] == [False]
