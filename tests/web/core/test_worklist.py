""""Needs you now" on the home page: each role sees exactly its work, at its sites.

The crafted night at NRCH (counts and clocks worked out by hand):

* **P1** — MSC arm, randomized 5 days ago, every form of days 0–5 saved except the
  day-2 SOFA (1 overdue form; 17 saved forms, the infusion among them). All 17 forms
  were signed by the investigator, then one was changed (1 form awaiting a signature);
  15 are source-data verified (2 awaiting SDV). One query answered by the site (awaits
  closure), one open (the site must answer). One open deviation (INFUSION_LATE).
  Two SAEs, unrelated to MSC (a report to the sponsor only, due 24 h after awareness):
  aware 25 h ago → **1 h 0 min late**; aware 2 h ago → **22 h left** (due within 24 h).
* **P2** — MSC arm, randomized 1 h ago, shock onset 3 h ago, no infusion recorded: one
  dose to prepare, deadline onset + 10 h → **7 h 0 min left** (6 h 59 min once a few
  seconds pass; the clock is truncated, never rounded up).
* **S3** — an open screening 3 h after onset → **7 h 0 min left** of the 10-h window.
* **ICU patient icu-9** — a candidate on the board, onset 2 h ago → **8 h 0 min left**.
* One open report, then a closed one (for the statistician and the DMC).

Who should see what (docs/permissions.md; the worklist shows work to those who act on
it, see trialdesk/web/core/worklist.py):

=============== ====================================================================
coordinator     screening, candidate, overdue forms, queries to answer
investigator    + safety overdue / due, form awaiting signature, deviation
lab             dose to prepare
data manager    safety overdue / due, overdue forms, query awaiting closure, deviation
monitor         safety overdue / due, overdue forms, query awaiting closure, SDV
sponsor, admin  safety overdue / due
statistician    latest report (open); DMC and unblinded statistician: the closed one
=============== ====================================================================
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.web.casebook.test_subject_matrix import fill, other_site
from tests.web.conftest import eligible_record, make_screening, member
from trialdesk.clinical.timeutil import utcnow
from trialdesk.datamanagement.signatures import record_digest
from trialdesk.web.casebook.models import Deviation, FormRecord
from trialdesk.web.datamgmt.models import SdvMark, Signature
from trialdesk.web.datamgmt.services import answer_query, raise_query
from trialdesk.web.datamgmt.targets import content_of, content_type_of
from trialdesk.web.prescreen.models import PrescreenPatient, PrescreenStatus
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.reports.models import ReportArtefact
from trialdesk.web.safety.services import report_ae
from trialdesk.web.screening.models import Screening, ScreeningStatus

pytestmark = pytest.mark.django_db

SEVEN_HOURS_LEFT = ("7 h 0 min left", "6 h 59 min left")
EIGHT_HOURS_LEFT = ("8 h 0 min left", "7 h 59 min left")
_numbers = itertools.count(1)

EXPECTED = {  # role → the items shown, in order, with their counts
    "coordinator": [("screenings", 1), ("candidates", 1), ("overdue_forms", 1),
                    ("queries_to_answer", 1)],
    "investigator": [("safety_overdue", 1), ("screenings", 1), ("candidates", 1),
                     ("safety_due", 1), ("overdue_forms", 1), ("queries_to_answer", 1),
                     ("signatures", 1), ("deviations", 1)],
    "lab": [("doses", 1)],
    "data_manager": [("safety_overdue", 1), ("safety_due", 1), ("overdue_forms", 1),
                     ("queries_to_close", 1), ("deviations", 1)],
    "monitor": [("safety_overdue", 1), ("safety_due", 1), ("overdue_forms", 1),
                ("queries_to_close", 1), ("sdv", 2)],
    "sponsor": [("safety_overdue", 1), ("safety_due", 1)],
    "administrator": [("safety_overdue", 1), ("safety_due", 1)],
    "statistician": [("report", None)],
    "dmc_statistician": [("report", None)],
    "dmc": [("report", None)],
}
SITE_ROLES = {"coordinator", "investigator", "lab"}


def patient(site, user, arm: str, *, randomized_ago: dt.timedelta,
            onset_before: dt.timedelta = dt.timedelta(hours=4)) -> Allocation:
    """A randomized patient written straight to the tables (as the matrix tests do)."""
    n = next(_numbers)
    randomized = (utcnow() - randomized_ago).replace(microsecond=0)
    screening = Screening.objects.create(
        site=site, screening_number=f"W-{site.code}-{n:05d}", record={},
        onset_utc=randomized - onset_before, created_by=user,
        status=ScreeningStatus.RANDOMIZED)
    return Allocation.objects.create(
        subject_id=f"RUMCESS-{site.code.upper()}-{n:04d}", screening=screening, site=site,
        arm=arm, stratum="-", request_id=f"worklist-{n}", randomized_by=user,
        randomized_at=randomized, protocol_id="rumcess", protocol_version="1.0",
        protocol_sha256="0" * 64, method="permuted_blocks")


def unrelated_sae(allocation, user, protocol, *, aware_ago: dt.timedelta, term: str):
    """An SAE the investigator judged unrelated: it owes the sponsor a report in 24 h."""
    now = utcnow()
    return report_ae(allocation, user, {
        "term": term, "onset": (now - aware_ago - dt.timedelta(hours=1)).isoformat(),
        "awareness": (now - aware_ago).isoformat(), "seriousness": ["hospitalisation"],
        "severity_grade": 3, "causality": "unrelated", "expectedness": "unexpected",
        "outcome": "recovering"}, protocol=protocol)


def candidate(site, pid: str, *, onset_ago: dt.timedelta) -> PrescreenPatient:
    onset = utcnow() - onset_ago
    return PrescreenPatient.objects.create(
        patient_id=pid, site=site, status=PrescreenStatus.CANDIDATE, onset_utc=onset,
        deadline_utc=onset + dt.timedelta(hours=10))


def report(version: str, user, *, ago: dt.timedelta) -> ReportArtefact:
    return ReportArtefact.objects.create(
        version=version, dataset_sha256="d" * 64, protocol_id="rumcess",
        protocol_version="1.0", protocol_sha256="0" * 64, n_subjects=2, html="<p>report</p>",
        html_sha256="h" * 64, pdf=b"%PDF", pdf_sha256="p" * 64,
        generated_at=utcnow() - ago, generated_by=user)


@pytest.fixture
def people(django_user_model, nrch):
    """One person per role; site roles at NRCH, the others trial-wide."""
    made = {}
    for role in EXPECTED:
        user = django_user_model.objects.create_user(f"w-{role}", password="x" * 16)
        made[role] = member(user, role, nrch if role in SITE_ROLES else None)
    return made


@pytest.fixture
def night(rumcess, nrch, people):
    """The crafted night at NRCH (module docstring)."""
    coordinator, investigator = people["coordinator"], people["investigator"]
    dm, monitor = people["data_manager"], people["monitor"]
    p1 = patient(nrch, coordinator, "msc", randomized_ago=dt.timedelta(days=5))
    fill(p1, coordinator, skip={("sofa", 2)})
    forms = list(FormRecord.objects.filter(allocation=p1).order_by("form_id", "day"))
    assert len(forms) == 17
    ct = content_type_of(forms[0])
    for form in forms:
        Signature.objects.create(allocation=p1, content_type=ct, object_id=form.pk,
                                 scope="record", signer=investigator, printed_name="Ivan",
                                 meaning="responsibility", signed_at=utcnow(),
                                 digest=record_digest(content_of(form)))
    changed = forms[0]
    FormRecord.objects.filter(pk=changed.pk).update(data={"seeded": "changed"})
    for form in forms[2:]:
        SdvMark.objects.create(allocation=p1, content_type=ct, object_id=form.pk,
                               verified=True, digest=record_digest(content_of(form)),
                               changed_by=monitor, changed_at=utcnow())
    answered = raise_query(forms[3], dm, text="Platelets 35 on day 1: please check.")
    answer_query(answered, coordinator, text="Checked against the chart.")
    raise_query(forms[4], dm, text="GCS while sedated?")
    Deviation.objects.create(allocation=p1, code="INFUSION_LATE", severity="major",
                             message="Infusion 11 h after onset.", detected_at=utcnow())
    unrelated_sae(p1, investigator, rumcess, aware_ago=dt.timedelta(hours=25),
                  term="Acute kidney injury")
    unrelated_sae(p1, investigator, rumcess, aware_ago=dt.timedelta(hours=2),
                  term="Pulmonary embolism")
    p2 = patient(nrch, coordinator, "msc", randomized_ago=dt.timedelta(hours=1),
                 onset_before=dt.timedelta(hours=2))
    s3 = make_screening(nrch, coordinator,
                        eligible_record(utcnow() - dt.timedelta(hours=3)))
    candidate(nrch, "icu-9", onset_ago=dt.timedelta(hours=2))
    report("open", people["statistician"], ago=dt.timedelta(days=2))
    report("closed", people["dmc_statistician"], ago=dt.timedelta(days=1))
    return {"p1": p1, "p2": p2, "s3": s3}


def client_for(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def shown(response) -> list[tuple[str, int | None]]:
    return [(i.key, i.count) for i in response.context["worklist"].items]


def item(response, key: str):
    return next(i for i in response.context["worklist"].items if i.key == key)


def card(html: str) -> str:
    start = html.index('id="worklist"')
    return html[start:html.index("</section>", start)]


@pytest.mark.parametrize("role", list(EXPECTED))
def test_each_role_sees_exactly_its_items_with_their_counts(role, night, people):
    response = client_for(people[role]).get("/")
    assert response.status_code == 200
    assert shown(response) == EXPECTED[role]
    html = card(response.content.decode())
    assert re.findall(r'data-item="(\w+)"', html) == [k for k, _ in EXPECTED[role]]
    assert "Nothing needs you right now" not in html


@pytest.mark.parametrize("role", list(EXPECTED))
def test_every_link_opens_for_that_user(role, night, people):
    client = client_for(people[role])
    for i in client.get("/").context["worklist"].items:
        assert client.get(i.url).status_code == 200, (role, i.key, i.url)


def test_the_clocks_read_as_time_left_and_the_soonest_comes_first(night, people):
    coordinator = client_for(people["coordinator"]).get("/")
    screenings = item(coordinator, "screenings")
    assert screenings.urgency == "soon" and screenings.clock in SEVEN_HOURS_LEFT
    assert screenings.text == (f"enrolment window still open; soonest: "
                               f"{night['s3'].screening_number}, {screenings.clock}")
    candidates = item(coordinator, "candidates")
    assert candidates.clock in EIGHT_HOURS_LEFT
    assert candidates.detail == "1 candidate; soonest: ICU patient icu-9"
    assert screenings.clock in card(coordinator.content.decode())

    dose = item(client_for(people["lab"]).get("/"), "doses")
    assert dose.urgency == "soon" and dose.clock in SEVEN_HOURS_LEFT
    assert dose.detail == f"soonest: {night['p2'].subject_id}"


def test_an_overdue_safety_report_comes_first_in_red(night, people):
    response = client_for(people["investigator"]).get("/")
    first = response.context["worklist"].items[0]
    assert first.key == "safety_overdue" and first.urgency == "overdue"
    assert first.label == "Safety report overdue"
    assert first.text == (f"most overdue: {night['p1'].subject_id}, SAE report to the "
                          f"sponsor, 1 h 0 min late")
    due = item(response, "safety_due")
    assert due.urgency == "soon" and due.clock in ("22 h 0 min left", "21 h 59 min left")
    html = card(response.content.decode())
    assert re.search(r'<li class="work-overdue" data-item="safety_overdue">', html)
    assert '<span class="work-clock">1 h 0 min late</span>' in html


def test_a_susar_owed_to_the_regulators_is_the_sponsors_work_not_the_investigators(
        rumcess, nrch, people):
    """A related, unexpected, life-threatening SAE reported to the sponsor in time 10 days
    ago: the SAE report is met; the SUSAR report (7 calendar days) is overdue — work for
    those who record it (sponsor, data manager, administrator), not the investigator."""
    from trialdesk.web.safety.services import record_report

    p1 = patient(nrch, people["coordinator"], "msc", randomized_ago=dt.timedelta(days=12))
    now = utcnow()
    ae = report_ae(p1, people["investigator"], {
        "term": "Anaphylactoid infusion reaction",
        "onset": (now - dt.timedelta(days=10, hours=1)).isoformat(),
        "awareness": (now - dt.timedelta(days=10)).isoformat(),
        "seriousness": ["life_threatening"], "severity_grade": 4, "causality": "probable",
        "expectedness": "unexpected", "outcome": "recovering"}, protocol=rumcess)
    record_report(ae, people["investigator"], recipient="sponsor",
                  reported_at=now - dt.timedelta(days=10) + dt.timedelta(hours=2))
    for role in ("investigator", "monitor"):  # overdue forms of P1, no safety item
        keys = client_for(people[role]).get("/").context["worklist"].keys()
        assert not {"safety_overdue", "safety_due"} & set(keys), role
    for role in ("sponsor", "data_manager", "administrator"):
        response = client_for(people[role]).get("/")
        assert shown(response)[0] == ("safety_overdue", 1), role
        assert "SUSAR report to the regulators" in item(response, "safety_overdue").detail


def test_backlog_details_name_the_patient_most_behind(night, people):
    p1 = night["p1"].subject_id
    investigator = client_for(people["investigator"]).get("/")
    assert item(investigator, "overdue_forms").detail == f"1 patient; most behind: {p1} (1 form)"
    assert item(investigator, "signatures").detail == f"1 patient; most: {p1} (1 form)"
    assert item(investigator, "signatures").url == f"/data/patient/{p1}/sign/"
    assert item(investigator, "deviations").detail.startswith(f"oldest: INFUSION_LATE for {p1}")
    assert item(investigator, "overdue_forms").url == "/casebook/?attention=1"
    monitor = client_for(people["monitor"]).get("/")
    assert item(monitor, "sdv").detail == f"1 patient; most: {p1} (2 forms)"
    assert item(monitor, "queries_to_close").url == "/data/queries/?state=answered"


def test_the_latest_report_readable_by_the_role(night, people):
    statistician = item(client_for(people["statistician"]).get("/"), "report")
    assert statistician.detail.startswith("Open report,")
    dmc = item(client_for(people["dmc"]).get("/"), "report")
    assert dmc.detail.startswith("Closed report,")


def test_nothing_pending_says_so_plainly(people):
    for role in EXPECTED:
        response = client_for(people[role]).get("/")
        assert response.context["worklist"].items == []
        assert "Nothing needs you right now." in card(response.content.decode())


def test_a_coordinator_at_site_a_sees_nothing_from_site_b(rumcess, nrch, people,
                                                          django_user_model):
    spb = other_site()
    someone = people["coordinator"]
    behind = patient(spb, someone, "msc", randomized_ago=dt.timedelta(days=5))
    raise_query(FormRecord.objects.create(allocation=behind, form_id="sofa", day=0,
                                          data={}, entered_by=someone),
                people["data_manager"], text="Check the source.")
    patient(spb, someone, "msc", randomized_ago=dt.timedelta(hours=1))  # a dose pending
    make_screening(spb, someone, eligible_record(utcnow() - dt.timedelta(hours=3)))
    candidate(spb, "icu-spb", onset_ago=dt.timedelta(hours=2))

    for role in ("coordinator", "investigator", "lab"):  # all three at NRCH
        assert client_for(people[role]).get("/").context["worklist"].items == [], role
    colleague = member(django_user_model.objects.create_user("spb-coord", password="x" * 16),
                       "coordinator", spb)
    # overdue at SPB: days 0-3 of SOFA, therapy and markers (4 + 4 + 4) and the day-0
    # infusion = 13 forms, less the day-0 SOFA saved = 12
    assert shown(client_for(colleague).get("/")) == [
        ("screenings", 1), ("candidates", 1), ("overdue_forms", 12),
        ("queries_to_answer", 1)]


def test_the_card_refreshes_itself_alone(night, people):
    client = client_for(people["coordinator"])
    page = client.get("/").content.decode()
    assert 'hx-get="/" hx-trigger="every 60s"' in page
    partial = client.get("/", headers={"HX-Request": "true"})
    html = partial.content.decode()
    assert html.lstrip().startswith("<section") and 'id="worklist"' in html
    assert "<html" not in html and "Eligibility" not in html
    assert shown(partial) == EXPECTED["coordinator"]


# --- the database is read in bulk ----------------------------------------------------------


def busy(site, users, protocol, count: int) -> None:
    """Patients with something for every item: forms (one overdue, one changed after
    signing), an SDV mark, an open and an answered query, a deviation, an overdue SAE,
    and an MSC patient waiting for the dose."""
    investigator, monitor, dm = users["investigator"], users["monitor"], users["dm"]
    for _ in range(count):
        a = patient(site, investigator, "control", randomized_ago=dt.timedelta(days=5))
        fill(a, investigator, skip={("sofa", 1)})
        form = FormRecord.objects.filter(allocation=a).first()
        ct = content_type_of(form)
        Signature.objects.create(allocation=a, content_type=ct, object_id=form.pk,
                                 scope="record", signer=investigator, printed_name="I",
                                 meaning="responsibility", signed_at=utcnow(),
                                 digest=record_digest(content_of(form)))
        SdvMark.objects.create(allocation=a, content_type=ct, object_id=form.pk,
                               verified=True, digest=record_digest(content_of(form)),
                               changed_by=monitor, changed_at=utcnow())
        raise_query(form, dm, text="Please check.")
        answer_query(raise_query(form, dm, text="And this?"), investigator, text="Done.")
        Deviation.objects.create(allocation=a, code="INFUSION_LATE", severity="major",
                                 message="late", detected_at=utcnow())
        unrelated_sae(a, investigator, protocol, aware_ago=dt.timedelta(hours=30),
                      term="Sepsis")
        patient(site, investigator, "msc", randomized_ago=dt.timedelta(hours=1))
        make_screening(site, investigator, eligible_record(utcnow() - dt.timedelta(hours=3)))
        candidate(site, f"icu-{next(_numbers)}", onset_ago=dt.timedelta(hours=2))


def queries_for_home(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/")
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_database_queries_do_not_grow_with_the_patients(rumcess, nrch, django_user_model):
    """One person holding every role (at NRCH or trial-wide) sees every item."""
    everyone = django_user_model.objects.create_user("everyone", password="x" * 16)
    for role in ("investigator", "coordinator", "lab"):
        member(everyone, role, nrch)
    for role in ("data_manager", "monitor", "statistician"):
        member(everyone, role)
    dm = member(django_user_model.objects.create_user("dm", password="x" * 16),
                "data_manager")
    users = {"investigator": everyone, "monitor": everyone, "dm": dm}
    report("open", everyone, ago=dt.timedelta(days=1))
    client = client_for(everyone)

    busy(nrch, users, rumcess, 3)
    queries_for_home(client)  # warm-up: content types and the session are cached after it
    with_3 = queries_for_home(client)
    keys = client.get("/").context["worklist"].keys()
    assert set(keys) == {"safety_overdue", "screenings", "candidates", "doses",
                         "overdue_forms", "queries_to_answer", "queries_to_close",
                         "signatures", "sdv", "deviations", "report"}, keys
    busy(nrch, users, rumcess, 17)
    with_20 = queries_for_home(client)
    assert item(client.get("/"), "overdue_forms").count == 20
    assert with_3 == with_20, (with_3, with_20)
