"""The ODM 1.3.2 export of a trial entered through the real services (conftest.py).

The file is validated against the official CDISC ODM 1.3.2 XSD (../shared/data), then
read back by a small reader written here (plain ``xml.etree``, transactions replayed
in document order) and compared with what the ORM says: every record's current values
with their units, the corrected value's old and new versions with the reason and the
user, the form entered in error as ``Remove``, signatures with their meaning, UTC time
stamps, and one StudyEventDef per scheduled day of the protocol.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from lxml import etree
from typer.testing import CliRunner

from tests.web.conftest import member
from tests.web.exports.conftest import CORRECTION_REASON, ERROR_REASON
from trialdesk.cli import app
from trialdesk.crf.forms import FORMS
from trialdesk.web.casebook.models import FormRecord
from trialdesk.web.datamgmt.models import Signature
from trialdesk.web.exports.models import ExportLog
from trialdesk.web.exports.services import start_export, stream_export
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.sites.models import Site

pytestmark = pytest.mark.django_db

XSD = Path(__file__).resolve().parents[4] / "shared" / "data" / "cdisc_odm" / \
    "xsd_odm_1.3.2" / "ODM1-3-2.xsd"
NS = {"o": "http://www.cdisc.org/ns/odm/v1.3"}
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
#: protocols/rumcess.yaml schedule: SOFA days 0-28, therapy 0-7, markers 0,1,2,3,5,7,14,28,
#: infusion 0, vital status 28 and 90
RUMCESS_DAYS = set(range(29)) | {90}


def export_bytes(rumcess, fmt: str = "odm") -> tuple[bytes, ExportLog]:
    log = start_export(fmt, rumcess, requested_by="test", channel="cli")
    data = b"".join(stream_export(log, rumcess, chunk_size=1))
    log.refresh_from_db()
    return data, log


def q(tag: str) -> str:
    return f"{{{NS['o']}}}{tag}"


# --- an independent reader -------------------------------------------------------------------


def read_odm(data: bytes) -> dict[str, Any]:
    """Replay the ClinicalData: current values per (subject, event, form, record, item),
    every item transaction with its audit, removed records, signatures."""
    root = ET.fromstring(data)
    units = {u.get("OID"): u.get("Name") for u in root.iter(q("MeasurementUnit"))}
    users = {u.get("OID"): u.find(q("LoginName")).text for u in root.iter(q("User"))}
    current: dict[tuple, dict[str, tuple[str, str | None]]] = defaultdict(dict)
    history: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    signatures: list[dict[str, Any]] = []
    sites: dict[str, str] = {}
    for subject in root.iter(q("SubjectData")):
        key = subject.get("SubjectKey")
        site = subject.find(q("SiteRef"))
        if site is not None:
            sites[key] = site.get("LocationOID")
        sig = subject.find(q("Signature"))
        if sig is not None:
            signatures.append({"subject": key, "form": None, **_signature(sig, users)})
        for event in subject.findall(q("StudyEventData")):
            for form in event.findall(q("FormData")):
                record = (key, event.get("StudyEventOID"), form.get("FormOID"),
                          form.get("FormRepeatKey"))
                sig = form.find(q("Signature"))
                if sig is not None:
                    signatures.append({"subject": key, "form": record, **_signature(sig, users)})
                if form.get("TransactionType") == "Remove":
                    removed.append({"record": record, **_audit(form.find(q("AuditRecord")),
                                                               users)})
                    current.pop(record, None)
                    continue
                for item in form.iter(q("ItemData")):
                    oid, tx = item.get("ItemOID"), item.get("TransactionType")
                    if tx == "Context":  # an annotation (query) on the item: no value
                        continue
                    unit_ref = item.find(q("MeasurementUnitRef"))
                    unit = units[unit_ref.get("MeasurementUnitOID")] if unit_ref is not None \
                        else None
                    history.append({"record": record, "item": oid, "tx": tx,
                                    "value": item.get("Value"), "unit": unit,
                                    **_audit(item.find(q("AuditRecord")), users)})
                    if tx == "Remove":
                        current[record].pop(oid, None)
                    else:
                        current[record][oid] = (item.get("Value"), unit)
    return {"current": dict(current), "history": history, "removed": removed,
            "signatures": signatures, "sites": sites, "root": root}


def _audit(audit: ET.Element, users: dict[str, str]) -> dict[str, Any]:
    reason = audit.find(q("ReasonForChange"))
    return {"user": users[audit.find(q("UserRef")).get("UserOID")],
            "at": audit.find(q("DateTimeStamp")).text,
            "reason": reason.text if reason is not None else None,
            "location": audit.find(q("LocationRef")).get("LocationOID")}


def _signature(sig: ET.Element, users: dict[str, str]) -> dict[str, Any]:
    return {"user": users[sig.find(q("UserRef")).get("UserOID")],
            "meaning_oid": sig.find(q("SignatureRef")).get("SignatureOID"),
            "at": sig.find(q("DateTimeStamp")).text}


def orm_current() -> dict[tuple, dict[str, tuple[float | str, str | None]]]:
    """Values of every form in use, straight from the ORM, with the field's unit."""
    expected = {}
    for r in FormRecord.objects.active().select_related("allocation"):
        event = f"SE.DAY{r.day}" if r.day is not None else "SE.UNSCHEDULED"
        items = {}
        for field_id, value in r.data.items():
            unit = FORMS[r.form_id].field(field_id).unit
            if isinstance(value, dict):
                value, unit = value["value"], value["unit"]
            items[f"I.{r.form_id}.{field_id}"] = (value, unit)
        expected[(r.allocation.subject_id, event, f"F.{r.form_id}", str(r.pk))] = items
    return expected


