"""Pre-screening benchmark (issue 8), in one run, each part against a peer:

(a) retrospective feasibility (``trialdesk.prescreen.feasibility.run_feasibility``, DuckDB
    SQL out of core) on a generated MIMIC-IV-layout extract whose chartevents has 10^7 rows,
    against a straightforward pandas implementation of the same rules (tables loaded
    whole with DuckDB ``.df()``: pyarrow is not installed); both must find the same
    candidates with the same onsets;
(b) SOFA on 10^6 patient-days: numpy ``batch_sofa`` vs the scalar ``compute_sofa`` in a
    Python loop (a sample of rows is timed and extrapolated) vs ``sofa_sql`` on DuckDB;
    all three must give the same totals;
(c) latency from a FHIR Observation posted to ``/api/fhir`` to the candidate board's data
    showing the patient as a candidate (Django test client, full middleware, SQLite file),
    with the board's own GET as the peer.

    .venv/bin/python bench/prescreen_bench.py [--chart-rows 10000000] [--patients 20000]
        [--sofa-rows 1000000] [--loop-sample 20000] [--posts 200] [--parts abc]

The extract is generated deterministically (DuckDB ``hash()`` of row numbers) into
``var/bench/prescreen_<rows>/`` and reused when present.
"""

# SQL text is built from the bench's own numbers and paths, never from input:
# ruff: noqa: S608

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHART_PER_PATIENT = 500  # one row every 5 minutes for ~41.7 h


# --- (a) the extract -------------------------------------------------------------------------


def generate(folder: Path, chart_rows: int, patients: int) -> None:
    """A MIMIC-IV-layout extract: patients, icustays, chartevents (MAP, SBP, heart rate,
    respiratory rate), labevents (ANC K/µL), inputevents (norepinephrine, ~30% of patients)."""
    import duckdb

    per = chart_rows // patients
    (folder / "hosp").mkdir(parents=True, exist_ok=True)
    (folder / "icu").mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    t0 = "TIMESTAMP '2150-01-01 00:00:00'"
    base = f"{t0} + to_hours(CAST(p * 3 AS BIGINT))"  # each patient's admission
    con.execute(f"""COPY (SELECT 10000000 + p AS subject_id,
        CASE WHEN hash(p, 'g') % 2 = 0 THEN 'F' ELSE 'M' END AS gender,
        CAST(16 + hash(p, 'a') % 66 AS INTEGER) AS anchor_age, 2150 AS anchor_year,
        'group' AS anchor_year_group, NULL AS dod
        FROM range({patients}) r(p)) TO '{folder}/hosp/patients.parquet' (FORMAT parquet)""")
    con.execute(f"""COPY (SELECT 10000000 + p AS subject_id, 20000000 + p AS hadm_id,
        30000000 + p AS stay_id, {base} AS intime, {base} + INTERVAL 48 HOUR AS outtime
        FROM range({patients}) r(p)) TO '{folder}/icu/icustays.parquet' (FORMAT parquet)""")
    con.execute(f"""COPY (
        SELECT 10000000 + p AS subject_id, 30000000 + p AS stay_id,
               {base} + to_minutes(CAST(k * 5 AS BIGINT)) AS charttime,
               [220052, 220050, 220045, 220210][1 + k % 4] AS itemid,
               CASE k % 4 WHEN 0 THEN 52 + hash(i, 'v') % 50
                          WHEN 1 THEN 78 + hash(i, 'v') % 70
                          WHEN 2 THEN 60 + hash(i, 'v') % 80
                          ELSE 10 + hash(i, 'v') % 25 END AS valuenum,
               CASE WHEN k % 4 < 2 THEN 'mmHg' WHEN k % 4 = 2 THEN 'bpm'
                    ELSE 'insp/min' END AS valueuom
        FROM (SELECT i, i // {per} AS p, i % {per} AS k FROM range({patients * per}) r(i)))
        TO '{folder}/icu/chartevents.parquet' (FORMAT parquet, ROW_GROUP_SIZE 1000000)""")
    con.execute(f"""COPY (
        SELECT 40000000 + i AS labevent_id, 10000000 + p AS subject_id,
               {base} + to_hours(CAST(j * 10 AS BIGINT)) AS charttime,
               {base} + to_hours(CAST(j * 10 + 1 AS BIGINT)) AS storetime,
               52075 AS itemid, (hash(i, 'n') % 250) / 100.0 AS valuenum, 'K/uL' AS valueuom
        FROM (SELECT i, i // 4 AS p, i % 4 AS j FROM range({patients * 4}) r(i)))
        TO '{folder}/hosp/labevents.parquet' (FORMAT parquet)""")
    con.execute(f"""COPY (
        SELECT 10000000 + p AS subject_id, 50000000 + p AS orderid,
               s + to_hours(CAST(2 * j AS BIGINT)) AS starttime,
               s + to_hours(CAST(2 * j + 2 AS BIGINT)) AS endtime,
               s + to_hours(CAST(2 * j AS BIGINT)) + INTERVAL 10 MINUTE AS storetime,
               221906 AS itemid, 0.05 + 0.05 * j AS rate, 'mcg/kg/min' AS rateuom,
               'FinishedRunning' AS statusdescription
        FROM (SELECT p, {base} + to_hours(CAST(5 + hash(p, 's') % 30 AS BIGINT)) AS s
              FROM range({patients}) r(p) WHERE hash(p, 'x') % 10 < 3), range(2) t(j))
        TO '{folder}/icu/inputevents.parquet' (FORMAT parquet)""")
    con.close()


