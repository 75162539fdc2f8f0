"""Raw daily SOFA inputs that score exactly the intended component scores.

The inverse of :mod:`trialdesk.clinical.sofa`: for each component score 0–4 a value is
drawn from the *interior* of that score's band (whole numbers, or two decimals for
doses), far enough from the cut-offs that rounding cannot move it, in the units a
Russian ICU reports (bilirubin and creatinine in µmol/L, platelets ×10^9/L, PaO2 in
mmHg, FiO2 as a fraction, doses in µg/kg/min, urine in mL/day). The tests score every
generated day with the production :func:`~trialdesk.clinical.sofa.compute_sofa`.

:func:`split_total` turns a day's total into six component scores (each 0–4) in the
proportions typical of neutropenic septic shock: coagulation and cardiovascular carry
most points (marrow failure, vasopressors), then respiration and renal.
"""

from __future__ import annotations

import numpy as np

from trialdesk.clinical.sofa import COMPONENTS

#: relative share of SOFA points per component (assumed; the order of COMPONENTS)
COMPONENT_WEIGHTS = np.array([2.0, 3.0, 0.8, 3.0, 1.0, 1.5])


def split_total(total: int, rng: np.random.Generator, *, ventilated: bool,
                renal_replacement: bool, shock: bool) -> dict[str, int]:
    """Six component scores (each 0–4) adding up to ``total`` (0–24). A patient in
    shock (on vasopressors) scores at least 3 for cardiovascular, a ventilated patient
    is favoured for respiration, one on renal replacement for renal."""
    if not 0 <= total <= 24:
        raise ValueError(f"a SOFA total is 0–24, not {total}")
    weights = COMPONENT_WEIGHTS * rng.uniform(0.6, 1.4, size=6)
    weights[0] *= 1.8 if ventilated else 1.0
    weights[5] *= 2.0 if renal_replacement else 1.0
    scores = np.zeros(6, dtype=int)
    if shock:
        scores[3] = min(3, total)
    remaining = total - scores.sum()
    while remaining > 0:
        room = scores < 4
        share = np.where(room, weights, 0.0)
        ideal = share / share.sum() * remaining
        add = np.minimum(np.floor(ideal).astype(int), 4 - scores)
        if add.sum() == 0:  # hand out one point by weight
            add = np.zeros(6, dtype=int)
            add[rng.choice(6, p=share / share.sum())] = 1
        scores += add
        remaining -= int(add.sum())
    return dict(zip(COMPONENTS, (int(s) for s in scores), strict=True))


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    return int(rng.integers(low, high + 1))


def _respiration(score: int, rng: np.random.Generator, ventilated: bool) -> dict[str, object]:
    ratio_band = {0: (420, 480), 1: (310, 390), 2: (210, 290), 3: (110, 190), 4: (55, 90)}
    fio2 = {0: (0.21, 0.3), 1: (0.25, 0.4), 2: (0.3, 0.5), 3: (0.4, 0.7), 4: (0.7, 1.0)}[score]
    fio2_fraction = round(float(rng.uniform(*fio2)), 2)
    ratio = float(rng.uniform(*ratio_band[score]))
    pao2 = round(ratio * fio2_fraction)
    support = "invasive" if ventilated else ("noninvasive" if score >= 3 else "none")
    return {"pao2_mmhg": float(pao2), "fio2_fraction": fio2_fraction,
            "respiratory_support": support}


def _cardiovascular(score: int, rng: np.random.Generator) -> dict[str, object]:
    if score == 0:
        return {"map_mmhg": float(_int(rng, 70, 95))}
    if score == 1:
        return {"map_mmhg": float(_int(rng, 58, 69))}
    if score == 2:
        return {"map_mmhg": float(_int(rng, 65, 80)),
                "dobutamine_ug_kg_min": round(float(rng.uniform(2.5, 10)), 1)}
    dose = (0.02, 0.10) if score == 3 else (0.15, 1.8)
    return {"map_mmhg": float(_int(rng, 58, 75)),
            "norepinephrine_ug_kg_min": round(float(rng.uniform(*dose)), 2)}


def _renal(score: int, rng: np.random.Generator, renal_replacement: bool) -> dict[str, object]:
    creat = {0: (50, 109), 1: (110, 170), 2: (171, 299), 3: (300, 440), 4: (441, 800)}[score]
    urine = (600, 2500) if score <= 2 else (200, 499) if score == 3 else (20, 199)
    if score >= 3 and rng.random() < 0.5:  # the score from one of the two, the other lower
        return {"creatinine_umol_l": float(_int(rng, 120, 299)),
                "urine_ml_per_day": float(_int(rng, *urine))}
    if score >= 3:
        return {"creatinine_umol_l": float(_int(rng, *creat)),
                "urine_ml_per_day": float(_int(rng, 600, 1500))}
    return {"creatinine_umol_l": float(_int(rng, *creat)),
            "urine_ml_per_day": float(_int(rng, *urine))}


def inputs_for(components: dict[str, int], rng: np.random.Generator, *,
               ventilated: bool, renal_replacement: bool) -> dict[str, object]:
    """A complete :class:`~trialdesk.clinical.sofa.SofaInputs` mapping whose scores are
    ``components``."""
    platelets = {0: (150, 320), 1: (100, 149), 2: (50, 99), 3: (20, 49), 4: (3, 19)}
    bilirubin = {0: (5, 19), 1: (20, 32), 2: (33, 101), 3: (102, 204), 4: (205, 400)}
    gcs = {0: (15, 15), 1: (13, 14), 2: (10, 12), 3: (6, 9), 4: (3, 5)}
    values: dict[str, object] = {}
    values.update(_respiration(components["respiration"], rng, ventilated))
    values["platelets_10e9_per_l"] = float(_int(rng, *platelets[components["coagulation"]]))
    values["bilirubin_umol_l"] = float(_int(rng, *bilirubin[components["liver"]]))
    values.update(_cardiovascular(components["cardiovascular"], rng))
    values["gcs"] = _int(rng, *gcs[components["cns"]])
    values.update(_renal(components["renal"], rng, renal_replacement))
    return values
