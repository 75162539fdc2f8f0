"""Casebook pages: patients, a patient's casebook (schedule grid, SOFA per day,
deviations), form entry with live SOFA, the lab's MSC product and infusion pages, and
the deviations list. Every rule is the domain core's; saving is services.save_form."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from trialdesk.clinical.timeutil import format_local, parse_aware, site_zone, utcnow
from trialdesk.crf.checks import sofa_for
from trialdesk.crf.forms import (
    FORMS,
    MSC_NOT_GIVEN_REASONS,
    SOFA,
    FieldKind,
    FormDefinition,
    display_unit,
    parse_entry,
)
from trialdesk.crf.schedule import SlotStatus, day_date, is_unscheduled
from trialdesk.errors import EditCheckFailed, TrialError
from trialdesk.web.accounts.models import Membership
from trialdesk.web.accounts.permissions import (
    PERMISSIONS,
    check_site,
    has_permission,
    requires,
    sites_for,
)
from trialdesk.web.casebook.matrix import SORTS, MatrixRow, subject_matrix
from trialdesk.web.casebook.models import Deviation, DeviationStatus, FormRecord
from trialdesk.web.casebook.services import (
    MSC_DAYS,
    MSC_FORMS,
    acknowledge_deviation,
    casebook,
    is_lab_form,
    mark_form_entered_in_error,
    save_form,
)
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.randomization.models import Allocation


def _allocation(request: HttpRequest, subject_id: str, action: str) -> Allocation:
    allocation = get_object_or_404(Allocation.objects.select_related("site", "screening"),
                                   subject_id=subject_id)
    check_site(request.user, action, allocation.site)
    return allocation


def _day_param(day: str) -> int | None:
    if day == "once":
        return None
    if not day.isdigit():
        raise Http404(f"'{day}' is not a study day.")
    return int(day)


def _day_url(day: int | None) -> str:
    return "once" if day is None else str(day)


# --- the patient list and the casebook --------------------------------------------------


@requires("casebook.view")
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The subject matrix: every patient's casebook status at the user's sites
    (:mod:`trialdesk.web.casebook.matrix`), filtered, sorted by overdue forms, 50 a page."""
    protocol = current_protocol()
    sites = list(sites_for(request.user, "casebook.view"))
    allocations = Allocation.objects.filter(site__in=sites)
    site = request.GET.get("site", "")
    if site:
        allocations = allocations.filter(site__code=site)
    search = request.GET.get("q", "").strip()
    if search:
        allocations = allocations.filter(subject_id__icontains=search)
    attention = request.GET.get("attention") == "1"
    sort = request.GET.get("sort", "overdue")
    sort = sort if sort in SORTS else "overdue"
    try:
        page_number = int(request.GET.get("page", "1"))
    except ValueError:
        page_number = 1
    matrix = subject_matrix(protocol, allocations, needs_attention=attention, sort=sort,
                            page=page_number)
    may = _may_by_site(request.user, ("query.raise", "query.answer", "deviation.view",
                                      "lock.manage"))
    filters = {"site": site, "q": search, "attention": "1" if attention else "",
               "sort": sort}
    return render(request, "casebook/index.html", {
        "m": matrix, "rows": [{"r": r, "links": _matrix_links(r, may)} for r in matrix.rows],
        "sites": sites, "filters": filters,
        "sort_urls": [(key, "?" + _page_query({**filters, "sort": key}, 1)) for key in SORTS],
        "prev_url": "?" + _page_query(filters, matrix.page - 1) if matrix.page > 1 else None,
        "next_url": "?" + _page_query(filters, matrix.page + 1)
        if matrix.page < matrix.pages else None,
    })


def _page_query(filters: dict[str, str], page: int) -> str:
    return urlencode({**{k: v for k, v in filters.items() if v}, "page": page})


def _may_by_site(user: Any, actions: tuple[str, ...]) -> dict[int | None, set[str]]:
    """Actions the user may take at each site, from one read of their memberships (the
    same rule as ``has_permission``: a trial-wide role counts at every site). Key None
    holds what trial-wide roles allow."""
    memberships = list(Membership.objects.filter(user=user, active=True)
                       .values_list("role", "site_id"))
    allowed: dict[int | None, set[str]] = defaultdict(set)
    for role, site_id in memberships:
        for action in actions:
            if role in PERMISSIONS[action]:
                allowed[site_id].add(action)
    return allowed


