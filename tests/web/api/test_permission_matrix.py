"""Who may call what: every page and every API route × every role × own/other site.

The expectation comes only from the permission table (``PERMISSIONS``) and site
scoping: a role may use a URL when the table gives it the URL's action, and — for a URL
naming a record (a screening, an allocation, a site in the body) — when it holds the
role at the record's site or trial-wide. Forbidden → 403 (anonymous: the login page
for pages, 401 for the API); allowed → never 401/403, never a server error. A list
(dashboard, API list) shows a site's records exactly to those allowed at that site.

``CALLS`` says how to call each URL and which action it needs. The URLs themselves are
found by walking the URL configuration: a URL missing from ``CALLS`` fails the test,
so every new page or route must be added here with its permission.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.web.conftest import eligible_record, make_screening, member
from trialdesk.web.accounts.models import Role
from trialdesk.web.accounts.permissions import PERMISSIONS
from trialdesk.web.api.api import api
from trialdesk.web.api.auth import PERMISSION_KEY
from trialdesk.web.api.services import create_token
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.screening.models import ScreeningStatus
from trialdesk.web.sites.models import Site

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]
SKIPPED_PREFIXES = ("admin/", "static/")  # the admin checks staff status itself

PUBLIC = None
SCREENING, ALLOCATION, SITE = "screening", "allocation", "site"
RECORD = "record"  # a patient's record other than the allocation (AE, query) in the URL
OWN, OTHER = "nrch", "other"  # site codes
TRIAL_WIDE = "trial-wide"  # a membership without a site


@dataclass(frozen=True)
class Target:
    """The records at one site that URLs can name."""

    site: str
    screening_id: int
    screening_number: str  # of the open screening
    subject_id: str
    form_id: str = "sofa"  # a daily form, for casebook URLs
    day: str = "0"  # a study day, for casebook URLs
    ae_id: int = 0  # an adverse event of the patient (also the data-management target)
    query_id: int = 0  # an open data query on that adverse event
    record: str = "safety.adverseevent"  # the data-management target's type
    prescreen_id: int = 0  # an ICU patient on the candidate board


def _consent_body(_: Target) -> dict[str, Any]:
    obtained = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    return {"consent_type": "patient", "document_version": "2.0", "obtained_at": obtained,
            "obtained_by": "Dr Petrova"}


def _ae_body(_: Target) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {"term": "Rash", "onset": (now - dt.timedelta(hours=2)).isoformat(),
            "awareness": (now - dt.timedelta(hours=1)).isoformat(), "severity_grade": 1}


def _report_body(_: Target) -> dict[str, Any]:
    return {"reported_at": dt.datetime.now(dt.UTC).isoformat()}


@dataclass(frozen=True)
class Call:
    """How to call one URL: method, the action it needs, what it names, a valid body."""

    method: str
    action: str | None
    names: str | None = None  # SCREENING / ALLOCATION in the URL, SITE in the body
    body: dict[str, Any] | Callable[[Target], dict[str, Any]] = field(default_factory=dict)
    lists: str | None = None  # the response lists SCREENINGS or ALLOCATIONS of many sites

    def data(self, target: Target) -> dict[str, Any]:
        return self.body(target) if callable(self.body) else self.body


#: URL name -> how to call it. API bodies are well-formed, so only permission can refuse.
CALLS: dict[str, Call] = {
    # pages
    "core:home": Call("GET", "trial.view"),
    "core:healthz": Call("GET", PUBLIC),
    "core:eligibility": Call("GET", "tools.use"),
    "core:sofa": Call("GET", "tools.use"),
    "core:dose": Call("GET", "tools.use"),
    "accounts:login": Call("GET", PUBLIC),
    "accounts:logout": Call("POST", PUBLIC),
    "screening:dashboard": Call("GET", "screening.view", lists=SCREENING),
    "screening:new": Call("GET", "screening.edit"),
    "screening:live_eligibility": Call("POST", "screening.edit"),
    "screening:detail": Call("GET", "screening.view", SCREENING),
    "screening:edit": Call("POST", "screening.edit", SCREENING),
    "screening:consent": Call("POST", "consent.record", SCREENING),
    "screening:randomize": Call("POST", "randomization.randomize", SCREENING,
                                {"request_id": "matrix"}),
    "screening:close": Call("POST", "screening.edit", SCREENING),
    "screening:audit": Call("GET", "audit.view", SCREENING),
    "randomization:lab_dashboard": Call("GET", "lab.dashboard", lists=ALLOCATION),
    "randomization:confirmation": Call("GET", "randomization.view", ALLOCATION),
    "casebook:index": Call("GET", "casebook.view", lists=ALLOCATION),
    "casebook:lab": Call("GET", "msc.record", lists=ALLOCATION),
    "casebook:deviations": Call("GET", "deviation.view"),
    "casebook:live_sofa": Call("POST", "casebook.edit"),
    "casebook:detail": Call("GET", "casebook.view", ALLOCATION),
    "casebook:form": Call("GET", "casebook.edit", ALLOCATION),
    "casebook:msc_product": Call("GET", "msc.record", ALLOCATION),
    "casebook:msc_infusion": Call("GET", "msc.record", ALLOCATION),
    "casebook:msc_not_given": Call("GET", "msc.record", ALLOCATION),
    "casebook:acknowledge": Call("POST", "deviation.acknowledge", ALLOCATION),
    "casebook:entered_in_error": Call("POST", "casebook.edit", ALLOCATION,
                                      {"reason": "matrix"}),
    "safety:dashboard": Call("GET", "safety.dashboard", lists=ALLOCATION),
    "safety:patient_events": Call("GET", "ae.view", ALLOCATION),
    "safety:new_event": Call("GET", "ae.report", ALLOCATION),
    "safety:event": Call("GET", "ae.view", RECORD),
    "safety:edit_event": Call("GET", "ae.report", RECORD),
    "safety:report_to_sponsor": Call("POST", "ae.report", RECORD),
    "safety:report_to_regulator": Call("POST", "safety.regulator_report", RECORD),
    "safety:entered_in_error": Call("POST", "ae.report", RECORD, {"reason": "matrix"}),
    "datamgmt:query_list": Call("GET", "query.raise", lists=ALLOCATION),
    "datamgmt:queries_to_answer": Call("GET", "query.answer", lists=ALLOCATION),
    "datamgmt:answer": Call("POST", "query.answer", RECORD, {"text": "matrix"}),
    "datamgmt:close": Call("POST", "query.close", RECORD, {"text": "matrix"}),
    "datamgmt:reopen": Call("POST", "query.close", RECORD, {"text": "matrix"}),
    "datamgmt:withdraw": Call("POST", "query.close", RECORD, {"text": "matrix"}),
    "datamgmt:record": Call("GET", "query.view", RECORD),
    "datamgmt:raise_query": Call("POST", "query.raise", RECORD, {"text": "matrix"}),
    "datamgmt:sdv": Call("POST", "sdv.mark", RECORD),
    "datamgmt:sign_record": Call("GET", "record.sign", RECORD),
    "datamgmt:sign_casebook": Call("GET", "record.sign", ALLOCATION),
    "datamgmt:patient_lock": Call("GET", "lock.manage", ALLOCATION),
    "datamgmt:trial_lock": Call("GET", "lock.manage"),
    "reports:index": Call("GET", "report.open"),
    "reports:generate_open": Call("POST", "report.open"),
    "reports:generate_closed": Call("POST", "report.closed"),
    "reports:open_html": Call("GET", "report.open"),
    "reports:open_pdf": Call("GET", "report.open"),
    "reports:closed_html": Call("GET", "report.closed"),
    "reports:closed_pdf": Call("GET", "report.closed"),
    "exports:index": Call("GET", "data.export"),
    "exports:odm": Call("GET", "data.export"),
    "exports:csv": Call("GET", "data.export"),
    "prescreen:board": Call("GET", "prescreen.view"),
    "prescreen:patient": Call("GET", "prescreen.view", RECORD),
    "prescreen:open_screening": Call("POST", "screening.edit", RECORD),
    # API documentation (no trial data)
    "api:openapi-json": Call("GET", PUBLIC),
    "api:openapi-view": Call("GET", PUBLIC),
    "api:api-root": Call("GET", PUBLIC),
    # API routes
    "api:screening_list": Call("GET", "screening.view", lists=SCREENING),
    "api:screening_create": Call("POST", "screening.edit", SITE,
                                 lambda t: {"site": t.site, "record": {}}),
    "api:screening_detail": Call("GET", "screening.view", SCREENING),
    "api:screening_update": Call("PUT", "screening.edit", SCREENING,
                                 {"record": {}, "reason": "matrix"}),
    "api:screening_consent": Call("POST", "consent.record", SCREENING, _consent_body),
    "api:screening_close": Call("POST", "screening.edit", SCREENING, {"reason_code": "other"}),
    "api:screening_randomize": Call("POST", "randomization.randomize", SCREENING,
                                    {"request_id": "matrix"}),
    "api:allocation_detail": Call("GET", "randomization.view", ALLOCATION),
    "api:ae_list": Call("GET", "ae.view", ALLOCATION),
    "api:ae_create": Call("POST", "ae.report", ALLOCATION, _ae_body),
    "api:ae_detail": Call("GET", "ae.view", RECORD),
    "api:ae_update": Call("PUT", "ae.report", RECORD,
                          lambda t: {**_ae_body(t), "reason": "matrix"}),
    "api:ae_sponsor_report": Call("POST", "ae.report", RECORD, _report_body),
    "api:ae_regulator_report": Call("POST", "safety.regulator_report", RECORD, _report_body),
    "api:ae_entered_in_error": Call("POST", "ae.report", RECORD, {"reason": "matrix"}),
    "api:safety_obligations": Call("GET", "safety.dashboard", lists=ALLOCATION),
    "api:query_list": Call("GET", "query.view", lists=ALLOCATION),
    "api:query_create": Call("POST", "query.raise", SITE,
                             lambda t: {"target": t.record, "object_id": t.ae_id,
                                        "text": "matrix"}),
    "api:query_detail": Call("GET", "query.view", RECORD),
    "api:query_answer": Call("POST", "query.answer", RECORD, {"text": "matrix"}),
    "api:query_close": Call("POST", "query.close", RECORD, {"text": "matrix"}),
    "api:query_reopen": Call("POST", "query.close", RECORD, {"text": "matrix"}),
    "api:query_withdraw": Call("POST", "query.close", RECORD, {"text": "matrix"}),
    "api:casebook_detail": Call("GET", "casebook.view", ALLOCATION),
    "api:casebook_form_save": Call("PUT", "casebook.edit", ALLOCATION,
                                   {"data": {}, "reason": "matrix"}),
    "api:casebook_msc_save": Call("PUT", "msc.record", ALLOCATION, {"data": {}}),
    "api:casebook_form_entered_in_error": Call("POST", "casebook.edit", ALLOCATION,
                                               {"reason": "matrix"}),
    "api:fhir_ingest": Call("POST", "prescreen.ingest", SITE, lambda t: {
        "resourceType": "Patient", "id": f"matrix-{t.site}",
        "managingOrganization": {"reference": f"Organization/{t.site}"}}),
}

#: URL parameter -> the record field that fills it
URL_PARAMETERS = {"pk": "screening_id", "screening_id": "screening_id",
                  "subject_id": "subject_id", "form_id": "form_id", "day": "day",
                  "ae_id": "ae_id", "query_id": "query_id", "target": "record",
                  "object_id": "ae_id", "prescreen_id": "prescreen_id"}


# --- the URL configuration ------------------------------------------------------------------


@dataclass(frozen=True)
class Url:
    name: str
    route: str
    parameters: tuple[str, ...]
    is_api_route: bool  # served by django-ninja behind a token


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = "") -> list[Url]:
    urls = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(SKIPPED_PREFIXES):
            continue
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            urls += _walk(entry, route, inner)
        elif isinstance(entry, URLPattern):
            converters = getattr(entry.pattern, "converters", {})
            urls.append(Url(f"{namespace}{entry.name}", route, tuple(converters),
                            getattr(entry.callback, "__module__", "").startswith("ninja")))
    return urls


def all_urls() -> dict[str, Url]:
    return {url.name: url for url in _walk(get_resolver())}


def test_every_url_is_in_the_matrix_and_every_entry_is_a_url():
    urls = all_urls()
    unnamed = [u.route for u in urls.values() if u.name.endswith("None")]
    assert not unnamed, f"unnamed URLs cannot be checked: {unnamed}"
    unknown = sorted(set(urls) - set(CALLS))
    assert not unknown, f"add these URLs to CALLS in {Path(__file__).name}: {unknown}"
    stale = sorted(set(CALLS) - set(urls))
    assert not stale, f"CALLS names URLs that no longer exist: {stale}"
    for name, url in urls.items():
        call = CALLS[name]
        assert call.action is PUBLIC or call.action in PERMISSIONS, name
        unknown_parameters = set(url.parameters) - set(URL_PARAMETERS)
        assert not unknown_parameters, f"{name}: no value for {unknown_parameters}"
        assert bool(url.parameters) == (call.names in (SCREENING, ALLOCATION, RECORD)), name


def test_every_api_route_declares_the_matrix_permission_in_its_schema():
    declared = {op["operationId"]: (method.upper(), op[PERMISSION_KEY])
                for ops in api.get_openapi_schema()["paths"].values()
                for method, op in ops.items()}
    in_matrix = {name.removeprefix("api:"): (call.method, call.action)
                 for name, call in CALLS.items() if name.startswith("api:") and call.action}
    assert declared == in_matrix


# --- the people and the records -------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    role: Role | None  # None: anonymous
    scope: str | None = None  # OWN or TRIAL_WIDE
    user: Any = None
    token: str | None = None

    def __str__(self) -> str:
        return f"{self.role.value}@{self.scope}" if self.role else "anonymous"


@pytest.fixture
def two_site_protocol(tmp_path, settings):
    """The running protocol: RUMCESS plus a second site, so both sites' pages work."""
    text = (ROOT / "protocols" / "rumcess.yaml").read_text(encoding="utf-8")
    nrch_entry = "    timezone: Europe/Moscow\n"
    assert text.count(nrch_entry) == 1
    path = tmp_path / "rumcess-two-sites.yaml"
    path.write_text(text.replace(nrch_entry, nrch_entry + "  - id: other\n"
                                 "    name: Other ICU, Berlin\n"
                                 "    timezone: Europe/Berlin\n"), encoding="utf-8")
    settings.TRIALDESK_PROTOCOL = path
    return path


