"""The top navigation shows each role the pages it may open, and only those.

For every role, the home page is rendered as a user holding just that role; every link
in its ``<nav>`` is then opened as that user and must load (no 403, no 404, no 500), and
the main page of every permission the role holds (below, written out by hand from the
URL layout) must be among the links. So the lab no longer sees Safety, and the DMC
finds its reports. The ICU feed's integration account is no person: it has no page at
all (and cannot sign in, tests/web/accounts/test_roles.py).
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.web.conftest import member
from trialdesk.web.accounts.models import Role
from trialdesk.web.accounts.permissions import PERMISSIONS

pytestmark = pytest.mark.django_db

#: roles held at one site (the others are trial-wide), as the demo accounts hold them
SITE_ROLES = {Role.INVESTIGATOR, Role.COORDINATOR, Role.LAB, Role.INTEGRATION}
#: the machine account of the ICU data feed: API only, no page
MACHINE_ROLES = {Role.INTEGRATION}
PEOPLE = [r for r in Role if r not in MACHINE_ROLES]

#: the page a holder of the permission starts from
MAIN_PAGE = {
    "trial.view": "/",
    "tools.use": "/tools/sofa",
    "prescreen.view": "/candidates/",
    "screening.view": "/screening/",
    "lab.dashboard": "/allocation/lab/",
    "casebook.view": "/casebook/",
    "msc.record": "/casebook/lab/",
    "deviation.view": "/casebook/deviations/",
    "safety.dashboard": "/safety/",
    "query.raise": "/data/queries/",
    "query.answer": "/data/queries/to-answer/",
    "lock.manage": "/data/lock/",
    "report.open": "/reports/",
    "report.closed": "/reports/",
    "data.export": "/exports/",
}

#: permissions used from a record's own page (or outside the web pages): no nav link
WITHOUT_PAGE = {
    "screening.edit": "'New screening' on the screening dashboard",
    "consent.record": "a screening's page",
    "randomization.randomize": "a screening's page",
    "randomization.view": "a patient's allocation confirmation",
    "casebook.edit": "the forms of a casebook",
    "deviation.acknowledge": "a casebook's deviations",
    "audit.view": "a screening's audit trail",
    "randlist.manage": "the command line (trialdesk randlist)",
    "ae.view": "a patient's adverse events",
    "ae.report": "a patient's adverse events",
    "safety.regulator_report": "an adverse event's page",
    "query.view": "a record's queries",
    "query.close": "a query's thread",
    "sdv.mark": "a record's page",
    "record.sign": "a record's or casebook's page",
    "prescreen.ingest": "the API (the ICU data feed)",
}

TOOLS = {"/tools/eligibility", "/tools/sofa", "/tools/dose"}


def _nav_links(html: str) -> list[str]:
    nav = re.search(r"<nav>(.*?)</nav>", html, re.S)
    assert nav, "no <nav> on the page"
    return re.findall(r'href="([^"]+)"', nav.group(1))


@pytest.fixture
def as_role(django_user_model, nrch):
    def login(role: Role) -> Client:
        user = django_user_model.objects.create_user(f"nav-{role.value}",
                                                     password="correct horse battery 1")
        member(user, role.value, nrch if role in SITE_ROLES else None)
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        return client

    return login


def test_every_permission_is_either_a_nav_page_or_used_from_a_record():
    assert not set(MAIN_PAGE) & set(WITHOUT_PAGE)
    assert set(MAIN_PAGE) | set(WITHOUT_PAGE) == set(PERMISSIONS), (
        "a new permission: add its main page to MAIN_PAGE (and a nav link) or say where "
        "it is used in WITHOUT_PAGE")


@pytest.mark.parametrize("role", PEOPLE, ids=lambda r: r.value)
def test_nav_links_open_and_cover_the_roles_permissions(role, as_role):
    client = as_role(role)
    home = client.get("/")
    assert home.status_code == 200
    links = _nav_links(home.content.decode())
    assert len(links) == len(set(links)), f"{role}: a page linked twice: {links}"
    for href in links:
        response = client.get(href)
        assert response.status_code == 200, f"{role.value}: {href} → {response.status_code}"
    held = [action for action, roles in PERMISSIONS.items() if role in roles]
    for action in held:
        if action in MAIN_PAGE:
            assert MAIN_PAGE[action] in links, f"{role.value} holds {action}: no link to " \
                                               f"{MAIN_PAGE[action]}"
    assert TOOLS <= set(links), "the bedside calculators are under Tools for everyone"


def test_the_lab_sees_its_pages_and_not_safety_or_queries(as_role):
    links = _nav_links(as_role(Role.LAB).get("/").content.decode())
    assert {"/allocation/lab/", "/casebook/lab/", "/casebook/"} <= set(links)
    assert not {"/safety/", "/data/queries/", "/candidates/", "/reports/"} & set(links)


def test_the_dmc_sees_reports_and_no_patient_pages(as_role):
    links = _nav_links(as_role(Role.DMC).get("/").content.decode())
    assert "/reports/" in links
    assert not {"/screening/", "/casebook/", "/safety/", "/candidates/"} & set(links)


def test_the_sponsor_sees_safety_deviations_and_reports_and_no_data_entry(as_role):
    links = _nav_links(as_role(Role.SPONSOR).get("/").content.decode())
    assert {"/safety/", "/casebook/deviations/", "/reports/"} <= set(links)
    assert not {"/screening/", "/casebook/", "/candidates/", "/data/queries/",
                "/data/queries/to-answer/", "/allocation/lab/"} & set(links)


def test_the_integration_account_has_no_page_even_with_a_session(as_role):
    """Should a session exist (the sign-in refuses it), every page is still refused."""
    client = as_role(Role.INTEGRATION)
    for path in ["/", *MAIN_PAGE.values()]:
        assert client.get(path).status_code == 403, path


def test_signed_out_visitors_see_no_links():
    page = Client(HTTP_HOST="localhost").get("/accounts/login/")
    assert page.status_code == 200
    assert _nav_links(page.content.decode()) == []
