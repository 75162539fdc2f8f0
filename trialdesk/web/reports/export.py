"""The analysis dataset from the trial database: every tidy table of ``trialdesk.analysis.tidy``.

:func:`export_tables` reads the database as it is now (forms as currently saved, never
their history) and returns the six tables as rows with the column names of
:data:`trialdesk.analysis.tidy.TABLES`; :meth:`DatabaseExport.dataset` freezes them into
an :class:`~trialdesk.analysis.analysis_dataset.AnalysisDataset` (validated, with its
content SHA-256). Nothing here computes a clinical score or a statistic: SOFA comes from
``FormRecord.derived`` (what :mod:`trialdesk.clinical.sofa` computed at save time) or,
when absent, from :func:`trialdesk.crf.checks.sofa_for`; units from
:func:`trialdesk.crf.checks.canonical_values`; the date of death from the casebook's
:func:`~trialdesk.crf.vital_status.death_date` (the casebook and the subject
matrix use the same).

Derivations (each one a documented choice; see also :data:`CAVEATS`):

* **subjects** — one row per :class:`Allocation` (arm, stratum). Day 0 is the calendar
  day of randomization in the site's zone. ``time``/``event`` for the primary outcome
  with timeframe *T* days (the protocol's first primary outcome with ``timeframe_days``,
  RUMCESS 28): a death recorded (vital status ``dead`` / end of study ``died``) on study
  day *d* ≤ *T* gives ``time = d, event = 1``; otherwise the subject is censored at the
  last study day known alive, capped at *T* (``event = 0``). Known alive: day 0, every
  day with a saved daily form, a vital-status form's ``last_known_alive_date`` (for
  status ``alive`` without that date, the form's own study day: a form cannot be saved
  before its day begins), an end-of-study date that is not a death (completion,
  withdrawal, last contact). A death after day *T* is censored at *T*. Covariates from
  the screening record: ``age_years`` (completed years on day 0,
  :func:`trialdesk.eligibility.age.completed_years`), ``sex``, ``neutropenia_cause``;
  ``sofa_total_day0`` from the day-0 SOFA form; ``site`` (site code).
* **daily** — one row per subject and study day with a SOFA or an inflammatory-markers
  form: the six SOFA components (``None`` = missing) and the total (missing components
  count 0, the clinical core's default), IL-6, IL-10, CRP (mg/L), procalcitonin (ng/mL),
  lactate (mmol/L) converted to the canonical unit, ``on_vasopressor`` = any of
  norepinephrine, epinephrine, dopamine > 0 on the SOFA form (dobutamine is an
  inotrope; an empty dose means not given), ``on_invasive_ventilation`` = respiratory
  support ``invasive`` (empty when not recorded).
* **adverse_events** — every :class:`AdverseEvent`; ``serious`` as classified at entry;
  WHO-UMC causality mapped to the tidy scale (``certain`` → ``definite``;
  ``not_assessed`` → ``possible``: counted as related until assessed, as expedited
  reporting does, ICH E2A).
* **deviations** — casebook :class:`Deviation` rows that are open or acknowledged
  (``resolved`` = no longer shown by corrected data, left out).
* **screening** — every screening except those still open (not yet decided) and those
  entered in error: ``randomized`` when it has an allocation, else ``excluded`` with the
  not-enrolled reason's label (CONSORT groups by it; the free-text detail is dropped).
* **disposition** — ``received_allocated_intervention``: for an arm the protocol
  schedules the MSC infusion for, 1 when an ``msc_infusion`` form is saved, else 0 with
  ``not_received_reason`` = the ``msc_not_given`` form's reason label ('Other: <detail>')
  or "no MSC infusion recorded" without that form; for the other arms, 1 when none is.
  ``discontinued`` = end of study ``withdrawn`` (its reason).
  ``lost_to_follow_up`` = end of study ``lost_to_follow_up`` or a vital status
  ``unknown`` on a day ≥ *T*, in both cases only while the vital status at day *T* is
  unknown (no death ≤ *T*, not known alive at *T*). ``analysed`` = 1 for every
  randomized subject (intention to treat; the log-rank analysis censors the lost).

Records entered in error are left out: screenings with that status, and any record
carrying a true ``entered_in_error`` field or that status (forms and adverse events:
:mod:`trialdesk.web.audit.entered_in_error`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.db.models import Q

from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.analysis.primary import DEFAULT_DAY
from trialdesk.analysis.tidy import SOFA_COMPONENTS, TABLES
from trialdesk.crf.checks import canonical_values, sofa_for
from trialdesk.crf.forms import MSC_NOT_GIVEN_REASONS
from trialdesk.crf.schedule import day_zero_date
from trialdesk.crf.vital_status import OUTCOME_FORMS, death_date, end_of_study
from trialdesk.eligibility.age import completed_years
from trialdesk.errors import DatasetError, TrialError
from trialdesk.protocol import Protocol
from trialdesk.web.casebook.models import Deviation, DeviationStatus, FormRecord
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.screening.models import Screening, ScreeningStatus
from trialdesk.web.screening.services import NOT_ENROLLED_REASONS

#: vasopressors on the SOFA form (dobutamine is an inotrope, not a vasopressor)
VASOPRESSORS = ("norepinephrine_ug_kg_min", "epinephrine_ug_kg_min", "dopamine_ug_kg_min")
#: inflammatory-markers field id → daily column (canonical units: the names say which)
MARKERS = {"il6_pg_per_ml": "il6_pg_per_ml", "il10_pg_per_ml": "il10_pg_per_ml",
           "crp_mg_l": "crp_mg_per_l", "procalcitonin_ng_ml": "procalcitonin_ng_per_ml",
           "lactate_mmol_l": "lactate_mmol_per_l"}
#: WHO-UMC (safety app) → the tidy causality scale
CAUSALITY = {"certain": "definite", "probable": "probable", "possible": "possible",
             "unlikely": "unlikely", "unrelated": "unrelated", "not_assessed": "possible"}
MSC_INFUSION = "msc_infusion"
MSC_NOT_GIVEN = "msc_not_given"
IN_ERROR = "entered_in_error"

#: Known limits of the export, printed in the report's manifest.
CAVEATS = (
    "Deaths are recorded as dates: time to death is the study day of death (whole days); "
    "a death on study day 28 counts within the 28-day window although 28 × 24 h from "
    "the randomization time stamp may end earlier that day.",
    "Censoring uses the last study day known alive (daily forms, vital status, end of "
    "study), capped at the primary timeframe; deaths after it are censored at it.",
    "Adverse events with causality not yet assessed are exported as 'possible' (related).",
    "Forms, adverse events and screenings marked entered in error are left out.",
)


def _in_error(record: Any) -> bool:
    return bool(getattr(record, IN_ERROR, False)) or getattr(record, "status", "") == IN_ERROR


def primary_timeframe_days(protocol: Protocol) -> int:
    """The first primary outcome's timeframe (RUMCESS: 28 days)."""
    return next((o.timeframe_days for o in protocol.outcomes.primary if o.timeframe_days),
                DEFAULT_DAY)