def _matrix_links(row: MatrixRow, may: dict[int | None, set[str]]) -> dict[str, str | None]:
    """Where each count of a row is acted on, when the user's role there allows it."""
    a = row.allocation
    actions = may.get(a.site_id, set()) | may.get(None, set())
    book = reverse("casebook:detail", args=[a.subject_id])
    subject = urlencode({"subject": a.subject_id})
    if "query.raise" in actions:
        queries = reverse("datamgmt:query_list") + "?" + subject
        answered = queries + "&state=answered"
    elif "query.answer" in actions:
        queries, answered = reverse("datamgmt:queries_to_answer") + "?" + subject, None
    else:
        queries = answered = None
    return {
        "book": book, "schedule": book + "#schedule", "forms": book + "#recorded-forms",
        "sofa": book + "#sofa-row", "queries": queries, "answered": answered,
        "deviations": reverse("casebook:deviations") + "?" + subject
        if "deviation.view" in actions else None,
        "lock": reverse("datamgmt:patient_lock", args=[a.subject_id])
        if "lock.manage" in actions else None,
    }


@requires("casebook.view")
@require_GET
def detail(request: HttpRequest, subject_id: str) -> HttpResponse:
    protocol = current_protocol()
    allocation = _allocation(request, subject_id, "casebook.view")
    book = casebook(protocol, allocation)
    site = allocation.site
    can_edit = has_permission(request.user, "casebook.edit", site)
    can_msc = has_permission(request.user, "msc.record", site)
    grid = []
    for form_id, label in book.schedule.forms:
        cells = []
        for day in book.schedule.days:
            slot = book.schedule.slot(form_id, day)
            href = None
            if slot is not None and (can_msc if is_lab_form(form_id) else can_edit):
                href = _form_href(allocation, form_id, day)
            cells.append({"slot": slot, "href": href})
        grid.append({"form": form_id, "label": label, "cells": cells})
    other_arms = {u.form for u in protocol.schedule.unscheduled
                  if u.arms and allocation.arm not in u.arms}
    unscheduled = [{"slot": s, "href": _form_href(allocation, s.form, None)
                    if (can_msc if is_lab_form(s.form) else can_edit)
                    and s.form not in other_arms else None}
                   for s in book.schedule.unscheduled]
    sofa_row = [book.sofa_by_day.get(day) for day in book.schedule.days]
    records = sorted(book.records.values(), key=lambda r: (r.day is None, r.day or 0,
                                                           r.form_id))
    retired = allocation.form_records.entered_in_error().select_related("entered_by")
    show_in_error = request.GET.get("show") == SHOW_IN_ERROR
    if show_in_error:  # the 'show entered in error' view: the retired forms instead
        records = sorted(retired, key=lambda r: (r.day is None, r.day or 0, r.form_id,
                                                 r.pk))
    recorded = [{"r": r, "label": FORMS[r.form_id].label if r.form_id in FORMS else r.form_id,
                 "values": recorded_values(r.form_id, r.data, site.timezone)}
                for r in records]
    onset = allocation.screening.onset_utc
    return render(request, "casebook/detail.html", {
        "a": allocation, "book": book, "grid": grid, "days": book.schedule.days,
        "sofa_row": sofa_row, "unscheduled": unscheduled, "records": recorded,
        "arm": protocol.arm(allocation.arm) if allocation.arm in protocol.arm_ids else None,
        "randomized_local": format_local(allocation.randomized_at, site.timezone),
        "onset_local": format_local(onset, site.timezone) if onset else None,
        "counts": {status.value: book.schedule.count(status) for status in SlotStatus},
        "can_ack": has_permission(request.user, "deviation.acknowledge", site),
        "can_view_deviations": has_permission(request.user, "deviation.view", site),
        "can_review": has_permission(request.user, "query.view", site),
        "show_in_error": show_in_error, "in_error_count": len(retired),
    })


#: query string of the casebook page that lists the forms entered in error
SHOW_IN_ERROR = "entered_in_error"


