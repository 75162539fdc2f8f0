"""Data-management pages: query lists, a record's query thread, SDV, signing, locks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.contenttypes.prefetch import GenericPrefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from trialdesk.datamanagement.signatures import SignatureMeaning
from trialdesk.errors import TrialError
from trialdesk.web.accounts.permissions import check_site, has_permission, requires, sites_for
from trialdesk.web.accounts.services import lockout_until, record_logout
from trialdesk.web.datamgmt import locks, services
from trialdesk.web.datamgmt.models import DataLock, Query
from trialdesk.web.datamgmt.targets import (
    allocation_of,
    casebook_models,
    field_names,
    resolve,
    target_label,
)
from trialdesk.web.randomization.models import Allocation


def _record(request: HttpRequest, target: str, object_id: int, action: str):
    obj = resolve(target, object_id)
    check_site(request.user, action, allocation_of(obj).site)
    return obj


def _query(request: HttpRequest, query_id: int, action: str) -> Query:
    query = get_object_or_404(Query.objects.select_related("allocation__site"), pk=query_id)
    check_site(request.user, action, query.allocation.site)
    return query


def _back(query_or_obj) -> HttpResponse:
    if isinstance(query_or_obj, Query):
        return redirect("datamgmt:record", target=query_or_obj.content_type.app_label + "."
                        + query_or_obj.content_type.model, object_id=query_or_obj.object_id)
    return redirect("datamgmt:record", target=target_label(query_or_obj),
                    object_id=query_or_obj.pk)


def _with_targets(queries):
    """Queries with their records fetched in one query per record type, so a list can
    name each record ("RUMCESS-NRCH-001 sofa day 1") instead of a table row number."""
    return queries.prefetch_related(GenericPrefetch("target", [
        m._default_manager.select_related("allocation") for m in casebook_models()]))


def _suggested_fields(obj) -> list[str]:
    """Field names offered when raising a query: a form's entered items when the record
    keeps them in ``data`` (a casebook form), else the record's fields."""
    data = getattr(obj, "data", None)
    return sorted(map(str, data)) if isinstance(data, dict) and data else \
        sorted(field_names(obj))


def _fail(request: HttpRequest, exc: TrialError) -> None:
    messages.error(request, f"{exc.code}: {exc.message}")


@requires("query.raise")
@require_GET
def query_list(request: HttpRequest) -> HttpResponse:
    """The data manager's (or monitor's) list: every query at their sites, open first."""
    state = request.GET.get("state", "")
    queries = (Query.objects.filter(allocation__site__in=sites_for(request.user, "query.raise"))
               .select_related("allocation", "content_type").order_by("state", "-updated_at"))
    if state:
        queries = queries.filter(state=state)
    queries, subject = _for_subject(request, queries)
    return render(request, "datamgmt/query_list.html", {"queries": _with_targets(queries),
                  "title": "Data queries", "state": state, "subject": subject})


def _for_subject(request: HttpRequest, queries):
    """``?subject=<subject id>``: one patient's queries (the subject matrix links here)."""
    subject = request.GET.get("subject", "").strip()
    return (queries.filter(allocation__subject_id=subject) if subject else queries), subject


def _query_step(request: HttpRequest, query_id: int, action: str,
                step: Callable[..., Any]) -> HttpResponse:
    """One step of a query's thread (answer, close, reopen, withdraw) with the posted text;
    a refusal is shown as a message and nothing changes."""
    query = _query(request, query_id, action)
    try:
        step(query, request.user, text=request.POST.get("text", ""))
    except TrialError as exc:
        _fail(request, exc)
    return _back(query)


@requires("query.answer")
@require_GET
def queries_to_answer(request: HttpRequest) -> HttpResponse:
    """The site's list: open and reopened queries waiting for an answer."""
    queries = (Query.objects.filter(allocation__site__in=sites_for(request.user,
                                                                   "query.answer"),
                                    state__in=["open", "reopened"])
               .select_related("allocation", "content_type").order_by("raised_at"))
    queries, subject = _for_subject(request, queries)
    return render(request, "datamgmt/query_list.html", {"queries": _with_targets(queries),
                  "title": "Queries to answer", "state": "open", "subject": subject})


@requires("query.view")
@require_GET
def record(request: HttpRequest, target: str, object_id: int) -> HttpResponse:
    """A record's queries with their threads, its SDV state and its signatures."""
    obj = _record(request, target, object_id, "query.view")
    site = allocation_of(obj).site
    queries = services.queries_on(obj).prefetch_related("messages__author")
    return render(request, "datamgmt/record.html", {
        "obj": obj, "label": target_label(obj), "a": allocation_of(obj), "queries": queries,
        "sdv": services.sdv_of(obj), "changed_since_sdv": services.sdv_of(obj)
        .changed_since(obj), "signatures": services.signatures_of(obj),
        "lock": locks.lock_state(allocation_of(obj)),
        "field_names": _suggested_fields(obj),
        "can": {a.replace(".", "_"): has_permission(request.user, a, site) for a in
                ("query.raise", "query.close", "query.answer", "sdv.mark", "record.sign")}})