def parse_z(stamp: str) -> dt.datetime:
    assert UTC_Z.match(stamp), stamp
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def same(text: str, value: Any) -> bool:
    if isinstance(value, bool):
        return text == ("true" if value else "false")
    if isinstance(value, int | float):
        return float(text) == float(value)
    return text == value


# --- tests ----------------------------------------------------------------------------------


def test_the_export_is_valid_odm_1_3_2_against_the_cdisc_schema(trial, rumcess):
    data, _ = export_bytes(rumcess)
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    document = etree.fromstring(data)
    assert schema.validate(document), schema.error_log
    root = ET.fromstring(data)
    assert root.tag == q("ODM") and root.get("ODMVersion") == "1.3.2"
    assert root.get("Granularity") == "All" and root.get("FileOID")
    assert root.get("FileType") == "Transactional" and root.get("Archival") == "Yes"
    assert UTC_Z.match(root.get("CreationDateTime"))


def test_every_form_in_use_is_exported_with_its_current_values_and_units(trial, rumcess):
    odm = read_odm(export_bytes(rumcess)[0])
    expected = orm_current()
    # CRF forms here; screening and allocation forms: test_odm_annotations.py
    in_use = {k: v for k, v in odm["current"].items()
              if k[2] not in ("F.adverse_event", "F.screening", "F.randomization")}
    assert set(in_use) == set(expected)
    for record, items in expected.items():
        got = in_use[record]
        assert set(got) == set(items), record
        for oid, (value, unit) in items.items():
            text, got_unit = got[oid]
            assert same(text, value) and got_unit == unit, (record, oid, text, got_unit)
    # the ones the protocol cares about, spelled out
    msc = trial.msc.subject_id
    sofa = odm["current"][(msc, "SE.DAY0", "F.sofa", str(trial.sofa.pk))]
    assert sofa["I.sofa.map_mmhg"] == ("58", "mmHg")
    assert sofa["I.sofa.platelets_10e9_per_l"] == ("35", "10^9/L")
    markers = odm["current"][(msc, "SE.DAY1", "F.inflammatory_markers", str(trial.markers.pk))]
    assert markers["I.inflammatory_markers.lactate_mmol_l"] == ("36", "mg/dL")
    assert markers["I.inflammatory_markers.il6_pg_per_ml"] == ("1250.5", "pg/mL")
    # every randomized subject (also those without forms), at their site
    assert odm["sites"] == {a.subject_id: f"LOC.{a.site.code}"
                            for a in Allocation.objects.select_related("site")}