def infusion_arms(protocol: Protocol) -> frozenset[str]:
    """Arms the schedule gives the MSC infusion form to (RUMCESS: msc)."""
    return frozenset(arm for a in protocol.schedule.assessments if a.form == MSC_INFUSION
                     for arm in (a.arms or protocol.arm_ids))


@dataclass(frozen=True)
class DatabaseExport:
    """The six tables as rows (column names of ``tidy.TABLES``), with the caveats."""

    tables: Mapping[str, list[dict[str, Any]]]
    timeframe_days: int
    caveats: tuple[str, ...] = CAVEATS

    def frame(self, name: str) -> pd.DataFrame:
        """A table as a DataFrame with every column of its spec (also when empty)."""
        rows = self.tables[name]
        columns = list(TABLES[name].column_names)
        extra = [c for r in rows for c in r if c not in columns]
        return pd.DataFrame.from_records(rows, columns=columns + list(dict.fromkeys(extra)))

    def dataset(self, protocol: Protocol) -> AnalysisDataset:
        """Validate and freeze: the dataset every report cites by its SHA-256."""
        if not self.tables["subjects"]:
            raise DatasetError("trial database: no subjects randomized yet; the analysis "
                               "dataset (and a report) needs at least one.")
        daily = self.frame("daily") if self.tables["daily"] else None
        return AnalysisDataset.from_frames(
            self.frame("subjects"), daily=daily, adverse_events=self.frame("adverse_events"),
            deviations=self.frame("deviations"), screening=self.frame("screening"),
            disposition=self.frame("disposition"), protocol=protocol,
            source="trial database")


