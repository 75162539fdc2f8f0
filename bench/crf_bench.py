"""Saving a daily CRF (SOFA) under 20 concurrent clients, with 1,000 patients × 28 days
of forms in the database, SQLite vs PostgreSQL.

    python bench/crf_bench.py [--clients 20] [--patients 1000] [--days 28] [--postgres URL]

Each client is a separate process. Four requests are measured side by side in one run:

* ``healthz (peer)``: the cheapest page of the app (HTTP stack, middleware, session);
* ``bare ORM insert (peer)``: the same FormRecord row written with ``bulk_create`` — no
  edit checks, no SOFA, no history, no audit chain: the floor for one row;
* ``save_form service``: the production use case without HTTP (lock check, edit checks,
  SOFA by the clinical core, history row with reason, audit hash chain);
* ``POST form page``: a coordinator saving the day-28 SOFA form through the web page.

The database is seeded with ``--patients`` randomized patients, each with SOFA forms for
days 0 … ``--days``−1 (and their history rows); each measured save writes a new day-28
form of a different patient.
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

SOFA_FORM = {"pao2_mmhg": "70", "fio2_fraction": "0.5", "respiratory_support": "invasive",
             "platelets_10e9_per_l": "35", "bilirubin_umol_l": "40", "map_mmhg": "62",
             "norepinephrine_ug_kg_min": "0.25", "gcs": "11", "creatinine_umol_l": "180",
             "urine_ml_per_day": "350"}
SOFA_DATA = {k: (v if k == "respiratory_support" else float(v)) for k, v in SOFA_FORM.items()}


def seed(patients: int, days: int):
    import datetime as dt

    from django.contrib.auth import get_user_model
    from simple_history.utils import bulk_create_with_history

    from trialdesk.crf.checks import sofa_for
    from trialdesk.protocol import load_protocol
    from trialdesk.web.accounts.models import Membership
    from trialdesk.web.casebook.models import FormRecord
    from trialdesk.web.randomization.models import Allocation
    from trialdesk.web.screening.models import Screening, ScreeningStatus
    from trialdesk.web.sites.services import sync_sites

    protocol = load_protocol()
    site = sync_sites(protocol)[0]
    user = get_user_model().objects.create_user("bench", password="x" * 20)
    Membership.objects.create(user=user, role="coordinator", site=site)
    randomized = dt.datetime.now(dt.UTC) - dt.timedelta(days=days + 2)
    record = {"birth_date": "1980-01-01", "sex": "female", "septic_shock": True,
              "septic_shock_onset": (randomized - dt.timedelta(hours=4)).isoformat(),
              "neutrophils": {"value": 0.3, "unit": "10^9/L"}, "consent_signed": True,
              "neutropenia_cause": "post_chemotherapy"}
    Screening.objects.bulk_create(
        Screening(site=site, screening_number=f"B{i:05d}", record=record,
                  onset_utc=randomized - dt.timedelta(hours=4), created_by=user,
                  status=ScreeningStatus.RANDOMIZED) for i in range(patients))
    screenings = list(Screening.objects.order_by("pk"))
    Allocation.objects.bulk_create(
        Allocation(subject_id=f"RUMCESS-NRCH-{i + 1:04d}", screening=s, site=site,
                   arm=("msc", "control")[i % 2], stratum="neutropenia_cause=post_chemotherapy",
                   levels={"neutropenia_cause": "post_chemotherapy"}, request_id=f"seed-{i}",
                   randomized_by=user, randomized_at=randomized, protocol_id="rumcess",
                   protocol_version="1.0", protocol_sha256=protocol.content_sha256,
                   method="permuted_blocks") for i, s in enumerate(screenings))
    allocations = list(Allocation.objects.order_by("pk"))
    derived = {"sofa": sofa_for(SOFA_DATA).to_dict()}
    for start in range(0, len(allocations), 100):
        bulk_create_with_history(
            [FormRecord(allocation=a, form_id="sofa", day=day, data=SOFA_DATA, derived=derived,
                        entered_by=user)
             for a in allocations[start:start + 100] for day in range(days)],
            FormRecord, default_user=user, default_change_reason="form entered (seed)")
    return protocol, user, allocations


def child(clients: int, patients: int, days: int, requests: int) -> dict:
    import multiprocessing as mp

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client

    call_command("migrate", verbosity=0)
    from trialdesk.web.casebook.models import FormRecord
    from trialdesk.web.casebook.services import save_form

    protocol, user, allocations = seed(patients, days)
    rows = FormRecord.objects.count()
    connections.close_all()
    ctx = mp.get_context("fork")
    per_kind = clients * requests
    if 3 * per_kind > len(allocations):
        raise SystemExit("need at least 3 × clients × requests patients")
    day = days  # the next day of every patient: a new form

    def run(make_request, patients_for_kind):
        shares = [patients_for_kind[i * requests:(i + 1) * requests] for i in range(clients)]
        barrier = ctx.Barrier(clients)
        queue = ctx.Queue()

        def body(share):
            connections.close_all()
            client = Client(HTTP_HOST="localhost")
            client.force_login(user)
            client.get("/healthz")
            client.get(f"/casebook/{allocations[-1].subject_id}/forms/sofa/0/")  # warm-up
            barrier.wait()
            latencies = []
            for item in share:
                t0 = time.perf_counter()
                make_request(client, item)
                latencies.append(time.perf_counter() - t0)
            connections.close_all()
            queue.put(latencies)

        procs = [ctx.Process(target=body, args=(s,)) for s in shares]
        for p in procs:
            p.start()
        lat = sorted(x for _ in procs for x in queue.get())
        for p in procs:
            p.join()
        if len(lat) != clients * requests:
            raise SystemExit("a client process failed")
        return {"p50_ms": 1000 * statistics.median(lat),
                "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))], "n": len(lat)}

    def healthz(client, _):
        assert client.get("/healthz").status_code == 200

    def bare(client, allocation):
        FormRecord.objects.bulk_create([FormRecord(allocation=allocation, form_id="sofa",
                                                   day=day, data=SOFA_DATA,
                                                   entered_by=user)])

    def service(client, allocation):
        save_form(protocol, allocation, "sofa", day, SOFA_DATA, user=user)

    def page(client, allocation):
        response = client.post(f"/casebook/{allocation.subject_id}/forms/sofa/{day}/",
                               SOFA_FORM)
        assert response.status_code == 302, response.status_code

    results = {
        "healthz (peer)": run(healthz, [None] * per_kind),
        "bare ORM insert (peer)": run(bare, allocations[:per_kind]),
        "save_form service": run(service, allocations[per_kind:2 * per_kind]),
        "POST form page": run(page, allocations[2 * per_kind:3 * per_kind]),
    }
    saved = FormRecord.objects.filter(day=day).count()
    if saved != 3 * per_kind:
        raise SystemExit(f"expected {3 * per_kind} new forms, found {saved}")
    return {"vendor": connection.vendor, "rows": rows, "results": results}


def run_backend(env_extra: dict[str, str], args) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIALDESK_", "DATABASE"))}
    env.update({"DJANGO_SETTINGS_MODULE": "trialdesk.web.settings", "TRIALDESK_SECRET_KEY":
                "b" * 50, "TRIALDESK_SECURE_COOKIES": "0", "PYTHONPATH": str(ROOT)},
               **env_extra)
    command = [sys.executable, __file__, "--child", "--clients", str(args.clients),
               "--patients", str(args.patients), "--days", str(args.days),
               "--requests", str(args.requests)]
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                         check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28, help="forms already saved per patient")
    parser.add_argument("--requests", type=int, default=5, help="saves per client and kind")
    parser.add_argument("--postgres", default=os.environ.get("TRIALDESK_TEST_DATABASE_URL")
                        or os.environ.get("DATABASE_URL"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.clients, args.patients, args.days, args.requests)))
        return
    backends = []
    with tempfile.TemporaryDirectory() as tmp:
        backends.append(run_backend({"TRIALDESK_SQLITE_PATH": f"{tmp}/b.sqlite3"}, args))
    if args.postgres:
        import psycopg

        name = f"trialdesk_crfbench_{os.getpid()}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
            backends.append(run_backend({"DATABASE_URL": url}, args))
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"{args.clients} concurrent client processes, {args.requests} saves each per kind; "
          f"{args.patients} patients × {args.days} days of SOFA forms "
          f"({backends[0]['rows']} rows + history)\n")
    print("| database | request | p50 ms | p95 ms | p95 / bare ORM p95 | p95 / healthz p95 |")
    print("|---|---|---:|---:|---:|---:|")
    for b in backends:
        bare = b["results"]["bare ORM insert (peer)"]["p95_ms"]
        peer = b["results"]["healthz (peer)"]["p95_ms"]
        for name, r in b["results"].items():
            print(f"| {b['vendor']} | {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                  f"{r['p95_ms'] / bare:.1f} | {r['p95_ms'] / peer:.1f} |")


if __name__ == "__main__":
    main()
