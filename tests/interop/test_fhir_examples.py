"""FHIR R4 ingest on the official HL7 examples (../shared/data/fhir_r4_examples, CC0).

Expected values read off the example files by hand: the MAP example is 60 mm[Hg] with
effectivePeriod.start 2018-04-02T10:30:10+01:00; the Glasgow example totals 13 at
2014-12-11T04:44:16Z; the blood-pressure panel is dated 2012-09-17 without a time.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.prescreen.fhir_builders import ANC, obs, patient, transaction
from trialdesk.interop.events import EventKind
from trialdesk.interop.fhir import ingest_json, ingest_ndjson, ingest_resources

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "fhir_r4_examples"


def load_all():
    return ingest_resources(json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json")))


def test_values_from_the_examples():
    result = load_all()
    got = {(e.kind, e.value, e.unit, e.at_utc, e.source) for e in result.events}
    assert got == {
        (EventKind.MAP, 60.0, "mmHg", dt.datetime(2018, 4, 2, 9, 30, 10, tzinfo=dt.UTC),
         "Observation/map-sitting"),
        (EventKind.GCS, 13.0, "points", dt.datetime(2014, 12, 11, 4, 44, 16, tzinfo=dt.UTC),
         "Observation/glasgow"),
    }
    assert result.patients["example"].birth_date == dt.date(1974, 12, 25)
    assert result.encounters[0]["patient_id"] == "f201"


def test_everything_not_used_is_counted():
    report = load_all().report
    assert report.resources["Observation"] == 9
    assert report.unusable["date_without_time"] == 1  # blood-pressure panel, 2012-09-17
    for rtype in ("Condition", "MedicationRequest", "DiagnosticReport", "ServiceRequest"):
        assert report.unusable[f"unsupported_resource:{rtype}"] == 1
    for code in ("8867-4", "9279-1", "2708-6", "15074-8", "11555-0", "85353-1", "8462-4"):
        assert report.unknown_codes[f"loinc:{code}"] == 1
    assert not report.implausible and not report.unknown_units


def test_invalid_resource_and_bad_json_are_reported():
    bad = {"resourceType": "Observation", "id": "x", "status": "final", "code": "8478-0"}
    report = ingest_resources([bad]).report
    assert report.unusable["invalid_resource:Observation"] == 1
    assert ingest_json("{not json").report.unusable["invalid_json"] == 1


def test_unknown_unit_and_naive_time_are_reported():
    items = [obs("u", "p", ANC, 0.5, "mg/dL", "2026-03-01T07:00:00Z"),
             obs("n", "p", ANC, 0.5, "10*9/L", "2026-03-01T07:00:00")]
    report = ingest_resources(items).report
    assert report.unknown_units == {"anc:mg/dL": 1}
    # FHIR dateTime with a time needs an offset: the R4B model refuses it as invalid
    assert report.unusable["invalid_resource:Observation"] == 1
    assert "effectiveDateTime" in report.examples["unusable:invalid_resource:Observation"][0]


def test_transaction_bundle_and_bulk_ndjson(tmp_path):
    items = [patient("p"), obs("a", "p", ANC, 0.5, "10*9/L", "2026-03-01T07:00:00Z")]
    from_bundle = ingest_resources([transaction(*items)])
    path = tmp_path / "export.ndjson"
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n{oops\n")
    from_ndjson = ingest_ndjson(path)
    assert from_bundle.events == from_ndjson.events
    assert from_ndjson.report.unusable["invalid_json"] == 1
    assert set(from_bundle.patients) == {"p"}
