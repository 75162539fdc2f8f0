"""Sequential Organ Failure Assessment (SOFA) score, Vincent et al. 1996.

RUMCESS's secondary outcome is organ dysfunction measured by SOFA
(``../shared/domain.md`` §1.1, table in §4.1). Each of six organ systems scores
0–4 from the *worst* value of the 24-hour period; the total is 0–24. This module
turns those worst values into the six component scores and the totals. It is
pure (no Django, no I/O) so the CRF, the CLI and the analysis score a patient-day
the same way.

Inputs and their units (units are in the field names)
-----------------------------------------------------
==============================  ===============  ===================================
field                           unit             accepted range (inclusive)
==============================  ===============  ===================================
``pao2_mmhg``                   mmHg             15–760 (a value plausible in kPa is
                                                 refused as a likely kPa value)
``fio2_fraction``               fraction         0.21–1.0 (21–100 is refused as a
                                                 likely percentage: enter 0.40)
``respiratory_support``         —                none / noninvasive / invasive
``platelets_10e9_per_l``        ×10^9/L          0–2000 (= ×10^3/µL; a count per µL
                                                 is refused as a likely cells/µL)
``bilirubin_mg_dl``             mg/dL            0–80 (else likely µmol/L)
``bilirubin_umol_l``            µmol/L           0–1368 (= 80 mg/dL)
``map_mmhg``                    mmHg             10–250
``dopamine_ug_kg_min``          µg/kg/min        0–50 (above: likely µg/min)
``dobutamine_ug_kg_min``        µg/kg/min        0–40 (above: likely µg/min)
``epinephrine_ug_kg_min``       µg/kg/min        0–5 (above: likely µg/min)
``norepinephrine_ug_kg_min``    µg/kg/min        0–5 (above: likely µg/min)
``gcs``                         points           whole number 3–15
``creatinine_mg_dl``            mg/dL            0–30 (else likely µmol/L)
``creatinine_umol_l``           µmol/L           0–2652 (= 30 mg/dL)
``urine_ml_per_day``            mL/day           0, or 20–20000 (a value above 0
                                                 and below 20 is refused as likely
                                                 litres; a truly anuric day below
                                                 20 mL can be entered as 0, which
                                                 scores the same 4 points)
==============================  ===============  ===================================

Lab measures (PaO2, platelets, bilirubin, creatinine) are range-checked by
:func:`trialdesk.clinical.units.to_canonical`, the others by
:func:`~trialdesk.clinical.units.check_range`. A drug dose is "likely µg/min"
when it lies above the µg/kg/min range but at most 200 times its top (a 200 kg
patient at the top dose). Numbers only: a string such as ``"1.2"`` is refused.

Conventions (``domain.md`` §4.2 resolved; every one is tested)
--------------------------------------------------------------
1. **Cut-offs are read literally from the table.** "<X" rows: a value of exactly
   X gets the lower score (platelets 150 → 0, 149.9 → 1; PaO2/FiO2 400 → 0).
   Banded rows: a value on a band's lower bound belongs to that band, and a value
   in a printed gap stays in the lower band (bilirubin 1.95 → 1, 2.0 → 2);
   ">12.0" and ">5.0" are strict (bilirubin 12.0 → 3, 12.01 → 4; creatinine
   5.0 → 3, 5.01 → 4).
2. **µmol/L inputs are scored against the table's own µmol/L bands**, never
   converted to mg/dL (the printed µmol/L bands are not exact conversions, §4.2
   item 2): bilirubin ≥20 → 1, ≥33 → 2, ≥102 → 3, >204 → 4; creatinine ≥110 → 1,
   ≥171 → 2, ≥300 → 3, >440 → 4. Giving both units of one lab value is refused.
3. **Respiration**: ratio = PaO2 (mmHg) / FiO2 (fraction), in mmHg, rounded to
   10⁻⁶ mmHg so that binary floating point cannot move an exact boundary
   (84 / 0.21 is 400 → 0). ≥400 → 0, <400 → 1, <300 → 2; <200 → 3 and <100 → 4
   only *with respiratory support*; without support the score is capped at 2.
   Invasive ventilation is support; non-invasive ventilation / CPAP counts too
   when ``SofaConventions.noninvasive_counts_as_support`` is true (the default;
   mimic-code counts invasive only, §4.2 item 3). A missing
   ``respiratory_support`` is treated as *none* (the cap applies), so an
   unrecorded ventilator can only under-score, never over-score.
4. **Cardiovascular** (doses in µg/kg/min, given for ≥1 h — the caller enters
   only such doses): dopamine >15, epinephrine >0.1 or norepinephrine >0.1 → 4;
   dopamine >5, or any epinephrine or norepinephrine dose → 3; dopamine ≤5 (the
   1996 paper's "≤5"; the Sepsis-3 reprint's "<5" is not used, so dopamine 5.0
   → 2) or any dobutamine → 2; MAP <70 mmHg → 1; MAP ≥70 → 0. A dose of 0 or a
   missing dose means "not given". Drugs outside SOFA (vasopressin,
   phenylephrine, milrinone) have no field and carry no points (§4.2 item 4).
5. **CNS**: GCS 15 → 0, 13–14 → 1, 10–12 → 2, 6–9 → 3, <6 → 4. Which GCS to
   enter for a sedated patient (pre-sedation or assumed normal, §4.2 item 6) is
   the caller's decision, recorded with the CRF; this module scores the number.
6. **Renal**: the worse of the creatinine score and the urine score (urine
   <500 mL/day → 3, <200 → 4).
7. **Missing values.** A component is missing (``None``) only when *none* of
   its inputs is present: respiration needs both PaO2 and FiO2; cardiovascular
   is missing only if MAP and all four drugs are missing; renal only if both
   creatinine and urine output are missing. A component with some inputs present
   scores what they show (a lower bound of the full score). With
   ``SofaConventions.missing_component_scores_zero`` true (the default, as
   mimic-code and most EHR studies, §4.2 item 5) a missing component counts 0 in
   the totals and is named in ``SofaResult.missing``. With it false,
   :func:`compute_sofa` raises :class:`~trialdesk.errors.MissingValue` naming
   the missing components and the inputs they need, instead of a total.
8. ``total_without_coagulation`` = total − coagulation score: haematology
   patients' thrombocytopenia is often from marrow failure or chemotherapy, not
   sepsis (§4.2 item 7), so analyses report it beside the total.

Worked patient (day 1, invasive ventilation)
--------------------------------------------
PaO2 70 mmHg on FiO2 0.50: ratio 140 <200 with support → 3. Platelets 35 ×10^9/L
(<50) → 3. Bilirubin 40 µmol/L (33–101) → 2. MAP 62 mmHg on norepinephrine
0.25 µg/kg/min (>0.1) → 4. GCS 11 (10–12) → 2. Creatinine 180 µmol/L (171–299)
→ 2, urine 350 mL/day (<500) → 3, renal = worse = 3. Total 3+3+2+4+2+3 = 17;
without coagulation 17 − 3 = 14.

>>> day1 = SofaInputs.from_mapping({
...     "pao2_mmhg": 70, "fio2_fraction": 0.5, "respiratory_support": "invasive",
...     "platelets_10e9_per_l": 35, "bilirubin_umol_l": 40, "map_mmhg": 62,
...     "norepinephrine_ug_kg_min": 0.25, "gcs": 11, "creatinine_umol_l": 180,
...     "urine_ml_per_day": 350})
>>> result = compute_sofa(day1)
>>> result.components["respiration"], result.components["renal"]
(3, 3)
>>> result.total, result.total_without_coagulation, result.missing
(17, 14, ())
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from functools import partial
from typing import Any

from trialdesk.clinical.units import check_range, to_canonical
from trialdesk.errors import ImplausibleValue, InputRejected, LikelyWrongUnit, MissingValue

#: Component names, in the order used by ``SofaResult.components`` and ``missing``.
COMPONENTS: tuple[str, ...] = (
    "respiration", "coagulation", "liver", "cardiovascular", "cns", "renal",
)

#: Inputs each component is computed from (named in "missing" messages).
COMPONENT_INPUTS: dict[str, tuple[str, ...]] = {
    "respiration": ("pao2_mmhg", "fio2_fraction", "respiratory_support"),
    "coagulation": ("platelets_10e9_per_l",),
    "liver": ("bilirubin_mg_dl", "bilirubin_umol_l"),
    "cardiovascular": ("map_mmhg", "dopamine_ug_kg_min", "dobutamine_ug_kg_min",
                       "epinephrine_ug_kg_min", "norepinephrine_ug_kg_min"),
    "cns": ("gcs",),
    "renal": ("creatinine_mg_dl", "creatinine_umol_l", "urine_ml_per_day"),
}


class RespiratorySupport(StrEnum):
    """Respiratory support on the day of the worst PaO2/FiO2."""

    NONE = "none"
    NONINVASIVE = "noninvasive"  # NIV / CPAP via mask or helmet
    INVASIVE = "invasive"  # mechanical ventilation via tube or tracheostomy


@dataclass(frozen=True)
class SofaConventions:
    """The choices the 1996 table leaves open (module docstring, conventions 3 and 7)."""

    #: a missing component scores 0 in the totals and is flagged in ``missing``;
    #: if False, :func:`compute_sofa` raises :class:`MissingValue` instead
    missing_component_scores_zero: bool = True
    #: NIV/CPAP counts as respiratory support for respiration scores 3–4
    noninvasive_counts_as_support: bool = True


DEFAULT_CONVENTIONS = SofaConventions()


# --- the threshold table (shared with the vectorized trialdesk.prescreen.batch_sofa) ----

#: "< X → score" rows, worst first: the first row whose X the value is below wins.
RESPIRATION_LT: tuple[tuple[float, int], ...] = ((100, 4), (200, 3), (300, 2), (400, 1))
#: respiration scores that need respiratory support (without it the score is capped at 2)
RESPIRATION_SUPPORTED_ONLY: frozenset[int] = frozenset({3, 4})
PLATELETS_LT: tuple[tuple[float, int], ...] = ((20, 4), (50, 3), (100, 2), (150, 1))
GCS_LT: tuple[tuple[float, int], ...] = ((6, 4), (10, 3), (13, 2), (15, 1))
URINE_ML_PER_DAY_LT: tuple[tuple[float, int], ...] = ((200, 4), (500, 3))
#: banded rows: (≥ one → 1, ≥ two → 2, ≥ three → 3, > four_above → 4)
BILIRUBIN_MG_DL_BANDS: tuple[float, float, float, float] = (1.2, 2.0, 6.0, 12.0)
BILIRUBIN_UMOL_L_BANDS: tuple[float, float, float, float] = (20, 33, 102, 204)
CREATININE_MG_DL_BANDS: tuple[float, float, float, float] = (1.2, 2.0, 3.5, 5.0)
CREATININE_UMOL_L_BANDS: tuple[float, float, float, float] = (110, 171, 300, 440)
#: cardiovascular (µg/kg/min): > these → 4; dopamine > DOPAMINE_GT_3 → 3; MAP < MAP_LT → 1
DOPAMINE_GT_4, CATECHOLAMINE_GT_4 = 15.0, 0.1
DOPAMINE_GT_3 = 5.0
MAP_LT_MMHG = 70.0


def score_below(value: float, rows: tuple[tuple[float, int], ...]) -> int:
    """Score from "< X → score" rows (worst first); 0 when the value is below none."""
    for threshold, score in rows:
        if value < threshold:
            return score
    return 0


# --- input checks -------------------------------------------------------------------

#: (label, top of the µg/kg/min range) per vasoactive drug field
_DRUGS: dict[str, tuple[str, float]] = {
    "dopamine_ug_kg_min": ("dopamine", 50.0),
    "dobutamine_ug_kg_min": ("dobutamine", 40.0),
    "epinephrine_ug_kg_min": ("epinephrine", 5.0),
    "norepinephrine_ug_kg_min": ("norepinephrine", 5.0),
}
#: heaviest patient assumed when judging whether a dose was entered in µg/min
_MAX_WEIGHT_KG = 200.0
#: urine output above 0 and below this (mL/day) is taken for litres
_URINE_LITRES_BELOW = 20.0
_FIO2_MIN, _FIO2_MAX = 0.21, 1.0


def _lab(measure: str, unit: str, value: float, field: str, hint: str) -> float:
    """Range-check a lab value in ``unit`` via :func:`to_canonical`; return it unconverted.

    SOFA scores each lab value in the unit it was entered in, so only the check
    is reused; on a likely wrong unit the message gains ``hint``, saying how to
    enter the value in this form.
    """
    try:
        to_canonical(measure, value, unit, field=field)
    except LikelyWrongUnit as err:
        raise LikelyWrongUnit(f"{err.message} {hint}", field=field) from None
    return float(value)


def _check_pao2(value: float) -> float:
    return _lab("pao2", "mmHg", value, "pao2_mmhg",
                "This form takes PaO2 in mmHg: multiply kPa by 7.5.")


def _check_fio2(value: float) -> float:
    try:
        return check_range(value, low=_FIO2_MIN, high=_FIO2_MAX, label="FiO2",
                           unit="(fraction)", field="fio2_fraction")
    except ImplausibleValue:
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and 100 * _FIO2_MIN <= value <= 100 * _FIO2_MAX:
            as_fraction = f"{value / 100:.2f}" if value == int(value) else f"{value / 100:g}"
            raise LikelyWrongUnit(
                f"FiO2: {value:g} looks like a percentage: enter {as_fraction} "
                f"(FiO2 is a fraction, {_FIO2_MIN:g}–{_FIO2_MAX:g}; room air is 0.21).",
                field="fio2_fraction",
            ) from None
        raise


def _check_platelets(value: float) -> float:
    return _lab("platelets", "10^9/L", value, "platelets_10e9_per_l",
                "This form takes ×10^9/L (= ×10^3/µL): divide a count per µL by 1000.")


def _check_bilirubin_mg_dl(value: float) -> float:
    return _lab("bilirubin", "mg/dL", value, "bilirubin_mg_dl",
                "If the lab printed µmol/L, enter it as bilirubin_umol_l instead.")


def _check_bilirubin_umol_l(value: float) -> float:
    return _lab("bilirubin", "umol/L", value, "bilirubin_umol_l",
                "If the lab printed mg/dL, enter it as bilirubin_mg_dl instead.")


def _check_creatinine_mg_dl(value: float) -> float:
    return _lab("creatinine", "mg/dL", value, "creatinine_mg_dl",
                "If the lab printed µmol/L, enter it as creatinine_umol_l instead.")


def _check_creatinine_umol_l(value: float) -> float:
    return _lab("creatinine", "umol/L", value, "creatinine_umol_l",
                "If the lab printed mg/dL, enter it as creatinine_mg_dl instead.")


def _check_map(value: float) -> float:
    return check_range(value, low=10, high=250, label="MAP", unit="mmHg", field="map_mmhg")


def _check_drug(field: str, value: float) -> float:
    label, top = _DRUGS[field]
    try:
        return check_range(value, low=0, high=top, label=f"{label} dose",
                           unit="µg/kg/min", field=field)
    except ImplausibleValue:
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and top < value <= top * _MAX_WEIGHT_KG:
            raise LikelyWrongUnit(
                f"{label} dose: {value:g} µg/kg/min is above the possible {top:g} µg/kg/min; "
                f"it looks like a rate in µg/min, not µg/kg/min. Divide µg/min by the body "
                f"weight in kg (e.g. {value:g} µg/min ÷ 70 kg = {value / 70:.2g} µg/kg/min)"
                f"; if the pump shows ng/kg/min, divide by 1000.",
                field=field,
            ) from None
        raise


def _check_gcs(value: int) -> int:
    checked = check_range(value, low=3, high=15, label="GCS", unit="points", field="gcs")
    if checked != int(checked):
        raise ImplausibleValue(
            f"GCS: {value:g} is not a whole number; GCS is eye (1–4) + verbal (1–5) "
            f"+ motor (1–6) points, 3–15.",
            field="gcs",
        )
    return int(checked)


def _check_urine(value: float) -> float:
    checked = check_range(value, low=0, high=20000, label="urine output", unit="mL/day",
                          field="urine_ml_per_day")
    if 0 < checked < _URINE_LITRES_BELOW:
        raise LikelyWrongUnit(
            f"urine output: {value:g} mL/day looks like litres ({value:g} L = "
            f"{value * 1000:g} mL); enter the 24-h volume in mL. If the patient truly "
            f"passed under {_URINE_LITRES_BELOW:g} mL, enter 0 (it scores the same).",
            field="urine_ml_per_day",
        )
    return checked


def _parse_support(value: RespiratorySupport | str | None) -> RespiratorySupport | None:
    if value is None or isinstance(value, RespiratorySupport):
        return value
    accepted = ", ".join(s.value for s in RespiratorySupport)
    if isinstance(value, str):
        try:
            return RespiratorySupport(value.strip().lower())
        except ValueError:
            pass
    raise InputRejected(
        f"respiratory support: '{value}' is not one of {accepted}. Use invasive for "
        f"mechanical ventilation, noninvasive for NIV/CPAP, none otherwise.",
        field="respiratory_support",
    )


def _one_unit(name: str, mg_dl: float | None, umol_l: float | None, field: str) -> None:
    if mg_dl is not None and umol_l is not None:
        raise InputRejected(
            f"{name} was given both in mg/dL ({mg_dl:g}) and in µmol/L ({umol_l:g}); "
            f"give one: the value in the unit the lab printed.",
            field=field,
        )


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "pao2_mmhg": _check_pao2,
    "fio2_fraction": _check_fio2,
    "respiratory_support": _parse_support,
    "platelets_10e9_per_l": _check_platelets,
    "bilirubin_mg_dl": _check_bilirubin_mg_dl,
    "bilirubin_umol_l": _check_bilirubin_umol_l,
    "map_mmhg": _check_map,
    **{drug: partial(_check_drug, drug) for drug in _DRUGS},
    "gcs": _check_gcs,
    "creatinine_mg_dl": _check_creatinine_mg_dl,
    "creatinine_umol_l": _check_creatinine_umol_l,
    "urine_ml_per_day": _check_urine,
}


def _checked(field: str, value: Any) -> Any:
    return None if value is None else _CHECKS[field](value)


# --- inputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class SofaInputs:
    """Worst values of one 24-hour period; ``None`` = not measured.

    Every value is checked on construction (directly or via :meth:`from_mapping`):
    non-numbers and impossible values raise :class:`ImplausibleValue`, values
    plausible only in another unit raise :class:`LikelyWrongUnit`, both units of
    one lab value raise :class:`InputRejected`. ``respiratory_support`` accepts the
    enum or its text value (case-insensitive) and is stored as the enum.
    """

    pao2_mmhg: float | None = None
    fio2_fraction: float | None = None
    respiratory_support: RespiratorySupport | str | None = None  # stored as the enum
    platelets_10e9_per_l: float | None = None
    bilirubin_mg_dl: float | None = None
    bilirubin_umol_l: float | None = None
    map_mmhg: float | None = None
    dopamine_ug_kg_min: float | None = None
    dobutamine_ug_kg_min: float | None = None
    epinephrine_ug_kg_min: float | None = None
    norepinephrine_ug_kg_min: float | None = None
    gcs: int | None = None
    creatinine_mg_dl: float | None = None
    creatinine_umol_l: float | None = None
    urine_ml_per_day: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _checked(f.name, getattr(self, f.name)))
        _one_unit("bilirubin", self.bilirubin_mg_dl, self.bilirubin_umol_l, "bilirubin_umol_l")
        _one_unit("creatinine", self.creatinine_mg_dl, self.creatinine_umol_l,
                  "creatinine_umol_l")

    @classmethod
    def accepted_keys(cls) -> tuple[str, ...]:
        """The keys :meth:`from_mapping` accepts: the field names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SofaInputs:
        """Build from a CRF/JSON mapping whose keys are the field names.

        An absent key or a null value means "not measured". An unknown key is
        refused (a misspelt ``creatinine_umol`` would otherwise be silently
        missing) with :class:`InputRejected` naming it and listing the accepted keys.
        """
        if not isinstance(data, Mapping):
            raise InputRejected(
                f"SOFA inputs must be a mapping of field name to value, not "
                f"{type(data).__name__}."
            )
        accepted = cls.accepted_keys()
        unknown = [key for key in data if key not in accepted]
        if unknown:
            names = ", ".join(f"'{key}'" for key in unknown)
            raise InputRejected(
                f"Unknown SOFA input {names}. Accepted keys: {', '.join(accepted)}.",
                field=str(unknown[0]),
            )
        return cls(**data)