def recorded_values(form_id: str, data: dict[str, Any], zone: str) -> list[dict[str, str]]:
    """A saved form as a person reads it: label, value with its unit, times in site time.

    Numbers carry the field's canonical unit (or the unit they were entered in); choices
    show their label; date-times show the site's clock with its offset. Keys the form does
    not define (older data) are shown as stored, under their id.
    """
    definition = FORMS.get(form_id)
    known = {f.id: f for f in definition.fields} if definition else {}
    rows = []
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            rows.append({"id": key, "label": key, "value": str(value)})
            continue
        if isinstance(value, dict) and "value" in value:
            text = f"{_number_text(value['value'])} {display_unit(value.get('unit'))}"
        elif f.kind in (FieldKind.NUMBER, FieldKind.INTEGER) and not isinstance(value, str):
            text = f"{_number_text(value)} {f.unit_display}"
        elif f.kind is FieldKind.DATETIME:
            try:
                text = format_local(parse_aware(value, field=key), zone)
            except TrialError:
                text = str(value)
        elif f.kind is FieldKind.CHOICE:
            text = dict(f.choices).get(value, str(value))
        elif f.kind is FieldKind.BOOLEAN:
            text = "yes" if value else "no"
        else:
            text = str(value)
        rows.append({"id": key, "label": f.label, "value": text.strip()})
    order = list(known)
    return sorted(rows, key=lambda r: order.index(r["id"]) if r["id"] in order else len(order))


def _form_href(allocation: Allocation, form_id: str, day: int | None) -> str:
    if form_id == "msc_product":
        return reverse("casebook:msc_product", args=[allocation.subject_id])
    if form_id == "msc_infusion":
        return reverse("casebook:msc_infusion", args=[allocation.subject_id])
    if form_id == "msc_not_given":
        return reverse("casebook:msc_not_given", args=[allocation.subject_id])
    return reverse("casebook:form", args=[allocation.subject_id, form_id, _day_url(day)])


# --- form entry ------------------------------------------------------------------------------


def _local_input(value: str, zone: str) -> str:
    try:
        return parse_aware(value, field="t").astimezone(site_zone(zone)).strftime(
            "%Y-%m-%dT%H:%M")
    except TrialError:
        return str(value)


def raw_from_data(definition: FormDefinition, data: dict[str, Any], zone: str
                  ) -> dict[str, str]:
    """Saved data as the text the page's inputs show (times in site time)."""
    raw: dict[str, str] = {}
    for f in definition.fields:
        value = data.get(f.id)
        if value is None:
            continue
        if isinstance(value, dict):
            raw[f.id] = _number_text(value.get("value", ""))
            raw[f"{f.id}__unit"] = str(value.get("unit", ""))
        elif f.kind is FieldKind.DATETIME:
            raw[f.id] = _local_input(value, zone)
        elif f.kind is FieldKind.BOOLEAN:
            raw[f.id] = "on" if value else ""
        else:
            raw[f.id] = _number_text(value)
    return raw


