"""The subject matrix (Patients page) on the real database: counts, scoping, filters,
paging, and a number of database queries that does not grow with the patients.

Expected counts are worked out by hand from the RUMCESS schedule (protocols/rumcess.yaml)
for a patient randomized five days ago, so today is study day 5 (site calendar):

* SOFA days 0–28, standard therapy days 0–7, markers days 0, 1, 2, 3, 5, 7, 14, 28, MSC
  infusion day 0 (MSC arm only), all with a window of 0 days and one grace day: the
  forms of days 0–3 are overdue when missing, those of days 4–5 due now.
* Forms due by day 5: control 6 SOFA + 6 therapy + 5 markers = 17; MSC 18 (+ infusion).
  By day 3: control 4 + 4 + 4 = 12.
* A control patient without any form: 12 overdue (days 0–3), 5 due now.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.web.casebook.conftest import RANDOMIZED_DAYS_AGO, browser
from tests.web.conftest import member
from trialdesk.clinical.timeutil import site_zone, utcnow
from trialdesk.crf.schedule import day_date
from trialdesk.randomization import generate_list
from trialdesk.web.casebook.models import Deviation, FormRecord
from trialdesk.web.casebook.services import save_form
from trialdesk.web.datamgmt import locks
from trialdesk.web.datamgmt.models import Query, SdvMark, Signature
from trialdesk.web.datamgmt.services import (
    answer_query,
    mark_sdv,
    raise_query,
    sign,
)
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import import_list
from trialdesk.web.screening.models import Screening, ScreeningStatus
from trialdesk.web.sites.models import Site

pytestmark = pytest.mark.django_db

#: scheduled forms of days 0–5 (RUMCESS), by hand from the protocol file
DUE_BY_DAY5 = {"control": 17, "msc": 18}
DUE_BY_DAY3_CONTROL = 12
#: domain.md §4.1's worked patient, as typed: SOFA 17 (Vincent 1996)
WORKED_DAY = {"pao2_mmhg": "70", "fio2_fraction": "0.5", "respiratory_support": "invasive",
              "platelets_10e9_per_l": "35", "bilirubin_umol_l": "40", "map_mmhg": "62",
              "norepinephrine_ug_kg_min": "0.25", "gcs": "11", "creatinine_umol_l": "180",
              "urine_ml_per_day": "350"}
WORKED_SOFA_TOTAL = 17
#: the same as the service takes it (numbers as numbers)
WORKED_DATA = {k: (v if k == "respiratory_support" else float(v)) for k, v in WORKED_DAY.items()}
SCHEDULE = {  # form → its days up to day 5, and the arms that get it (None: every arm)
    "sofa": (range(0, 6), None), "standard_therapy": (range(0, 6), None),
    "inflammatory_markers": ((0, 1, 2, 3, 5), None), "msc_infusion": ((0,), "msc"),
}
_numbers = itertools.count(1)


@pytest.fixture
def sealed_list(rumcess, alice):
    """A longer list than the casebook tests' (the crafted patients need a dozen)."""
    alist = generate_list(rumcess, seed="subject-matrix", size_per_stratum=40)
    import_list(rumcess, alist.to_csv(), alist.commitment(), user=alice)
    return alist


def fill(allocation, user, *, through_day: int = 5, skip=()):
    """Save every form scheduled for the patient's arm on days 0 … ``through_day``
    (rows only: the matrix counts saved forms; the clinical content does not matter)."""
    rows = [FormRecord(allocation=allocation, form_id=form, day=day, data={"seeded": True},
                       entered_by=user)
            for form, (days, arm) in SCHEDULE.items() if arm in (None, allocation.arm)
            for day in days if day <= through_day and (form, day) not in skip]
    FormRecord.objects.bulk_create(rows)


def row_of(response, subject_id):
    return next(r for r in response.context["m"].rows if r.allocation.subject_id == subject_id)


