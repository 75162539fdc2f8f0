"""Virtual RUMCESS patients: what a site would record, day by day, with its mistakes.

Each :class:`VirtualPatient` is plain data, ready to be entered through the same forms
and services as a real patient (the demo seeder does that):

* the **screening record** as the screening form expects it (the protocol's
  ``screening_fields``: birth date, sex, pregnancy, septic shock and its onset with the
  site's UTC offset, neutrophils with unit, consent, chemo-resistance, cause of
  neutropenia) — eligible by construction — and the record as entered (``entered``),
  which may carry a data-entry error;
* onset, screening, randomization and (MSC arm) infusion times, timezone-aware;
* **daily SOFA** from day 0 (randomization) to day 28 or death: the intended component
  scores, complete raw inputs that score exactly them with
  :func:`trialdesk.clinical.sofa.compute_sofa`, and the inputs as entered (missing
  values, unit mix-ups) with the time they were entered (late entries);
* **inflammatory markers** on the protocol's days (IL-6, IL-10 pg/mL, CRP mg/L,
  procalcitonin ng/mL, lactate mmol/L) — *assumed* magnitudes, none were published;
* **death** time (days after randomization; None = alive at day 90).

Calibration: :mod:`trialdesk.simulation.cohort` (the published cohort, domain.md §1.2).
Death by day 28 follows a Weibull time to death (shape < 1: early deaths) on standard
therapy with P(death ≤ 28 d) = ``control_mortality_day28``; the treatment effect is
proportional hazards on it: S_treated(t) = S_control(t)^HR, with HR given directly or
from an odds ratio for death by day 28. Both arms use the same random numbers for a
patient (common random numbers), so the treated course is the counterfactual of the
control one.

Reproducible: patient i of ``seed`` is the same whatever n, arm order or error rates.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

from trialdesk.simulation.cohort import RUMCESS_COHORT, CohortCalibration
from trialdesk.simulation.sofa_inputs import inputs_for, split_total

ArmRole = Literal["control", "experimental"]
#: days with an inflammatory-markers form (RUMCESS schedule)
MARKER_DAYS = (0, 1, 2, 3, 5, 7, 14, 28)
FOLLOW_UP_DAYS = 90.0
#: RUMCESS recruited 30 patients from December 2012 over about 2.5 years
TRIAL_START = dt.datetime(2012, 12, 3, 8, 0, tzinfo=ZoneInfo("Europe/Moscow"))
DAYS_BETWEEN_PATIENTS = 30.0


@dataclass(frozen=True)
class TreatmentEffect:
    """Effect of the experimental arm on death: a hazard ratio (proportional hazards)
    or an odds ratio for death by day 28 (converted to the hazard ratio that gives the
    same day-28 mortality). Neither: no effect."""

    hazard_ratio: float | None = None
    odds_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.hazard_ratio is not None and self.odds_ratio is not None:
            raise ValueError("give the hazard ratio or the odds ratio, not both")
        for name in ("hazard_ratio", "odds_ratio"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")

    def hazard_ratio_at(self, control_mortality: float) -> float:
        if self.odds_ratio is not None:
            odds = self.odds_ratio * control_mortality / (1 - control_mortality)
            treated = odds / (1 + odds)
            return math.log(1 - treated) / math.log(1 - control_mortality)
        return 1.0 if self.hazard_ratio is None else self.hazard_ratio

    def mortality_day28(self, control_mortality: float) -> float:
        """Treated-arm P(death by day 28)."""
        return 1 - (1 - control_mortality) ** self.hazard_ratio_at(control_mortality)


#: the published result: 28-day survival 60% (MSC) vs 20% (standard therapy)
PUBLISHED_EFFECT = TreatmentEffect(hazard_ratio=math.log(0.6) / math.log(0.2))


@dataclass(frozen=True)
class ErrorRates:
    """Probabilities of the data-entry errors and gaps real sites produce (assumed)."""

    #: neutrophils typed as cells/µL into the ×10^9/L field (500 for 0.5)
    neutrophils_unit_mixup: float = 0.03
    #: onset typed without its UTC offset
    onset_without_timezone: float = 0.02
    #: per SOFA day: FiO2 typed as a percentage (40 for 0.40)
    fio2_percent: float = 0.01
    #: per SOFA day: bilirubin µmol/L value typed into the mg/dL field
    bilirubin_umol_in_mg_field: float = 0.01
    #: per SOFA day: norepinephrine pump rate in µg/min typed as µg/kg/min
    norepinephrine_ug_per_min: float = 0.01
    #: per SOFA day: the form entered more than 3 days late
    late_entry: float = 0.05
    #: per SOFA day and lab (PaO2/FiO2, platelets, bilirubin, creatinine): not measured
    missing_lab: float = 0.04
    #: per SOFA day: no form at all
    missing_day: float = 0.02

    @classmethod
    def none(cls) -> ErrorRates:
        return cls(**{f: 0.0 for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class EntryError:
    """One injected data-entry error: where, the true and the entered value, and the
    error code TrialDesk's input checks should answer with (None: nothing refuses it,
    e.g. a late entry, which only the audit trail and the data-quality report see)."""

    kind: str
    form: str
    field: str
    day: int | None
    true_value: Any
    entered_value: Any
    expected_code: str | None


@dataclass(frozen=True)
class SofaDay:
    """One day's SOFA form. ``inputs`` score exactly ``components`` (and ``total``);
    ``entered`` is what the site typed (keys missing = not measured); ``entered_at`` is
    when the form was saved."""

    day: int
    assessed_at: dt.datetime
    total: int
    components: dict[str, int]
    inputs: dict[str, Any]
    entered: dict[str, Any] | None
    entered_at: dt.datetime | None


@dataclass(frozen=True)
class MarkerSample:
    """Inflammatory markers on one scheduled day (units in the names)."""

    day: int
    drawn_at: dt.datetime
    il6_pg_per_ml: float
    il10_pg_per_ml: float
    crp_mg_per_l: float
    procalcitonin_ng_per_ml: float
    lactate_mmol_per_l: float


@dataclass(frozen=True)
class VirtualPatient:
    """One simulated patient (module docstring)."""

    index: int
    arm_role: ArmRole
    screening_record: dict[str, Any]
    entered_screening_record: dict[str, Any]
    onset: dt.datetime
    screened_at: dt.datetime
    randomized_at: dt.datetime
    infusion_at: dt.datetime | None
    age_years: int
    weight_kg: float
    apache_ii: int
    baseline_sofa: int
    ventilated: bool
    renal_replacement: bool
    death_day: float | None
    sofa_days: tuple[SofaDay, ...]
    markers: tuple[MarkerSample, ...]
    entry_errors: tuple[EntryError, ...] = field(default=())

    @property
    def hours_onset_to_randomization(self) -> float:
        return (self.randomized_at - self.onset).total_seconds() / 3600

    @property
    def death_at(self) -> dt.datetime | None:
        return None if self.death_day is None else \
            self.randomized_at + dt.timedelta(days=self.death_day)

    @property
    def died_by_day28(self) -> bool:
        return self.death_day is not None and self.death_day <= 28

    @property
    def lactate_mmol_per_l(self) -> float:
        return self.markers[0].lactate_mmol_per_l


# --- the generator --------------------------------------------------------------------


def _death_day(u: float, late: float, late_u: float, hr: float,
               cal: CohortCalibration) -> float | None:
    """Days to death (None: alive at day 90) from two uniforms, by inversion."""
    k = cal.death_weibull_shape
    cum_hazard_28 = -math.log(1 - cal.control_mortality_day28)  # control arm, at day 28
    hazard = -math.log(1 - u)  # the patient's cumulative-hazard budget
    if hazard <= hr * cum_hazard_28:
        return 28 * (hazard / (hr * cum_hazard_28)) ** (1 / k)
    if late < cal.late_mortality_day28_to_90:
        return 28 + (FOLLOW_UP_DAYS - 28) * late_u
    return None


def _trajectory(baseline: int, death_day: float | None, rng: np.random.Generator) -> list[int]:
    """Daily SOFA totals from day 0 to day 28 or the day of death: survivors recover
    (about 0.6 points a day, to a floor), patients who die worsen towards death."""
    last = 28 if death_day is None or death_day > 28 else math.floor(death_day)
    totals = []
    for day in range(last + 1):
        if death_day is not None and death_day <= 28:
            mean = baseline + 4 * day / max(death_day, 1)
        else:
            mean = max(2.0, baseline - 0.6 * day)
        totals.append(int(np.clip(round(mean + rng.normal(0, 0.8)), 0, 24)))
    totals[0] = baseline
    return totals


def _markers(day: int, at: dt.datetime, dying: bool, lactate0: float,
             rng: np.random.Generator, scale: np.ndarray) -> MarkerSample:
    trend = math.exp(0.05 * day) if dying else math.exp(-0.25 * day)
    lact_trend = (1 + 0.1 * day) if dying else max(0.35, math.exp(-0.3 * day))

    def noisy(value: float) -> float:
        return float(value * math.exp(rng.normal(0, 0.25)))

    # floors: the assays' lower limits of quantification (assumed)
    return MarkerSample(day, at, max(1.5, round(noisy(600 * scale[0] * trend), 1)),
                        max(0.5, round(noisy(60 * scale[1] * trend), 1)),
                        max(0.3, round(noisy(180 * scale[2] * (trend ** 0.5)), 1)),
                        max(0.02, round(noisy(12 * scale[3] * trend), 2)),
                        round(lactate0 if day == 0 else noisy(lactate0 * lact_trend), 1))


def virtual_patient(index: int, *, treated: bool, seed: int = 0,
                    effect: TreatmentEffect = TreatmentEffect(),
                    errors: ErrorRates = ErrorRates(),
                    calibration: CohortCalibration = RUMCESS_COHORT,
                    with_days: bool = True) -> VirtualPatient:
    """Patient ``index`` of ``seed``, on the experimental arm if ``treated``.
    ``with_days=False`` skips the daily SOFA forms and markers (faster, for baseline
    and outcome statistics on large samples)."""
    cal = calibration
    base = np.random.default_rng([seed, index, 0])  # baseline: independent of the arm
    age = int(cal.age_years.draw(base))
    male = bool(base.random() < cal.p_male)
    cause = str(cal.neutropenia_cause.draw(base, 1)[0])
    apache = round(float(cal.apache_ii.draw(base)))
    sofa0 = int(cal.baseline_sofa(base, 1)[0])
    lactate = round(float(cal.lactate_mmol_per_l.draw(base)), 1)
    hours = float(cal.onset_to_randomization_hours.draw(base))
    anc = round(float(cal.neutrophils_10e9_per_l.draw(base)), 2)
    weight = round(float(cal.weight_kg.draw(base)), 1)
    ventilated = bool(base.random() < cal.p_ventilated)
    rrt = bool(base.random() < cal.p_renal_replacement)
    u_death, u_late, u_late_time = base.random(3)
    marker_scale = np.exp(base.normal(0, 0.6, size=4))

    onset = TRIAL_START + dt.timedelta(days=index * DAYS_BETWEEN_PATIENTS
                                       + float(base.uniform(0, 20)),
                                       hours=float(base.uniform(0, 24)))
    randomized = onset + dt.timedelta(hours=hours)
    screened = onset + dt.timedelta(hours=max(0.1, hours - float(base.uniform(0.25, 1.0))))
    birth = randomized.date() - dt.timedelta(days=round(365.2425 * (age + float(base.random()))))
    record: dict[str, Any] = {
        "birth_date": birth.isoformat(), "sex": "male" if male else "female",
        "septic_shock": True, "septic_shock_onset": onset.isoformat(timespec="minutes"),
        "neutrophils": {"value": anc, "unit": "10^9/L"}, "consent_signed": True,
        "chemoresistant_oncohematological": False, "neutropenia_cause": cause}
    if not male:
        record["pregnant"] = False

    hr = effect.hazard_ratio_at(cal.control_mortality_day28) if treated else 1.0
    death = _death_day(float(u_death), float(u_late), float(u_late_time), hr, cal)
    course = np.random.default_rng([seed, index, 1])  # daily course: same draws per arm
    err = np.random.default_rng([seed, index, 2])  # entry errors: their own stream
    entry_errors: list[EntryError] = []
    entered = dict(record)
    if err.random() < errors.neutrophils_unit_mixup and anc >= 0.01:
        # cells/µL typed into the ×10^9/L field: above 200 the unit check refuses it;
        # below, it passes as an implausibly high count and the patient looks ineligible
        wrong = {"value": round(anc * 1000), "unit": "10^9/L"}
        entered["neutrophils"] = wrong
        entry_errors.append(EntryError("neutrophils_unit_mixup", "screening", "neutrophils",
                                       None, record["neutrophils"], wrong,
                                       "LIKELY_WRONG_UNIT" if anc * 1000 > 200 else None))
    if err.random() < errors.onset_without_timezone:
        naive = onset.replace(tzinfo=None).isoformat(timespec="minutes")
        entered["septic_shock_onset"] = naive
        entry_errors.append(EntryError("onset_without_timezone", "screening",
                                       "septic_shock_onset", None,
                                       record["septic_shock_onset"], naive,
                                       "TIMEZONE_REQUIRED"))
    infusion = (randomized + dt.timedelta(hours=float(course.uniform(0.5, 2.0)))
                if treated else None)

    days: list[SofaDay] = []
    markers: list[MarkerSample] = []
    if with_days:
        dying = death is not None and death <= 28
        for day, total in enumerate(_trajectory(sofa0, death, course)):
            at = randomized + dt.timedelta(days=day)
            shock = day == 0 or (dying and course.random() < 0.7) or \
                (not dying and day <= 2 and course.random() < 0.5)
            components = split_total(total, course, ventilated=ventilated,
                                     renal_replacement=rrt, shock=shock and total >= 3)
            inputs = inputs_for(components, course, ventilated=ventilated,
                                renal_replacement=rrt)
            form, when = _enter_day(day, at, inputs, weight, err, errors, entry_errors)
            days.append(SofaDay(day, at, total, components, inputs, form, when))
        for day in MARKER_DAYS:
            if death is not None and day > death:
                break
            markers.append(_markers(day, randomized + dt.timedelta(days=day),
                                    dying, lactate, course, marker_scale))
    else:
        markers.append(_markers(0, randomized, False, lactate, course, marker_scale))
    return VirtualPatient(index, "experimental" if treated else "control", record, entered,
                          onset, screened, randomized, infusion, age, weight, apache, sofa0,
                          ventilated, rrt, death, tuple(days), tuple(markers),
                          tuple(entry_errors))


def _enter_day(day: int, at: dt.datetime, inputs: dict[str, Any], weight: float,
               err: np.random.Generator, rates: ErrorRates,
               errors: list[EntryError]) -> tuple[dict[str, Any] | None, dt.datetime | None]:
    """What the site types for one SOFA day, and when."""
    draws = err.random(9)
    if draws[0] < rates.missing_day:
        return None, None
    form = dict(inputs)
    labs = (("pao2_mmhg", "fio2_fraction", "respiratory_support"), ("platelets_10e9_per_l",),
            ("bilirubin_umol_l",), ("creatinine_umol_l",))
    for draw, keys in zip(draws[1:5], labs, strict=True):
        if draw < rates.missing_lab:
            for key in keys:
                form.pop(key, None)

    def wrong(kind: str, key: str, value: Any, code: str | None, new_key: str | None = None):
        errors.append(EntryError(kind, "sofa", new_key or key, day, form[key], value, code))
        del form[key]
        form[new_key or key] = value

    if draws[5] < rates.fio2_percent and "fio2_fraction" in form:
        wrong("fio2_percent", "fio2_fraction", round(form["fio2_fraction"] * 100),
              "LIKELY_WRONG_UNIT")
    if draws[6] < rates.bilirubin_umol_in_mg_field and "bilirubin_umol_l" in form \
            and form["bilirubin_umol_l"] > 80:
        wrong("bilirubin_umol_in_mg_field", "bilirubin_umol_l", form["bilirubin_umol_l"],
              "LIKELY_WRONG_UNIT", new_key="bilirubin_mg_dl")
    if draws[7] < rates.norepinephrine_ug_per_min and "norepinephrine_ug_kg_min" in form:
        rate = round(form["norepinephrine_ug_kg_min"] * weight, 1)
        if rate > 5:  # below 5 µg/min the mistake is not detectable in the form
            wrong("norepinephrine_ug_per_min", "norepinephrine_ug_kg_min", rate,
                  "LIKELY_WRONG_UNIT")
    entered_at = at + dt.timedelta(hours=float(err.uniform(1, 20)))
    if draws[8] < rates.late_entry:
        late = at + dt.timedelta(days=float(err.uniform(3, 14)))
        errors.append(EntryError("late_entry", "sofa", "entered_at", day, entered_at, late,
                                 None))
        entered_at = late
    return form, entered_at


def generate_patients(n: int, *, seed: int = 0, effect: TreatmentEffect = TreatmentEffect(),
                      arms: list[ArmRole] | None = None, errors: ErrorRates = ErrorRates(),
                      calibration: CohortCalibration = RUMCESS_COHORT,
                      with_days: bool = True) -> list[VirtualPatient]:
    """``n`` patients; ``arms`` gives each one's arm role (default: alternating control,
    experimental — the demo seeder passes the arms the production randomization gave)."""
    if n < 0:
        raise ValueError("n must not be negative")
    if arms is not None and len(arms) != n:
        raise ValueError(f"{len(arms)} arms for {n} patients")
    roles: list[ArmRole] = arms if arms is not None else \
        ["control" if i % 2 == 0 else "experimental" for i in range(n)]
    return [virtual_patient(i, treated=roles[i] == "experimental", seed=seed, effect=effect,
                            errors=errors, calibration=calibration, with_days=with_days)
            for i in range(n)]


def without_errors(patient: VirtualPatient) -> VirtualPatient:
    """The patient as it would be with perfect data entry."""
    return replace(patient, entered_screening_record=dict(patient.screening_record),
                   entry_errors=())
