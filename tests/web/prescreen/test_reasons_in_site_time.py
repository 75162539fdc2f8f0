"""The board and the patient page show each criterion's reason in site time, like the
onset and deadline beside it (NRCH: Europe/Moscow, UTC+03:00 all year).

The posted patient (conftest ``Shock``): norepinephrine started 3 h ago (onset), MAP
62 mmHg 30 min before it, ANC 0.6 × 10^9/L 2 h before onset; deadline onset + 10 h.
Expected local times are the UTC times + 3 h, worked out by hand.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib

import pytest

from tests.web.prescreen.conftest import Shock
from trialdesk.clinical.timeutil import format_utc
from trialdesk.web.prescreen.board_display import criteria_html
from trialdesk.web.prescreen.models import PrescreenPatient

pytestmark = pytest.mark.django_db
MSK = dt.timezone(dt.timedelta(hours=3))


@pytest.fixture
def shock(now):
    """The conftest patient with onset on a whole minute (times then print as HH:MM)."""
    return Shock("icu-17", now.replace(second=0) - dt.timedelta(hours=3))


def msk(t: dt.datetime) -> str:
    return t.astimezone(MSK).strftime("%Y-%m-%d %H:%M") + " MSK (UTC+03:00)"


def _post(feed, shock) -> PrescreenPatient:
    for resource in shock.all():
        feed.post(resource)
    return PrescreenPatient.objects.get(patient_id=shock.pid)


def _expected(shock) -> dict[str, str]:
    onset = shock.onset
    return {
        "shock": (f"norepinephrine started {msk(onset)} after MAP 62 mmHg at "
                  f"{msk(onset - dt.timedelta(minutes=30))}"),
        "window": f"deadline {msk(onset + dt.timedelta(hours=10))}",
        "anc": f"at {msk(onset - dt.timedelta(hours=2))}, 2 h 00 min before onset",
    }


def test_the_board_shows_reasons_in_site_time(feed, shock, coordinator_client):
    _post(feed, shock)
    page = html_lib.unescape(coordinator_client.get(
        "/candidates/", headers={"HX-Request": "true"}).content.decode())
    for text in _expected(shock).values():
        assert text in page, text
    assert format_utc(shock.onset) not in page  # the same instant written in UTC


def test_the_patient_page_shows_reasons_and_data_times_in_site_time(
        feed, shock, coordinator_client):
    p = _post(feed, shock)
    page = html_lib.unescape(coordinator_client.get(f"/candidates/{p.pk}/").content.decode())
    criteria = page[:page.index("Values received")]
    for text in _expected(shock).values():
        assert text in criteria, text
    # data used: the MAP reading at its site time, not the stored ISO string
    assert f"MAP 62.0 mmHg at {msk(shock.onset - dt.timedelta(minutes=30))}" in criteria
    assert "UTC " not in criteria.replace("UTC+03:00", "")
    assert "+00:00" not in criteria


def test_the_stored_reason_keeps_utc_and_the_structured_times(feed, shock):
    p = _post(feed, shock)
    shock_check = next(c for c in p.reasons if c["id"] == "shock_onset")
    assert shock_check["reason"] == (
        f"norepinephrine started {format_utc(shock.onset)} after MAP 62 mmHg at "
        f"{format_utc(shock.onset - dt.timedelta(minutes=30))}")
    assert dt.datetime.fromisoformat(shock_check["times"]["start"]) == shock.onset


def test_a_check_stored_before_structured_times_shows_its_stored_text():
    html = criteria_html([{"status": "met", "label": "septic shock (SSC 2012)",
                           "reason": "norepinephrine started 2026-03-01 09:00 UTC"}],
                         "Europe/Moscow")
    assert "norepinephrine started 2026-03-01 09:00 UTC" in html