def test_a_corrected_value_shows_the_old_and_new_value_with_reason_and_user(trial, rumcess):
    odm = read_odm(export_bytes(rumcess)[0])
    record = (trial.msc.subject_id, "SE.DAY0", "F.sofa", str(trial.sofa.pk))
    map_history = [h for h in odm["history"]
                   if h["record"] == record and h["item"] == "I.sofa.map_mmhg"]
    assert [(h["tx"], h["value"], h["unit"]) for h in map_history] == [
        ("Insert", "62", "mmHg"), ("Update", "58", "mmHg")]
    assert map_history[1]["reason"] == CORRECTION_REASON
    assert map_history[1]["user"] == "ivan" and map_history[1]["location"] == "LOC.nrch"
    # the untouched items were not repeated in the correction
    assert [h["tx"] for h in odm["history"] if h["record"] == record
            and h["item"] == "I.sofa.gcs"] == ["Insert"]
    # the audit times are the history rows' times, in UTC
    rows = trial.sofa.history.order_by("history_date")
    assert [parse_z(h["at"]) for h in map_history] == [r.history_date for r in rows]


def test_the_form_entered_in_error_is_present_as_remove_with_its_data(trial, rumcess):
    odm = read_odm(export_bytes(rumcess)[0])
    record = (trial.msc.subject_id, "SE.DAY1", "F.standard_therapy", str(trial.retired.pk))
    (removal,) = odm["removed"]
    assert removal["record"] == record and removal["user"] == "ivan"
    assert removal["reason"] == f"entered in error: {ERROR_REASON}"
    # its values stay in the file (inserted before the removal) …
    inserted = {h["item"]: h["value"] for h in odm["history"] if h["record"] == record}
    assert inserted["I.standard_therapy.blood_culture_sets"] == "2"
    # … and the re-entered form for the same day is the one in use
    again = (trial.msc.subject_id, "SE.DAY1", "F.standard_therapy", str(trial.therapy.pk))
    assert odm["current"][again]["I.standard_therapy.blood_culture_sets"] == ("3", "sets")


def test_signatures_are_present_with_their_meaning_signer_and_utc_time(trial, rumcess):
    odm = read_odm(export_bytes(rumcess)[0])
    root = odm["root"]
    meanings = {d.get("OID"): d.find(q("Meaning")).text for d in root.iter(q("SignatureDef"))}
    by_meaning = {s["meaning_oid"]: s for s in odm["signatures"]}
    assert set(by_meaning) == {"SD.authorship", "SD.responsibility"}
    form_sig = by_meaning["SD.authorship"]
    assert form_sig["form"] == (trial.msc.subject_id, "SE.DAY0", "F.sofa", str(trial.sofa.pk))
    assert form_sig["user"] == "ivan" and meanings["SD.authorship"].startswith("authorship")
    casebook = by_meaning["SD.responsibility"]
    assert casebook["form"] is None and casebook["subject"] == trial.msc.subject_id
    signed = {s.meaning: s for s in Signature.objects.all()}
    for meaning, sig in by_meaning.items():
        row = signed[meaning.removeprefix("SD.")]
        assert parse_z(sig["at"]) == row.signed_at
        assert row.digest in ET.tostring(root, encoding="unicode")


def test_every_time_stamp_is_utc_with_z(trial, rumcess):
    root = read_odm(export_bytes(rumcess)[0])["root"]
    stamps = [e.text for e in root.iter(q("DateTimeStamp"))]
    assert len(stamps) > 20 and all(UTC_Z.match(s) for s in stamps)