# --- component scores ---------------------------------------------------------------


def score_respiration(
    pao2_mmhg: float | None,
    fio2_fraction: float | None,
    support: RespiratorySupport | str | None = None,
    conventions: SofaConventions = DEFAULT_CONVENTIONS,
) -> int | None:
    """Respiration 0–4 from PaO2 (mmHg) / FiO2 (fraction); ``None`` if either is missing.

    Scores 3–4 need respiratory support (invasive, or non-invasive when the
    convention says so); without support, or with support unrecorded, the score
    is capped at 2.
    """
    if pao2_mmhg is None or fio2_fraction is None:
        return None
    pao2 = _check_pao2(pao2_mmhg)
    fio2 = _check_fio2(fio2_fraction)
    mode = _parse_support(support) or RespiratorySupport.NONE
    supported = mode is RespiratorySupport.INVASIVE or (
        mode is RespiratorySupport.NONINVASIVE and conventions.noninvasive_counts_as_support
    )
    ratio = round(pao2 / fio2, 6)  # mmHg; rounding absorbs float error at exact cut-offs
    rows = RESPIRATION_LT if supported else tuple(
        row for row in RESPIRATION_LT if row[1] not in RESPIRATION_SUPPORTED_ONLY)
    return score_below(ratio, rows)


def score_coagulation(platelets_10e9_per_l: float | None) -> int | None:
    """Coagulation 0–4 from platelets (×10^9/L = ×10^3/µL): <150, <100, <50, <20."""
    if platelets_10e9_per_l is None:
        return None
    return score_below(_check_platelets(platelets_10e9_per_l), PLATELETS_LT)


