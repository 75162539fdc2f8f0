"""Exporting the complete trial record (ODM 1.3.2 and long CSV) of 1,000 patients × 28 days,
streamed, next to a naive export that holds everything in memory.

    python bench/export_bench.py [--patients 1000] [--days 28] [--corrected 0.1]

A SQLite database is seeded once (``bench/crf_bench.py``'s ``seed``: randomized patients,
a SOFA form per day with its history row), then a fraction of the forms is corrected
(a second history version with a changed MAP and a reason) and one form per 50 patients
is marked entered in error. Each variant then runs in its own process on that database,
so its peak resident memory (``ru_maxrss``) is its own:

* ``baseline``: Django set up and the database opened, nothing exported;
* ``ODM streamed`` / ``CSV streamed``: ``trialdesk.web.exports.services.stream_export``
  (chunks of 200 subjects, the file written chunk by chunk) — what the CLI and the
  web download run;
* ``ODM naive DOM (peer)``: every subject's records read at once into a list, the whole
  ``ClinicalData`` built as one ``xml.etree.ElementTree`` DOM, then serialized;
* ``CSV naive pandas (peer)``: every row in a list, one pandas DataFrame, ``to_csv``.

Reported: seconds, item values per second, peak RSS above the baseline, and the ratios
to the streamed export. The naive CSV is checked byte-identical to the streamed one;
the naive ODM has the same number of ItemData elements.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VARIANTS = ("baseline", "ODM streamed", "ODM naive DOM (peer)", "CSV streamed",
            "CSV naive pandas (peer)")


def _seed(patients: int, days: int, corrected: float) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from simple_history.utils import bulk_update_with_history

    from bench.crf_bench import seed
    from trialdesk.web.casebook.models import FormRecord

    t0 = time.perf_counter()
    _protocol, user, allocations = seed(patients, days)
    every = max(1, round(1 / corrected)) if corrected > 0 else 0
    changed = []
    for i, record in enumerate(FormRecord.objects.order_by("pk").iterator(chunk_size=2000)):
        if every and i % every == 0:
            record.data = {**record.data, "map_mmhg": record.data["map_mmhg"] - 4}
            changed.append(record)
    for start in range(0, len(changed), 500):
        bulk_update_with_history(changed[start:start + 500], FormRecord, ["data"],
                                 default_user=user,
                                 default_change_reason="MAP corrected (bench)")
    retired = [FormRecord.objects.filter(allocation=a, day=1).first()
               for a in allocations[::50]]
    for record in retired:
        record.entered_in_error, record.entered_in_error_reason = True, "bench"
    bulk_update_with_history(retired, FormRecord, ["entered_in_error",
                                                   "entered_in_error_reason"],
                             default_user=user, default_change_reason="entered in error: bench")
    return {"forms": FormRecord.objects.count(), "corrected": len(changed),
            "retired": len(retired), "seconds": time.perf_counter() - t0,
            "history_rows": FormRecord.history.count()}


def _variant(name: str, out_path: str) -> dict:
    import django

    django.setup()
    from trialdesk.protocol import load_protocol
    from trialdesk.web.exports import reader
    from trialdesk.web.exports.services import start_export, stream_export

    protocol = load_protocol()
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    items = 0
    if name in ("ODM streamed", "CSV streamed"):
        log = start_export("odm" if name.startswith("ODM") else "csv", protocol,
                           requested_by="bench", channel="cli")
        with open(out_path, "wb") as out:
            for chunk in stream_export(log, protocol):
                out.write(chunk)
        log.refresh_from_db()
        items = log.item_data
    elif name == "ODM naive DOM (peer)":
        items = _naive_odm(protocol, reader, out_path)
    elif name == "CSV naive pandas (peer)":
        items = _naive_csv(protocol, reader, out_path)
    else:  # baseline: Django and the database only
        reader.users()
    seconds = time.perf_counter() - t0
    return {"variant": name, "seconds": seconds, "items": items,
            "rss_start_kb": rss_start,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "bytes": os.path.getsize(out_path) if os.path.exists(out_path) else 0}


def _everything(protocol, reader):
    """Every subject at once: the randomized ones (with the allocation when the protocol
    is open label, as the streamed export), then those screened only."""
    from trialdesk.clinical.timeutil import utcnow
    from trialdesk.interop.record_forms import allocation_exportable

    now = utcnow()
    return (list(reader.subjects(protocol, as_of=now, chunk_size=10**9,
                                 include_allocation=allocation_exportable(protocol)))
            + list(reader.screened_only(protocol, as_of=now, chunk_size=10**9)))


def _naive_odm(protocol, reader, out_path: str) -> int:
    """The textbook way: all records in memory, one DOM for the whole ClinicalData."""
    import xml.etree.ElementTree as ET

    from trialdesk.interop.odm import (
        ODM_NAMESPACE,
        OdmWriter,
        form_oid,
        item_group_oid,
        item_oid,
        study_metadata,
        transactions,
        utc_stamp,
        value_text,
    )

    meta = study_metadata(protocol)
    subjects = _everything(protocol, reader)
    head = OdmWriter(meta, users=reader.users(), sites=reader.sites(), file_oid="naive",
                     created_at=subjects[0].audit.at)
    metadata = head._header().split("\n", 1)[1] + head._study() + head._admin() + "</ODM>"
    root = ET.fromstring(metadata)  # noqa: S314  (text this script just generated)
    clinical = ET.SubElement(root, f"{{{ODM_NAMESPACE}}}ClinicalData",
                             StudyOID=meta.study_oid, MetaDataVersionOID=meta.mdv_oid)
    units = {u.symbol: u.oid for u in meta.units}
    items = 0

    def el(parent, tag, **attrs):
        return ET.SubElement(parent, f"{{{ODM_NAMESPACE}}}{tag}",
                             {k: str(v) for k, v in attrs.items() if v is not None})

    def audit(parent, a):
        rec = el(parent, "AuditRecord")
        el(rec, "UserRef", UserOID=f"USR.{a.user}")
        el(rec, "LocationRef", LocationOID=f"LOC.{a.location}")
        el(rec, "DateTimeStamp").text = utc_stamp(a.at)
        if a.reason:
            el(rec, "ReasonForChange").text = a.reason

    for s in subjects:
        sd = el(clinical, "SubjectData", SubjectKey=s.subject_key, TransactionType="Insert")
        audit(sd, s.audit)
        el(sd, "SiteRef", LocationOID=f"LOC.{s.site}")
        events = {}
        for f in s.forms:
            key = (f.event_oid, f.event_repeat_key)
            if key not in events:
                events[key] = el(sd, "StudyEventData", StudyEventOID=key[0],
                                 StudyEventRepeatKey=key[1], TransactionType="Context")
            definition = meta.definition(f.form_id)
            for tx in transactions(f, definition):
                if tx.note is not None:  # annotations: none in this benchmark's trial
                    continue
                fd = el(events[key], "FormData", FormOID=form_oid(f.form_id),
                        FormRepeatKey=f.record_key, TransactionType=tx.transaction)
                if tx.audit is not None:
                    audit(fd, tx.audit)
                if not tx.items:
                    continue
                ig = el(fd, "ItemGroupData", ItemGroupOID=item_group_oid(f.form_id),
                        TransactionType=tx.transaction)
                for c in tx.items:
                    items += 1
                    text, unit = value_text(definition, c.field_id, c.value)
                    item = el(ig, "ItemData", ItemOID=item_oid(f.form_id, c.field_id),
                              TransactionType=c.transaction,
                              Value=None if c.transaction == "Remove" else text)
                    audit(item, tx.audit)
                    if unit and c.transaction != "Remove":
                        el(item, "MeasurementUnitRef", MeasurementUnitOID=units[unit])
    ET.ElementTree(root).write(out_path, encoding="utf-8", xml_declaration=True)
    return items


def _naive_csv(protocol, reader, out_path: str) -> int:
    """All rows in one pandas DataFrame, then ``to_csv``."""
    import pandas as pd

    from trialdesk.interop import long_csv
    from trialdesk.interop.odm import study_metadata

    rows = list(long_csv.rows(study_metadata(protocol), _everything(protocol, reader)))
    frame = pd.DataFrame(rows[1:], columns=rows[0])
    frame.to_csv(out_path, index=False, lineterminator="\r\n")
    return int((frame["item_id"] != "").sum())


def _child(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], env=env, cwd=ROOT,  # noqa: S603
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--corrected", type=float, default=0.1,
                        help="fraction of forms corrected once (a second version)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "seed":
        print(json.dumps(_seed(args.patients, args.days, args.corrected)))
        return
    if args.child:
        print(json.dumps(_variant(args.child, args.out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TRIALDESK_", "DATABASE"))}
        env.update({"DJANGO_SETTINGS_MODULE": "trialdesk.web.settings",
                    "TRIALDESK_SECRET_KEY": "b" * 50, "TRIALDESK_SECURE_COOKIES": "0",
                    "PYTHONPATH": str(ROOT), "TRIALDESK_SQLITE_PATH": f"{tmp}/bench.sqlite3"})
        seeded = _child(["--child", "seed", "--patients", str(args.patients), "--days",
                         str(args.days), "--corrected", str(args.corrected)], env)
        results = {v: _child(["--child", v, "--out", f"{tmp}/{i}.out"], env)
                   for i, v in enumerate(VARIANTS)}
        same_csv = Path(f"{tmp}/3.out").read_bytes() == Path(f"{tmp}/4.out").read_bytes()
    base = results["baseline"]["maxrss_kb"]
    print(f"{args.patients} patients × {args.days} days of SOFA forms: {seeded['forms']} "
          f"records, {seeded['history_rows']} history rows ({seeded['corrected']} corrected, "
          f"{seeded['retired']} entered in error); seeded in {seeded['seconds']:.0f} s. "
          f"Baseline process (Django + database) peak RSS {base / 1024:.0f} MB.\n")
    print("| export | seconds | item values | item values/s | file MB | peak RSS above "
          "baseline MB | time / streamed | memory / streamed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for fmt in ("ODM", "CSV"):
        streamed = results[f"{fmt} streamed"]
        for name in VARIANTS:
            if not name.startswith(fmt):
                continue
            r = results[name]
            mem = max(r["maxrss_kb"] - base, 1)
            print(f"| {name} | {r['seconds']:.1f} | {r['items']:,} | "
                  f"{r['items'] / r['seconds']:,.0f} | {r['bytes'] / 1e6:.1f} | "
                  f"{mem / 1024:.0f} | {r['seconds'] / streamed['seconds']:.2f} | "
                  f"{mem / max(streamed['maxrss_kb'] - base, 1):.1f} |")
    print(f"\nnaive CSV byte-identical to the streamed CSV: {same_csv}; ODM ItemData: "
          f"streamed {results['ODM streamed']['items']:,}, naive "
          f"{results['ODM naive DOM (peer)']['items']:,}")


if __name__ == "__main__":
    main()
