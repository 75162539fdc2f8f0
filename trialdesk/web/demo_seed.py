"""Seed a simulated RUMCESS trial into the database through the web app's own services.

``trialdesk demo seed`` (and ``make run``) call :func:`seed_trial`. Every record is made
by the functions the pages and the API call — :func:`create_screening`,
:func:`record_consent`, :func:`randomize`, :func:`save_form`, :func:`report_ae`, … — as
the demo accounts a site would use (coordinator, investigator, cell-therapy lab), so
the demo shows what those services really produce: eligibility, allocations from the
sealed list, SOFA scores, bundle compliance, MSC doses and deviations, reporting clocks,
the audit trail.

The patients are the virtual patients of :mod:`trialdesk.simulation.patients`, with the
arm the production randomization gave them (the simulator's course depends on it).
Their times are moved so that the trial **ends at** ``today``: onsets keep the
simulator's order and spacing, compressed to ``days_between_patients`` (default 7 days,
so the last few patients are still in follow-up and have forms due or overdue); each
patient's own times (onset → screening → randomization → infusion → daily forms →
death) move together, unchanged.

Data-entry errors the simulator injects (a neutrophil count in the wrong unit, an onset
without its UTC offset, FiO2 as a percentage, a pump rate in µg/min) are entered first:
the seeder checks that the service refuses or flags them with the error code the
simulator expects, then enters the correct value with a reason, as a coordinator would.
Each attempt is listed in :attr:`SeedReport.entry_errors`. Unusual values (soft
warnings) are confirmed, as a coordinator confirms them; the confirmation is audited.

Idempotent: a database that already holds a seeded trial (allocations whose request id
starts with ``demo-seed-``) is left alone. The whole seed is one transaction, so a
failure leaves nothing half-seeded. Demo mode only (``TRIALDESK_DEMO=1``).

Some times cannot be simulated through the services: the screening log and the audit
trail's own time stamps are those of the seeding run (the services stamp them), while
every clinical time (onset, consent, randomization, infusion, samples, forms' entry
moment for the edit checks, adverse events and reports) is the simulated one.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test.utils import override_settings

from trialdesk.clinical.timeutil import site_zone, utcnow
from trialdesk.crf.schedule import day_date
from trialdesk.eligibility.age import completed_years
from trialdesk.errors import ConfirmationRequired, EditCheckFailed, TrialError
from trialdesk.protocol import Protocol
from trialdesk.safety.deadlines import ObligationStatus
from trialdesk.simulation.patients import (
    PUBLISHED_EFFECT,
    TRIAL_START,
    ErrorRates,
    TreatmentEffect,
    VirtualPatient,
    virtual_patient,
)
from trialdesk.web.casebook.models import Deviation, FormRecord
from trialdesk.web.casebook.services import SaveOutcome, save_form
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.randomization.services import randomize
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.safety.services import assess, record_report, report_ae
from trialdesk.web.screening.models import Screening
from trialdesk.web.screening.services import (
    assess as assess_screening,
)
from trialdesk.web.screening.services import (
    close_screening,
    create_screening,
    record_consent,
    update_screening,
)

#: request ids of seeded allocations start with this; its presence marks a seeded database
SEED_PREFIX = "demo-seed-"
#: screened patients not enrolled, per randomized patient (assumed; none were published)
EXCLUDED_PER_RANDOMIZED = 0.4
#: the last patient is randomized this long before ``today``
LAST_RANDOMIZATION_BEFORE_TODAY = dt.timedelta(hours=36)
#: index offset of the virtual patients used for screenings that are not enrolled
EXCLUDED_INDEX_BASE = 10_000
#: the simulator's error rates raised for the screening errors, so that a 30-patient
#: demo shows some (the simulator's defaults give about one in 30)
DEMO_ERROR_RATES = ErrorRates(neutrophils_unit_mixup=0.12, onset_without_timezone=0.08)
#: the reasons a screening is not enrolled, cycled in order (CONSORT "excluded")
EXCLUSIONS = ("ineligible_neutrophils", "declined", "ineligible_age", "missed_window",
              "ineligible_chemoresistant", "ineligible_pregnant", "declined",
              "ineligible_neutrophils", "missed_window", "ineligible_age")
#: the criterion each "ineligible" variant must fail (checked through the service)
EXPECTED_FAILING = {"ineligible_neutrophils": "I3", "ineligible_age": "E3",
                    "ineligible_chemoresistant": "E1", "ineligible_pregnant": "E4",
                    "declined": "E2"}
#: SOFA fields the simulator renames when it injects a unit error (entered → true)
RENAMED_FIELDS = {"bilirubin_mg_dl": "bilirubin_umol_l"}
INVESTIGATORS = ("Dr G. Galstyan", "Dr A. Petrova", "Dr I. Orlov")
RELATIVES = ("Spouse", "Daughter", "Son", "Mother", "Brother")
ANTIBIOTICS = ("meropenem + vancomycin", "meropenem + linezolid",
               "imipenem/cilastatin + amikacin", "cefoperazone/sulbactam + vancomycin")


class DemoNotAllowed(ImproperlyConfigured):
    """Seeding simulated patients outside demo mode (it would mix them into a real trial)."""


@dataclass(frozen=True)
class InjectedError:
    """One simulated data-entry error, what the service answered, and the correction."""

    subject: str
    kind: str
    form: str
    field: str
    day: int | None
    expected_code: str | None
    observed_codes: tuple[str, ...]
    corrected: bool

    @property
    def as_expected(self) -> bool:
        """The service answered with the expected code (an error nothing should refuse,
        expected None, is as expected whatever it shows)."""
        return self.expected_code is None or self.expected_code in self.observed_codes


@dataclass
class SeedReport:
    """What :func:`seed_trial` did (``seeded`` False: an earlier seed was found)."""

    seeded: bool
    seed: int | None
    randomized: int = 0
    screenings_by_status: dict[str, int] = field(default_factory=dict)
    not_enrolled_reasons: dict[str, int] = field(default_factory=dict)
    arms: dict[str, int] = field(default_factory=dict)
    forms: dict[str, int] = field(default_factory=dict)
    adverse_events: int = 0
    serious_adverse_events: int = 0
    overdue_reports: int = 0
    deviations: dict[str, int] = field(default_factory=dict)
    deaths_recorded: int = 0
    entry_errors: list[InjectedError] = field(default_factory=list)
    confirmed_warnings: int = 0
    first_randomization: dt.datetime | None = None
    last_randomization: dt.datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def unexpected_answers(self) -> list[InjectedError]:
        return [e for e in self.entry_errors if not e.as_expected]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["entry_errors"] = [{**asdict(e), "as_expected": e.as_expected}
                                for e in self.entry_errors]
        for key in ("first_randomization", "last_randomization"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        return data

    def __str__(self) -> str:
        head = ("Seeded a simulated trial" if self.seeded else
                "The database already holds a seeded trial (nothing added)")
        lines = [f"{head}: {self.randomized} randomized "
                 f"({', '.join(f'{a} {n}' for a, n in sorted(self.arms.items()))}), "
                 f"seed {self.seed}."]
        if self.first_randomization and self.last_randomization:
            lines.append(f"  randomized {self.first_randomization:%Y-%m-%d} to "
                         f"{self.last_randomization:%Y-%m-%d} (UTC)")
        lines.append("  screenings: " + ", ".join(
            f"{s} {n}" for s, n in sorted(self.screenings_by_status.items())))
        if self.not_enrolled_reasons:
            lines.append("  not enrolled: " + ", ".join(
                f"{r} {n}" for r, n in sorted(self.not_enrolled_reasons.items())))
        lines.append("  forms: " + ", ".join(f"{f} {n}" for f, n in sorted(self.forms.items())))
        lines.append(f"  adverse events {self.adverse_events} (serious "
                     f"{self.serious_adverse_events}, overdue reports {self.overdue_reports});"
                     f" deaths recorded {self.deaths_recorded}")
        if self.deviations:
            lines.append("  deviations: " + ", ".join(
                f"{c} {n}" for c, n in sorted(self.deviations.items())))
        if self.seeded:
            refused = sum(1 for e in self.entry_errors if e.expected_code)
            lines.append(f"  data-entry errors tried: {len(self.entry_errors)} "
                         f"({refused} to be refused; unexpected answers "
                         f"{len(self.unexpected_answers)}); warnings confirmed "
                         f"{self.confirmed_warnings}")
        for e in self.unexpected_answers:
            lines.append(f"  ! {e.subject} {e.form} {e.field}: expected {e.expected_code}, "
                         f"got {', '.join(e.observed_codes) or 'nothing'}")
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)


# --- placing the simulated patients in time ------------------------------------------------


def _move(t: dt.datetime | None, delta: dt.timedelta) -> dt.datetime | None:
    """``t`` moved by ``delta`` real hours, in UTC (the services store UTC; a time in
    another zone given to ``randomize`` or ``save_form`` would be stored as given, and the
    audit chain's digest of it would not match the row read back)."""
    return None if t is None else t.astimezone(dt.UTC) + delta


def _moved_birth_date(birth: str, old: dt.datetime, new: dt.datetime) -> str:
    """The birth date moved with the patient, keeping the age in completed years."""
    old_birth = dt.date.fromisoformat(birth)
    age = completed_years(old_birth, old.date())
    moved = old_birth + (new.date() - old.date())
    for nudge in (0, 1, -1, 2, -2, 3, -3):  # leap days can shift a birthday by one
        candidate = moved + dt.timedelta(days=nudge)
        if completed_years(candidate, new.date()) == age:
            return candidate.isoformat()
    return moved.isoformat()  # pragma: no cover - a nudge of 1 day always suffices


def _moved_record(record: dict[str, Any], p: VirtualPatient, onset: dt.datetime,
                  randomized: dt.datetime) -> dict[str, Any]:
    out = dict(record)
    out["birth_date"] = _moved_birth_date(record["birth_date"], p.randomized_at, randomized)
    raw = record.get("septic_shock_onset")
    if raw == p.screening_record["septic_shock_onset"]:
        out["septic_shock_onset"] = onset.isoformat(timespec="minutes")
    elif isinstance(raw, str):  # entered without its UTC offset: keep it that way
        out["septic_shock_onset"] = onset.replace(tzinfo=None).isoformat(timespec="minutes")
    return out


def move_patient(p: VirtualPatient, delta: dt.timedelta, zone) -> VirtualPatient:
    """The same patient with every time moved by ``delta`` (whole minutes)."""
    def m(t):
        return _move(t, delta)

    onset, randomized = m(p.onset).astimezone(zone), m(p.randomized_at).astimezone(zone)
    days = tuple(replace(d, assessed_at=m(d.assessed_at), entered_at=m(d.entered_at))
                 for d in p.sofa_days)
    markers = tuple(replace(s, drawn_at=m(s.drawn_at)) for s in p.markers)
    errors = tuple(replace(e, true_value=m(e.true_value), entered_value=m(e.entered_value))
                   if isinstance(e.true_value, dt.datetime) else e for e in p.entry_errors)
    return replace(p, onset=m(p.onset), screened_at=m(p.screened_at),
                   randomized_at=m(p.randomized_at),
                   infusion_at=m(p.infusion_at), sofa_days=days, markers=markers,
                   entry_errors=errors,
                   screening_record=_moved_record(p.screening_record, p, onset, randomized),
                   entered_screening_record=_moved_record(p.entered_screening_record, p,
                                                          onset, randomized))


@dataclass(frozen=True)
class Placement:
    """Onset of simulated patient → onset in the demo: ``start + (onset − TRIAL_START) ×
    compression``, whole minutes."""

    start: dt.datetime
    compression: float
    zone: Any

    def delta(self, p: VirtualPatient) -> dt.timedelta:
        target = self.start + (p.onset - TRIAL_START) * self.compression
        return dt.timedelta(minutes=round((target - p.onset).total_seconds() / 60))

    def place(self, p: VirtualPatient) -> VirtualPatient:
        return move_patient(p, self.delta(p), self.zone)


def plan_placement(baselines: list[VirtualPatient], *, today: dt.datetime, zone,
                   days_between_patients: float, simulated_days_between: float = 30.0
                   ) -> Placement:
    """Place the trial so that its last randomization is 36 h before ``today``."""
    k = days_between_patients / simulated_days_between
    last = max(((p.onset - TRIAL_START) * k + (p.randomized_at - p.onset) for p in baselines),
               default=dt.timedelta(0))
    return Placement(today - LAST_RANDOMIZATION_BEFORE_TODAY - last, k, zone)


# --- the seeder ------------------------------------------------------------------------------


@dataclass
class _Actors:
    coordinator: Any
    investigator: Any
    lab: Any


class _Seeder:
    def __init__(self, protocol: Protocol, *, site, actors: _Actors, seed: int,
                 today: dt.datetime, effect: TreatmentEffect, errors: ErrorRates):
        self.protocol, self.site, self.who = protocol, site, actors
        self.seed, self.today, self.effect, self.errors = seed, today, effect, errors
        self.zone = site_zone(site.timezone)
        self.report = SeedReport(seeded=True, seed=seed)
        self.control = next(a.id for a in protocol.arms if a.role == "control")
        self.experimental = protocol.intervention.arm

    # helpers ---------------------------------------------------------------------------

    def rng(self, index: int, stream: int) -> np.random.Generator:
        # streams 0–2 are the simulator's (baseline, course, entry errors)
        return np.random.default_rng([self.seed, index, 100 + stream])

    def iso(self, t: dt.datetime) -> str:
        return t.astimezone(self.zone).isoformat(timespec="minutes")

    def local_date(self, t: dt.datetime) -> str:
        return t.astimezone(self.zone).date().isoformat()

    def save(self, allocation: Allocation, form_id: str, day: int | None,
             data: dict[str, Any], *, user, now: dt.datetime, reason: str = "") -> SaveOutcome:
        """Save as a user would: unusual values are confirmed (and audited)."""
        try:
            return save_form(self.protocol, allocation, form_id, day, data, user=user,
                             reason=reason, now=now)
        except ConfirmationRequired as exc:
            keys = [p["key"] for p in exc.problems if p["severity"] == "warning"]
            self.report.confirmed_warnings += len(keys)
            return save_form(self.protocol, allocation, form_id, day, data, user=user,
                             reason=reason, confirm=keys, now=now)

    # screening ---------------------------------------------------------------------------

    def screen_enrolled(self, index: int, p: VirtualPatient, rng) -> Screening:
        def without_consent(record):
            return {k: v for k, v in record.items() if k != "consent_signed"}

        user = self.who.coordinator
        view = create_screening(self.protocol, self.site, user,
                                without_consent(p.entered_screening_record))
        screening = view.screening
        screening_errors = [e for e in p.entry_errors if e.form == "screening"]
        if screening_errors:
            result = view.eligibility
            codes = {c.error_code for c in result.criteria if c.error_code}
            codes |= {str(pr.get("code")) for pr in result.input_problems if pr.get("code")}
            failing = {f"NOT_MET:{c.id}" for c in assess_screening(
                self.protocol, screening, at=p.screened_at).failing}
            reason = "corrected at screening: " + "; ".join(_describe(e) for e in
                                                            screening_errors)
            screening = update_screening(self.protocol, screening, user,
                                         without_consent(p.screening_record), reason).screening
            for e in screening_errors:
                self.report.entry_errors.append(InjectedError(
                    screening.screening_number, e.kind, e.form, e.field, None,
                    e.expected_code, tuple(sorted(codes | failing)), True))
        window = p.randomized_at - p.screened_at
        obtained = p.screened_at + window * float(rng.uniform(0.2, 0.8))
        representative = bool(rng.random() < 0.6)
        record_consent(self.protocol, screening, user,
                       consent_type="legal_representative" if representative else "patient",
                       document_version="1.0", obtained_at=obtained,
                       obtained_by=INVESTIGATORS[index % len(INVESTIGATORS)],
                       signed_by=str(rng.choice(RELATIVES)) if representative else "")
        return screening

    def screen_excluded(self, k: int, onset: dt.datetime) -> None:
        kind = EXCLUSIONS[k % len(EXCLUSIONS)]
        base = virtual_patient(EXCLUDED_INDEX_BASE + k, treated=False, seed=self.seed,
                               with_days=False)
        delta = dt.timedelta(minutes=round((onset - base.onset).total_seconds() / 60))
        p = move_patient(base, delta, self.zone)
        record = {k_: v for k_, v in p.screening_record.items() if k_ != "consent_signed"}
        screened = p.screened_at
        if kind == "ineligible_neutrophils":
            record["neutrophils"] = {"value": 2.4, "unit": "10^9/L"}
        elif kind == "ineligible_age":
            birth = screened.astimezone(self.zone).date() - dt.timedelta(days=79 * 365 + 120)
            record["birth_date"] = birth.isoformat()
        elif kind == "ineligible_chemoresistant":
            record.update(chemoresistant_oncohematological=True,
                          neutropenia_cause="post_chemotherapy")
        elif kind == "ineligible_pregnant":
            record.update(sex="female", pregnant=True, neutropenia_cause="other")
        elif kind == "declined":
            record["consent_signed"] = False
        user = self.who.coordinator
        screening = create_screening(self.protocol, self.site, user, record).screening
        if kind == "missed_window":
            late = p.onset + dt.timedelta(hours=10, minutes=45)
            try:
                randomize(screening.pk, user=user, protocol=self.protocol, at=late,
                          request_id=f"demo-window-{self.seed}-{k}")
            except TrialError as exc:
                code = exc.code
            else:  # pragma: no cover - the gate refuses a closed window
                raise AssertionError("a closed enrolment window was not refused")
            close_screening(screening, user, reason_code="missed_window",
                            detail=f"transferred from the ward 10 h 45 min after onset "
                                   f"({code})")
            return
        failing = [c for c in assess_screening(self.protocol, screening, at=screened).failing]
        ids = {c.id for c in failing}
        expected = EXPECTED_FAILING[kind]
        if expected not in ids:
            self.report.notes.append(f"{screening.screening_number}: expected {expected} to "
                                     f"exclude, the service says {sorted(ids)}")
        if kind == "declined":
            close_screening(screening, user, reason_code="declined",
                            detail="the patient's family declined participation")
        else:
            shown = next((c for c in failing if c.id == expected), None)
            detail = f"{expected} {shown.text}" if shown else kind
            close_screening(screening, user, reason_code="ineligible", detail=detail)

    # after randomization ---------------------------------------------------------------------

    def msc(self, index: int, allocation: Allocation, p: VirtualPatient, rng,
            reaction: bool) -> None:
        infusion = p.infusion_at
        thaw_start = infusion - dt.timedelta(minutes=float(rng.uniform(60, 90)))
        thaw_end = thaw_start + dt.timedelta(minutes=15)
        released = thaw_end + dt.timedelta(minutes=10)
        end = infusion + dt.timedelta(minutes=float(rng.uniform(30, 60)))
        expiry = thaw_end + dt.timedelta(hours=4)
        # the edit checks refuse every future time, the product's expiry too (a finding
        # for the casebook): the lab completes the product record once it has expired
        entered = max(expiry, end) + dt.timedelta(minutes=10)
        if entered > self.today:
            return
        cells = round(p.weight_kg * float(rng.uniform(1.05, 1.9)) * 1e6, -5)
        total = round(cells * float(rng.uniform(1.02, 1.1)), -5)
        concentration = 1.0e6
        product = {
            "product_id": f"MSC-{p.randomized_at:%Y}-{index + 1:03d}",
            "donor_id": f"D-{int(rng.integers(10, 99))}", "passage": int(rng.integers(2, 5)),
            "viable_cells_total": total, "viability_percent": round(float(rng.uniform(82, 96))),
            "concentration_cells_per_ml": concentration,
            "volume_ml": round(total / concentration, 1),
            "thaw_start_at": self.iso(thaw_start), "thaw_end_at": self.iso(thaw_end),
            "expiry_at": self.iso(expiry),
            "sterility": "gram_stain_negative", "endotoxin_eu_per_ml": 0.1,
            "mycoplasma": "negative", "identity": "pass", "released_by": "Dr N. Kuzmina",
            "released_at": self.iso(released)}
        self.save(allocation, "msc_product", None, product, user=self.who.lab, now=entered)
        data = {"infusion_start_at": self.iso(infusion), "infusion_end_at": self.iso(end),
                "weight_kg": p.weight_kg, "weight_basis": "actual", "cells_infused": cells,
                "premedication": "none", "reaction": "yes" if reaction else "none",
                "interruptions": 0}
        if reaction:
            data.update(reaction_description="fever 38.4 °C and chills", reaction_ctcae_grade=1)
        self.save(allocation, "msc_infusion", 0, data, user=self.who.lab, now=entered)

    def sofa_days(self, allocation: Allocation, p: VirtualPatient, subject: str,
                  sdv_day: int | None) -> None:
        user = self.who.coordinator
        for d in p.sofa_days:
            if d.entered is None or d.entered_at is None or d.entered_at > self.today:
                continue  # never entered, or not yet: the casebook shows it due or overdue
            wrong = [e for e in p.entry_errors
                     if e.form == "sofa" and e.day == d.day and e.expected_code]
            if wrong:
                codes: tuple[str, ...] = ()
                try:
                    self.save(allocation, "sofa", d.day, d.entered, user=user, now=d.entered_at)
                except EditCheckFailed as exc:
                    codes = tuple(sorted({str(pr["code"]) for pr in exc.problems}))
                for e in wrong:
                    self.report.entry_errors.append(InjectedError(
                        subject, e.kind, e.form, e.field, d.day, e.expected_code, codes, True))
                data = {RENAMED_FIELDS.get(k, k): d.inputs[RENAMED_FIELDS.get(k, k)]
                        for k in d.entered}
                reason = "corrected after the edit check: " + "; ".join(
                    _describe(e) for e in wrong)
                # refused: the first save carries the correction; accepted: it changes it
                self.save(allocation, "sofa", d.day, data, user=user, now=d.entered_at,
                          reason=reason)
            else:
                self.save(allocation, "sofa", d.day, d.entered, user=user, now=d.entered_at)
            if d.day == sdv_day and "urine_ml_per_day" in d.entered:
                # the monitor's source-data verification finds the chart's 24-h total
                when = d.entered_at + dt.timedelta(days=3)
                if when <= self.today:
                    record = FormRecord.objects.get(allocation=allocation, form_id="sofa",
                                                    day=d.day)
                    fixed = {**record.data,
                             "urine_ml_per_day": record.data["urine_ml_per_day"] + 150}
                    self.save(allocation, "sofa", d.day, fixed, user=user, now=when,
                              reason="source data verification: 24-h urine output taken "
                                     "from the fluid chart (+150 mL night shift)")

    def standard_therapy(self, allocation: Allocation, p: VirtualPatient, rng) -> None:
        last_day = p.sofa_days[-1].day if p.sofa_days else 0
        onset = p.onset
        antibiotics = str(rng.choice(ANTIBIOTICS))
        abx = onset + dt.timedelta(hours=float(rng.uniform(-1.0, 2.5)))
        cultures_late = bool(rng.random() < 0.1)
        cultures = abx + dt.timedelta(minutes=float(rng.uniform(10, 40))
                                      * (1 if cultures_late else -1))
        lactate_at = onset + dt.timedelta(hours=float(rng.uniform(0.1, 1.0)))
        lactate = p.markers[0].lactate_mmol_per_l if p.markers else 3.5
        day0: dict[str, Any] = {
            "antibiotics": antibiotics, "antibiotics_first_dose_at": self.iso(abx),
            "blood_cultures_at": self.iso(cultures),
            "blood_culture_sets": int(rng.choice([2, 2, 3])),
            "lactate_measured_at": self.iso(lactate_at), "lactate_mmol_l": lactate,
            "crystalloid_ml_per_kg_3h": round(float(rng.uniform(18, 40))),
            "vasopressor_start_at": self.iso(onset),
            "cvp_mmhg": int(rng.integers(6, 15)),
            "cvp_measured_at": self.iso(onset + dt.timedelta(hours=float(rng.uniform(1, 5)))),
            "scvo2_percent": int(rng.integers(62, 80)),
            "scvo2_measured_at": self.iso(onset + dt.timedelta(hours=float(rng.uniform(1, 5)))),
            "inotrope": "none", "hydrocortisone_mg_per_day": 200}
        if lactate > 2:
            day0["repeat_lactate_at"] = self.iso(lactate_at + dt.timedelta(
                hours=float(rng.uniform(2, 5))))
            day0["repeat_lactate_mmol_l"] = round(lactate * float(rng.uniform(0.6, 1.0)), 1)
        for day in range(0, min(last_day, 7) + 1):
            data = day0 if day == 0 else {
                "antibiotics": antibiotics, "inotrope": "none",
                "hydrocortisone_mg_per_day": 200 if day <= 4 else 100}
            now = max(p.randomized_at + dt.timedelta(days=day, hours=float(rng.uniform(8, 20))),
                      onset + dt.timedelta(hours=6))
            if now > self.today:
                return
            self.save(allocation, "standard_therapy", day, data, user=self.who.coordinator,
                      now=now)

    def markers(self, allocation: Allocation, p: VirtualPatient, rng) -> None:
        for s in p.markers:
            now = s.drawn_at + dt.timedelta(hours=float(rng.uniform(4, 30)))
            if now > self.today:
                return
            crp: Any = s.crp_mg_per_l
            if rng.random() < 0.2:  # the lab printed mg/dL: stored as entered, with its unit
                crp = {"value": round(s.crp_mg_per_l / 10, 2), "unit": "mg/dL"}
            data = {"sampled_at": self.iso(s.drawn_at), "il6_pg_per_ml": s.il6_pg_per_ml,
                    "il10_pg_per_ml": s.il10_pg_per_ml, "crp_mg_l": crp,
                    "procalcitonin_ng_ml": s.procalcitonin_ng_per_ml,
                    "lactate_mmol_l": s.lactate_mmol_per_l}
            self.save(allocation, "inflammatory_markers", s.day, data,
                      user=self.who.coordinator, now=now)

    def outcomes(self, allocation: Allocation, p: VirtualPatient) -> None:
        user = self.who.investigator
        death = p.death_at
        if death is not None and death <= self.today:
            self.save(allocation, "end_of_study", None,
                      {"status": "died", "date": self.local_date(death)}, user=user,
                      now=min(self.today, death + dt.timedelta(hours=3)))
            self.report.deaths_recorded += 1
        for day in (28, 90):
            when = p.randomized_at + dt.timedelta(days=day + 2)
            if when > self.today:
                return
            horizon = p.randomized_at + dt.timedelta(days=day)
            if death is not None and death <= horizon:
                data = {"status": "dead", "date_of_death": self.local_date(death),
                        "source": "records"}
            else:
                data = {"status": "alive", "source": "seen" if day == 28 else "phone",
                        "last_known_alive_date": day_date(day, p.randomized_at,
                                                          self.site.timezone).isoformat()}
            self.save(allocation, "vital_status", day, data, user=user, now=when)
            if day == 90 and data["status"] == "alive":
                self.save(allocation, "end_of_study", None,
                          {"status": "completed", "date": data["last_known_alive_date"]},
                          user=user, now=when)

    def adverse_events(self, allocation: Allocation, p: VirtualPatient, rng,
                       reaction: bool, special: str | None) -> None:
        user = self.who.investigator
        msc = allocation.arm == self.experimental
        death = p.death_at
        events: list[tuple[dict[str, Any], dt.timedelta | None]] = []

        def alive_at(t: dt.datetime) -> bool:
            return death is None or t < death

        if reaction:
            start = p.infusion_at + dt.timedelta(minutes=50)
            events.append(({"term": "Fever and chills after MSC infusion", "onset": start,
                            "awareness": start + dt.timedelta(minutes=15), "severity_grade": 1,
                            "causality": "probable", "expectedness": "expected",
                            "outcome": "recovered"}, None))
        fever = p.randomized_at + dt.timedelta(days=float(rng.uniform(0.5, 3)))
        if rng.random() < 0.5 and alive_at(fever):
            events.append(({"term": "Febrile neutropenia, persistent", "onset": fever,
                            "awareness": fever + dt.timedelta(hours=1), "severity_grade": 3,
                            "causality": "unlikely" if msc else "unrelated",
                            "expectedness": "expected", "outcome": "recovering",
                            "exempt_event_id": "febrile_neutropenia"}, None))
        sae = p.randomized_at + dt.timedelta(hours=30)
        if special == "susar_reported" and alive_at(sae):
            events.append(({"term": "Pulmonary embolism", "onset": sae,
                            "awareness": sae + dt.timedelta(hours=1),
                            "seriousness": ["life_threatening"], "severity_grade": 4,
                            "causality": "possible" if msc else "unrelated",
                            "expectedness": "unexpected", "outcome": "recovering",
                            "description": "CT angiography: segmental emboli, right lower lobe"},
                           dt.timedelta(hours=7)))
        elif special == "sae_reported_late" and alive_at(sae):
            events.append(({"term": "Catheter-related bloodstream infection (K. pneumoniae)",
                            "onset": sae, "awareness": sae + dt.timedelta(hours=2),
                            "seriousness": ["hospitalisation"], "severity_grade": 3,
                            "causality": "unrelated", "expectedness": "expected",
                            "outcome": "recovered"}, dt.timedelta(hours=41)))
        elif special == "sae_overdue" and alive_at(sae):
            events.append(({"term": "Atrial fibrillation with haemodynamic instability",
                            "onset": sae, "awareness": sae + dt.timedelta(hours=1),
                            "seriousness": ["life_threatening"], "severity_grade": 4,
                            "outcome": "recovering",
                            "description": "Causality to MSC not yet assessed"}, None))
        if death is not None:
            exempt = ("death_from_septic_shock" if p.death_day <= 28
                      else "underlying_malignancy_progression")
            term = ("Death from progression of septic shock" if p.death_day <= 28
                    else "Death: progression of the underlying haematological disease")
            events.append(({"term": term, "onset": death,
                            "awareness": death + dt.timedelta(minutes=20),
                            "seriousness": ["death"], "severity_grade": 5,
                            "causality": "unlikely" if msc else "unrelated",
                            "expectedness": "expected", "outcome": "fatal",
                            "exempt_event_id": exempt}, None))
        for entry, report_after in events:
            entered = entry["awareness"] + dt.timedelta(minutes=30)
            if entered > self.today:
                continue
            ae = report_ae(allocation, user, entry, protocol=self.protocol, now=entered)
            if report_after is not None:
                sent = entry["awareness"] + report_after
                if sent <= self.today:
                    record_report(ae, user, recipient="sponsor", reported_at=sent, now=sent)

    # one patient -----------------------------------------------------------------------------

    def enrol(self, index: int, baseline: VirtualPatient, placement: Placement,
              special: str | None) -> None:
        rng = self.rng(index, 0)
        p0 = placement.place(baseline)
        screening = self.screen_enrolled(index, p0, rng)
        user = self.who.investigator if index % 2 else self.who.coordinator
        allocation = randomize(screening.pk, user=user, protocol=self.protocol,
                               at=p0.randomized_at,
                               request_id=f"{SEED_PREFIX}{self.seed}-{index}").allocation
        treated = allocation.arm == self.experimental
        p = placement.place(virtual_patient(index, treated=treated, seed=self.seed,
                                            effect=self.effect, errors=self.errors))
        if treated and special == "late_infusion":
            p = replace(p, infusion_at=p.onset + dt.timedelta(hours=10, minutes=25))
        subject = allocation.subject_id
        reaction = treated and bool(rng.random() < 0.25)
        if treated:
            self.msc(index, allocation, p, rng, reaction)
        self.sofa_days(allocation, p, subject, sdv_day=1 if index % 7 == 3 else None)
        self.standard_therapy(allocation, p, rng)
        self.markers(allocation, p, rng)
        self.adverse_events(allocation, p, rng, reaction, special)
        self.outcomes(allocation, p)


def _describe(e) -> str:
    what = {"neutrophils_unit_mixup": "neutrophil count entered in cells/µL in the ×10^9/L "
                                      "field",
            "onset_without_timezone": "onset entered without its UTC offset",
            "fio2_percent": "FiO2 entered as a percentage",
            "bilirubin_umol_in_mg_field": "bilirubin in µmol/L entered in the mg/dL field",
            "norepinephrine_ug_per_min": "norepinephrine pump rate (µg/min) entered as "
                                         "µg/kg/min"}.get(e.kind, e.kind)
    return f"{what} ({e.entered_value} → {e.true_value})"


def _specials(baselines: list[VirtualPatient], placement: Placement,
              today: dt.datetime) -> dict[int, str]:
    """Which patients get the demo's noteworthy events (by index): the SAE whose report
    to the sponsor is overdue goes to the latest patient randomized at least 3 days
    before ``today``; a reported SUSAR and a late-reported SAE to early patients; a
    late infusion (if an MSC patient happens to be chosen) to a middle one."""
    def alive(b: VirtualPatient) -> bool:  # at 31 h, on standard therapy (and so with MSC)
        return b.death_day is None or b.death_day > 1.5

    placed = [(i, placement.place(b)) for i, b in enumerate(baselines)]
    old = [i for i, p in placed if p.randomized_at <= today - dt.timedelta(days=3)
           and alive(baselines[i])]
    specials: dict[int, str] = {}
    if old:
        specials[old[-1]] = "sae_overdue"
    survivors = [i for i, b in enumerate(baselines) if alive(b) and i not in specials]
    for kind, at in (("susar_reported", 0), ("sae_reported_late", 1),
                     ("susar_reported", len(survivors) // 2)):
        if at < len(survivors):
            specials.setdefault(survivors[at], kind)
    for i in (len(baselines) // 3, len(baselines) // 3 + 1):
        specials.setdefault(i, "late_infusion")
    return specials


def _actors(protocol: Protocol, report: SeedReport) -> tuple[Any, _Actors]:
    from trialdesk.web.demo import setup_demo
    from trialdesk.web.randomization.models import RandomizationList
    from trialdesk.web.sites.models import Site

    users = get_user_model().objects
    if users.filter(username__in=("coordinator", "investigator", "lab")).count() < 3 or \
            not RandomizationList.objects.filter(active=True).exists():
        report.notes.append(str(setup_demo(protocol)))
    site = Site.objects.get(code=protocol.sites[0].id)
    return site, _Actors(users.get(username="coordinator"), users.get(username="investigator"),
                         users.get(username="lab"))


def seeded_seed() -> int | None:
    """The seed of the trial already seeded into the database (None: not seeded)."""
    first = Allocation.objects.filter(request_id__startswith=SEED_PREFIX).first()
    if first is None:
        return None
    return int(first.request_id[len(SEED_PREFIX):].split("-")[0])


def seed_trial(protocol: Protocol, *, patients: int = 30, seed: int = 2013,
               today: dt.datetime | None = None, effect: TreatmentEffect = PUBLISHED_EFFECT,
               errors: ErrorRates = DEMO_ERROR_RATES, days_between_patients: float = 7.0,
               progress: Callable[[int, int], None] | None = None) -> SeedReport:
    """Load a simulated trial of ``patients`` randomized patients (plus screenings not
    enrolled) ending at ``today`` (default now); see the module docstring."""
    if not getattr(settings, "DEMO", False):
        raise DemoNotAllowed("Simulated patients are only seeded in demo mode "
                             "(TRIALDESK_DEMO=1); they must never enter a real trial.")
    if patients < 1:
        raise ValueError("patients must be at least 1")
    existing = seeded_seed()
    if existing is not None:
        report = summarize(protocol, SeedReport(seeded=False, seed=existing))
        return report
    today = (today or utcnow()).astimezone(dt.UTC)
    with transaction.atomic(), override_settings(
            EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        # the lab's "MSC dose needed" e-mails belong to the simulated past: not sent
        probe = SeedReport(seeded=True, seed=seed)
        site, actors = _actors(protocol, probe)
        seeder = _Seeder(protocol, site=site, actors=actors, seed=seed, today=today,
                         effect=effect, errors=errors)
        seeder.report.notes += probe.notes
        baselines = [virtual_patient(i, treated=False, seed=seed, errors=errors,
                                     with_days=False) for i in range(patients)]
        placement = plan_placement(baselines, today=today, zone=seeder.zone,
                                   days_between_patients=days_between_patients)
        specials = _specials(baselines, placement, today)
        n_excluded = round(patients * EXCLUDED_PER_RANDOMIZED)
        first = placement.place(baselines[0]).onset
        last = placement.place(baselines[-1]).onset
        steps: list[tuple[dt.datetime, str, int]] = [
            (placement.place(b).screened_at, "enrol", i) for i, b in enumerate(baselines)]
        for k in range(n_excluded):
            onset = first + (last - first) * ((k + 0.5) / n_excluded) + dt.timedelta(hours=7)
            steps.append((onset, "exclude", k))
        steps.sort(key=lambda s: s[0])
        for done, (when, kind, i) in enumerate(steps, 1):
            if kind == "enrol":
                seeder.enrol(i, baselines[i], placement, specials.get(i))
            else:
                seeder.screen_excluded(i, when)
            if progress is not None:
                progress(done, len(steps))
        return summarize(protocol, seeder.report)


def summarize(protocol: Protocol, report: SeedReport) -> SeedReport:
    """Fill ``report``'s counts from the database (the seeded trial and the demo's own
    screenings together: the screening log is one)."""
    seeded = Allocation.objects.filter(request_id__startswith=SEED_PREFIX)
    report.randomized = seeded.count()
    report.arms = dict(Counter(seeded.values_list("arm", flat=True)))
    times = sorted(seeded.values_list("randomized_at", flat=True))
    report.first_randomization = times[0] if times else None
    report.last_randomization = times[-1] if times else None
    report.screenings_by_status = dict(Counter(Screening.objects.values_list("status",
                                                                              flat=True)))
    reasons = Screening.objects.exclude(not_enrolled_reason="").values_list(
        "not_enrolled_reason", flat=True)
    report.not_enrolled_reasons = dict(Counter(r.split(":")[0] for r in reasons))
    report.forms = dict(Counter(FormRecord.objects.filter(allocation__in=seeded)
                                .values_list("form_id", flat=True)))
    events = AdverseEvent.objects.filter(allocation__in=seeded)
    report.adverse_events = events.count()
    report.serious_adverse_events = events.filter(serious=True).count()
    report.overdue_reports = sum(
        1 for ae in events.filter(serious=True) for o in assess(ae, protocol)[1]
        if o.required and o.status is ObligationStatus.OVERDUE)
    report.deviations = dict(Counter(Deviation.objects.filter(allocation__in=seeded)
                                     .values_list("code", flat=True)))
    report.deaths_recorded = FormRecord.objects.filter(
        allocation__in=seeded, form_id="end_of_study", data__status="died").count()
    return report


__all__ = ["SEED_PREFIX", "DemoNotAllowed", "InjectedError", "SeedReport", "seed_trial",
           "seeded_seed", "summarize"]