def score_liver(
    bilirubin_mg_dl: float | None = None, bilirubin_umol_l: float | None = None
) -> int | None:
    """Liver 0–4 from total bilirubin, in mg/dL or µmol/L (one of them), each on its own bands.

    mg/dL: ≥1.2 → 1, ≥2.0 → 2, ≥6.0 → 3, >12.0 → 4; µmol/L: ≥20, ≥33, ≥102, >204.
    """
    _one_unit("bilirubin", bilirubin_mg_dl, bilirubin_umol_l, "bilirubin_umol_l")
    if bilirubin_mg_dl is not None:
        return _banded(_check_bilirubin_mg_dl(bilirubin_mg_dl), *BILIRUBIN_MG_DL_BANDS)
    if bilirubin_umol_l is not None:
        return _banded(_check_bilirubin_umol_l(bilirubin_umol_l), *BILIRUBIN_UMOL_L_BANDS)
    return None


def score_cardiovascular(
    map_mmhg: float | None = None,
    dopamine_ug_kg_min: float | None = None,
    dobutamine_ug_kg_min: float | None = None,
    epinephrine_ug_kg_min: float | None = None,
    norepinephrine_ug_kg_min: float | None = None,
) -> int | None:
    """Cardiovascular 0–4 from MAP (mmHg) and vasoactive doses (µg/kg/min, given ≥1 h).

    A missing dose counts as not given; ``None`` only if MAP and every dose are missing.
    """
    doses = {
        "dopamine_ug_kg_min": dopamine_ug_kg_min,
        "dobutamine_ug_kg_min": dobutamine_ug_kg_min,
        "epinephrine_ug_kg_min": epinephrine_ug_kg_min,
        "norepinephrine_ug_kg_min": norepinephrine_ug_kg_min,
    }
    if map_mmhg is None and all(dose is None for dose in doses.values()):
        return None
    dop, dob, epi, nor = (
        0.0 if dose is None else _check_drug(field, dose) for field, dose in doses.items()
    )
    if dop > DOPAMINE_GT_4 or epi > CATECHOLAMINE_GT_4 or nor > CATECHOLAMINE_GT_4:
        return 4
    if dop > DOPAMINE_GT_3 or epi > 0 or nor > 0:
        return 3
    if dop > 0 or dob > 0:
        return 2
    if map_mmhg is not None and _check_map(map_mmhg) < MAP_LT_MMHG:
        return 1
    return 0


