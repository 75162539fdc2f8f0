"""The query workflow, checked against the table of allowed steps written out by hand."""

from __future__ import annotations

import itertools

import pytest

from trialdesk.datamanagement.queries import QueryAction, QueryActor, QueryState, next_state
from trialdesk.errors import InputRejected, QueryTransitionRefused

S, A, W = QueryState, QueryAction, QueryActor

#: every allowed (state, action, actor) → new state; everything else is refused
ALLOWED = {
    (S.OPEN, A.ANSWER, W.SITE): S.ANSWERED,
    (S.REOPENED, A.ANSWER, W.SITE): S.ANSWERED,
    (S.ANSWERED, A.CLOSE, W.REVIEWER): S.CLOSED,
    (S.ANSWERED, A.REOPEN, W.REVIEWER): S.REOPENED,
    (S.CLOSED, A.REOPEN, W.REVIEWER): S.REOPENED,
    (S.OPEN, A.WITHDRAW, W.REVIEWER): S.WITHDRAWN,
}


@pytest.mark.parametrize("state, action, actor", list(itertools.product(S, A, W)))
def test_every_step_is_allowed_exactly_as_the_table_says(state, action, actor):
    key = (state, action, actor)
    if key in ALLOWED:
        assert next_state(state, action, actor, message="ok") is ALLOWED[key]
    else:
        with pytest.raises(QueryTransitionRefused):
            next_state(state, action, actor, message="ok")


def test_open_answered_closed_then_reopened_and_answered_again():
    state = S.OPEN
    for action, actor in [(A.ANSWER, W.SITE), (A.CLOSE, W.REVIEWER), (A.REOPEN, W.REVIEWER),
                          (A.ANSWER, W.SITE), (A.CLOSE, W.REVIEWER)]:
        state = next_state(state, action, actor, message="text")
    assert state is S.CLOSED


def test_a_closed_query_cannot_be_answered_and_the_message_says_who_can_reopen():
    with pytest.raises(QueryTransitionRefused, match="data manager or monitor can reopen"):
        next_state("closed", "answer", "site", message="value corrected")


def test_the_site_cannot_close_its_own_answer():
    with pytest.raises(QueryTransitionRefused, match="data manager or the monitor"):
        next_state("answered", "close", "site", message="done")


@pytest.mark.parametrize("action, actor, state", [
    ("answer", "site", "open"), ("close", "reviewer", "answered"),
    ("reopen", "reviewer", "closed"), ("withdraw", "reviewer", "open")])
def test_every_step_needs_a_message(action, actor, state):
    with pytest.raises(InputRejected) as exc:
        next_state(state, action, actor, message="   ")
    assert exc.value.field == "message"


def test_an_unknown_state_or_action_is_a_programming_error():
    with pytest.raises(ValueError):
        next_state("pending", "answer", "site", message="x")


def test_a_query_raised_in_error_is_withdrawn_before_the_site_answers_and_stays_final():
    state = next_state(S.OPEN, A.WITHDRAW, W.REVIEWER, message="raised on the wrong patient")
    assert state is S.WITHDRAWN
    for action, actor in itertools.product(A, W):
        with pytest.raises(QueryTransitionRefused):
            next_state(state, action, actor, message="x")
    with pytest.raises(QueryTransitionRefused, match="withdrawn as raised in error"):
        next_state(state, A.REOPEN, W.REVIEWER, message="needed after all")


def test_the_site_cannot_withdraw_a_query():
    with pytest.raises(QueryTransitionRefused, match="data manager or the monitor"):
        next_state("open", "withdraw", "site", message="we think it is wrong")


@pytest.mark.parametrize("state", ["answered", "reopened", "closed"])
def test_a_query_the_site_has_answered_is_closed_not_withdrawn(state):
    with pytest.raises(QueryTransitionRefused, match="close it"):
        next_state(state, "withdraw", "reviewer", message="raised in error")
