"""The data-query workflow: who may move a query from which state to which.

::

    open ──answer──▶ answered ──close──▶ closed
      ▲                 │                  │
      └──── reopened ◀──┴──────reopen──────┘   (reopened ──answer──▶ answered)
    open ──withdraw──▶ withdrawn   (final)

* The site (investigator, coordinator) **answers** an open or reopened query.
* The reviewer (data manager, monitor) who raises queries **closes** an answered query,
  or **reopens** it when the answer does not resolve it. A closed query is final unless
  a reviewer reopens it.
* A reviewer **withdraws** an open query that was raised in error (wrong record, wrong
  patient, duplicate) before the site answers it. A withdrawn query is final: it is kept
  with its thread and reason, but nobody answers, closes or reopens it.
Every other step is refused with :class:`QueryTransitionRefused`, naming the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from trialdesk.errors import InputRejected, QueryTransitionRefused


class QueryState(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"
    REOPENED = "reopened"
    WITHDRAWN = "withdrawn"

    @property
    def awaiting_site(self) -> bool:
        """The site has to answer (open or reopened)."""
        return self in (QueryState.OPEN, QueryState.REOPENED)


class QueryAction(StrEnum):
    ANSWER = "answer"
    CLOSE = "close"
    REOPEN = "reopen"
    WITHDRAW = "withdraw"


class QueryActor(StrEnum):
    SITE = "site"          # investigator, coordinator
    REVIEWER = "reviewer"  # data manager, monitor


@dataclass(frozen=True)
class Transition:
    action: QueryAction
    actor: QueryActor
    sources: frozenset[QueryState]
    target: QueryState


TRANSITIONS: dict[QueryAction, Transition] = {
    QueryAction.ANSWER: Transition(QueryAction.ANSWER, QueryActor.SITE,
                                   frozenset({QueryState.OPEN, QueryState.REOPENED}),
                                   QueryState.ANSWERED),
    QueryAction.CLOSE: Transition(QueryAction.CLOSE, QueryActor.REVIEWER,
                                  frozenset({QueryState.ANSWERED}), QueryState.CLOSED),
    QueryAction.REOPEN: Transition(QueryAction.REOPEN, QueryActor.REVIEWER,
                                   frozenset({QueryState.ANSWERED, QueryState.CLOSED}),
                                   QueryState.REOPENED),
    QueryAction.WITHDRAW: Transition(QueryAction.WITHDRAW, QueryActor.REVIEWER,
                                     frozenset({QueryState.OPEN}), QueryState.WITHDRAWN),
}

#: past participle of each action, for messages ("can be withdrawn")
_DONE = {QueryAction.ANSWER: "answered", QueryAction.CLOSE: "closed",
         QueryAction.REOPEN: "reopened", QueryAction.WITHDRAW: "withdrawn"}

_ACTOR_NAMES = {QueryActor.SITE: "the site staff (investigator or coordinator)",
                QueryActor.REVIEWER: "the data manager or the monitor"}


def next_state(state: QueryState | str, action: QueryAction | str, actor: QueryActor | str,
               *, message: str) -> QueryState:
    """The state after ``actor`` does ``action`` with ``message``; refused when not allowed.

    A message is required for every step (the answer, why it is closed, why reopened).
    """
    state, action, actor = QueryState(state), QueryAction(action), QueryActor(actor)
    step = TRANSITIONS[action]
    if actor is not step.actor:
        raise QueryTransitionRefused(
            f"Only {_ACTOR_NAMES[step.actor]} can {action.value} a query.", field="action")
    if state not in step.sources:
        allowed = " or ".join(sorted(s.value for s in step.sources))
        hint = {QueryState.CLOSED: " It is closed: a data manager or monitor can reopen it.",
                QueryState.ANSWERED: " It is answered: wait for the data manager's review.",
                QueryState.WITHDRAWN: " It was withdrawn as raised in error, which is final: "
                                      "raise a new query if something needs checking.",
                }.get(state, "")
        if action is QueryAction.WITHDRAW and state is not QueryState.WITHDRAWN:
            hint = (" The site has already answered it: close it (saying it was raised in "
                    "error) once it is answered.")
        raise QueryTransitionRefused(
            f"This query is {state.value}; only a query that is {allowed} can be "
            f"{_DONE[action]}.{hint}",
            field="action")
    if not (message or "").strip():
        what = {QueryAction.ANSWER: "Write the answer (what was corrected, or why the "
                                    "value is right as entered).",
                QueryAction.CLOSE: "Say why the query is closed (e.g. 'corrected value "
                                   "verified against source').",
                QueryAction.REOPEN: "Say why the query is reopened (what is still unclear).",
                QueryAction.WITHDRAW: "Say why the query is withdrawn (e.g. 'raised on the "
                                      "wrong patient', 'duplicate of query 12')."}
        raise InputRejected(what[action], field="message")
    return step.target
