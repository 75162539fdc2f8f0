"""A deterministic synthetic trial (all six tidy tables) for demos, tests and benchmarks.

``synthetic_trial(n_subjects, seed)`` draws a two-arm trial (``control`` reference,
``msc``) resembling RUMCESS: baseline SOFA about 16, day-28 mortality about 60% vs
45%, daily rows from day 0 to death, ICU discharge or day 28, inflammatory markers on
the protocol's days, adverse events, deviations, a screening log with exclusions and
dispositions. Not a clinical model: it only exercises every path of the analysis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trialdesk.analysis.tidy import SOFA_COMPONENTS

MARKER_DAYS = (0, 1, 2, 3, 5, 7, 14, 28)
EXCLUSION_REASONS = ("not meeting inclusion criteria", "declined to participate",
                     "onset more than 10 h before randomization", "age > 75 years")
TERMS = ("fever", "hypotension", "rash", "infusion reaction", "thrombosis", "bleeding")
DEVIATION_CODES = ("WINDOW_MISSED", "DOSE_OUT_OF_RANGE", "VISIT_MISSED")


def synthetic_trial(n_subjects: int = 1000, seed: int = 20130501, days: int = 28
                    ) -> dict[str, pd.DataFrame]:
    """The tables as DataFrames, keyed by table name (``AnalysisDataset.from_frames(**t)``
    after ``subjects = t.pop("subjects")``)."""
    rng = np.random.default_rng(seed)
    n = n_subjects
    ids = np.array([f"R{i + 1:04d}" for i in range(n)])
    arm = np.where(rng.permutation(n) % 2 == 0, "control", "msc")
    trt = arm == "msc"
    hazard = np.where(trt, 0.022, 0.033)
    death_day = rng.exponential(1 / hazard)
    lost = rng.random(n) < 0.03
    censor_day = np.where(lost, rng.uniform(3, days, n), 90.0)
    time = np.minimum(death_day, censor_day)
    event = (death_day <= censor_day).astype(int)
    time = np.round(np.minimum(time, 90.0), 2)
    event[time >= 90.0] = 0
    subjects = pd.DataFrame({
        "subject_id": ids, "arm": arm, "time": time, "event": event,
        "age_years": rng.integers(18, 76, n).astype(float),
        "sex": np.where(rng.random(n) < 0.45, "male", "female"),
        "apache_ii": np.round(rng.normal(32, 4, n)).clip(10, 60),
        "neutropenia_cause": rng.choice(["chemotherapy", "aplastic anaemia",
                                         "drug-induced"], n, p=[0.8, 0.1, 0.1])})
    # daily rows: until death, loss, ICU discharge (random) or the last day
    intercept = rng.normal(16, 2, n)
    slope = np.where(trt, -0.55, -0.35) + rng.normal(0, 0.15, n)
    discharge = rng.integers(8, days + 6, n)
    rows_sid, rows_day = [], []
    for i in range(n):
        last = int(min(np.floor(time[i]), discharge[i], days))
        rows_sid += [i] * (last + 1)
        rows_day += list(range(last + 1))
    sid = np.asarray(rows_sid)
    day = np.asarray(rows_day)
    m = len(sid)
    mean = intercept[sid] + slope[sid] * day
    comps = np.clip(np.round(mean[:, None] / 6 + rng.normal(0, 0.6, (m, 6))), 0, 4)
    daily = pd.DataFrame({"subject_id": ids[sid], "day": day})
    for j, name in enumerate(SOFA_COMPONENTS):
        daily[name] = comps[:, j]
    daily["sofa_total"] = comps.sum(axis=1)
    marker = np.isin(day, MARKER_DAYS)
    decay = np.exp(-day * np.where(trt[sid], 0.18, 0.10))
    for name, base in (("il6_pg_per_ml", 800.0), ("il10_pg_per_ml", 60.0),
                       ("crp_mg_per_l", 180.0), ("procalcitonin_ng_per_ml", 12.0)):
        value = base * decay * np.exp(rng.normal(0, 0.5, m))
        daily[name] = np.where(marker, np.round(value, 3), np.nan)
    daily["lactate_mmol_per_l"] = np.round(np.clip(3.5 * decay * np.exp(
        rng.normal(0, 0.3, m)), 0.4, 20), 2)
    daily["on_vasopressor"] = (day < rng.integers(1, 8, n)[sid]).astype(float)
    daily["on_invasive_ventilation"] = ((day < rng.integers(0, 12, n)[sid])
                                        & (rng.random(n) < 0.5)[sid]).astype(float)
    # adverse events
    k = rng.poisson(1.2, n)
    ae_sid = np.repeat(np.arange(n), k)
    causality = rng.choice(["unrelated", "unlikely", "possible", "probable", "definite"],
                           len(ae_sid), p=[0.5, 0.2, 0.2, 0.07, 0.03])
    adverse = pd.DataFrame({
        "subject_id": ids[ae_sid],
        "ae_id": [f"AE{j + 1}" for j in range(len(ae_sid))],
        "term": rng.choice(TERMS, len(ae_sid)),
        "serious": (rng.random(len(ae_sid)) < 0.2).astype(int),
        "severity_grade": rng.integers(1, 6, len(ae_sid)),
        "causality": causality,
        "related": np.isin(causality, ["possible", "probable", "definite"]).astype(int)})
    dv_sid = np.flatnonzero(rng.random(n) < 0.1)
    deviations = pd.DataFrame({"subject_id": ids[dv_sid],
                               "deviation_id": [f"D{j + 1}" for j in range(len(dv_sid))],
                               "code": rng.choice(DEVIATION_CODES, len(dv_sid))})
    n_excluded = int(n * 0.6)
    screening = pd.DataFrame({
        "screening_id": [f"S{j + 1:05d}" for j in range(n + n_excluded)],
        "status": ["randomized"] * n + ["excluded"] * n_excluded,
        "exclusion_reason": [None] * n + list(rng.choice(EXCLUSION_REASONS, n_excluded)),
        "subject_id": list(ids) + [None] * n_excluded})
    received = rng.random(n) > 0.02
    discontinued = rng.random(n) < 0.04
    disposition = pd.DataFrame({
        "subject_id": ids, "received_allocated_intervention": received.astype(int),
        "not_received_reason": np.where(received, None, "died before infusion"),
        "lost_to_follow_up": (lost & (event == 0)).astype(int),
        "discontinued": discontinued.astype(int),
        "discontinued_reason": np.where(discontinued, "consent withdrawn", None),
        "analysed": np.ones(n, dtype=int)})
    return {"subjects": subjects, "daily": daily, "adverse_events": adverse,
            "deviations": deviations, "screening": screening, "disposition": disposition}