def cell(html: str, subject_id: str, column: str) -> str:
    """The text of one cell of the rendered table (tags stripped)."""
    row = re.search(rf'<tr data-subject="{re.escape(subject_id)}">(.*?)</tr>', html, re.S)
    assert row, f"{subject_id} is not on the page"
    found = re.search(rf'data-col="{column}"[^>]*>(.*?)</td>', row.group(1), re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()


def subjects_on(response) -> list[str]:
    return [r.allocation.subject_id for r in response.context["m"].rows]


@pytest.fixture
def monitor(django_user_model):
    return member(django_user_model.objects.create_user("monty", password="x" * 16),
                  "monitor")


@pytest.fixture
def crafted(randomize_into, alice, investigator, data_manager, monitor, rumcess):
    """Four patients at NRCH randomized five days ago, each with one thing to show."""
    overdue = randomize_into("control")
    fill(overdue, alice, skip={("sofa", 2)})  # day-2 SOFA missing: overdue since day 4

    queried = randomize_into("msc")
    fill(queried, alice, skip={("sofa", 5)})
    day1 = FormRecord.objects.get(allocation=queried, form_id="sofa", day=1)
    raise_query(day1, data_manager, text="Platelets 35 on day 1: please check the source.")
    answered = raise_query(FormRecord.objects.get(allocation=queried, form_id="sofa", day=3),
                           data_manager, text="GCS while sedated?")
    answer_query(answered, alice, text="Assessed before sedation.")
    mark_sdv(day1, monitor)
    # the latest SOFA, through the real save (SOFA computed by the clinical core)
    save_form(rumcess, queried, "sofa", 5, WORKED_DATA, user=alice)

    dead = randomize_into("control")
    fill(dead, alice, through_day=3)
    died_on = day_date(3, dead.randomized_at, dead.site.timezone)
    save_form(rumcess, dead, "end_of_study", None,
              {"status": "died", "date": died_on.isoformat()}, user=investigator)

    done = randomize_into("msc")
    fill(done, alice)
    sign(done, investigator, password="x" * 16, meaning="responsibility")
    locks.lock_patient(done, data_manager, reason="casebook complete and signed")
    return {"overdue": overdue, "queried": queried, "dead": dead, "done": done}


def test_counts_for_crafted_patients(crafted, data_manager):
    response = browser(data_manager).get(reverse("casebook:index"))
    assert response.status_code == 200
    html = response.content.decode()

    overdue = crafted["overdue"].subject_id
    assert cell(html, overdue, "day") == str(RANDOMIZED_DAYS_AGO)
    assert cell(html, overdue, "overdue") == "1"
    assert cell(html, overdue, "forms") == f"16 / {DUE_BY_DAY5['control']}"
    assert cell(html, overdue, "vital") == "alive"
    assert cell(html, overdue, "open-queries") == "0"
    assert 'class="overdue"' in re.search(rf'data-subject="{overdue}">(.*?)</tr>', html,
                                          re.S).group(1)  # shown in red

    queried = crafted["queried"].subject_id
    assert cell(html, queried, "overdue") == "0"
    assert cell(html, queried, "forms") == f"18 / {DUE_BY_DAY5['msc']}"
    assert cell(html, queried, "open-queries") == "1"
    assert cell(html, queried, "answered-queries") == "1"
    assert cell(html, queried, "sdv") == f"1 / {DUE_BY_DAY5['msc']}"
    assert cell(html, queried, "sofa") == f"{WORKED_SOFA_TOTAL} day 5"
    assert cell(html, queried, "signed") == "no"
    assert cell(html, queried, "locked") == "no"

    dead = crafted["dead"].subject_id
    assert cell(html, dead, "vital") == "died on day 3"
    assert cell(html, dead, "overdue") == "0"  # days 4–5 are after death: not required
    assert cell(html, dead, "forms") == f"{DUE_BY_DAY3_CONTROL} / {DUE_BY_DAY3_CONTROL}"

    done = crafted["done"].subject_id
    assert cell(html, done, "signed") == "yes"
    assert cell(html, done, "locked") == "locked"
    assert cell(html, done, "overdue") == "0"
    assert cell(html, done, "sofa") == "—"  # seeded rows carry no computed SOFA


def test_default_order_is_most_overdue_first(crafted, data_manager):
    rows = browser(data_manager).get(reverse("casebook:index")).context["m"].rows
    overdue = [r.summary.overdue for r in rows]
    assert overdue == sorted(overdue, reverse=True)


def test_counts_link_where_they_are_acted_on(crafted, data_manager):
    html = browser(data_manager).get(reverse("casebook:index")).content.decode()
    queried = crafted["queried"].subject_id
    query_list = reverse("datamgmt:query_list")
    assert f'href="{query_list}?subject={queried}"' in html
    assert f'href="{query_list}?subject={queried}&amp;state=answered"' in html
    assert f'href="{reverse("casebook:detail", args=[queried])}#schedule"' in html
    done = crafted["done"].subject_id
    assert f'href="{reverse("datamgmt:patient_lock", args=[done])}"' in html
    # the query list the link opens shows that patient's queries only
    listed = browser(data_manager).get(f"{query_list}?subject={queried}").context["queries"]
    assert {q.allocation.subject_id for q in listed} == {queried} and len(listed) == 2


def test_signature_invalidated_by_a_change_shows_partial(crafted, data_manager, alice,
                                                          rumcess):
    done = crafted["done"]
    locks.unlock_patient(done, data_manager, reason="late lab correction")
    save_form(rumcess, done, "sofa", 4, WORKED_DATA, user=alice,
              reason="worst values of day 4 entered")  # the casebook changes after signing
    html = browser(data_manager).get(reverse("casebook:index")).content.decode()
    assert cell(html, done.subject_id, "signed") == "partial"
    assert cell(html, done.subject_id, "locked") == "no"


# --- site scoping ------------------------------------------------------------------------


def other_site():
    return Site.objects.create(code="spb", name="Saint Petersburg ICU",
                               timezone="Europe/Moscow")


def patients_at(site, user, count: int, *, days_ago: int = RANDOMIZED_DAYS_AGO,
                prefix: str = "RUMCESS-X") -> list[Allocation]:
    """Randomized patients written straight to the tables (as the benchmarks seed them)."""
    randomized = (utcnow() - dt.timedelta(days=days_ago)).replace(second=0, microsecond=0)
    made = []
    for _ in range(count):
        n = next(_numbers)
        screening = Screening.objects.create(
            site=site, screening_number=f"M-{site.code}-{n:05d}", record={},
            onset_utc=randomized - dt.timedelta(hours=4), created_by=user,
            status=ScreeningStatus.RANDOMIZED)
        made.append(Allocation.objects.create(
            subject_id=f"{prefix}-{site.code.upper()}-{n:04d}", screening=screening, site=site,
            arm=("control", "msc")[n % 2], stratum="-", request_id=f"matrix-{n}",
            randomized_by=user, randomized_at=randomized, protocol_id="rumcess",
            protocol_version="1.0", protocol_sha256="0" * 64, method="permuted_blocks"))
    return made


def test_a_site_coordinator_sees_only_their_site(coordinator_client, alice, nrch, data_manager):
    ours = patients_at(nrch, alice, 2)
    theirs = patients_at(other_site(), alice, 2)
    shown = set(subjects_on(coordinator_client.get(reverse("casebook:index"))))
    assert {a.subject_id for a in ours} <= shown
    assert not {a.subject_id for a in theirs} & shown
    # asking for the other site by its code shows nothing more
    response = coordinator_client.get(reverse("casebook:index"), {"site": "spb"})
    assert subjects_on(response) == []
    everyone = set(subjects_on(browser(data_manager).get(reverse("casebook:index"))))
    assert {a.subject_id for a in ours + theirs} <= everyone


# --- filters and paging ------------------------------------------------------------------


def test_filters_site_attention_and_search(nrch, alice, data_manager):
    complete = patients_at(nrch, alice, 3)
    for a in complete:
        fill(a, alice)
    behind = patients_at(nrch, alice, 2)  # no form saved: overdue
    queried = patients_at(nrch, alice, 1)[0]
    fill(queried, alice)
    raise_query(FormRecord.objects.filter(allocation=queried).first(), data_manager,
                text="Check the source.")
    deviated = patients_at(nrch, alice, 1)[0]
    fill(deviated, alice)
    Deviation.objects.create(allocation=deviated, code="LATE_INFUSION", severity="major",
                             message="Infusion 11 h after onset.", detected_at=utcnow())
    spb = patients_at(other_site(), alice, 2)
    for a in spb:
        fill(a, alice)
    client = browser(data_manager)
    index = reverse("casebook:index")

    attention = set(subjects_on(client.get(index, {"attention": "1"})))
    assert attention == {a.subject_id for a in [*behind, queried, deviated]}
    assert set(subjects_on(client.get(index, {"site": "spb"}))) == {a.subject_id for a in spb}
    assert subjects_on(client.get(index, {"q": complete[1].subject_id[-4:]})) == \
        [complete[1].subject_id]
    assert subjects_on(client.get(index, {"q": "no-such-subject"})) == []
    assert subjects_on(client.get(index, {"attention": "1", "site": "spb"})) == []


def test_paging_fifty_a_page(nrch, alice, data_manager):
    patients = patients_at(nrch, alice, 53)
    client = browser(data_manager)
    first = client.get(reverse("casebook:index"), {"sort": "subject"})
    second = client.get(reverse("casebook:index"), {"sort": "subject", "page": "2"})
    assert (first.context["m"].total, first.context["m"].pages) == (53, 2)
    names = sorted(a.subject_id for a in patients)
    assert subjects_on(first) == names[:50]
    assert subjects_on(second) == names[50:]
    assert 'rel="next"' in first.content.decode() and 'rel="prev"' in second.content.decode()
    beyond = client.get(reverse("casebook:index"), {"sort": "subject", "page": "9"})
    assert subjects_on(beyond) == names[50:]  # past the end: the last page
    assert client.get(reverse("casebook:index"), {"page": "x"}).status_code == 200


# --- database queries do not grow with the patients --------------------------------------


def busy_patients(site, user, monitor, count: int, prefix: str) -> None:
    """Patients with everything the matrix reads: forms (one with a SOFA), a query, an
    SDV mark, a form signature, a casebook signature, a deviation and a lock."""
    from trialdesk.datamanagement.signatures import record_digest
    from trialdesk.web.datamgmt.targets import content_of, content_type_of

    for a in patients_at(site, user, count, prefix=prefix):
        fill(a, user, skip={("sofa", 1)})
        form = FormRecord.objects.filter(allocation=a).first()
        ct = content_type_of(form)
        Query.objects.create(allocation=a, content_type=ct, object_id=form.pk,
                             raised_by=monitor, raised_at=utcnow(), updated_at=utcnow())
        SdvMark.objects.create(allocation=a, content_type=ct, object_id=form.pk,
                               verified=True, digest=record_digest(content_of(form)),
                               changed_by=monitor, changed_at=utcnow())
        for target, scope in ((form, "record"), (a, "casebook")):
            Signature.objects.create(allocation=a, content_type=content_type_of(target),
                                     object_id=target.pk, scope=scope, signer=user,
                                     printed_name="Ivan Petrov", meaning="responsibility",
                                     signed_at=utcnow(), digest="0" * 64)
        Deviation.objects.create(allocation=a, code="LATE_INFUSION", severity="major",
                                 message="late", detected_at=utcnow())
        locks.lock_patient(a, user, reason="test")


def queries_for_page(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("casebook:index"))
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_database_queries_do_not_grow_with_patients(nrch, alice, data_manager, monitor):
    client = browser(data_manager)
    busy_patients(nrch, alice, monitor, 5, "RUMCESS-A")
    queries_for_page(client)  # warm-up: content types and the session are cached after it
    with_5 = queries_for_page(client)
    busy_patients(nrch, alice, monitor, 35, "RUMCESS-B")
    with_40 = queries_for_page(client)
    assert len(client.get(reverse("casebook:index")).context["m"].rows) == 40
    assert with_5 == with_40, (with_5, with_40)
    assert with_40 <= 20  # a constant handful, not one or more per patient


def test_today_is_the_site_calendar_day(nrch, alice, data_manager):
    """Randomized at 23:50 Moscow time yesterday → today is day 1 whatever the UTC hour."""
    zone = site_zone(nrch.timezone)
    yesterday = utcnow().astimezone(zone).date() - dt.timedelta(days=1)
    late = dt.datetime.combine(yesterday, dt.time(23, 50), tzinfo=zone)
    a = patients_at(nrch, alice, 1)[0]
    Allocation.objects.filter(pk=a.pk).update(randomized_at=late)
    html = browser(data_manager).get(reverse("casebook:index")).content.decode()
    assert cell(html, a.subject_id, "day") == "1"
