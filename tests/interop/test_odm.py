"""The ODM writer and the long CSV of the pure core, on records written out by hand.

Expectations are enumerated from the versions given (which item was inserted, changed,
cleared in which version) and checked against the official ODM 1.3.2 XSD.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from lxml import etree

from trialdesk.crf.forms import FORMS
from trialdesk.interop import long_csv
from trialdesk.interop.odm import (
    Audit,
    FormInstance,
    OdmWriter,
    RecordVersion,
    SignatureEntry,
    SiteInfo,
    SubjectRecord,
    UserInfo,
    study_metadata,
    transactions,
    utc_stamp,
    value_text,
)
from trialdesk.protocol import load_protocol

XSD = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdisc_odm" / \
    "xsd_odm_1.3.2" / "ODM1-3-2.xsd"
ODM_NS = "{http://www.cdisc.org/ns/odm/v1.3}"
MSK = dt.timezone(dt.timedelta(hours=3))
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=MSK)  # 06:00 UTC


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def audit(minutes: int, reason: str = "", user: str = "ivan") -> Audit:
    return Audit(user, "nrch", at(minutes), reason, f"row {minutes}")


MARKERS = FormInstance("inflammatory_markers", 1, "7", (
    RecordVersion({"il6_pg_per_ml": 800, "crp_mg_l": 90}, audit(0, "form entered")),
    RecordVersion({"il6_pg_per_ml": 800, "crp_mg_l": 95,
                   "lactate_mmol_l": {"value": 36, "unit": "mg/dL"}}, audit(10, "lab corrected")),
    RecordVersion({"crp_mg_l": 95, "lactate_mmol_l": {"value": 36, "unit": "mg/dL"}},
                  audit(20, "IL-6 was another patient's")),
    RecordVersion({"crp_mg_l": 95, "lactate_mmol_l": {"value": 36, "unit": "mg/dL"}},
                  audit(30, "entered in error: wrong day"), entered_in_error=True),
), signatures=(SignatureEntry("ivan", "nrch", "review", at(15), "ab" * 32, "Ivan Petrov"),))


def subject(key: str, *forms: FormInstance) -> SubjectRecord:
    return SubjectRecord(key, "nrch", audit(-60, "randomized", user="alice"), forms,
                         (SignatureEntry("ivan", "nrch", "responsibility", at(40), "cd" * 32),))


def writer(**kw) -> OdmWriter:
    return OdmWriter(study_metadata(load_protocol()),
                     users=[UserInfo("ivan", "Ivan Petrov"), UserInfo("alice")],
                     sites=[SiteInfo("nrch", "NRCH ICU")], file_oid="test.1",
                     created_at=at(60), **kw)


def test_versions_become_insert_update_remove_with_only_the_changed_items():
    txs = list(transactions(MARKERS, FORMS["inflammatory_markers"]))  # in form order
    summary = [(t.transaction, t.version, [(c.field_id, c.transaction) for c in t.items],
                t.signature.meaning if t.signature else None) for t in txs]
    assert summary == [
        ("Insert", 1, [("il6_pg_per_ml", "Insert"), ("crp_mg_l", "Insert")], None),
        ("Update", 2, [("crp_mg_l", "Update"), ("lactate_mmol_l", "Insert")], None),
        ("Context", 2, [], "review"),  # signed at +15 min: after version 2, before 3
        ("Update", 3, [("il6_pg_per_ml", "Remove")], None),
        ("Remove", 4, [], None),
    ]


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("crp_mg_l", 95, ("95", "mg/L")),
    ("crp_mg_l", 95.5, ("95.5", "mg/L")),
    ("lactate_mmol_l", {"value": 36, "unit": "mg/dL"}, ("36", "mg/dL")),
    ("sampled_at", "2026-03-01T02:15:00+03:00", ("2026-03-01T02:15:00+03:00", None)),
])
def test_values_are_written_as_entered_with_their_unit(field, value, expected):
    definition = study_metadata(load_protocol()).definition("inflammatory_markers")
    assert value_text(definition, field, value) == expected


def test_utc_stamps_end_in_z_and_refuse_naive_times():
    assert utc_stamp(T0) == "2026-03-01T06:00:00Z"
    assert utc_stamp(T0.replace(microsecond=5)) == "2026-03-01T06:00:00.000005Z"
    with pytest.raises(ValueError, match="UTC offset"):
        utc_stamp(dt.datetime(2026, 3, 1, 6, 0))


def test_the_document_is_streamed_one_subject_per_chunk_and_is_valid_odm():
    w = writer()
    subjects = [subject(f"S-{i}", MARKERS) for i in range(3)]
    chunks = list(w.chunks(iter(subjects)))
    # header, study, admin data, ClinicalData start, one per subject, the end
    assert len(chunks) == 4 + 3 + 1
    assert sum("<SubjectData SubjectKey=" in c and 'TransactionType="Insert"' in c
               for c in chunks) == 3
    data = "".join(chunks).encode()
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.fromstring(data)), schema.error_log
    assert w.counts.subjects == 3 and w.counts.removed_forms == 3
    assert w.counts.signatures == 6 and w.counts.item_data == 3 * 5


def test_control_characters_typed_into_text_do_not_break_the_xml():
    form = FormInstance("end_of_study", None, "9", (
        RecordVersion({"status": "withdrawn", "date": "2026-03-02",
                       "reason": "family\x0b request <urgent> & \"final\""}, audit(0)),))
    data = "".join(writer().chunks([subject("S-1", form)])).encode()
    root = ET.fromstring(data)
    (reason,) = [i.get("Value") for i in root.iter(f"{ODM_NS}ItemData")
                 if i.get("ItemOID") == "I.end_of_study.reason"]
    assert reason == "family\ufffd request <urgent> & \"final\""


def test_an_audit_user_missing_from_admin_data_is_refused():
    form = FormInstance("sofa", 0, "1", (RecordVersion({"gcs": 15}, audit(0, user="mallory")),))
    with pytest.raises(KeyError, match="mallory"):
        "".join(writer().chunks([subject("S-1", form)]))


def test_the_long_csv_ends_a_retired_record_with_remove_rows():
    meta = study_metadata(load_protocol())
    out = io.StringIO(newline="")
    counts = long_csv.write_csv(out, meta, [subject("S-1", MARKERS)])
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["item_id"], r["value"], r["unit"], r["transaction"], r["version"])
            for r in rows] == [
        ("il6_pg_per_ml", "800", "pg/mL", "insert", "1"),
        ("crp_mg_l", "90", "mg/L", "insert", "1"),
        ("crp_mg_l", "95", "mg/L", "update", "2"),
        ("lactate_mmol_l", "36", "mg/dL", "insert", "2"),
        ("", "review", "", "sign", "2"),
        ("il6_pg_per_ml", "", "pg/mL", "remove", "3"),
        ("crp_mg_l", "", "mg/L", "remove", "4"),
        ("lactate_mmol_l", "", "mg/dL", "remove", "4"),
        ("", "responsibility", "", "sign", ""),
    ]
    assert rows[2]["changed_at_utc"] == "2026-03-01T06:10:00Z"
    assert rows[2]["reason"] == "lab corrected" and rows[2]["changed_by"] == "ivan"
    assert counts.item_data == 7 and counts.signatures == 2
