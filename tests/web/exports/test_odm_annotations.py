"""Queries, SDV, locks, deviations, screenings and the allocation in the trial record.

The trial of conftest.py, plus, through the production services: a query on the MAP of
the corrected SOFA form raised by the data manager, answered by the investigator and
closed; a query on the whole markers form withdrawn; source-data verification of the
SOFA form; the MSC patient locked and unlocked and the trial locked; a late MSC
infusion whose deviation the investigator acknowledges with a comment; and a patient
screened but not enrolled (ANC 2.5 × 10^9/L: not neutropenic).

Every file is validated against the CDISC ODM 1.3.2 XSD, then read back by the small
reader below (plain ``xml.etree``) and compared with the ORM.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse
from lxml import etree

from tests.web.casebook.conftest import browser, lab_user  # noqa: F401  (fixture)
from tests.web.casebook.test_msc import PRODUCT, _infusion
from tests.web.conftest import eligible_record
from tests.web.exports.test_odm_export import XSD, export_bytes, parse_z, q, read_odm
from trialdesk.clinical.timeutil import utcnow
from trialdesk.web.casebook.models import Deviation
from trialdesk.web.casebook.services import acknowledge_deviation
from trialdesk.web.datamgmt.locks import lock_patient, lock_trial, unlock_patient
from trialdesk.web.datamgmt.models import DataLock, QueryMessage, SdvMark
from trialdesk.web.datamgmt.services import (
    answer_query,
    close_query,
    mark_sdv,
    raise_query,
    withdraw_query,
)
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.screening.models import Screening
from trialdesk.web.screening.services import close_screening, create_screening

pytestmark = pytest.mark.django_db

QUESTION = "MAP 58 mmHg: please check against the ICU chart"
ANSWER = "Chart checked: 58 mmHg is correct"
CLOSING = "Thank you, resolved"
WITHDRAWAL = "Raised on the wrong patient"
ACK_COMMENT = "Cells released late by the lab; infusion started at once"
LOCK_REASON = "casebook complete for the interim analysis"
UNLOCK_REASON = "correction of day-1 markers after query"
TRIAL_LOCK_REASON = "database lock for the final analysis"
NOT_ENROLLED_DETAIL = "ANC above the threshold"
#: not neutropenic: RUMCESS I3 requires ANC <= 1 x 10^9/L
NOT_NEUTROPENIC = {"value": 2.5, "unit": "10^9/L"}


@dataclass
class DataManagement:
    trial: Any
    item_query: Any
    form_query: Any
    sdv: SdvMark
    deviation: Deviation
    not_enrolled: Screening


@pytest.fixture
def managed(trial, rumcess, nrch, alice, investigator, data_manager, lab_user):  # noqa: F811
    dora, ivan = data_manager, investigator
    item_query = raise_query(trial.sofa, dora, text=QUESTION, field="map_mmhg")
    answer_query(item_query, ivan, text=ANSWER)
    item_query = close_query(item_query, dora, text=CLOSING)
    form_query = raise_query(trial.markers, dora, text="Is IL-6 in pg/mL?")
    form_query = withdraw_query(form_query, dora, text=WITHDRAWAL)
    trial.sofa.refresh_from_db()
    sdv = mark_sdv(trial.sofa, dora)
    lock_patient(trial.msc, dora, reason=LOCK_REASON)
    unlock_patient(trial.msc, dora, reason=UNLOCK_REASON)
    # a late infusion (11 h after onset): INFUSION_LATE, acknowledged by the investigator
    lab = browser(lab_user)
    lab.post(reverse("casebook:msc_product", args=[trial.msc.subject_id]), PRODUCT)
    lab.post(reverse("casebook:msc_infusion", args=[trial.msc.subject_id]),
             _infusion(trial.msc, 7))
    deviation = acknowledge_deviation(Deviation.objects.get(allocation=trial.msc), ivan,
                                      comment=ACK_COMMENT)
    screening = create_screening(rumcess, nrch, alice, eligible_record(
        utcnow() - dt.timedelta(hours=3), neutrophils=NOT_NEUTROPENIC)).screening
    close_screening(screening, alice, reason_code="ineligible", detail=NOT_ENROLLED_DETAIL)
    lock_trial(dora, reason=TRIAL_LOCK_REASON)
    return DataManagement(trial, item_query, form_query, sdv, deviation, screening)


# --- an independent reader of the annotations ------------------------------------------------


def annotations(root: ET.Element) -> list[dict[str, Any]]:
    """Every Annotation with a Flag: where it hangs, its flag, comment and audit."""
    users = {u.get("OID"): u.find(q("LoginName")).text for u in root.iter(q("User"))}
    out = []

    def note(where: dict[str, Any], holder: ET.Element) -> None:
        for a in holder.findall(q("Annotation")):
            flag = a.find(q("Flag"))
            if flag is None:
                continue
            audit = holder.find(q("AuditRecord"))
            out.append({**where, "kind": flag.find(q("FlagType")).text,
                        "state": flag.find(q("FlagValue")).text,
                        "codelist": flag.find(q("FlagValue")).get("CodeListOID"),
                        "comment": a.find(q("Comment")).text,
                        "user": users[audit.find(q("UserRef")).get("UserOID")]
                        if audit is not None else None,
                        "at": audit.find(q("DateTimeStamp")).text
                        if audit is not None else None})

    for subject in root.iter(q("SubjectData")):
        key = subject.get("SubjectKey")
        note({"subject": key, "form": None, "item": None}, subject)
        for event in subject.findall(q("StudyEventData")):
            for form in event.findall(q("FormData")):
                record = (event.get("StudyEventOID"), form.get("FormOID"),
                          form.get("FormRepeatKey"))
                note({"subject": key, "form": record, "item": None}, form)
                for item in form.iter(q("ItemData")):
                    note({"subject": key, "form": record, "item": item.get("ItemOID")}, item)
    for block in root.findall(f"{q('ClinicalData')}/{q('Annotations')}"):
        note({"subject": None, "form": None, "item": None}, block)
    return out


def codelists(root: ET.Element) -> dict[str, set[str]]:
    return {c.get("OID"): {i.get("CodedValue") for i in c.findall(q("CodeListItem"))}
            for c in root.iter(q("CodeList"))}


def valid(data: bytes) -> ET.Element:
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.fromstring(data)), schema.error_log
    return ET.fromstring(data)


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def masked(protocol, masking):
    return protocol.model_copy(update={"identifiers": protocol.identifiers.model_copy(
        update={"masking": masking})})


# --- ODM ---------------------------------------------------------------------------------


def test_the_file_with_every_annotation_is_valid_odm_and_every_flag_is_coded(managed,
                                                                            rumcess):
    root = valid(export_bytes(rumcess)[0])
    lists = codelists(root)
    found = annotations(root)
    assert {a["kind"] for a in found} == {"query", "sdv", "lock", "deviation", "allocation"}
    for a in found:  # every FlagValue is a coded value of the code list it names
        assert a["state"] in lists[a["codelist"]], a
    flag_types = {f.get("CodeListOID") for f in root.iter(q("FlagType"))}
    assert flag_types == {"CL.flag_type"}
    assert {a["kind"] for a in found} <= lists["CL.flag_type"]


def test_a_query_raised_answered_and_closed_is_on_its_item_with_states_users_utc_times(
        managed, rumcess):
    root = valid(export_bytes(rumcess)[0])
    msc, sofa = managed.trial.msc.subject_id, managed.trial.sofa
    steps = [a for a in annotations(root) if a["kind"] == "query"
             and a["form"] == ("SE.DAY0", "F.sofa", str(sofa.pk))]
    assert all(a["subject"] == msc and a["item"] == "I.sofa.map_mmhg" for a in steps)
    assert [(a["state"], a["user"]) for a in steps] == [
        ("open", "dora"), ("answered", "ivan"), ("closed", "dora")]
    messages = QueryMessage.objects.filter(query=managed.item_query).order_by("at", "pk")
    assert [parse_z(a["at"]) for a in steps] == [m.at for m in messages]
    for a, text in zip(steps, (QUESTION, ANSWER, CLOSING), strict=True):
        assert text in a["comment"] and a["at"] in a["comment"]
    # the query on the whole markers form hangs on the form, not on an item
    markers = [a for a in annotations(root) if a["kind"] == "query"
               and a["form"] == ("SE.DAY1", "F.inflammatory_markers",
                                 str(managed.trial.markers.pk))]
    assert [(a["state"], a["item"]) for a in markers] == [("open", None), ("withdrawn", None)]
    assert WITHDRAWAL in markers[1]["comment"]
    # the query steps change no value: the corrected MAP is still the current one
    odm = read_odm(ET.tostring(root))
    assert odm["current"][(msc, "SE.DAY0", "F.sofa", str(sofa.pk))]["I.sofa.map_mmhg"] == (
        "58", "mmHg")


def test_the_sdv_mark_is_on_the_form_with_who_when_and_the_digest_verified(managed, rumcess):
    root = valid(export_bytes(rumcess)[0])
    sofa = managed.trial.sofa
    (mark,) = [a for a in annotations(root) if a["kind"] == "sdv"]
    assert mark["form"] == ("SE.DAY0", "F.sofa", str(sofa.pk)) and mark["item"] is None
    assert (mark["state"], mark["user"]) == ("verified", "dora")
    assert parse_z(mark["at"]) == managed.sdv.changed_at
    assert len(managed.sdv.digest) == 64 and managed.sdv.digest in mark["comment"]


def test_the_patient_lock_and_unlock_and_the_trial_lock_are_annotated(managed, rumcess):
    root = valid(export_bytes(rumcess)[0])
    locks = [a for a in annotations(root) if a["kind"] == "lock"]
    patient = [a for a in locks if a["subject"] == managed.trial.msc.subject_id]
    assert [(a["state"], a["user"]) for a in patient] == [("locked", "dora"),
                                                         ("unlocked", "dora")]
    assert LOCK_REASON in patient[0]["comment"] and UNLOCK_REASON in patient[1]["comment"]
    history = DataLock.history.filter(allocation=managed.trial.msc,
                                      changed_by__isnull=False).order_by("history_date")
    assert [parse_z(a["at"]) for a in patient] == [h.changed_at for h in history]
    (trial_lock,) = [a for a in locks if a["subject"] is None]
    assert trial_lock["state"] == "locked" and TRIAL_LOCK_REASON in trial_lock["comment"]
    assert "dora" in trial_lock["comment"]


def test_the_deviation_and_its_acknowledgement_are_subject_annotations(managed, rumcess):
    root = valid(export_bytes(rumcess)[0])
    found = [a for a in annotations(root) if a["kind"] == "deviation"]
    assert all(a["subject"] == managed.trial.msc.subject_id and a["form"] is None
               for a in found)
    assert [a["state"] for a in found] == ["open", "acknowledged"]
    ack = found[-1]
    assert ack["user"] == "ivan" and "INFUSION_LATE" in ack["comment"]
    assert ACK_COMMENT in ack["comment"] and managed.deviation.message in ack["comment"]
    assert parse_z(ack["at"]) == managed.deviation.history.latest("history_date").history_date


def test_a_patient_never_randomized_is_in_the_file_with_the_screening_form(managed,
                                                                          rumcess):
    data = export_bytes(rumcess)[0]
    odm = read_odm(data)
    screening = managed.not_enrolled
    key = screening.screening_number
    assert odm["sites"][key] == "LOC.nrch"
    (record,) = [r for r in odm["current"] if r[0] == key]
    assert record == (key, "SE.SCREENING", "F.screening", str(screening.pk))
    items = odm["current"][record]
    assert items["I.screening.screening_status"] == ("not_enrolled", None)
    assert items["I.screening.not_enrolled_reason"] == (
        f"ineligible: {NOT_ENROLLED_DETAIL}", None)
    assert items["I.screening.neutrophils"] == ("2.5", "10^9/L")
    assert items["I.screening.eligibility_decision"] == ("ineligible", None)
    assert items["I.screening.birth_date"] == ("1980-05-17", None)
    # only items the metadata defines (no key of the record outside the protocol)
    defined = {i.get("OID") for i in ET.fromstring(data).iter(q("ItemDef"))}
    assert {oid for r in odm["current"].values() for oid in r} <= defined
    # two saves: logged, then closed with the reason; who and when
    history = [h for h in odm["history"] if h["record"] == record
               and h["item"] == "I.screening.screening_status"]
    assert [(h["tx"], h["value"], h["user"]) for h in history] == [
        ("Insert", "open", "alice"), ("Update", "not_enrolled", "alice")]
    rows = list(screening.history.order_by("history_date"))
    assert [parse_z(h["at"]) for h in history] == [r.history_date for r in rows]


def test_a_randomized_patient_has_the_screening_form_under_the_subject(managed, rumcess):
    odm = read_odm(export_bytes(rumcess)[0])
    for allocation in Allocation.objects.select_related("screening"):
        s = allocation.screening
        items = odm["current"][(allocation.subject_id, "SE.SCREENING", "F.screening",
                                str(s.pk))]
        assert items["I.screening.screening_number"] == (s.screening_number, None)
        assert items["I.screening.screening_status"] == ("randomized", None)
        assert items["I.screening.neutrophils"] == ("0.3", "10^9/L")
        # a randomized patient is not a second, screening-only subject
        assert s.screening_number not in odm["sites"]


def test_the_allocation_is_exported_for_the_open_label_rumcess(managed, rumcess):
    assert rumcess.identifiers.masking == "none"
    data, log = export_bytes(rumcess)
    root = valid(data)
    odm = read_odm(data)
    for a in Allocation.objects.all():
        items = odm["current"][(a.subject_id, "SE.RANDOMIZATION", "F.randomization",
                                str(a.pk))]
        assert items["I.randomization.arm"] == (a.arm, None)
        assert items["I.randomization.stratum"] == (a.stratum, None)
        assert items["I.randomization.sequence"] == (str(a.sequence), None)
        assert items["I.randomization.emergency"] == ("false", None)
        assert parse_z(items["I.randomization.randomized_at"][0]) == a.randomized_at
    (statement,) = [x for x in annotations(root) if x["kind"] == "allocation"]
    assert statement["state"] == "included" and "open label" in statement["comment"]
    assert log.allocation_included and "open label" in log.note


@pytest.mark.parametrize("masking", ["double", None])
def test_a_masked_protocol_exports_no_arm_and_says_why(managed, rumcess, masking):
    protocol = masked(rumcess, masking)
    data, log = export_bytes(protocol)
    root = valid(data)
    assert not [e for e in root.iter(q("StudyEventDef")) if "RANDOMIZATION" in e.get("OID")]
    assert not [e for e in root.iter(q("ItemData"))
                if e.get("ItemOID").startswith("I.randomization.")]
    (statement,) = [x for x in annotations(root) if x["kind"] == "allocation"]
    assert statement["state"] == "omitted" and "omitted" in statement["comment"]
    assert ("double" if masking else "treated as masked") in statement["comment"]
    assert "omitted" in root.get("Description")
    assert not log.allocation_included and "omitted" in log.note
    # everything else is still there
    assert {x["kind"] for x in annotations(root)} == {"query", "sdv", "lock", "deviation",
                                                      "allocation"}
    data, csv_log = export_bytes(protocol, "csv")
    rows = csv_rows(data)
    assert (rows[0]["event"], rows[0]["transaction"]) == ("trial", "allocation_omitted")
    assert parse_z(rows[0]["changed_at_utc"]) == csv_log.as_of
    assert not [r for r in rows if r["form_id"] == "randomization" and r["item_id"]]


# --- CSV and the log ---------------------------------------------------------------------------


def test_the_csv_has_a_row_for_every_step_with_user_and_utc_time(managed, rumcess):
    data, log = export_bytes(rumcess, "csv")
    rows = csv_rows(data)
    msc, sofa = managed.trial.msc.subject_id, managed.trial.sofa
    query = [r for r in rows if r["transaction"].startswith("query_")
             and r["form_id"] == "sofa"]
    assert [(r["transaction"], r["value"], r["changed_by"], r["item_id"]) for r in query] == [
        ("query_raised", "open", "dora", "map_mmhg"),
        ("query_answered", "answered", "ivan", "map_mmhg"),
        ("query_closed", "closed", "dora", "map_mmhg")]
    assert all(r["subject_id"] == msc and r["record_id"] == str(sofa.pk) for r in query)
    messages = QueryMessage.objects.filter(query=managed.item_query).order_by("at", "pk")
    assert [parse_z(r["changed_at_utc"]) for r in query] == [m.at for m in messages]
    assert [r["transaction"] for r in rows if r["form_id"] == "inflammatory_markers"
            and r["transaction"].startswith("query_")] == ["query_raised", "query_withdrawn"]
    (sdv,) = [r for r in rows if r["transaction"] == "sdv"]
    assert (sdv["record_id"], sdv["value"]) == (str(sofa.pk), "verified")
    assert managed.sdv.digest in sdv["reason"]
    locks = [(r["subject_id"], r["transaction"]) for r in rows
             if r["transaction"] in ("lock", "unlock")]
    assert locks == [(msc, "lock"), (msc, "unlock"), ("", "lock")]
    deviation = [r for r in rows if r["transaction"].startswith("deviation_")]
    assert [(r["transaction"], r["item_id"]) for r in deviation] == [
        ("deviation_open", "INFUSION_LATE"), ("deviation_acknowledged", "INFUSION_LATE")]
    assert ACK_COMMENT in deviation[1]["reason"] and deviation[1]["changed_by"] == "ivan"
    key = managed.not_enrolled.screening_number
    screening = {r["item_id"]: r["value"] for r in rows if r["subject_id"] == key}
    assert screening["screening_status"] == "not_enrolled"
    assert screening["eligibility_decision"] == "ineligible"
    arms = {r["subject_id"]: r["value"] for r in rows if r["item_id"] == "arm"}
    assert arms == {a.subject_id: a.arm for a in Allocation.objects.all()}
    assert all(parse_z(r["changed_at_utc"]) for r in rows)
    assert (log.query_steps, log.sdv_marks, log.locks, log.deviations, log.screenings) == (
        QueryMessage.objects.count(), 1, 3, 2, 1)


def test_the_odm_log_counts_what_the_file_holds(managed, rumcess):
    data, log = export_bytes(rumcess)
    found = annotations(valid(data))
    count = lambda kind: len([a for a in found if a["kind"] == kind])  # noqa: E731
    assert log.query_steps == count("query") == QueryMessage.objects.count() == 5
    assert (log.sdv_marks, log.locks, log.deviations) == (count("sdv"), count("lock"),
                                                          count("deviation")) == (1, 3, 2)
    assert log.screenings == 1 and log.subjects == Allocation.objects.count()
