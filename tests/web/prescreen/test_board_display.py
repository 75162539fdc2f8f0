"""The board's rows are prepared in Python (board_display.py) for speed; what they show
must stay what the template showed: escaped text, the same links, a working form."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.web.conftest import member
from trialdesk.web.prescreen.board_display import criteria_html, url_maker
from trialdesk.web.prescreen.models import PrescreenPatient
from trialdesk.web.screening.models import Screening

pytestmark = pytest.mark.django_db


def test_criteria_text_is_escaped_and_status_words_read_as_pass_fail():
    html = criteria_html([
        {"status": "met", "label": "I4: Patients ≥17 years", "reason": "age 56 <b>&"},
        {"status": "not_met", "label": "E3: Age > 75 years", "reason": 'age 80 "x"'},
        {"status": "unknown", "label": "I3", "reason": "no count"}], "Europe/Moscow")
    assert html == (
        '<li><span class="status-met" title="met">✓ passes</span> '
        "<strong>I4: Patients ≥17 years</strong> — age 56 &lt;b&gt;&amp;</li>"
        '<li><span class="status-not_met" title="not_met">✗ fails</span> '
        "<strong>E3: Age &gt; 75 years</strong> — age 80 &quot;x&quot;</li>"
        '<li><span class="status-unknown" title="unknown">? data missing</span> '
        "<strong>I3</strong> — no count</li>")


def test_links_are_the_reversed_urls():
    for name in ("prescreen:patient", "prescreen:open_screening", "screening:detail"):
        for pk in (1, 17, 123456):
            assert url_maker(name)(pk) == reverse(name, args=[pk])


def test_the_open_screening_form_of_a_row_works_with_its_csrf_field(
        feed, shock, alice, nrch):
    member(alice, "coordinator", nrch)
    browser = Client(HTTP_HOST="localhost", enforce_csrf_checks=True)
    browser.force_login(alice)
    for resource in shock.all():
        feed.post(resource)
    html = browser.get("/candidates/").content.decode()
    p = PrescreenPatient.objects.get(patient_id=shock.pid)
    form = re.search(rf'<form method="post" action="/candidates/{p.pk}/open-screening">'
                     r'<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)">', html)
    assert form, "the row has no open-screening form with a CSRF field"
    response = browser.post(f"/candidates/{p.pk}/open-screening",
                            {"csrfmiddlewaretoken": form.group(1)})
    assert response.status_code == 302
    assert Screening.objects.count() == 1