def pandas_candidates(folder: Path, config) -> set[tuple[str, dt.datetime]]:
    """The same rules (SSC 2012, episodes, neutrophils closest to onset, age, window) in
    plain pandas over whole tables. Only what the generated extract holds is implemented:
    MAP/SBP, absolute neutrophil counts, norepinephrine; mapped units only."""
    import duckdb
    import pandas as pd

    from trialdesk.clinical.units import MEASURES

    con = duckdb.connect()
    chart = con.sql(f"SELECT * FROM '{folder}/icu/chartevents.parquet'").df()
    labs = con.sql(f"SELECT * FROM '{folder}/hosp/labevents.parquet'").df()
    inputs = con.sql(f"SELECT * FROM '{folder}/icu/inputevents.parquet'").df()
    people = con.sql(f"SELECT * FROM '{folder}/hosp/patients.parquet'").df()
    con.close()
    # blood pressure: MAP 10–250, SBP 20–300 mmHg
    bp = chart[chart.itemid.isin([220052, 220181, 225312, 220050, 220179])
               & (chart.valueuom == "mmHg")].copy()
    bp["is_map"] = bp.itemid.isin([220052, 220181, 225312])
    ok = np.where(bp.is_map, bp.valuenum.between(10, 250), bp.valuenum.between(20, 300))
    bp = bp[ok]
    bp["hypo"] = np.where(bp.is_map, bp.valuenum < 70, bp.valuenum < 90)
    # neutrophils: K/µL = 10^9/L, plausible range of the clinical core
    spec = MEASURES["neutrophils"]
    anc = labs[(labs.itemid == 52075) & labs.valueuom.isin(["K/uL"])
               & labs.valuenum.between(spec.plausible_min, spec.plausible_max)].copy()
    anc["avail"] = anc.storetime.fillna(anc.charttime)
    # vasopressor episodes: records < 1 h apart (end to next start) are one infusion
    vaso = inputs[(inputs.itemid == 221906) & (inputs.rateuom == "mcg/kg/min")
                  & (inputs.statusdescription != "Rewritten") & (inputs.rate > 0)
                  & (inputs.rate <= 5.0)].sort_values(["subject_id", "starttime"]).copy()
    vaso["end"] = vaso.endtime.fillna(vaso.starttime)
    vaso["prev_end"] = vaso.groupby("subject_id").end.transform(
        lambda s: s.cummax().shift())
    starts = vaso[vaso.prev_end.isna()
                  | (vaso.starttime > vaso.prev_end + pd.Timedelta(config.episode_gap))]
    starts = starts[["subject_id", "starttime", "storetime"]].rename(
        columns={"starttime": "start", "storetime": "start_avail"})
    starts["start_avail"] = starts.start_avail.fillna(starts.start)
    # SSC 2012: SBP < 90 or MAP < 70 at or up to 6 h before the start
    m = starts.merge(bp[["subject_id", "charttime", "valuenum", "hypo"]], on="subject_id")
    m = m[(m.charttime >= m.start - pd.Timedelta(config.hypotension_lookback))
          & (m.charttime <= m.start) & m.hypo]
    lowest = m.sort_values(["valuenum", "charttime"]).groupby(["subject_id", "start"]).head(1)
    shock = starts.merge(lowest[["subject_id", "start", "charttime"]],
                         on=["subject_id", "start"])
    shock["shock_avail"] = shock[["start_avail", "charttime"]].max(axis=1)
    # the count closest to onset, from 48 h before to the deadline (ties: the earlier)
    n = shock.merge(anc[["subject_id", "charttime", "valuenum", "avail"]],
                    on="subject_id", suffixes=("_bp", ""))
    n = n[(n.charttime >= n.start - pd.Timedelta(config.neutrophil_lookback))
          & (n.charttime <= n.start + pd.Timedelta(config.deadline))]
    n["dist"] = (n.charttime - n.start).abs()
    best = n.sort_values(["dist", "charttime"]).groupby(["subject_id", "start"]).head(1)
    best = best.merge(people, on="subject_id")
    onset_local = best.start.dt.tz_localize("UTC").dt.tz_convert(config.timezone)
    age = best.anchor_age + onset_local.dt.year - best.anchor_year
    detectable = best[["start", "shock_avail", "avail"]].max(axis=1)
    ok = ((best.valuenum <= config.neutrophil_threshold_10e9_per_l + 1e-9) & (age >= 17)
          & ~(age > 75) & (detectable <= best.start + pd.Timedelta(config.deadline)))
    first = best[ok].sort_values(["subject_id", "start"]).groupby("subject_id").head(1)
    return {(str(s), t.to_pydatetime().replace(tzinfo=dt.UTC))
            for s, t in zip(first.subject_id, first.start, strict=True)}