def test_the_adverse_event_and_its_follow_up_are_exported(trial, rumcess):
    odm = read_odm(export_bytes(rumcess)[0])
    record = (trial.msc.subject_id, "SE.AE", "F.adverse_event", str(trial.ae.pk))
    assert odm["current"][record]["I.adverse_event.outcome"] == ("recovered", None)
    assert odm["current"][record]["I.adverse_event.severity_grade"] == ("2", "grade")
    outcome = [(h["tx"], h["value"], h["reason"]) for h in odm["history"]
               if h["record"] == record and h["item"] == "I.adverse_event.outcome"]
    assert outcome == [("Insert", "recovering", "adverse event reported"),
                       ("Update", "recovered", "follow-up: recovered")]


def test_the_protocols_scheduled_days_are_the_study_event_defs(rumcess):
    root = ET.fromstring(export_bytes(rumcess)[0])
    events = {e.get("OID"): e for e in root.iter(q("StudyEventDef"))}
    days = {int(oid.removeprefix("SE.DAY")) for oid in events if oid.startswith("SE.DAY")}
    assert days == RUMCESS_DAYS
    forms = lambda oid: {f.get("FormOID") for f in events[oid].findall(q("FormRef"))}  # noqa: E731
    assert forms("SE.DAY0") == {"F.sofa", "F.standard_therapy", "F.inflammatory_markers",
                                "F.msc_infusion"}
    assert forms("SE.DAY90") == {"F.vital_status"}
    assert forms("SE.UNSCHEDULED") == {"F.msc_product", "F.msc_not_given", "F.end_of_study"}
    # every item of the library, with its unit
    items = {i.get("OID"): i for i in root.iter(q("ItemDef"))}
    units = {u.get("OID"): u.get("Name") for u in root.iter(q("MeasurementUnit"))}
    for form in FORMS.values():
        for f in form.fields:
            refs = [units[r.get("MeasurementUnitOID")]
                    for r in items[f"I.{form.id}.{f.id}"].findall(q("MeasurementUnitRef"))]
            assert refs == list(f.units), (form.id, f.id)