def export_tables(protocol: Protocol) -> DatabaseExport:
    """Read every randomized subject's current records into the tidy tables."""
    timeframe = primary_timeframe_days(protocol)
    allocations = list(Allocation.objects.select_related("site", "screening")
                       .order_by("subject_id"))
    forms: dict[int, list[FormRecord]] = {a.pk: [] for a in allocations}
    rows = (FormRecord.objects.filter(allocation__in=allocations)
            .defer("confirmed_warnings", "entered_by", "created_at", "updated_at")
            .order_by("pk"))
    for record in rows:
        if not _in_error(record):
            forms[record.allocation_id].append(record)
    subjects, daily, disposition = [], [], []
    arms_with_infusion = infusion_arms(protocol)
    for a in allocations:
        records = forms[a.pk]
        outcome = _outcome(a, records, timeframe)
        subjects.append(_subject_row(a, records, outcome))
        daily += _daily_rows(a, records)
        disposition.append(_disposition_row(a, records, outcome, arms_with_infusion,
                                            timeframe))
    tables = {"subjects": subjects, "daily": daily,
              "adverse_events": _adverse_events(allocations),
              "deviations": _deviations(allocations),
              "screening": _screening_log(), "disposition": disposition}
    return DatabaseExport(tables, timeframe)


def build_dataset(protocol: Protocol) -> tuple[AnalysisDataset, DatabaseExport]:
    export = export_tables(protocol)
    return export.dataset(protocol), export


# --- subjects -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    time_days: float
    event: int
    #: vital status at the timeframe known (death by then, or alive at it)
    known_at_timeframe: bool


def _day_of(value: Any, day0: dt.date) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return (dt.date.fromisoformat(value) - day0).days
    except ValueError:
        return None


def _alive_days(records: Iterable[FormRecord], day0: dt.date) -> list[int]:
    """Study days on which the subject is known to have been alive."""
    days = [0]
    for r in records:
        if r.form_id not in OUTCOME_FORMS and r.day is not None:
            days.append(r.day)
        elif r.form_id == "vital_status" and r.data.get("status") in ("alive", "unknown"):
            known = _day_of(r.data.get("last_known_alive_date"), day0)
            if known is None and r.data.get("status") == "alive":
                known = r.day
            if known is not None:
                days.append(known)
        elif r.form_id == "end_of_study" and r.data.get("status") != "died":
            known = _day_of(r.data.get("date"), day0)
            if known is not None:
                days.append(known)
    return days


def _outcome(a: Allocation, records: list[FormRecord], timeframe: int) -> _Outcome:
    day0 = day_zero_date(a.randomized_at, a.site.timezone)
    died = death_date(records)
    death_day = (died - day0).days if died is not None else None
    if death_day is not None and death_day <= timeframe:
        return _Outcome(float(max(death_day, 0)), 1, True)
    last_alive = max(_alive_days(records, day0))
    if death_day is not None:  # died after the timeframe: alive throughout it
        last_alive = max(last_alive, timeframe)
    censored = min(last_alive, timeframe)
    return _Outcome(float(censored), 0, censored >= timeframe)


def _sofa_day0_total(records: list[FormRecord]) -> int | None:
    for r in records:
        if r.form_id == "sofa" and r.day == 0:
            sofa = _sofa(r)
            return sofa["total"] if sofa else None
    return None


def _subject_row(a: Allocation, records: list[FormRecord], o: _Outcome) -> dict[str, Any]:
    record = a.screening.record or {}
    age = None
    try:
        born = dt.date.fromisoformat(record.get("birth_date", ""))
        age = float(completed_years(born, day_zero_date(a.randomized_at, a.site.timezone)))
    except (TypeError, ValueError):
        pass
    sex = record.get("sex") if record.get("sex") in ("female", "male") else None
    return {"subject_id": a.subject_id, "arm": a.arm, "time": o.time_days, "event": o.event,
            "stratum": a.stratum or "unstratified", "age_years": age, "sex": sex,
            "neutropenia_cause": record.get("neutropenia_cause"),
            "sofa_total_day0": _sofa_day0_total(records), "site": a.site.code}


# --- daily ----------------------------------------------------------------------------------


def _sofa(record: FormRecord) -> dict[str, Any] | None:
    """The SOFA the clinical core computed at save time (recomputed if not stored)."""
    stored = (record.derived or {}).get("sofa")
    if stored and "components" in stored:
        return stored
    try:
        result = sofa_for(record.data)
    except TrialError:
        return None
    return {"components": dict(result.components), "total": result.total}


