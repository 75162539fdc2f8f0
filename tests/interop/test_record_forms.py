"""The screening form, the masking rule and the flags, on records written out by hand.

Expectations are enumerated: which keys the RUMCESS screening record has
(docs/formats.md), how the masking values of ClinicalTrials.gov map to "arm in the file",
and the XSD validity of a document that carries annotations of every kind.
"""

from __future__ import annotations

import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from lxml import etree

from trialdesk.interop import long_csv
from trialdesk.interop.odm import (
    Audit,
    FormInstance,
    Note,
    OdmWriter,
    RecordVersion,
    SiteInfo,
    SubjectRecord,
    UserInfo,
    study_metadata,
)
from trialdesk.interop.record_forms import (
    allocation_exportable,
    allocation_statement,
    screening_form,
    screening_values,
)
from trialdesk.protocol import load_protocol

XSD = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdisc_odm" / \
    "xsd_odm_1.3.2" / "ODM1-3-2.xsd"
ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
T0 = dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC)


def with_masking(masking):
    p = load_protocol()
    return p.model_copy(update={"identifiers": p.identifiers.model_copy(
        update={"masking": masking})})


@pytest.mark.parametrize(("masking", "included"), [
    ("none", True), ("single", False), ("double", False), ("triple", False),
    ("quadruple", False), (None, False)])
def test_only_an_open_label_protocol_puts_the_arm_in_the_file(masking, included):
    protocol = with_masking(masking)
    assert allocation_exportable(protocol) is included
    assert ("included" if included else "omitted") in allocation_statement(protocol)
    events = {e.oid for e in study_metadata(protocol).events}
    assert ("SE.RANDOMIZATION" in events) is included
    assert "SE.SCREENING" in events


def test_rumcess_is_open_label():
    assert load_protocol().identifiers.masking == "none"


def test_the_screening_form_has_the_protocols_fields_and_no_other_key():
    protocol = load_protocol()
    form = screening_form(protocol)
    assert form.field_ids == (
        "screening_number", "birth_date", "sex", "pregnant", "septic_shock",
        "septic_shock_onset", "neutrophils", "wbc_10e9_per_l", "neutrophil_percent",
        "segmented_percent", "band_percent", "consent_signed",
        "chemoresistant_oncohematological", "neutropenia_cause", "eligibility_decision",
        "screening_status", "not_enrolled_reason")
    record = {"sex": "male", "neutrophils": {"value": 400, "unit": "cells/µL"},
              "patient_name": "Ivanov", "septic_shock": True}
    values = screening_values(form, record, screening_number="S-NRCH-0001",
                              status="open", not_enrolled_reason="", decision="incomplete")
    assert values == {"screening_number": "S-NRCH-0001", "sex": "male",
                      "septic_shock": True,
                      "neutrophils": {"value": 400, "unit": "cells/uL"},
                      "eligibility_decision": "incomplete", "screening_status": "open",
                      "not_enrolled_reason": None}


@pytest.mark.parametrize(("entered", "exported"), [
    ({"value": 0.3, "unit": "K/µL"}, {"value": 0.3, "unit": "10^3/uL"}),
    ({"value": 0.3, "unit": "x10^9/L"}, {"value": 0.3, "unit": "10^9/L"}),
    ({"value": 0.3, "unit": "giga"}, "0.3 giga"),
    ({"value": None, "unit": "10^9/L"}, None),
])
def test_a_measurement_keeps_its_value_and_names_the_unit_it_was_entered_in(entered,
                                                                           exported):
    form = screening_form(load_protocol())
    values = screening_values(form, {"neutrophils": entered}, screening_number="S-1",
                              status="open", not_enrolled_reason="", decision=None)
    assert values.get("neutrophils") == exported


def test_a_document_with_every_kind_of_annotation_is_valid_odm():
    protocol = load_protocol()
    meta = study_metadata(protocol)

    def note(kind, state, minutes, field_id=None, side="Sponsor"):
        return Note(kind, state, f"{kind}_{state}",
                    Audit("dora", "nrch", T0 + dt.timedelta(minutes=minutes), state),
                    f"{kind} {state}", field_id=field_id, side=side)

    sofa = FormInstance("sofa", 0, "7", (
        RecordVersion({"map_mmhg": 62}, Audit("ivan", "nrch", T0, "form entered")),),
        notes=(note("query", "open", 5, "map_mmhg"), note("query", "answered", 6, "map_mmhg",
                                                          "Site"),
               note("sdv", "verified", 7), note("query", "open", 1, "no_such_field")))
    screening = FormInstance("screening", None, "3", (RecordVersion(
        {"screening_number": "S-NRCH-0003", "neutrophils": {"value": 2.5, "unit": "10^9/L"},
         "screening_status": "not_enrolled"}, Audit("ivan", "nrch", T0, "logged")),),
        event="SE.SCREENING")
    subjects = [
        SubjectRecord("RUMCESS-NRCH-001", "nrch", Audit("ivan", "nrch", T0, "randomized"),
                      forms=(sofa,), notes=(note("lock", "locked", 9),
                                            note("deviation", "acknowledged", 8))),
        SubjectRecord("S-NRCH-0003", "nrch", Audit("ivan", "nrch", T0, "logged"),
                      forms=(screening,), randomized=False)]
    writer = OdmWriter(meta, users=[UserInfo("ivan"), UserInfo("dora")],
                       sites=[SiteInfo("nrch", "NRCH")], file_oid="f", created_at=T0)
    out = io.StringIO()
    counts = writer.write(out, subjects, [note("lock", "locked", 20)])
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.fromstring(out.getvalue().encode())), schema.error_log
    assert (counts.subjects, counts.screenings, counts.query_steps, counts.sdv_marks,
            counts.locks, counts.deviations) == (1, 1, 3, 1, 2, 1)
    root = ET.fromstring(out.getvalue())
    on_item = [i for i in root.iter(f"{ODM}ItemData") if i.get("TransactionType") == "Context"]
    assert [i.get("ItemOID") for i in on_item] == ["I.sofa.map_mmhg"] * 2
    # a field the form does not have: the query hangs on the form
    form_level = [f for f in root.iter(f"{ODM}FormData") if f.find(f"{ODM}Annotation")
                  is not None]
    assert len(form_level) == 2  # the query on 'no_such_field' and the SDV mark
    rows = list(long_csv.rows(meta, subjects, study_notes=[note("lock", "locked", 20)]))
    assert [r[9] for r in rows if r[9] not in ("insert", "update")][1:] == [
        "query_open", "query_open", "query_answered", "sdv_verified",
        "deviation_acknowledged", "lock_locked", "lock_locked"]
