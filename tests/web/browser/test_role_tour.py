"""A night shift's tour of TrialDesk, one role after another, in a real browser.

A simulated trial is seeded through the real services (demo mode, 8 patients ending
now, so some are still in follow-up with forms due). Each demo account signs in and
opens its home page, every page its navigation bar offers, a patient's casebook and a
SOFA form (or the SOFA calculator for roles that do not enter forms). Every page must
load (no 403, no 404, no 500), fit the navigation on one line at 1280 px and log no
error in the browser console. The ICU feed's integration account is no person: its
sign-in is refused with a message saying it works by API token only.

Screenshots: ``var/screenshots/review-<role>-<page>.png`` — look at them after a layout
change.
"""

from __future__ import annotations

import re

import pytest

from tests.web.browser.conftest import SCREENSHOTS
from trialdesk.clinical.timeutil import utcnow
from trialdesk.web.accounts.models import Role

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.django_db(transaction=True)

PATIENTS = 8
#: machine accounts: an API token, no password, no page
MACHINE_ROLES = {Role.INTEGRATION}
PEOPLE = [r for r in Role if r not in MACHINE_ROLES]


@pytest.fixture
def demo_trial(rumcess, settings):
    """The demo accounts (one per role) and a seeded trial; returns their passwords."""
    from trialdesk.web.demo import setup_demo
    from trialdesk.web.demo_seed import seed_trial

    settings.DEMO = True
    accounts = setup_demo(rumcess).credentials
    seed_trial(rumcess, patients=PATIENTS, seed=2013, today=utcnow())
    return accounts


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


class Tour:
    """One role's walk: opens pages, saves screenshots, collects what went wrong."""

    def __init__(self, page, base_url: str, role: str):
        self.page, self.base_url, self.role = page, base_url, role
        self.problems: list[str] = []
        self.opened: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(
            f"{role}: console error on {page.url}: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"{role}: script error {e}"))

    def open(self, path: str, name: str | None = None) -> None:
        response = self.page.goto(self.base_url + path)
        self.opened.append(path)
        if response is None or response.status != 200:
            status = response.status if response else "no response"
            self.problems.append(f"{self.role}: {path} → {status}")
        nav = self.page.locator("header.top nav")
        if nav.count() and nav.bounding_box()["height"] > 40:
            self.problems.append(f"{self.role}: the navigation wraps on {path}")
        shot = SCREENSHOTS / f"review-{self.role}-{name or _slug(path)}.png"
        self.page.screenshot(path=str(shot), full_page=True)

    def links(self, selector: str) -> list[str]:
        return [h for h in self.page.locator(selector).evaluate_all(
            "els => els.map(e => e.getAttribute('href'))") if h]


def _sign_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.top form.who")).to_contain_text(username)


@pytest.mark.parametrize("role", PEOPLE, ids=lambda r: r.value)
def test_each_role_finds_its_pages_working(role, browser, live_server, demo_trial):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    username = role.value.replace("_", "")
    try:
        _sign_in(page, live_server.url, username, demo_trial[username])
        tour = Tour(page, live_server.url, role.value)
        tour.open("/", "home")
        nav = [h for h in tour.links("header.top nav a") if h != "/"]
        for path in nav:
            if not path.startswith("/tools/") or path == "/tools/sofa":
                tour.open(path)
        if "/casebook/" in nav:
            tour.page.goto(live_server.url + "/casebook/")
            patients = tour.links('main a[href^="/casebook/"][href$="/"]')
            patients = [p for p in patients if p.count("/") == 3 and "/lab/" not in p
                        and "/deviations/" not in p]
            assert patients, f"{role.value}: no patient in the casebook list"
            tour.open(patients[-1], "patient-casebook")  # the oldest: forms recorded
            sofa_forms = tour.links('#schedule a[data-form="sofa"]')
            if sofa_forms:
                tour.open(sofa_forms[0], "sofa-form")
        assert not tour.problems, "\n".join(tour.problems)
    finally:
        context.close()


def test_the_integration_account_is_refused_at_the_sign_in(browser, live_server, demo_trial,
                                                           django_user_model):
    assert "integration" not in demo_trial  # the demo gives it a token, not a password
    feed = django_user_model.objects.get(username="integration")
    feed.set_password("a password someone set 1")  # even the right password is refused
    feed.save()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "integration")
        page.fill("#id_password", "a password someone set 1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("main")).to_contain_text(
            "system account for the ICU data feed")
        expect(page.locator("header.top form.who")).to_have_count(0)
        page.screenshot(path=str(SCREENSHOTS / "review-integration-refused.png"))
        page.goto(f"{live_server.url}/")
        assert "/accounts/login/" in page.url
    finally:
        context.close()