def test_the_csv_has_one_row_per_value_change_with_unit_time_user_reason(trial, rumcess):
    import csv
    import io

    data, log = export_bytes(rumcess, "csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    msc = trial.msc.subject_id
    map_rows = [r for r in rows if r["subject_id"] == msc and r["item_id"] == "map_mmhg"]
    assert [(r["value"], r["unit"], r["transaction"], r["version"]) for r in map_rows] == [
        ("62", "mmHg", "insert", "1"), ("58", "mmHg", "update", "2")]
    assert map_rows[1]["reason"] == CORRECTION_REASON and map_rows[1]["changed_by"] == "ivan"
    assert all(UTC_Z.match(r["changed_at_utc"]) for r in rows)
    lactate = [r for r in rows if r["item_id"] == "lactate_mmol_l"]
    assert [(r["value"], r["unit"], r["day"]) for r in lactate] == [("36", "mg/dL", "1")]
    retired = [r for r in rows if r["record_id"] == str(trial.retired.pk)
               and r["form_id"] == "standard_therapy"]
    assert {r["transaction"] for r in retired} == {"insert", "remove"}
    assert all(r["reason"] == f"entered in error: {ERROR_REASON}" and r["value"] == ""
               for r in retired if r["transaction"] == "remove")
    assert len([r for r in retired if r["transaction"] == "remove"]) == len(
        trial.retired.data)
    assert sorted(r["value"] for r in rows if r["transaction"] == "sign") == [
        "authorship", "responsibility"]
    # the last row per (record, item) is the current value, as the ORM has it
    last: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in rows:
        if r["item_id"] and r["transaction"] in ("insert", "update", "remove"):
            last[(r["form_id"], r["record_id"], r["item_id"])] = r
    for record in FormRecord.objects.active():
        for field_id, value in record.data.items():
            value = value["value"] if isinstance(value, dict) else value
            assert same(last[(record.form_id, str(record.pk), field_id)]["value"], value)
    assert log.item_data == len([r for r in rows if r["item_id"] and r["transaction"]
                                 in ("insert", "update", "remove")])
    assert hashlib.sha256(data).hexdigest() == log.sha256


def test_each_export_is_logged_with_the_sha256_of_its_bytes(trial, rumcess):
    data, log = export_bytes(rumcess)
    assert log.finished_at is not None and log.sha256 == hashlib.sha256(data).hexdigest()
    assert log.size_bytes == len(data) and log.removed_forms == 1
    assert log.subjects == Allocation.objects.count()
    assert log.signatures == 2 and log.history.count() == 2  # started, completed


def test_cli_export_odm_and_csv_write_the_files_and_log_them(trial, tmp_path):
    for fmt, name in (("odm", "trial.xml"), ("csv", "trial.csv")):
        path = tmp_path / name
        result = CliRunner().invoke(app, ["export", fmt, "--out", str(path), "--json"])
        assert result.exit_code == 0, result.output
        log = ExportLog.objects.filter(format=fmt).latest("started_at")
        assert log.channel == "cli" and log.requested_by.startswith("cli:")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == log.sha256
        assert f'"sha256": "{log.sha256}"' in result.output
    odm = read_odm((tmp_path / "trial.xml").read_bytes())
    assert {trial.msc.subject_id, trial.control.subject_id} <= set(odm["sites"])
    assert "map_mmhg" in (tmp_path / "trial.csv").read_text(encoding="utf-8")


def test_cli_an_unwritable_path_is_refused_with_the_input_exit_code(trial, tmp_path):
    result = CliRunner().invoke(app, ["export", "odm", "--out",
                                      str(tmp_path / "missing" / "trial.xml")])
    assert result.exit_code == 3 and "cannot write" in result.output
    assert not ExportLog.objects.exists()


def test_the_data_manager_downloads_a_streamed_file_and_the_export_is_logged(
        trial, data_manager):
    client = Client(HTTP_HOST="localhost")
    client.force_login(data_manager)
    page = client.get("/exports/")
    assert page.status_code == 200 and b"Download ODM 1.3.2" in page.content
    response = client.get("/exports/odm/")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("application/xml")
    assert "attachment" in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    log = ExportLog.objects.get(pk=int(response["X-TrialDesk-Export-Id"]))
    assert log.user == data_manager and log.sha256 == hashlib.sha256(data).hexdigest()
    assert len(read_odm(data)["sites"]) == Allocation.objects.count() == log.subjects
    csv_response = client.get("/exports/csv/")
    assert isinstance(csv_response, StreamingHttpResponse)
    assert b"subject_id,site,day" in b"".join(csv_response.streaming_content)


def test_only_roles_with_data_export_see_the_link_and_get_the_file(trial, investigator,
                                                                  data_manager):
    ivan = Client(HTTP_HOST="localhost")
    ivan.force_login(investigator)
    assert ivan.get("/exports/odm/").status_code == 403
    assert b"/exports/" not in ivan.get("/").content
    dora = Client(HTTP_HOST="localhost")
    dora.force_login(data_manager)
    assert b'href="/exports/"' in dora.get("/").content


def test_an_administrator_of_another_site_exports_none_of_this_sites_subjects(
        trial, django_user_model):
    other = Site.objects.create(code="other", name="Other ICU", timezone="Europe/Moscow")
    admin = member(django_user_model.objects.create_user("adam", password="y" * 16),
                   "administrator", other)
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    data = b"".join(client.get("/exports/odm/").streaming_content)
    odm = read_odm(data)
    assert odm["sites"] == {} and odm["current"] == {}
