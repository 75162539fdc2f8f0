"""Vectorized SOFA (numpy, and its SQL form) agrees with the scalar clinical core everywhere.

The scalar trialdesk.clinical.sofa is the reference (itself tested against the Vincent
1996 table); hypothesis draws patient-days including exact cut-offs and missing values.
"""

from __future__ import annotations

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trialdesk.clinical.sofa import SofaInputs, compute_sofa
from trialdesk.prescreen.batch_sofa import INPUTS, SUPPORT_CODES, batch_sofa, sofa_sql

CUTS = {
    "pao2_mmhg": [15, 60, 84, 100, 120, 150, 200, 300, 400, 600],
    "fio2_fraction": [0.21, 0.3, 0.4, 0.5, 1.0],
    "platelets_10e9_per_l": [0, 19.9, 20, 49.99, 50, 100, 149.9, 150, 400],
    "bilirubin_mg_dl": [0.5, 1.19, 1.2, 1.95, 2.0, 5.9, 6.0, 12.0, 12.01, 30],
    "map_mmhg": [10, 55, 69.9, 70, 90],
    "dopamine_ug_kg_min": [0, 3, 5, 5.01, 15, 15.1],
    "dobutamine_ug_kg_min": [0, 2.5],
    "epinephrine_ug_kg_min": [0, 0.05, 0.1, 0.11],
    "norepinephrine_ug_kg_min": [0, 0.05, 0.1, 0.1000001, 1.0],
    "gcs": [3, 5, 6, 9, 10, 12, 13, 14, 15],
    "creatinine_mg_dl": [0.5, 1.2, 1.99, 2.0, 3.5, 5.0, 5.01],
    "urine_ml_per_day": [0, 150, 199.9, 200, 499, 500, 2000],
}


def value(name):
    return st.one_of(st.none(), st.sampled_from(CUTS[name]))


day = st.fixed_dictionaries(
    {name: value(name) for name in CUTS}
    | {"respiratory_support": st.sampled_from([None, "none", "noninvasive", "invasive"])})


@settings(max_examples=400, deadline=None)
@given(st.lists(day, min_size=1, max_size=20))
def test_batch_equals_scalar(days):
    columns = {name: np.array([np.nan if d[name] is None else d[name] for d in days], float)
               for name in CUTS}
    columns["support"] = np.array([SUPPORT_CODES[d["respiratory_support"] or "none"]
                                   for d in days], float)
    batch = batch_sofa(columns)
    for i, d in enumerate(days):
        ref = compute_sofa(SofaInputs.from_mapping(d))
        got = {name: int(getattr(batch, name)[i]) for name in ref.components}
        assert got == {k: v or 0 for k, v in ref.components.items()}
        assert int(batch.total[i]) == ref.total
        assert int(batch.total_without_coagulation[i]) == ref.total_without_coagulation
        assert int(batch.n_missing[i]) == len(ref.missing)


@settings(max_examples=100, deadline=None)
@given(st.lists(day, min_size=1, max_size=20))
def test_sql_equals_scalar(days):
    rows = [tuple(SUPPORT_CODES[d["respiratory_support"] or "none"] if name == "support"
                  else d.get(name) for name in INPUTS) for d in days]
    con = duckdb.connect()
    con.execute("CREATE TABLE days (i INTEGER, " + ", ".join(f"{n} DOUBLE" for n in INPUTS)
                + ")")
    con.executemany(f"INSERT INTO days VALUES ({', '.join('?' * (len(INPUTS) + 1))})",
                    [(i, *r) for i, r in enumerate(rows)])
    got = con.sql(f"SELECT * FROM ({sofa_sql('days', keys=('i',))}) ORDER BY i").fetchall()
    for d, (_, *scores) in zip(days, got, strict=True):
        ref = compute_sofa(SofaInputs.from_mapping(d))
        assert scores == [v or 0 for v in ref.components.values()]