def _allocation(site: Site, user: Any, number: int) -> Allocation:
    screening = make_screening(site, user, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
    screening.status = ScreeningStatus.RANDOMIZED
    screening.save()
    return Allocation.objects.create(
        subject_id=f"RUMCESS-{site.code.upper()}-{number:03d}", screening=screening, site=site,
        arm="msc", stratum="neutropenia_cause=post_chemotherapy",
        levels={"neutropenia_cause": "post_chemotherapy"}, request_id=f"seed-{site.code}",
        randomized_by=user, randomized_at=dt.datetime.now(dt.UTC), protocol_id="rumcess",
        protocol_version="1.0", protocol_sha256="0" * 64, method="block")


def _safety_records(allocation: Allocation, user: Any) -> tuple[int, int]:
    """A serious adverse event still due for reporting, and an open query on it."""
    from trialdesk.web.datamgmt.models import Query
    from trialdesk.web.safety.models import AdverseEvent

    now = dt.datetime.now(dt.UTC)
    ae = AdverseEvent.objects.create(
        allocation=allocation, term="Hypotension during infusion", onset_at=now
        - dt.timedelta(hours=3), awareness_at=now - dt.timedelta(hours=2),
        seriousness=["life_threatening"], severity_grade=4, causality="unrelated",
        expectedness="expected", outcome="recovering", serious=True, created_by=user)
    query = Query.objects.create(allocation=allocation, content_type=ContentType.objects
                                 .get_for_model(AdverseEvent), object_id=ae.pk,
                                 raised_by=user, raised_at=now, updated_at=now)
    return ae.pk, query.pk


def _prescreen_patient(site: Site) -> Any:
    """An ICU patient of the site on the candidate board."""
    from trialdesk.web.prescreen.models import PrescreenPatient

    onset = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    return PrescreenPatient.objects.create(patient_id=f"icu-{site.code}", site=site,
                                           status="candidate", onset_utc=onset,
                                           deadline_utc=onset + dt.timedelta(hours=10))


@pytest.fixture
def world(two_site_protocol, nrch, django_user_model):
    """Records at the own site (NRCH) and at another site; a user per role and scope."""
    other = Site.objects.create(code=OTHER, name="Other ICU, Berlin", timezone="Europe/Berlin")
    author = django_user_model.objects.create_user("author")
    targets = {}
    for number, site in enumerate((nrch, other), start=1):
        screening = make_screening(site, author, eligible_record(
            dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
        allocation = _allocation(site, author, number)
        ae_id, query_id = _safety_records(allocation, author)
        targets[site.code] = Target(site.code, screening.pk, screening.screening_number,
                                    allocation.subject_id, ae_id=ae_id, query_id=query_id,
                                    prescreen_id=_prescreen_patient(site).pk)
    principals = [Principal(None)]
    for role in Role:
        for scope, site in ((OWN, nrch), (TRIAL_WIDE, None)):
            user = member(django_user_model.objects.create_user(f"{role.value}-{scope}"),
                          role.value, site)
            principals.append(Principal(role, scope, user, create_token(user, "matrix")[1]))
    return targets, principals


# --- the matrix -----------------------------------------------------------------------------


def holds(who: Principal, action: str, site: str) -> bool:
    """What the permission table and site scoping say, independently of the code."""
    return who.role in PERMISSIONS[action] and who.scope in (TRIAL_WIDE, site)


def expected_allowed(call: Call, who: Principal, target: Target) -> bool:
    if call.action is PUBLIC:
        return True
    if who.role is None or who.role not in PERMISSIONS[call.action]:
        return False
    return call.names is None or holds(who, call.action, target.site)


def listing_problems(call: Call, who: Principal, targets: dict[str, Target],
                     response) -> list[str]:
    """A list shows each site's record exactly when the user may see that site."""
    content = response.content.decode()
    problems = []
    for site, target in targets.items():
        shown = (target.screening_number if call.lists == SCREENING
                 else target.subject_id) in content
        if shown != holds(who, call.action, site):
            problems.append(f"the {site} {call.lists} is {'' if shown else 'not '}listed")
    return problems


def request(url: Url, call: Call, who: Principal, target: Target):
    """One request, rolled back afterwards so no call changes what the next one sees."""
    kwargs = {p: getattr(target, URL_PARAMETERS[p]) for p in url.parameters}
    path = reverse(url.name, kwargs=kwargs)
    with transaction.atomic():
        headers = {"Authorization": f"Bearer {who.token}"} if url.is_api_route and who.token \
            else {}
        client = Client(HTTP_HOST="localhost", headers=headers)
        if who.user is not None and not url.is_api_route:
            client.force_login(who.user)
        data = call.data(target)
        if url.is_api_route:
            response = client.generic(call.method, path, data=json.dumps(data),
                                      content_type="application/json")
        elif call.method == "GET":
            response = client.get(path, data)
        else:
            response = client.post(path, data)
        transaction.set_rollback(True)
    return path, response


def verdict(url: Url, call: Call, who: Principal, allowed: bool, response) -> str | None:
    """None when the response matches the expectation, else what went wrong."""
    status = response.status_code
    login = resolve_url(django_settings.LOGIN_URL)
    to_login = status == 302 and response["Location"].startswith(login)
    if allowed:
        if status in (401, 403) or status >= 500 or (to_login and call.action is not PUBLIC):
            return f"expected access, got {status}"
        return None
    if who.role is None:
        wanted = 401 if url.is_api_route else "302 to the login page"
        ok = status == 401 if url.is_api_route else to_login
        return None if ok else f"anonymous: expected {wanted}, got {status}"
    return None if status == 403 else f"expected 403, got {status}"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_access_follows_the_permission_table_and_the_site(name, world):
    targets, principals = world
    url = all_urls()[name]
    call = CALLS[name]
    sites = (OWN, OTHER) if call.names else (OWN,)
    failures = []
    for who in principals:
        for site in sites:
            allowed = expected_allowed(call, who, targets[site])
            path, response = request(url, call, who, targets[site])
            problems = [verdict(url, call, who, allowed, response)]
            if allowed and call.lists:
                problems += listing_problems(call, who, targets, response)
            failures += [f"{call.method} {path} as {who} (record at {site}): {problem}"
                         for problem in problems if problem]
    assert not failures, "\n".join(failures)
