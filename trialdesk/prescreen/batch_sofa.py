"""Vectorized SOFA over many patient-days (or hours) of worst values, with numpy.

The cut-offs are not restated here: every score is computed from the threshold table
of the scalar :mod:`trialdesk.clinical.sofa` (``RESPIRATION_LT``, ``PLATELETS_LT``,
``*_BANDS``, ``DOPAMINE_GT_4`` …), so the two cannot disagree; a hypothesis test
compares them value by value. Conventions are the scalar module's defaults: a missing
component scores 0 and is counted in ``n_missing``; non-invasive support counts as
support unless ``noninvasive_counts_as_support=False``.

Inputs are arrays of equal length in the scalar module's units (NaN = not measured);
``support`` holds 0 none / 1 non-invasive / 2 invasive. Values are expected to be
range-checked already (the ingest does that); this module only scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from trialdesk.clinical import sofa

SUPPORT_CODES = {"none": 0, "noninvasive": 1, "invasive": 2}
INPUTS = ("pao2_mmhg", "fio2_fraction", "support", "platelets_10e9_per_l", "bilirubin_mg_dl",
          "map_mmhg", "dopamine_ug_kg_min", "dobutamine_ug_kg_min", "epinephrine_ug_kg_min",
          "norepinephrine_ug_kg_min", "gcs", "creatinine_mg_dl", "urine_ml_per_day")


def _below(values: np.ndarray, rows: tuple[tuple[float, int], ...]) -> np.ndarray:
    """Vector form of :func:`trialdesk.clinical.sofa.score_below` (NaN → 0)."""
    out = np.zeros(values.shape, dtype=np.int8)
    assigned = np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for threshold, score in rows:
            hit = ~assigned & (values < threshold)
            out[hit] = score
            assigned |= hit
    return out


def _banded(values: np.ndarray, bands: tuple[float, float, float, float]) -> np.ndarray:
    one, two, three, four_above = bands
    with np.errstate(invalid="ignore"):
        return np.select([values > four_above, values >= three, values >= two, values >= one],
                         [4, 3, 2, 1], 0).astype(np.int8)


@dataclass(frozen=True)
class BatchSofa:
    """Component scores (int8 arrays), totals and the number of missing components."""

    respiration: np.ndarray
    coagulation: np.ndarray
    liver: np.ndarray
    cardiovascular: np.ndarray
    cns: np.ndarray
    renal: np.ndarray
    total: np.ndarray
    total_without_coagulation: np.ndarray
    n_missing: np.ndarray


def _arr(data: Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray:
    value = data.get(name)
    if value is None:
        return np.full(n, np.nan)
    return np.asarray(value, dtype=np.float64)


def batch_sofa(data: Mapping[str, np.ndarray], *,
               noninvasive_counts_as_support: bool = True) -> BatchSofa:
    """Score every row of ``data`` (column name → array; names as in :data:`INPUTS`)."""
    n = len(next(iter(data.values())))
    col = {name: _arr(data, name, n) for name in INPUTS}
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.round(col["pao2_mmhg"] / col["fio2_fraction"], 6)
    support = np.nan_to_num(col["support"], nan=0.0)
    supported = (support == 2) | ((support == 1) & noninvasive_counts_as_support)
    capped = tuple(r for r in sofa.RESPIRATION_LT if r[1] not in sofa.RESPIRATION_SUPPORTED_ONLY)
    respiration = np.where(supported, _below(ratio, sofa.RESPIRATION_LT), _below(ratio, capped))
    coagulation = _below(col["platelets_10e9_per_l"], sofa.PLATELETS_LT)
    liver = _banded(col["bilirubin_mg_dl"], sofa.BILIRUBIN_MG_DL_BANDS)
    dop, dob, epi, nor = (np.nan_to_num(col[f"{d}_ug_kg_min"], nan=0.0)
                          for d in ("dopamine", "dobutamine", "epinephrine", "norepinephrine"))
    with np.errstate(invalid="ignore"):
        cardiovascular = np.select(
            [(dop > sofa.DOPAMINE_GT_4) | (epi > sofa.CATECHOLAMINE_GT_4)
             | (nor > sofa.CATECHOLAMINE_GT_4),
             (dop > sofa.DOPAMINE_GT_3) | (epi > 0) | (nor > 0),
             (dop > 0) | (dob > 0),
             col["map_mmhg"] < sofa.MAP_LT_MMHG],
            [4, 3, 2, 1], 0).astype(np.int8)
    cns = _below(col["gcs"], sofa.GCS_LT)
    renal = np.maximum(_banded(col["creatinine_mg_dl"], sofa.CREATININE_MG_DL_BANDS),
                       _below(col["urine_ml_per_day"], sofa.URINE_ML_PER_DAY_LT))
    missing = (
        (np.isnan(col["pao2_mmhg"]) | np.isnan(col["fio2_fraction"])).astype(np.int8)
        + np.isnan(col["platelets_10e9_per_l"]) + np.isnan(col["bilirubin_mg_dl"])
        + (np.isnan(col["map_mmhg"]) & np.isnan(col["dopamine_ug_kg_min"])
           & np.isnan(col["dobutamine_ug_kg_min"]) & np.isnan(col["epinephrine_ug_kg_min"])
           & np.isnan(col["norepinephrine_ug_kg_min"]))
        + np.isnan(col["gcs"])
        + (np.isnan(col["creatinine_mg_dl"]) & np.isnan(col["urine_ml_per_day"])))
    total = (respiration.astype(np.int16) + coagulation + liver + cardiovascular + cns + renal)
    return BatchSofa(respiration, coagulation, liver, cardiovascular, cns, renal, total,
                     total - coagulation, missing.astype(np.int8))


def sofa_sql(table: str, keys: tuple[str, ...] = ()) -> str:
    """The same scores as one DuckDB/Spark SQL ``SELECT`` over ``table`` (same column names),
    generated from the same threshold table."""

    def below(expr: str, rows: tuple[tuple[float, int], ...]) -> str:
        whens = " ".join(f"WHEN {expr} < {t} THEN {s}" for t, s in rows)
        return f"CASE {whens} ELSE 0 END"

    def banded(expr: str, bands: tuple[float, float, float, float]) -> str:
        one, two, three, four = bands
        return (f"CASE WHEN {expr} > {four} THEN 4 WHEN {expr} >= {three} THEN 3 "
                f"WHEN {expr} >= {two} THEN 2 WHEN {expr} >= {one} THEN 1 ELSE 0 END")

    capped = tuple(r for r in sofa.RESPIRATION_LT if r[1] not in sofa.RESPIRATION_SUPPORTED_ONLY)
    ratio = "round(pao2_mmhg / fio2_fraction, 6)"
    dop, dob, epi, nor = (f"coalesce({d}_ug_kg_min, 0)" for d in
                          ("dopamine", "dobutamine", "epinephrine", "norepinephrine"))
    resp = (f"CASE WHEN coalesce(support, 0) >= 1 THEN {below(ratio, sofa.RESPIRATION_LT)} "
            f"ELSE {below(ratio, capped)} END")
    cardio = (f"CASE WHEN {dop} > {sofa.DOPAMINE_GT_4} OR {epi} > {sofa.CATECHOLAMINE_GT_4} "
              f"OR {nor} > {sofa.CATECHOLAMINE_GT_4} THEN 4 WHEN {dop} > {sofa.DOPAMINE_GT_3} "
              f"OR {epi} > 0 OR {nor} > 0 THEN 3 WHEN {dop} > 0 OR {dob} > 0 THEN 2 "
              f"WHEN map_mmhg < {sofa.MAP_LT_MMHG} THEN 1 ELSE 0 END")
    renal = (f"greatest({banded('creatinine_mg_dl', sofa.CREATININE_MG_DL_BANDS)}, "
             f"{below('urine_ml_per_day', sofa.URINE_ML_PER_DAY_LT)})")
    parts = {"respiration": resp,
             "coagulation": below("platelets_10e9_per_l", sofa.PLATELETS_LT),
             "liver": banded("bilirubin_mg_dl", sofa.BILIRUBIN_MG_DL_BANDS),
             "cardiovascular": cardio, "cns": below("gcs", sofa.GCS_LT), "renal": renal}
    cols = ",\n  ".join(f"{expr} AS {name}" for name, expr in parts.items())
    head = "".join(f"{k}, " for k in keys)
    return f"SELECT {head}\n  {cols}\nFROM {table}"
