"""A query raised in error is withdrawn by the data manager or monitor, with the reason,
before the site answers it; withdrawn is final and leaves the site's list to answer."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.web.datamgmt.test_datamgmt import entry
from trialdesk.errors import InputRejected, QueryTransitionRefused
from trialdesk.web.api.services import create_token
from trialdesk.web.datamgmt.models import Query
from trialdesk.web.datamgmt.services import (
    answer_query,
    raise_query,
    reopen_query,
    withdraw_query,
)
from trialdesk.web.safety.services import report_ae

pytestmark = pytest.mark.django_db
WHY = "raised on the wrong patient"


@pytest.fixture
def ae(patient, ivan, rumcess):
    return report_ae(patient, ivan, entry(), protocol=rumcess)


def client_for(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def to_answer(user) -> str:
    """The site's list of queries waiting for an answer."""
    return client_for(user).get("/data/queries/to-answer/").content.decode()


def test_the_data_manager_withdraws_an_open_query_and_it_is_final(ae, dora, alice):
    q = raise_query(ae, dora, text="Onset time looks wrong?")
    assert "<strong>open</strong>" in to_answer(alice)
    with pytest.raises(InputRejected):
        withdraw_query(q, dora, text=" ")
    q = withdraw_query(q, dora, text=WHY)
    assert q.state == "withdrawn"
    thread = list(q.messages.values_list("action", "text", "state_after", "author__username"))
    assert thread[-1] == ("withdraw", WHY, "withdrawn", "dora")
    assert list(q.history.order_by("history_id").values_list("state", flat=True)) == [
        "open", "withdrawn"]
    with pytest.raises(QueryTransitionRefused, match="withdrawn"):
        answer_query(q, alice, text="10:00")
    with pytest.raises(QueryTransitionRefused):
        reopen_query(q, dora, text="needed after all")
    assert "<strong>open</strong>" not in to_answer(alice) and "No queries." in to_answer(alice)


def test_an_answered_query_is_closed_not_withdrawn(ae, monty, alice):
    q = raise_query(ae, monty, text="Grade?")
    answer_query(q, alice, text="Grade 2 per source")
    with pytest.raises(QueryTransitionRefused, match="close it"):
        withdraw_query(q, monty, text=WHY)


def test_the_page_offers_withdrawal_to_reviewers_only(ae, monty, alice):
    q = raise_query(ae, monty, text="Onset?")
    url = f"/data/query/{q.pk}/withdraw/"
    assert client_for(alice).post(url, {"text": WHY}).status_code == 403
    record = f"/data/record/safety.adverseevent/{ae.pk}/"
    assert url in client_for(monty).get(record).content.decode()
    assert client_for(monty).post(url, {"text": WHY}).status_code == 302
    q.refresh_from_db()
    assert q.state == "withdrawn"
    assert url not in client_for(monty).get(record).content.decode()


def test_the_api_withdraws_a_query(ae, dora, alice, client):
    q = raise_query(ae, dora, text="Onset?")
    url = f"/api/queries/{q.pk}/withdraw"
    site = {"Authorization": f"Bearer {create_token(alice, 'test')[1]}"}
    assert client.post(url, {"text": WHY}, content_type="application/json",
                       headers=site).status_code == 403
    dm = {"Authorization": f"Bearer {create_token(dora, 'test')[1]}"}
    response = client.post(url, {"text": WHY}, content_type="application/json", headers=dm)
    assert response.status_code == 200 and response.json()["state"] == "withdrawn"
    again = client.post(url, {"text": WHY}, content_type="application/json", headers=dm)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "QUERY_TRANSITION_REFUSED"
    listed = client.get("/api/queries?state=withdrawn", headers=dm).json()
    assert [x["id"] for x in listed] == [q.pk]
    assert Query.objects.get(pk=q.pk).state == "withdrawn"
