"""The subject matrix (Patients page) with 1,000 randomized patients × 28 days of forms,
side by side with the obvious per-patient implementation.

    python bench/matrix_bench.py [--patients 1000] [--days 28] [--repeat 15]

The database (SQLite, a fresh file) is seeded with :func:`bench.crf_bench.seed` (the
CRF benchmark's patients, each with SOFA forms for days 0 … ``--days``−1), plus a query
on every 10th patient and a deviation on every 25th. Measured in one run, interleaved:

* ``matrix page, cold``: the page as a trial-wide data manager opens it — every
  patient's schedule computed by the core (the sort is by overdue forms), 50 rows in
  full, rendered — with the remembered schedules forgotten first (the first view of the
  day, or after every patient changed);
* ``matrix page (GET /casebook/)``: the same page viewed again, the schedules of
  unchanged patients remembered (``matrix._schedule``: keyed by every input of the pure
  schedule function);
* ``subject_matrix service``: the same without HTTP and template (warm);
* ``naive peer: casebook() × 50``: the obvious implementation — the first 50 patients
  (by randomization time, no sort by overdue: that would need all 1,000), each read with
  the casebook's per-patient ``casebook()`` plus per-patient counts of queries, SDV marks,
  signatures (``signatures_of``, which reads the casebook again for its digest) and the
  lock. It does less than the default matrix page (50 schedules instead of 1,000: the
  sort by overdue forms needs every patient's schedule);
* ``matrix page sorted by subject``: the page with ``?sort=subject``, where the database
  sorts and pages and only the page's 50 schedules are computed — the like-for-like
  comparison with the naive peer.

Database queries per call are counted too (CaptureQueriesContext).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sprinkle(allocations, user) -> None:
    """Queries and deviations on some patients, so the aggregates have something to count."""
    from django.contrib.contenttypes.models import ContentType

    from trialdesk.clinical.timeutil import utcnow
    from trialdesk.web.casebook.models import Deviation, FormRecord
    from trialdesk.web.datamgmt.models import Query

    now = utcnow()
    ct = ContentType.objects.get_for_model(FormRecord)
    first_forms = {}
    for pk, allocation_id in FormRecord.objects.filter(day=0).values_list("pk",
                                                                          "allocation_id"):
        first_forms[allocation_id] = pk
    Query.objects.bulk_create(
        Query(allocation=a, content_type=ct, object_id=first_forms[a.pk], raised_by=user,
              raised_at=now, updated_at=now) for a in allocations[::10])
    Deviation.objects.bulk_create(
        Deviation(allocation=a, code="LATE_INFUSION", severity="major",
                  message="Infusion 11 h after onset.", detected_at=now)
        for a in allocations[::25])


def naive_rows(protocol, allocations) -> list[dict]:
    """The obvious matrix: per patient, the casebook and a few counts (queries each)."""
    from trialdesk.crf.schedule import SlotStatus
    from trialdesk.crf.vital_status import vital_status
    from trialdesk.web.casebook.services import casebook
    from trialdesk.web.datamgmt import locks
    from trialdesk.web.datamgmt.models import Query, SdvMark
    from trialdesk.web.datamgmt.services import signatures_of

    rows = []
    for a in allocations:
        book = casebook(protocol, a)
        s = book.schedule
        sofa_day = max(book.sofa_by_day, default=None)
        rows.append({
            "subject": a.subject_id, "day": s.today_day,
            "vital": vital_status(book.records.values(), s.day0_date).label,
            "done": s.count(SlotStatus.DONE), "overdue": s.count(SlotStatus.OVERDUE),
            "open_queries": Query.objects.filter(allocation=a,
                                                 state__in=("open", "reopened")).count(),
            "answered": Query.objects.filter(allocation=a, state="answered").count(),
            "sdv": SdvMark.objects.filter(allocation=a, verified=True).count(),
            "signed": any(v.valid for v in signatures_of(a)),
            "locked": locks.lock_state(a).patient_locked,
            "deviations": sum(1 for d in book.deviations if d.status == "open"),
            "sofa": book.sofa_by_day[sofa_day]["total"] if sofa_day is not None else None,
        })
    return rows


def child(patients: int, days: int, repeat: int) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    from bench.crf_bench import seed
    from trialdesk.web.accounts.models import Membership
    from trialdesk.web.casebook.matrix import PAGE_SIZE, clear_schedule_cache, subject_matrix
    from trialdesk.web.casebook.models import FormRecord
    from trialdesk.web.randomization.models import Allocation

    t0 = time.perf_counter()
    protocol, user, allocations = seed(patients, days)
    Membership.objects.create(user=user, role="data_manager", site=None)
    sprinkle(allocations, user)
    seeded_s = time.perf_counter() - t0
    rows = FormRecord.objects.count()
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    everyone = Allocation.objects.all()
    first_page = list(Allocation.objects.select_related("site", "screening")
                      .order_by("-randomized_at", "subject_id")[:PAGE_SIZE])

    def page():
        response = client.get("/casebook/")
        assert response.status_code == 200
        assert f"1–{PAGE_SIZE} of {patients} " in response.content.decode()

    def page_cold():
        clear_schedule_cache()
        page()

    def page_by_subject():
        response = client.get("/casebook/?sort=subject")
        assert response.status_code == 200
        assert f"1–{PAGE_SIZE} of {patients} " in response.content.decode()

    def service():
        assert len(subject_matrix(protocol, everyone).rows) == PAGE_SIZE

    def naive():
        assert len(naive_rows(protocol, first_page)) == PAGE_SIZE

    kinds = {"matrix page, cold (schedule cache emptied)": page_cold,
             "matrix page (GET /casebook/)": page, "subject_matrix service": service,
             "matrix page sorted by subject (?sort=subject)": page_by_subject,
             "naive peer: casebook() × 50": naive}
    queries = {}
    for name, fn in kinds.items():  # warm-up, and the number of database queries
        with CaptureQueriesContext(connection) as captured:
            fn()
        queries[name] = len(captured.captured_queries)
    latencies: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(repeat):  # interleaved, so noise hits every kind alike
        for name, fn in kinds.items():
            t = time.perf_counter()
            fn()
            latencies[name].append(time.perf_counter() - t)
    results = {}
    for name, lat in latencies.items():
        lat.sort()
        results[name] = {"p50_ms": 1000 * statistics.median(lat),
                         "p95_ms": 1000 * lat[round(0.95 * (len(lat) - 1))],
                         "queries": queries[name], "n": len(lat)}
    return {"vendor": connection.vendor, "rows": rows, "seed_s": seeded_s,
            "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28, help="SOFA forms saved per patient")
    parser.add_argument("--repeat", type=int, default=15, help="measured calls per kind")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.patients, args.days, args.repeat)))
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIALDESK_", "DATABASE"))}
    with tempfile.TemporaryDirectory() as tmp:
        env.update({"DJANGO_SETTINGS_MODULE": "trialdesk.web.settings",
                    "TRIALDESK_SECRET_KEY": "b" * 50, "TRIALDESK_SECURE_COOKIES": "0",
                    "TRIALDESK_SQLITE_PATH": f"{tmp}/m.sqlite3", "PYTHONPATH": str(ROOT)})
        command = [sys.executable, __file__, "--child", "--patients", str(args.patients),
                   "--days", str(args.days), "--repeat", str(args.repeat)]
        out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                             check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    b = json.loads(out.stdout.strip().splitlines()[-1])
    naive = b["results"]["naive peer: casebook() × 50"]
    print(f"{args.patients} randomized patients × {args.days} days of SOFA forms "
          f"({b['rows']} form rows + history; seeded in {b['seed_s']:.0f} s), {b['vendor']}; "
          f"{args.repeat} calls per kind, interleaved; page = 50 patients\n")
    print("| call | p50 ms | p95 ms | DB queries | p50 / naive p50 | p95 / naive p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in b["results"].items():
        print(f"| {name} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['queries']} | "
              f"{r['p50_ms'] / naive['p50_ms']:.2f} | {r['p95_ms'] / naive['p95_ms']:.2f} |")


if __name__ == "__main__":
    main()