@requires("query.raise")
@require_POST
def raise_query(request: HttpRequest, target: str, object_id: int) -> HttpResponse:
    obj = _record(request, target, object_id, "query.raise")
    try:
        services.raise_query(obj, request.user, text=request.POST.get("text", ""),
                             field=request.POST.get("field", ""))
    except TrialError as exc:
        _fail(request, exc)
    return _back(obj)


@requires("query.answer")
@require_POST
def answer(request: HttpRequest, query_id: int) -> HttpResponse:
    return _query_step(request, query_id, "query.answer", services.answer_query)


@requires("query.close")
@require_POST
def close(request: HttpRequest, query_id: int) -> HttpResponse:
    return _query_step(request, query_id, "query.close", services.close_query)


@requires("query.close")
@require_POST
def reopen(request: HttpRequest, query_id: int) -> HttpResponse:
    return _query_step(request, query_id, "query.close", services.reopen_query)


@requires("query.close")
@require_POST
def withdraw(request: HttpRequest, query_id: int) -> HttpResponse:
    """Withdraw an open query raised in error (final), with the reason."""
    return _query_step(request, query_id, "query.close", services.withdraw_query)


@requires("sdv.mark")
@require_POST
def sdv(request: HttpRequest, target: str, object_id: int) -> HttpResponse:
    obj = _record(request, target, object_id, "sdv.mark")
    try:
        services.mark_sdv(obj, request.user, verified=request.POST.get("verified", "1") == "1",
                          note=request.POST.get("note", ""))
    except TrialError as exc:
        _fail(request, exc)
    return _back(obj)


def _sign(request: HttpRequest, obj, back) -> HttpResponse:
    error = None
    printed_name = services.printed_name(request.user)  # before a lockout ends the session
    if request.method == "POST":
        try:
            services.sign(obj, request.user, password=request.POST.get("password", ""),
                          meaning=request.POST.get("meaning", ""),
                          ip=request.META.get("REMOTE_ADDR"))
        except TrialError as exc:
            error = exc
            username = request.user.get_username()
            if lockout_until(username) is not None:
                # locked as after failed logins: this session ends too (21 CFR 11.300(d))
                record_logout(username, request.META.get("REMOTE_ADDR"))
                logout(request)
        else:
            messages.success(request, "Signed.")
            return back
    return render(request, "datamgmt/sign.html", {
        "obj": obj, "a": allocation_of(obj), "error": error,
        "casebook": isinstance(obj, Allocation), "printed_name": printed_name,
        "meanings": list(SignatureMeaning),
        "signatures": services.signatures_of(obj)}, status=422 if error else 200)


@requires("record.sign")
@require_http_methods(["GET", "POST"])
def sign_record(request: HttpRequest, target: str, object_id: int) -> HttpResponse:
    obj = _record(request, target, object_id, "record.sign")
    return _sign(request, obj, _back(obj))


@requires("record.sign")
@require_http_methods(["GET", "POST"])
def sign_casebook(request: HttpRequest, subject_id: str) -> HttpResponse:
    allocation = get_object_or_404(Allocation.objects.select_related("site"),
                                   subject_id=subject_id)
    check_site(request.user, "record.sign", allocation.site)
    return _sign(request, allocation, redirect("datamgmt:sign_casebook",
                                               subject_id=subject_id))


def _lock_page(request: HttpRequest, allocation: Allocation | None) -> HttpResponse:
    if request.method == "POST":
        try:
            locks.set_lock(allocation, request.user,
                           locked=request.POST.get("locked") == "1",
                           reason=request.POST.get("reason", ""))
        except TrialError as exc:
            _fail(request, exc)
        else:
            messages.success(request, "Lock state changed.")
    key = locks.TRIAL_SCOPE if allocation is None else f"allocation:{allocation.pk}"
    row = DataLock.objects.filter(scope_key=key).first()
    history = row.history.select_related("history_user").order_by("-history_date") \
        if row else []
    return render(request, "datamgmt/lock.html", {
        "a": allocation, "state": locks.lock_state(allocation), "history": history})


@requires("lock.manage")
@require_http_methods(["GET", "POST"])
def patient_lock(request: HttpRequest, subject_id: str) -> HttpResponse:
    allocation = get_object_or_404(Allocation.objects.select_related("site"),
                                   subject_id=subject_id)
    check_site(request.user, "lock.manage", allocation.site)
    return _lock_page(request, allocation)


@requires("lock.manage")
@require_http_methods(["GET", "POST"])
def trial_lock(request: HttpRequest) -> HttpResponse:
    return _lock_page(request, None)