def score_cns(gcs: int | None) -> int | None:
    """CNS 0–4 from the Glasgow Coma Scale (3–15): 15 → 0, 13–14, 10–12, 6–9, <6 → 4."""
    if gcs is None:
        return None
    return score_below(_check_gcs(gcs), GCS_LT)


def score_renal(
    creatinine_mg_dl: float | None = None,
    creatinine_umol_l: float | None = None,
    urine_ml_per_day: float | None = None,
) -> int | None:
    """Renal 0–4: the worse of creatinine and 24-h urine output; ``None`` if both missing.

    Creatinine mg/dL: ≥1.2 → 1, ≥2.0 → 2, ≥3.5 → 3, >5.0 → 4; µmol/L: ≥110, ≥171,
    ≥300, >440 (one unit only). Urine (mL/day): <500 → 3, <200 → 4.
    """
    _one_unit("creatinine", creatinine_mg_dl, creatinine_umol_l, "creatinine_umol_l")
    scores: list[int] = []
    if creatinine_mg_dl is not None:
        scores.append(_banded(_check_creatinine_mg_dl(creatinine_mg_dl),
                              *CREATININE_MG_DL_BANDS))
    if creatinine_umol_l is not None:
        scores.append(_banded(_check_creatinine_umol_l(creatinine_umol_l),
                              *CREATININE_UMOL_L_BANDS))
    if urine_ml_per_day is not None:
        scores.append(score_below(_check_urine(urine_ml_per_day), URINE_ML_PER_DAY_LT))
    return max(scores) if scores else None