def bench_feasibility(chart_rows: int, patients: int) -> list[str]:
    import duckdb

    from trialdesk.prescreen.config import PrescreenConfig
    from trialdesk.prescreen.feasibility import run_feasibility
    from trialdesk.protocol import load_protocol

    folder = ROOT / "var" / "bench" / f"prescreen_{chart_rows}"
    if not (folder / "icu" / "inputevents.parquet").is_file():
        t = time.perf_counter()
        generate(folder, chart_rows, patients)
        print(f"generated {folder} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    con = duckdb.connect()
    sizes = {name: con.execute(f"SELECT count(*) FROM '{folder}/{name}.parquet'").fetchone()[0]
             for name in ("icu/chartevents", "hosp/labevents", "icu/inputevents")}
    con.close()
    rows = sum(sizes.values())
    config = PrescreenConfig.from_protocol(load_protocol())
    t = time.perf_counter()
    result = run_feasibility([folder], config, temp_directory=str(folder / "tmp"))
    duck_s = time.perf_counter() - t
    duck = {(a.patient_id, a.onset_utc) for a in result.candidates}
    t = time.perf_counter()
    pand = pandas_candidates(folder, config)
    pandas_s = time.perf_counter() - t
    assert duck == pand, (len(duck), len(pand), sorted(duck ^ pand)[:5])
    summary = result.summary()
    return [
        f"Extract: {sizes['icu/chartevents']:,} chartevents + {sizes['hosp/labevents']:,} "
        f"labevents + {sizes['icu/inputevents']:,} inputevents rows, {patients:,} patients; "
        f"{summary['candidates']} candidates, {summary['possible']} possible, "
        f"{summary['no']} no — identical candidates and onsets in both implementations.",
        "",
        "| implementation | seconds | rows/s | ratio |",
        "|---|---:|---:|---:|",
        f"| TrialDesk feasibility (DuckDB SQL + per-patient decision) | {duck_s:.1f} | "
        f"{rows / duck_s:,.0f} | 1.0 |",
        f"| pandas, whole tables via DuckDB `.df()` (peer) | {pandas_s:.1f} | "
        f"{rows / pandas_s:,.0f} | {pandas_s / duck_s:.2f}× slower |",
    ]


# --- (b) batch SOFA --------------------------------------------------------------------------


def sofa_columns(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(8)

    def col(low, high, missing=0.1, integer=False):
        v = rng.integers(low, high + 1, n).astype(float) if integer else \
            np.round(rng.uniform(low, high, n), 2)
        v[rng.random(n) < missing] = np.nan
        return v

    drugs = {d: np.where(rng.random(n) < 0.2, np.round(rng.uniform(0, top, n), 3), np.nan)
             for d, top in (("dopamine", 20), ("dobutamine", 10), ("epinephrine", 0.5),
                            ("norepinephrine", 1.0))}
    return {"pao2_mmhg": col(40, 500), "fio2_fraction": col(0.21, 1.0),
            "support": rng.integers(0, 3, n).astype(float),
            "platelets_10e9_per_l": col(2, 400), "bilirubin_mg_dl": col(0.2, 20),
            "map_mmhg": col(40, 110), **{f"{d}_ug_kg_min": v for d, v in drugs.items()},
            "gcs": col(3, 15, integer=True), "creatinine_mg_dl": col(0.3, 8),
            "urine_ml_per_day": col(20, 3000)}


def bench_sofa(n: int, sample: int) -> list[str]:
    import duckdb
    import pandas as pd

    from trialdesk.clinical.sofa import SofaInputs, compute_sofa
    from trialdesk.prescreen.batch_sofa import batch_sofa, sofa_sql

    cols = sofa_columns(n)
    t = time.perf_counter()
    batch = batch_sofa(cols)
    numpy_s = time.perf_counter() - t
    names = {0: "none", 1: "noninvasive", 2: "invasive"}
    t = time.perf_counter()
    loop_totals = []
    for i in range(sample):
        row = {k: (None if np.isnan(v[i]) else float(v[i])) for k, v in cols.items()
               if k != "support"}
        row["gcs"] = None if row["gcs"] is None else int(row["gcs"])
        row["respiratory_support"] = names[int(cols["support"][i])]
        loop_totals.append(compute_sofa(SofaInputs.from_mapping(row)).total)
    loop_s = (time.perf_counter() - t) * n / sample
    assert loop_totals == batch.total[:sample].tolist()
    frame = pd.DataFrame(cols)
    con = duckdb.connect()
    con.register("days", frame)
    parts = "respiration + coagulation + liver + cardiovascular + cns + renal"
    t = time.perf_counter()
    sql_totals = con.execute(f"SELECT {parts} AS total FROM ({sofa_sql('days')})").fetchnumpy()
    sql_s = time.perf_counter() - t
    con.close()
    assert np.array_equal(sql_totals["total"].astype(int), batch.total.astype(int))
    return [
        f"{n:,} patient-days (seeded random worst values, 10% missing each); the loop is "
        f"timed on the first {sample:,} rows and extrapolated to {n:,}; all three give the "
        "same totals.",
        "",
        "| implementation | seconds | patient-days/s | ratio to numpy |",
        "|---|---:|---:|---:|",
        f"| numpy `batch_sofa` | {numpy_s:.2f} | {n / numpy_s:,.0f} | 1.0 |",
        f"| DuckDB `sofa_sql` (from a pandas frame) | {sql_s:.2f} | {n / sql_s:,.0f} | "
        f"{sql_s / numpy_s:.1f}× |",
        f"| scalar `compute_sofa` loop (extrapolated) | {loop_s:.0f} | {n / loop_s:,.0f} | "
        f"{loop_s / numpy_s:.0f}× |",
    ]


# --- (c) latency to the board ----------------------------------------------------------------


def bench_latency(posts: int) -> list[str]:
    tmp = tempfile.mkdtemp(prefix="prescreen-bench-")
    os.environ["TRIALDESK_SQLITE_PATH"] = str(Path(tmp) / "bench.sqlite3")
    os.environ.setdefault("TRIALDESK_SECRET_KEY", "bench-only-" + "x" * 50)
    os.environ.setdefault("TRIALDESK_SECURE_COOKIES", "0")
    os.environ["DJANGO_SETTINGS_MODULE"] = "trialdesk.web.settings"
    import django

    django.setup()
    import json

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from tests.prescreen.fhir_builders import ANC, MAP, NOREPI, obs, patient, pressor
    from trialdesk.protocol import load_protocol
    from trialdesk.web.accounts.models import Membership
    from trialdesk.web.api.services import create_token
    from trialdesk.web.sites.services import sync_sites

    call_command("migrate", verbosity=0)
    site = sync_sites(load_protocol())[0]
    users = get_user_model().objects
    bridge, alice = users.create_user("bridge"), users.create_user("alice")
    Membership.objects.create(user=bridge, role="integration", site=site)
    Membership.objects.create(user=alice, role="coordinator", site=site)
    feed = Client(HTTP_HOST="localhost",
                  headers={"Authorization": f"Bearer {create_token(bridge, 'bench')[1]}"})
    staff = Client(HTTP_HOST="localhost")
    staff.force_login(alice)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def iso(t):
        return t.isoformat().replace("+00:00", "Z")

    def send(resource):
        r = feed.post("/api/fhir", data=json.dumps(resource),
                      content_type="application/fhir+json")
        assert r.status_code == 200, r.content
    # every patient: shock onset 1–9 h ago (possible, waiting for the neutrophil count)
    for i in range(posts):
        onset = now - dt.timedelta(hours=1 + 8 * i / posts)
        pid = f"p{i:04d}"
        send(patient(pid))
        send(obs(f"{pid}-map", pid, MAP, 60, "mm[Hg]", iso(onset - dt.timedelta(minutes=20))))
        send(pressor(f"{pid}-ne", pid, NOREPI, 0.1, "ug/kg/min", iso(onset)))
    post_ms, board_ms, total_ms = [], [], []
    for i in range(posts):
        pid = f"p{i:04d}"
        anc = obs(f"{pid}-anc", pid, ANC, 0.4, "10*9/L", iso(now - dt.timedelta(hours=10)))
        t0 = time.perf_counter()
        send(anc)
        t1 = time.perf_counter()
        html = staff.get("/candidates/", headers={"HX-Request": "true"}).content.decode()
        t2 = time.perf_counter()
        assert f'data-patient="{pid}" data-status="candidate"' in html
        post_ms.append((t1 - t0) * 1000)
        board_ms.append((t2 - t1) * 1000)
        total_ms.append((t2 - t0) * 1000)

    def p(xs, q):
        return statistics.quantiles(xs, n=100)[q - 1]

    return [
        f"{posts} patients on the board (possible, then candidate); {posts} Observations "
        "(ANC) posted one at a time, each followed by the board's htmx GET, which must list "
        "that patient as a candidate. SQLite file; Django test client (no network).",
        "",
        "| step | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|",
        f"| POST /api/fhir (store, re-assess, audit) | {p(post_ms, 50):.1f} | "
        f"{p(post_ms, 95):.1f} | {max(post_ms):.1f} |",
        f"| GET /candidates/ (board rows, peer) | {p(board_ms, 50):.1f} | "
        f"{p(board_ms, 95):.1f} | {max(board_ms):.1f} |",
        f"| posted → board data shows the candidate | {p(total_ms, 50):.1f} | "
        f"{p(total_ms, 95):.1f} | {max(total_ms):.1f} |",
        "",
        "On screen add the polling interval (5 s): the update shows at most 5 s + the above.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chart-rows", type=int, default=10_000_000)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--sofa-rows", type=int, default=1_000_000)
    parser.add_argument("--loop-sample", type=int, default=20_000)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--parts", default="abc",
                        help="which parts to run, e.g. 'c' for the board latency only")
    args = parser.parse_args()
    out: list[str] = []
    if "a" in args.parts:
        out += ["### (a) Retrospective feasibility", ""]
        out += bench_feasibility(args.chart_rows, args.patients)
    if "b" in args.parts:
        out += ["", "### (b) Batch SOFA", "", *bench_sofa(args.sofa_rows, args.loop_sample)]
    if "c" in args.parts:
        out += ["", "### (c) Posted FHIR Observation → candidate board", ""]
        out += bench_latency(args.posts)
    print("\n".join(out))


if __name__ == "__main__":
    main()
