"""API routes for data queries (docs/api.md): the pages' services and permissions."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status

from trialdesk.web.accounts.permissions import sites_for
from trialdesk.web.api.auth import permission, require_site
from trialdesk.web.datamgmt import services
from trialdesk.web.datamgmt.models import Query
from trialdesk.web.datamgmt.targets import allocation_of, resolve

router = Router(tags=["queries"])


class QueryIn(Schema):
    target: str  # "safety.adverseevent", "casebook.formrecord"
    object_id: int
    field: str = ""
    text: str


class QueryStep(Schema):
    text: str


def _query(q: Query) -> dict[str, Any]:
    return {"id": q.pk, "subject_id": q.allocation.subject_id,
            "target": f"{q.content_type.app_label}.{q.content_type.model}",
            "object_id": q.object_id, "field": q.field, "state": q.state,
            "raised_by": q.raised_by.get_username(), "raised_at": q.raised_at,
            "updated_at": q.updated_at,
            "messages": [{"action": m.action, "text": m.text, "state_after": m.state_after,
                          "author": m.author.get_username(), "at": m.at}
                         for m in q.messages.select_related("author")]}


def _get(request: HttpRequest, query_id: int) -> Query:
    q = get_object_or_404(Query.objects.select_related("allocation__site", "content_type",
                                                       "raised_by"), pk=query_id)
    require_site(request, q.allocation.site)
    return q


@router.get("/queries", **permission("query.view"), response=list[dict],
            url_name="query_list", operation_id="query_list",
            summary="Data queries at your sites; filter by state")
def query_list(request: HttpRequest, state: str | None = None):
    queries = (Query.objects.filter(allocation__site__in=sites_for(request.auth, "query.view"))
               .select_related("allocation", "content_type", "raised_by"))
    if state:
        queries = queries.filter(state=state)
    return [_query(q) for q in queries]


@router.post("/queries", **permission("query.raise"), response={201: dict},
             url_name="query_create", operation_id="query_create",
             summary="Raise a query on a record or one of its fields")
def query_create(request: HttpRequest, payload: QueryIn):
    target = resolve(payload.target, payload.object_id)
    require_site(request, allocation_of(target).site)
    q = services.raise_query(target, request.auth, text=payload.text, field=payload.field)
    return Status(201, _query(q))


@router.get("/queries/{query_id}", **permission("query.view"), response=dict,
            url_name="query_detail", operation_id="query_detail",
            summary="A query with its thread")
def query_detail(request: HttpRequest, query_id: int):
    return _query(_get(request, query_id))


@router.post("/queries/{query_id}/answer", **permission("query.answer"), response=dict,
             url_name="query_answer", operation_id="query_answer",
             summary="Answer an open or reopened query (site staff)")
def query_answer(request: HttpRequest, query_id: int, payload: QueryStep):
    return _query(services.answer_query(_get(request, query_id), request.auth,
                                        text=payload.text))


@router.post("/queries/{query_id}/close", **permission("query.close"), response=dict,
             url_name="query_close", operation_id="query_close",
             summary="Close an answered query (data manager, monitor)")
def query_close(request: HttpRequest, query_id: int, payload: QueryStep):
    return _query(services.close_query(_get(request, query_id), request.auth,
                                       text=payload.text))


@router.post("/queries/{query_id}/reopen", **permission("query.close"), response=dict,
             url_name="query_reopen", operation_id="query_reopen",
             summary="Reopen an answered or closed query (data manager, monitor)")
def query_reopen(request: HttpRequest, query_id: int, payload: QueryStep):
    return _query(services.reopen_query(_get(request, query_id), request.auth,
                                        text=payload.text))


@router.post("/queries/{query_id}/withdraw", **permission("query.close"), response=dict,
             url_name="query_withdraw", operation_id="query_withdraw",
             summary="Withdraw an open query raised in error, with why (final; data "
                     "manager, monitor)")
def query_withdraw(request: HttpRequest, query_id: int, payload: QueryStep):
    return _query(services.withdraw_query(_get(request, query_id), request.auth,
                                          text=payload.text))
