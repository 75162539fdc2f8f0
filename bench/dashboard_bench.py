"""Screening dashboard with 1,000 open screenings, and randomization requests, under 20
concurrent clients, SQLite vs PostgreSQL.

    python bench/dashboard_bench.py [--clients 20] [--screenings 1000] [--postgres URL]

Each client is a separate process driving the WSGI application through Django's test
client (full middleware, sessions, permission checks, templates; no network). The
peer in the same run is the health-check page, the cheapest page of the same app.
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


def child(clients: int, screenings: int, requests: int) -> dict:
    import datetime as dt
    import multiprocessing as mp
    import uuid

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client

    call_command("migrate", verbosity=0)
    from trialdesk.protocol import load_protocol
    from trialdesk.randomization import generate_list
    from trialdesk.web.accounts.models import Membership
    from trialdesk.web.randomization.services import import_list
    from trialdesk.web.screening.models import Screening
    from trialdesk.web.sites.services import sync_sites

    protocol = load_protocol()
    site = sync_sites(protocol)[0]
    user = get_user_model().objects.create_user("bench", password="x" * 20)
    Membership.objects.create(user=user, role="coordinator", site=site)
    alist = generate_list(protocol, seed="bench", size_per_stratum=clients * requests)
    import_list(protocol, alist.to_csv(), alist.commitment(), user=user)
    now = dt.datetime.now(dt.UTC)
    causes = ["post_chemotherapy", "drug_induced_non_chemotherapy", "aplastic_anemia", "other"]
    rows = []
    for i in range(screenings):
        onset = now - dt.timedelta(minutes=(i * 7) % 590)
        record = {"birth_date": "1980-01-01", "sex": "female", "pregnant": False,
                  "septic_shock": True, "septic_shock_onset": onset.isoformat(),
                  "neutrophils": {"value": 0.3, "unit": "10^9/L"}, "consent_signed": True,
                  "chemoresistant_oncohematological": False, "neutropenia_cause": causes[i % 4]}
        rows.append(Screening(site=site, screening_number=f"B{i:05d}", record=record,
                              onset_utc=onset, created_by=user))
    Screening.objects.bulk_create(rows)
    ids = list(Screening.objects.values_list("pk", flat=True))
    connections.close_all()
    ctx = mp.get_context("fork")

    def run(make_request, shares):
        barrier = ctx.Barrier(len(shares))
        queue = ctx.Queue()

        def body(share):
            connections.close_all()
            client = Client(HTTP_HOST="localhost")
            client.force_login(user)
            for url in ("/healthz", "/screening/"):  # warm caches before measuring
                client.get(url)
            barrier.wait()
            latencies = []
            for item in share:
                t0 = time.perf_counter()
                response = make_request(client, item)
                latencies.append(time.perf_counter() - t0)
                assert response.status_code in (200, 302), response.status_code
            connections.close_all()
            queue.put(latencies)

        procs = [ctx.Process(target=body, args=(s,)) for s in shares]
        for p in procs:
            p.start()
        lat = sorted(x for _ in procs for x in queue.get())
        for p in procs:
            p.join()
        return {"p50_ms": 1000 * statistics.median(lat),
                "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))], "n": len(lat)}

    plain = [[None] * requests for _ in range(clients)]
    results = {
        "healthz (peer)": run(lambda c, _: c.get("/healthz"), plain),
        f"dashboard, {screenings} open": run(lambda c, _: c.get("/screening/"), plain),
        "randomize (POST)": run(
            lambda c, sid: c.post(f"/screening/{sid}/randomize",
                                  {"request_id": uuid.uuid4().hex}),
            [ids[i * requests:(i + 1) * requests] for i in range(clients)]),
    }
    return {"vendor": connection.vendor, "results": results}


def run_backend(env_extra: dict[str, str], args) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIALDESK_", "DATABASE"))}
    env.update({"DJANGO_SETTINGS_MODULE": "trialdesk.web.settings", "TRIALDESK_SECRET_KEY":
                "b" * 50, "TRIALDESK_SECURE_COOKIES": "0", "PYTHONPATH": str(ROOT),
                "TRIALDESK_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
               **env_extra)
    command = [sys.executable, __file__, "--child", "--clients", str(args.clients),
               "--screenings", str(args.screenings), "--requests", str(args.requests)]
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--screenings", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=5, help="requests per client and page")
    parser.add_argument("--postgres", default=os.environ.get("TRIALDESK_TEST_DATABASE_URL"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.clients, args.screenings, args.requests)))
        return
    backends = []
    with tempfile.TemporaryDirectory() as tmp:
        backends.append(run_backend({"TRIALDESK_SQLITE_PATH": f"{tmp}/b.sqlite3"}, args))
    if args.postgres:
        import psycopg

        name = f"trialdesk_bench_{os.getpid()}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
            backends.append(run_backend({"DATABASE_URL": url}, args))
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"{args.clients} concurrent client processes, {args.requests} requests each\n")
    print("| database | request | p50 ms | p95 ms | p95 / healthz p95 |")
    print("|---|---|---:|---:|---:|")
    for b in backends:
        peer = b["results"]["healthz (peer)"]["p95_ms"]
        for name, r in b["results"].items():
            print(f"| {b['vendor']} | {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                  f"{r['p95_ms'] / peer:.1f} |")


if __name__ == "__main__":
    main()