def _number_text(value: Any) -> str:
    """A stored value as typed back into an input, without losing digits (7e7 → 70000000)."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


_INPUT_TYPES = {FieldKind.DATETIME: "datetime-local", FieldKind.DATE: "date",
                FieldKind.NUMBER: "text", FieldKind.INTEGER: "text", FieldKind.TEXT: "text"}


def _fields(definition: FormDefinition, raw: dict[str, str],
            problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for f in definition.fields:
        mine = [p for p in problems if p.get("field") == f.id]
        rows.append({"f": f, "id": f.id, "value": raw.get(f.id, ""),
                     "unit_value": raw.get(f"{f.id}__unit", f.unit or ""),
                     "input_type": _INPUT_TYPES.get(f.kind, "text"),
                     "errors": [p for p in mine if p["severity"] == "error"],
                     "warnings": [p for p in mine if p["severity"] == "warning"]})
    return rows


def _form_page(request: HttpRequest, allocation: Allocation, form_id: str, day: int | None,
               action_url: str) -> HttpResponse:
    protocol = current_protocol()
    definition = FORMS.get(form_id)
    if definition is None:
        raise Http404(f"No form '{form_id}'.")
    zone = allocation.site.timezone
    record = FormRecord.objects.active().filter(allocation=allocation, form_id=form_id,
                                                day=day).first()
    problems: list[dict[str, Any]] = []
    error: TrialError | None = None
    status = 200
    if request.method == "POST":
        raw = {k: request.POST.get(k, "") for k in request.POST}
        data, parse_problems = parse_entry(definition, raw, zone)
        if parse_problems:
            problems = [p.to_dict() for p in parse_problems]
            error = EditCheckFailed("Not saved: " + " ".join(p.message for p in parse_problems),
                                    problems=problems)
        else:
            try:
                outcome = save_form(protocol, allocation, form_id, day, data,
                                    user=request.user, reason=request.POST.get("reason", ""),
                                    confirm=request.POST.getlist("confirm"))
            except TrialError as exc:
                error = exc
                problems = list(getattr(exc, "problems", []))
            else:
                messages.success(request, "Saved." if outcome.changed else "No change.")
                return redirect(action_url)
        status = 400
    else:
        raw = raw_from_data(definition, record.data, zone) if record else {}
    sofa = None
    if form_id == "sofa" and record is not None and request.method != "POST":
        sofa = record.derived.get("sofa")
    date = day_date(day, allocation.randomized_at, zone) if day is not None else None
    return render(request, "casebook/form.html", {
        "a": allocation, "definition": definition, "day": day, "date": date,
        "record": record, "fields": _fields(definition, raw, problems), "error": error,
        "warnings": [p for p in problems if p["severity"] == "warning"],
        "errors": [p for p in problems if p["severity"] == "error"],
        "action_url": action_url, "sofa": sofa, "raw": raw,
        "reason": request.POST.get("reason", "") if request.method == "POST" else "",
        "confirmed": set(request.POST.getlist("confirm")) if request.method == "POST" else set(),
        "deviations": (allocation.deviations.exclude(status=DeviationStatus.RESOLVED)
                       if is_lab_form(form_id) else []),
        "spec": protocol.intervention,
        "deadline_local": _deadline_local(allocation, protocol),
        "can_review": has_permission(request.user, "query.view", allocation.site),
        "in_error_url": reverse("casebook:entered_in_error", args=[
            allocation.subject_id, form_id, _day_url(day)]) if record is not None
        and has_permission(request.user, "casebook.edit", allocation.site) else None,
    }, status=status)


def _deadline_local(allocation: Allocation, protocol) -> str | None:
    onset = allocation.screening.onset_utc
    if onset is None:
        return None
    deadline = onset + dt.timedelta(hours=protocol.intervention.deadline_hours_after_onset)
    return format_local(deadline, allocation.site.timezone)


@requires("casebook.edit")
@require_http_methods(["GET", "POST"])
def form_entry(request: HttpRequest, subject_id: str, form_id: str, day: str) -> HttpResponse:
    """A daily form (ICU staff). MSC forms are recorded by the lab on their own pages."""
    allocation = _allocation(request, subject_id, "casebook.edit")
    if is_lab_form(form_id):
        raise Http404("MSC product and infusion are recorded by the cell-therapy lab.")
    study_day = _day_param(day)
    if study_day is None and not is_unscheduled(current_protocol(), form_id):
        raise Http404(f"{form_id} is recorded per study day.")
    return _form_page(request, allocation, form_id, study_day,
                      reverse("casebook:form", args=[subject_id, form_id, day]))


@requires("msc.record")
@require_http_methods(["GET", "POST"])
def msc_product(request: HttpRequest, subject_id: str) -> HttpResponse:
    allocation = _allocation(request, subject_id, "msc.record")
    return _form_page(request, allocation, "msc_product", None,
                      reverse("casebook:msc_product", args=[subject_id]))


@requires("msc.record")
@require_http_methods(["GET", "POST"])
def msc_infusion(request: HttpRequest, subject_id: str) -> HttpResponse:
    allocation = _allocation(request, subject_id, "msc.record")
    return _form_page(request, allocation, "msc_infusion", 0,
                      reverse("casebook:msc_infusion", args=[subject_id]))


@requires("msc.record")
@require_http_methods(["GET", "POST"])
def msc_not_given(request: HttpRequest, subject_id: str) -> HttpResponse:
    """The MSC dose will not be given (reason); recorded once per patient, by the lab."""
    allocation = _allocation(request, subject_id, "msc.record")
    return _form_page(request, allocation, "msc_not_given", None,
                      reverse("casebook:msc_not_given", args=[subject_id]))


@requires("casebook.edit")
@require_POST
def live_sofa(request: HttpRequest) -> HttpResponse:
    """htmx: SOFA for the values currently typed (nothing saved), by the clinical core."""
    sites = list(sites_for(request.user, "casebook.edit"))
    zone = sites[0].timezone if sites else current_protocol().sites[0].timezone
    data, problems = parse_entry(SOFA, {k: request.POST.get(k, "") for k in request.POST},
                                 zone)
    result = error = None
    if problems:
        error = problems[0]
    else:
        try:
            result = sofa_for(data)
        except TrialError as exc:
            error = exc
    return render(request, "casebook/_sofa_live.html", {"result": result, "error": error})


@requires("casebook.edit")
@require_POST
def entered_in_error(request: HttpRequest, subject_id: str, form_id: str,
                     day: str) -> HttpResponse:
    """Mark the saved form entered in error (reason required); refused under a lock.

    Investigators and coordinators do it for every form, the lab's MSC forms included.
    """
    allocation = _allocation(request, subject_id, "casebook.edit")
    study_day = _day_param(day)
    try:
        record = mark_form_entered_in_error(current_protocol(), allocation, form_id,
                                            study_day, request.user,
                                            reason=request.POST.get("reason", ""))
    except TrialError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
    else:
        messages.success(request, f"{record} marked entered in error; it is kept in the "
                         "audit trail and under 'entered in error'.")
    return redirect("casebook:detail", subject_id=subject_id)


# --- the lab and the deviations -------------------------------------------------------------


@requires("msc.record")
@require_GET
def lab(request: HttpRequest) -> HttpResponse:
    """MSC-arm patients at the lab's sites: product released? infusion given, on time?"""
    protocol = current_protocol()
    spec = protocol.intervention
    allocations = (Allocation.objects.select_related("site", "screening")
                   .filter(site__in=sites_for(request.user, "msc.record"), arm=spec.arm)
                   .order_by("-randomized_at"))
    records = {(r.allocation_id, r.form_id): r for r in FormRecord.objects.active().filter(
        allocation__in=allocations, form_id__in=MSC_FORMS) if r.day == MSC_DAYS[r.form_id]}
    now = utcnow()
    rows = []
    for a in allocations[:500]:
        onset = a.screening.onset_utc
        deadline = onset + dt.timedelta(hours=spec.deadline_hours_after_onset) if onset else None
        product, infusion = records.get((a.pk, "msc_product")), records.get((a.pk,
                                                                             "msc_infusion"))
        not_given = records.get((a.pk, "msc_not_given"))
        rows.append({
            "a": a, "deadline_local": format_local(deadline, a.site.timezone) if deadline
            else "onset unknown",
            "left_h": (deadline - now).total_seconds() / 3600
            if deadline and not infusion and not not_given else None,
            "not_given": dict(MSC_NOT_GIVEN_REASONS).get(not_given.data.get("reason"))
            if not_given else None,
            "product": product, "released": product.derived.get("release", {}).get("released")
            if product else None,
            "infusion": infusion, "late": infusion.derived.get("late") if infusion else None,
            "hours": infusion.derived.get("hours_after_onset") if infusion else None,
            "dose": (infusion.derived.get("dose") or {}) if infusion else {},
        })
    return render(request, "casebook/lab.html", {"rows": rows, "spec": spec})