def _daily_rows(a: Allocation, records: list[FormRecord]) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    for r in records:
        if r.day is None or r.form_id not in ("sofa", "inflammatory_markers"):
            continue
        row = rows.setdefault(r.day, {"subject_id": a.subject_id, "day": r.day})
        if r.form_id == "sofa":
            sofa = _sofa(r)
            if sofa is not None:
                for c in SOFA_COMPONENTS:
                    row[c] = sofa["components"].get(c.removeprefix("sofa_"))
                row["sofa_total"] = sofa["total"]
            data = r.data
            row["on_vasopressor"] = int(any(_positive(data.get(d)) for d in VASOPRESSORS))
            support = data.get("respiratory_support")
            row["on_invasive_ventilation"] = (None if support in (None, "")
                                              else int(support == "invasive"))
        else:
            values = canonical_values(r.form_id, r.data)
            for field_id, column in MARKERS.items():
                value = values.get(field_id)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    row[column] = float(value)
    return [rows[d] for d in sorted(rows)]


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


# --- events, deviations, screening, disposition ---------------------------------------------


def _adverse_events(allocations: list[Allocation]) -> list[dict[str, Any]]:
    rows = []
    events = (AdverseEvent.objects.filter(allocation__in=allocations)
              .select_related("allocation").order_by("pk"))
    for ae in events:
        if _in_error(ae):
            continue
        causality = CAUSALITY.get(ae.causality, "possible")
        rows.append({"subject_id": ae.allocation.subject_id, "ae_id": f"AE-{ae.pk}",
                     "term": ae.term, "serious": int(ae.serious),
                     "severity_grade": ae.severity_grade, "causality": causality,
                     "related": int(causality in ("possible", "probable", "definite"))})
    return rows


def _deviations(allocations: list[Allocation]) -> list[dict[str, Any]]:
    shown = (Deviation.objects.filter(allocation__in=allocations)
             .exclude(status=DeviationStatus.RESOLVED).select_related("allocation")
             .order_by("pk"))
    return [{"subject_id": d.allocation.subject_id, "deviation_id": f"DEV-{d.pk}",
             "code": d.code, "description": d.message} for d in shown if not _in_error(d)]


def _screening_log() -> list[dict[str, Any]]:
    rows = []
    # an allocated screening is always in the log (whatever its status says): the
    # screening log's randomized rows must be exactly the subjects
    screenings = (Screening.objects.filter(Q(allocation__isnull=False)
                                           | Q(status=ScreeningStatus.NOT_ENROLLED))
                  .select_related("allocation").order_by("screening_number"))
    for s in screenings:
        allocation = getattr(s, "allocation", None)
        if allocation is not None:
            rows.append({"screening_id": s.screening_number, "status": "randomized",
                         "exclusion_reason": None, "subject_id": allocation.subject_id})
        elif s.status == ScreeningStatus.NOT_ENROLLED:
            code = (s.not_enrolled_reason or "").split(":", 1)[0].strip()
            reason = NOT_ENROLLED_REASONS.get(code) or s.not_enrolled_reason or \
                "Reason not recorded"
            rows.append({"screening_id": s.screening_number, "status": "excluded",
                         "exclusion_reason": reason, "subject_id": None})
    return rows


def _not_given_reason(records: list[FormRecord]) -> str:
    """The ``msc_not_given`` form's reason (its label; 'Other' with its detail), or
    'no MSC infusion recorded' when the dose is simply missing."""
    form = next((r for r in records if r.form_id == MSC_NOT_GIVEN), None)
    if form is None:
        return "no MSC infusion recorded"
    reason = form.data.get("reason")
    label = dict(MSC_NOT_GIVEN_REASONS).get(reason, "MSC dose not given")
    detail = str(form.data.get("reason_detail") or "").strip()
    return f"{label}: {detail}" if reason == "other" and detail else label


def _disposition_row(a: Allocation, records: list[FormRecord], o: _Outcome,
                     arms_with_infusion: frozenset[str], timeframe: int) -> dict[str, Any]:
    infused = any(r.form_id == MSC_INFUSION for r in records)
    if a.arm in arms_with_infusion:
        received, why_not = infused, None if infused else _not_given_reason(records)
    else:
        received = not infused
        why_not = None if received else f"MSC infusion recorded in the {a.arm} arm"
    end = end_of_study(records)
    withdrawn = end.get("status") == "withdrawn"
    unknown_late = any(r.form_id == "vital_status" and r.day is not None
                       and r.day >= timeframe and r.data.get("status") == "unknown"
                       for r in records)
    lost = (end.get("status") == "lost_to_follow_up" or unknown_late) \
        and not o.known_at_timeframe
    return {"subject_id": a.subject_id, "received_allocated_intervention": int(received),
            "not_received_reason": why_not, "lost_to_follow_up": int(lost),
            "discontinued": int(withdrawn),
            "discontinued_reason": (end.get("reason") or "withdrawn") if withdrawn else None,
            "analysed": 1, "excluded_from_analysis_reason": None}