def _banded(value: float, one: float, two: float, three: float, four_above: float) -> int:
    """Bands ≥one → 1, ≥two → 2, ≥three → 3, >four_above → 4 (gaps stay in the lower band)."""
    if value > four_above:
        return 4
    if value >= three:
        return 3
    if value >= two:
        return 2
    if value >= one:
        return 1
    return 0


# --- total --------------------------------------------------------------------------


@dataclass(frozen=True)
class SofaResult:
    """Component scores (0–4, ``None`` = missing) and totals (0–24) for one day."""

    components: dict[str, int | None]
    total: int
    total_without_coagulation: int
    missing: tuple[str, ...]
    conventions: SofaConventions

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the CLI's ``--json``)."""
        return {
            "total": self.total,
            "total_without_coagulation": self.total_without_coagulation,
            "missing": list(self.missing),
            "components": dict(self.components),
            "conventions": asdict(self.conventions),
        }

    def __str__(self) -> str:
        lines = [f"SOFA {self.total} (without coagulation {self.total_without_coagulation})"]
        for name in COMPONENTS:
            score = self.components[name]
            shown = "missing, counted as 0" if score is None else str(score)
            lines.append(f"  {name:<16}{shown}")
        return "\n".join(lines)


def compute_sofa(
    inputs: SofaInputs, conventions: SofaConventions = DEFAULT_CONVENTIONS
) -> SofaResult:
    """Score the six components of one day's worst values and total them.

    Missing components count 0 and are listed in ``missing``; with
    ``conventions.missing_component_scores_zero`` false, a missing component
    raises :class:`MissingValue` (naming it and the inputs it needs) instead.
    """
    components: dict[str, int | None] = {
        "respiration": score_respiration(
            inputs.pao2_mmhg, inputs.fio2_fraction, inputs.respiratory_support, conventions
        ),
        "coagulation": score_coagulation(inputs.platelets_10e9_per_l),
        "liver": score_liver(inputs.bilirubin_mg_dl, inputs.bilirubin_umol_l),
        "cardiovascular": score_cardiovascular(
            inputs.map_mmhg, inputs.dopamine_ug_kg_min, inputs.dobutamine_ug_kg_min,
            inputs.epinephrine_ug_kg_min, inputs.norepinephrine_ug_kg_min,
        ),
        "cns": score_cns(inputs.gcs),
        "renal": score_renal(
            inputs.creatinine_mg_dl, inputs.creatinine_umol_l, inputs.urine_ml_per_day
        ),
    }
    missing = tuple(name for name in COMPONENTS if components[name] is None)
    if missing and not conventions.missing_component_scores_zero:
        needs = "; ".join(
            f"{name} (needs {' or '.join(_needed(name))})" for name in missing
        )
        raise MissingValue(
            f"SOFA cannot be totalled: no value for {needs}. Enter the day's worst "
            f"value, or score with missing components counted as 0.",
            field=_first_missing_input(inputs, missing[0]),
        )
    total = sum(score or 0 for score in components.values())
    return SofaResult(
        components=components,
        total=total,
        total_without_coagulation=total - (components["coagulation"] or 0),
        missing=missing,
        conventions=conventions,
    )


def _needed(component: str) -> tuple[str, ...]:
    """The inputs that would make ``component`` present (for messages)."""
    if component == "respiration":
        return ("pao2_mmhg and fio2_fraction",)
    return COMPONENT_INPUTS[component]


def _first_missing_input(inputs: SofaInputs, component: str) -> str:
    """The field a form should highlight for a missing ``component``."""
    return next(
        name for name in COMPONENT_INPUTS[component]
        if getattr(inputs, name) is None and name != "respiratory_support"
    )