@requires("deviation.view")
@require_GET
def deviations(request: HttpRequest) -> HttpResponse:
    shown = (Deviation.objects.select_related("allocation", "allocation__site",
                                              "acknowledged_by")
             .filter(allocation__site__in=sites_for(request.user, "deviation.view")))
    status = request.GET.get("status", "open")
    if status in DeviationStatus.values:
        shown = shown.filter(status=status)
    subject = request.GET.get("subject", "").strip()  # the subject matrix links here
    if subject:
        shown = shown.filter(allocation__subject_id=subject)
    return render(request, "casebook/deviations.html", {
        "deviations": shown[:500], "status": status, "statuses": DeviationStatus.choices,
        "subject": subject})


@requires("deviation.acknowledge")
@require_POST
def acknowledge(request: HttpRequest, subject_id: str) -> HttpResponse:
    allocation = _allocation(request, subject_id, "deviation.acknowledge")
    deviation = Deviation.objects.filter(allocation=allocation,
                                         pk=request.POST.get("deviation") or 0).first()
    if deviation is None:
        messages.error(request, "Choose a deviation of this patient to acknowledge.")
        return redirect("casebook:detail", subject_id=subject_id)
    try:
        acknowledge_deviation(deviation, request.user, comment=request.POST.get("comment", ""))
    except TrialError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
    else:
        messages.success(request, f"{deviation.code} acknowledged.")
    return redirect("casebook:detail", subject_id=subject_id)
