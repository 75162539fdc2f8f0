"""Allocation throughput and latency under concurrent clients, SQLite vs PostgreSQL.

    python bench/randomize_bench.py [--clients 32] [--per-client 10] [--postgres URL]

For each database a child process migrates a fresh database, loads a sealed list and
N screenings, then ``--clients`` threads call the production ``randomize`` service at
once (durable commits: SQLite in WAL-less default journal mode with fsync as
configured, PostgreSQL with synchronous_commit on). Reported per database:
allocations per second, p50/p95/max latency of one randomize call, and a check that
the slots are distinct and consecutive. The peer in the same run is a naive
"take the next free slot" allocator without locks (what clinicedc does), run on the
same database: faster, and it hands out duplicate slots.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(clients: int, per_client: int) -> dict:
    import datetime as dt
    import statistics
    import uuid

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections, transaction

    call_command("migrate", verbosity=0)
    from trialdesk.protocol import load_protocol
    from trialdesk.randomization import generate_list
    from trialdesk.web.randomization.models import Allocation, AllocationSlot
    from trialdesk.web.randomization.services import import_list, randomize
    from trialdesk.web.screening.models import Screening
    from trialdesk.web.sites.services import sync_sites

    protocol = load_protocol()
    site = sync_sites(protocol)[0]
    user = get_user_model().objects.create_user("bench", password="x" * 20)
    total = clients * per_client
    alist = generate_list(protocol, seed="bench", size_per_stratum=total)
    import_list(protocol, alist.to_csv(), alist.commitment(), user=user)
    onset = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    causes = ["post_chemotherapy", "drug_induced_non_chemotherapy", "aplastic_anemia", "other"]
    ids = []
    for i in range(total):
        record = {"birth_date": "1980-01-01", "sex": "female", "pregnant": False,
                  "septic_shock": True, "septic_shock_onset": onset.isoformat(),
                  "neutrophils": {"value": 0.3, "unit": "10^9/L"}, "consent_signed": True,
                  "chemoresistant_oncohematological": False, "neutropenia_cause": causes[i % 4]}
        ids.append(Screening.objects.create(site=site, screening_number=f"B{i}", record=record,
                                            onset_utc=onset, created_by=user).pk)
    connections.close_all()

    import multiprocessing as mp

    ctx = mp.get_context("fork")

    def run(worker, shares):
        """One client process per share (no shared GIL); returns latency statistics."""
        barrier = ctx.Barrier(len(shares))
        queue = ctx.Queue()

        def body(share):
            connections.close_all()  # never share the parent's connection
            barrier.wait()
            out, taken = [], []
            for sid in share:
                t0 = time.perf_counter()
                taken.append(worker(sid))
                out.append(time.perf_counter() - t0)
            connections.close_all()
            queue.put((out, taken))

        procs = [ctx.Process(target=body, args=(s,)) for s in shares]
        start = time.perf_counter()
        for proc in procs:
            proc.start()
        results = [queue.get() for _ in procs]
        elapsed = time.perf_counter() - start
        for proc in procs:
            proc.join()
        latencies = sorted(x for lat, _ in results for x in lat)
        taken = [t for _, ts in results for t in ts]
        return {"per_second": len(latencies) / elapsed,
                "p50_ms": 1000 * statistics.median(latencies),
                "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
                "max_ms": 1000 * latencies[-1],
                "duplicate_slots": len(taken) - len(set(taken))}

    solo = run(lambda sid: randomize(sid, user=user, request_id=uuid.uuid4().hex,
                                     protocol=protocol).allocation.pk, [ids[:20]])
    solo.pop("duplicate_slots")
    ids = ids[20:]
    half = (total - 20) // 2
    shares = [ids[i:half:clients] for i in range(clients)]
    result = run(lambda sid: randomize(sid, user=user, request_id=uuid.uuid4().hex,
                                       protocol=protocol).allocation.pk, shares)
    seqs: dict[str, list[int]] = {}
    for stratum, seq in Allocation.objects.values_list("stratum", "sequence"):
        seqs.setdefault(stratum, []).append(seq)
    result.pop("duplicate_slots")
    result["distinct_consecutive"] = all(sorted(v) == list(range(1, len(v) + 1))
                                         for v in seqs.values())

    # the peer: naive "next free slot" without a lock (clinicedc's approach), same database
    def naive(sid):
        """Read the first unused slot, then mark it used: no row lock in between."""
        with transaction.atomic():
            slot = (AllocationSlot.objects
                    .filter(rlist__label="main", stratum="neutropenia_cause=other", block__gt=0)
                    .order_by("sequence").first())
            AllocationSlot.objects.filter(pk=slot.pk).update(block=0)  # "used"
            return slot.pk

    peer = run(naive, [ids[half + i::clients] for i in range(clients)])
    return {"vendor": connection.vendor, "service": result, "naive_peer": peer, "solo": solo}


def run_backend(env_extra: dict[str, str], clients: int, per_client: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIALDESK_", "DATABASE"))}
    env.update({"DJANGO_SETTINGS_MODULE": "trialdesk.web.settings", "TRIALDESK_SECRET_KEY":
                "b" * 50, "TRIALDESK_SECURE_COOKIES": "0", "PYTHONPATH": str(ROOT),
                "TRIALDESK_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
               **env_extra)
    command = [sys.executable, __file__, "--child", "--clients", str(clients),
               "--per-client", str(per_client)]
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--postgres", default=os.environ.get("TRIALDESK_TEST_DATABASE_URL"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.clients, args.per_client)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run_backend({"TRIALDESK_SQLITE_PATH": f"{tmp}/bench.sqlite3"},
                                   args.clients, args.per_client))
    if args.postgres:
        import psycopg

        name = f"trialdesk_bench_{os.getpid()}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            results.append(run_backend({"DATABASE_URL": args.postgres.rsplit("/", 1)[0] +
                                        "/" + name}, args.clients, args.per_client))
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"randomize: 20 allocations by one client, then {args.clients} concurrent client "
          f"processes, {(args.clients * args.per_client - 20) // 2} allocations per database\n")
    print("| database | allocator | clients | allocations/s | p50 ms | p95 ms | max ms | slots |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        s, p, solo = r["service"], r["naive_peer"], r["solo"]
        print(f"| {r['vendor']} | TrialDesk randomize (locked) | 1 | {solo['per_second']:.0f} | "
              f"{solo['p50_ms']:.1f} | {solo['p95_ms']:.1f} | {solo['max_ms']:.1f} | |")
        print(f"| {r['vendor']} | TrialDesk randomize (locked) | {args.clients} | "
              f"{s['per_second']:.0f} | "
              f"{s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['max_ms']:.1f} | "
              f"{'distinct, consecutive' if s['distinct_consecutive'] else 'BROKEN'} |")
        print(f"| {r['vendor']} | naive next-free slot (peer, no lock) | {args.clients} | "
              f"{p['per_second']:.0f} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} | "
              f"{p['max_ms']:.1f} | {p['duplicate_slots']} duplicates |")
    if len(results) == 2:
        a, b = results[0]["service"], results[1]["service"]
        print(f"\nthroughput ratio {results[1]['vendor']}/{results[0]['vendor']}: "
              f"{b['per_second'] / a['per_second']:.2f}; p95 ratio: "
              f"{b['p95_ms'] / a['p95_ms']:.2f}")


if __name__ == "__main__":
    main()
