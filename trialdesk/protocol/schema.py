"""The protocol file's schema: everything trial-specific that TrialDesk knows.

A protocol file (YAML) is validated into these pydantic models. Models forbid
unknown keys so a typo is reported, not ignored. Cross-references (arms named
by the allocation ratio, fields named by criteria, strata levels) are checked
in :class:`Protocol`'s validators so that a broken file fails on load, with the
path of the offending entry, rather than at the bedside.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trialdesk.clinical.units import MEASURES, measure_spec, normalize_unit
from trialdesk.errors import ProtocolError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- identification ---------------------------------------------------------------


class Reference(_Strict):
    citation: str
    doi: str | None = None
    url: str | None = None


class Identifiers(_Strict):
    registry_id: str = Field(description="e.g. NCT01849237")
    sponsor_protocol_id: str | None = None
    acronym: str
    title: str
    sponsor: str
    principal_investigator: str
    responsible_party: str | None = None
    phase: str
    study_type: Literal["interventional", "observational"]
    #: who is blinded to the allocated arm (ClinicalTrials.gov "Masking"): none (open
    #: label), single, double, triple, quadruple; None = not stated, which the export
    #: treats as masked (the arm is left out of the trial record, docs/export.md)
    masking: Literal["none", "single", "double", "triple", "quadruple"] | None = None
    start_date: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    completion_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    status: str
    planned_enrolment: int = Field(gt=0)
    references: tuple[Reference, ...] = ()


class Site(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_-]+$")
    name: str
    timezone: str = Field(description="IANA zone the site's staff read times in")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (use an IANA name such as "
                             "Europe/Moscow)") from None
        return value


class Arm(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    role: Literal["control", "experimental"]
    description: str
    interventions: tuple[str, ...] = ()


# --- screening record fields ------------------------------------------------------


class FieldType(StrEnum):
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    MEASUREMENT = "measurement"


class Choice(_Strict):
    id: str
    label: str


class RecordField(_Strict):
    """One item of the screening record (what the coordinator enters)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    type: FieldType
    help: str | None = None
    choices: tuple[Choice, ...] = ()
    measure: str | None = Field(default=None, description="for measurements: a unit family")
    default_unit: str | None = None
    #: measurements only: also accept WBC × neutrophil % (neutrophil counts)
    allow_wbc_differential: bool = False

    @model_validator(mode="after")
    def _type_specific(self) -> RecordField:
        if self.type is FieldType.CHOICE and not self.choices:
            raise ValueError(f"choice field '{self.id}' needs 'choices'")
        if self.type is FieldType.MEASUREMENT:
            if self.measure not in MEASURES:
                raise ValueError(f"measurement field '{self.id}' needs 'measure', one of "
                                 f"{', '.join(sorted(MEASURES))}")
            spec = measure_spec(self.measure)
            if self.default_unit and normalize_unit(self.default_unit) not in spec.factors:
                raise ValueError(f"unit '{self.default_unit}' is not a unit of "
                                 f"{self.measure} ({', '.join(spec.factors)})")
        return self

    @property
    def choice_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.choices)


# --- eligibility criteria ---------------------------------------------------------

Comparison = Literal["<", "<=", ">", ">="]


class _CriterionBase(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    text: str = Field(description="the criterion as worded in the registry record")


class AgeCriterion(_CriterionBase):
    """Age at evaluation time compared with a number of years."""

    kind: Literal["age"]
    field: str = "birth_date"
    op: Comparison
    years: int = Field(ge=0, le=130)


class WithinHoursCriterion(_CriterionBase):
    """Evaluation time no later than ``hours`` after the time in ``field`` (inclusive)."""

    kind: Literal["within_hours"]
    field: str
    hours: float = Field(gt=0, le=24 * 30)


class EventRecordedCriterion(_CriterionBase):
    """A condition shown by a recorded time (septic shock by its onset time).

    Met when ``field`` holds a valid time; not met when ``negated_by`` (a boolean
    field) is explicitly false; unknown otherwise.
    """

    kind: Literal["event_recorded"]
    field: str
    negated_by: str | None = None


class MeasurementCriterion(_CriterionBase):
    """A lab value compared with a threshold, in any unit of its measure."""

    kind: Literal["measurement"]
    field: str
    op: Comparison
    value: float
    unit: str


class FlagCriterion(_CriterionBase):
    """A yes/no item equal to ``equals`` (exclusions: "pregnant: true")."""

    kind: Literal["flag"]
    field: str
    equals: bool
    #: e.g. {"sex": "male"} for pregnancy: the condition cannot hold
    not_applicable_when: dict[str, str] = Field(default_factory=dict)


class ChoiceCriterion(_CriterionBase):
    kind: Literal["choice"]
    field: str
    any_of: tuple[str, ...] = Field(min_length=1)


Criterion = Annotated[
    AgeCriterion | WithinHoursCriterion | EventRecordedCriterion | MeasurementCriterion
    | FlagCriterion | ChoiceCriterion,
    Field(discriminator="kind"),
]


class AgeBasis(StrEnum):
    #: age in completed years (a 75-year-old is 75 until the 76th birthday)
    COMPLETED_YEARS = "completed_years"
    #: exact age (the day after the 75th birthday is older than 75)
    EXACT = "exact"


class Eligibility(_Strict):
    age_basis: AgeBasis = AgeBasis.COMPLETED_YEARS
    #: boolean screening field recording signed consent (randomization refuses without it)
    consent_field: str | None = None
    inclusion: tuple[Criterion, ...] = Field(min_length=1)
    exclusion: tuple[Criterion, ...] = ()


# --- allocation -------------------------------------------------------------------


class StratumLevel(_Strict):
    id: str
    label: str


class StratificationFactor(_Strict):
    id: str
    label: str
    field: str = Field(description="screening field whose value gives the level")
    levels: tuple[StratumLevel, ...] = Field(min_length=2)


class RandomizationMethod(StrEnum):
    COMPLETE = "complete"
    PERMUTED_BLOCKS = "permuted_blocks"
    MINIMIZATION = "minimization"


class MinimizationCriterion(StrEnum):
    RANGE = "range"
    VARIANCE = "variance"


class Randomization(_Strict):
    """How patients are allocated (see ``trialdesk.randomization``).

    ``block_sizes`` with one size gives fixed blocks; with several, each block's
    size is drawn at random from them. ``stratify_by`` names stratification
    factors: separate lists per stratum for list methods, the factors balanced by
    minimization. Minimization takes the arm with the smallest weighted imbalance
    with probability ``minimization_probability`` (Pocock–Simon).
    """

    method: RandomizationMethod
    ratio: dict[str, int] = Field(description="arm id -> integer weight, e.g. 1:1")
    block_sizes: tuple[int, ...] = ()
    stratify_by: tuple[str, ...] = ()
    minimization_probability: float = Field(default=0.8, gt=0.5, le=1.0)
    minimization_criterion: MinimizationCriterion = MinimizationCriterion.RANGE
    #: factor id -> weight in the total imbalance (default 1 for every factor)
    factor_weights: dict[str, float] = Field(default_factory=dict)
    #: emergency envelopes per site and stratum, for when the server is unreachable
    emergency_envelopes_per_stratum: int = Field(default=4, ge=0, le=100)

    @field_validator("ratio")
    @classmethod
    def _positive(cls, ratio: dict[str, int]) -> dict[str, int]:
        if any(weight < 1 for weight in ratio.values()):
            raise ValueError("allocation weights must be positive integers")
        return ratio

    @model_validator(mode="after")
    def _blocks_fit_ratio(self) -> Randomization:
        cycle = sum(self.ratio.values())
        if self.method is RandomizationMethod.PERMUTED_BLOCKS:
            if not self.block_sizes:
                raise ValueError("permuted_blocks needs block_sizes")
            bad = [b for b in self.block_sizes if b % cycle]
            if bad:
                raise ValueError(f"block sizes {bad} are not multiples of the ratio total "
                                 f"{cycle}")
        if self.method is RandomizationMethod.MINIMIZATION and not self.stratify_by:
            raise ValueError("minimization needs factors in stratify_by")
        unknown = set(self.factor_weights) - set(self.stratify_by)
        if unknown:
            raise ValueError(f"factor_weights names factors not in stratify_by: {sorted(unknown)}")
        if any(w <= 0 for w in self.factor_weights.values()):
            raise ValueError("factor weights must be positive")
        return self


# --- intervention -----------------------------------------------------------------


class Dose(_Strict):
    target_cells_per_kg: float = Field(gt=0)
    min_cells_per_kg: float = Field(gt=0)
    max_cells_per_kg: float = Field(gt=0)
    per: Literal["day", "dose"] = "day"

    @model_validator(mode="after")
    def _ordered(self) -> Dose:
        if not self.min_cells_per_kg <= self.target_cells_per_kg <= self.max_cells_per_kg:
            raise ValueError("need min_cells_per_kg <= target_cells_per_kg <= max_cells_per_kg")
        return self


class ReleaseCriteria(_Strict):
    viability_min_percent: float = Field(ge=0, le=100)
    sterility: str
    endotoxin_max_eu_per_ml: float | None = Field(default=None, ge=0)
    mycoplasma: str | None = None
    identity: str | None = None


class Intervention(_Strict):
    arm: str
    product: str
    route: str
    dose: Dose
    weight_basis: Literal["actual", "predicted"] = "actual"
    plausible_weight_kg: tuple[float, float] = (30.0, 250.0)
    deadline_hours_after_onset: float = Field(gt=0)
    release_criteria: ReleaseCriteria | None = None


# --- onset, schedule, outcomes, analysis --------------------------------------------


class Onset(_Strict):
    field: str = Field(description="screening field holding the onset time")
    definition: Literal["ssc2012", "sepsis3", "recorded"]
    description: str


class DayRange(_Strict):
    first: int = Field(ge=0)
    last: int = Field(ge=0)


class Assessment(_Strict):
    form: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    days: tuple[int, ...] | DayRange
    window_days: int = Field(default=0, ge=0)
    arms: tuple[str, ...] = ()

    def day_list(self) -> tuple[int, ...]:
        if isinstance(self.days, DayRange):
            return tuple(range(self.days.first, self.days.last + 1))
        return tuple(sorted(set(self.days)))


class UnscheduledForm(_Strict):
    """A form recorded once per subject when its event happens (end of study, withdrawal)."""

    form: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    arms: tuple[str, ...] = ()


class Schedule(_Strict):
    day_zero: Literal["randomization"] = "randomization"
    assessments: tuple[Assessment, ...] = Field(min_length=1)
    unscheduled: tuple[UnscheduledForm, ...] = ()


class Outcome(_Strict):
    id: str
    label: str
    type: Literal["binary", "time_to_event", "continuous", "count"]
    timeframe_days: int | None = Field(default=None, gt=0)
    measure: str | None = None
    unit: str | None = None
    description: str | None = None


class Outcomes(_Strict):
    primary: tuple[Outcome, ...] = Field(min_length=1)
    secondary: tuple[Outcome, ...] = ()


class InterimLook(_Strict):
    information_fraction: float = Field(gt=0, lt=1)


class Analysis(_Strict):
    alpha: float = Field(gt=0, lt=0.5)
    sides: Literal[1, 2] = 2
    population: Literal["itt", "mitt", "per_protocol"] = "itt"
    primary_test: Literal["fisher_exact", "chi_square", "chi_square_cc", "barnard", "boschloo",
                          "logrank", "cox"]
    supportive_tests: tuple[str, ...] = ()
    km_ci_transform: Literal["log", "log-log", "plain"] = "log"
    interim_looks: tuple[InterimLook, ...] = ()
    alpha_spending: Literal["none", "obrien_fleming", "pocock", "lan_demets_of",
                            "lan_demets_pocock"] = "none"
    mixed_model_df: Literal["satterthwaite", "kenward_roger", "containment", "z"] = "z"


class ExemptEvent(_Strict):
    """A disease-related event the protocol exempts from expedited reporting.

    In a septic-shock ICU population nearly every patient meets a seriousness criterion
    from the disease itself (domain.md §7.5), so such events are recorded in the case
    report form and reviewed by the DMC, but not reported as expedited SAEs, unless the
    investigator judges them related to the intervention (``exempt_unless_related``).
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str


class Safety(_Strict):
    """Expedited safety-reporting timelines (domain.md §7.5); defaults are ICH E2A/EU CTR."""

    sae_to_sponsor_hours: int = Field(default=24, gt=0,
                                      description="investigator → sponsor, from awareness")
    susar_fatal_or_life_threatening_days: int = Field(default=7, gt=0,
                                                      description="sponsor → regulators")
    susar_other_days: int = Field(default=15, gt=0, description="sponsor → regulators")
    reporting_timezone: str | None = Field(
        default=None, description="IANA zone in which the sponsor's calendar days are "
                                  "counted; empty = the first site's (coordinating centre)")
    causality_scale: Literal["who_umc"] = "who_umc"
    exempt_unless_related: bool = True
    exempt_events: tuple[ExemptEvent, ...] = ()

    @field_validator("reporting_timezone")
    @classmethod
    def _known_reporting_zone(cls, value: str | None) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (use an IANA name such as "
                             "'Europe/Moscow')") from None
        return value

    @model_validator(mode="after")
    def _unique_exempt_ids(self) -> Safety:
        ids = [e.id for e in self.exempt_events]
        if len(ids) != len(set(ids)):
            raise ValueError("safety.exempt_events: each id must be unique")
        return self


# --- the whole protocol -----------------------------------------------------------


class Protocol(_Strict):
    """A validated trial protocol. ``content_sha256`` is set by the loader."""

    schema_version: Literal[1]
    protocol_id: str = Field(pattern=r"^[a-z0-9_-]+$")
    protocol_version: str
    version_date: dt.date
    identifiers: Identifiers
    conditions: tuple[str, ...] = Field(min_length=1)
    sites: tuple[Site, ...] = Field(min_length=1)
    arms: tuple[Arm, ...] = Field(min_length=2)
    randomization: Randomization
    stratification_factors: tuple[StratificationFactor, ...] = ()
    screening_fields: tuple[RecordField, ...] = Field(min_length=1)
    onset: Onset
    eligibility: Eligibility
    intervention: Intervention
    schedule: Schedule
    outcomes: Outcomes
    analysis: Analysis
    safety: Safety = Safety()
    content_sha256: str = ""
    source_path: str = ""

    # -- lookups ---------------------------------------------------------------
    def field(self, field_id: str) -> RecordField:
        for f in self.screening_fields:
            if f.id == field_id:
                return f
        raise KeyError(field_id)

    def site(self, site_id: str | None = None) -> Site:
        """The site with ``site_id`` (the first site when None)."""
        if site_id is None:
            return self.sites[0]
        for site in self.sites:
            if site.id == site_id:
                return site
        raise ProtocolError(f"Site '{site_id}' is not in protocol {self.protocol_id}; sites: "
                            f"{', '.join(s.id for s in self.sites)}.", field="site_id")

    def arm(self, arm_id: str) -> Arm:
        for arm in self.arms:
            if arm.id == arm_id:
                return arm
        raise KeyError(arm_id)

    def arm_label(self, arm_id: str) -> str:
        """The arm as people read it ("MSC + standard therapy"); an unknown id as itself."""
        return self.arm(arm_id).label if arm_id in self.arm_ids else arm_id

    @property
    def arm_ids(self) -> tuple[str, ...]:
        return tuple(arm.id for arm in self.arms)

    @property
    def criteria(self) -> tuple[tuple[str, Criterion], ...]:
        """All criteria with their type ('inclusion' / 'exclusion'), in file order."""
        return tuple(("inclusion", c) for c in self.eligibility.inclusion) + tuple(
            ("exclusion", c) for c in self.eligibility.exclusion
        )

    @property
    def enrolment_deadline_hours(self) -> float:
        """Hours after onset by which a patient must be randomized (the within_hours
        criterion on the onset field, else the intervention deadline)."""
        for _, crit in self.criteria:
            if isinstance(crit, WithinHoursCriterion) and crit.field == self.onset.field:
                return crit.hours
        return self.intervention.deadline_hours_after_onset

    def schedule_by_day(self, arm: str | None = None) -> dict[int, tuple[str, ...]]:
        """Day → forms due that day (for ``arm`` when given)."""
        days: dict[int, list[str]] = {}
        for assessment in self.schedule.assessments:
            if arm and assessment.arms and arm not in assessment.arms:
                continue
            for day in assessment.day_list():
                days.setdefault(day, []).append(assessment.form)
        return {day: tuple(forms) for day, forms in sorted(days.items())}

    # -- cross-reference checks ------------------------------------------------
    @model_validator(mode="after")
    def _cross_references(self) -> Protocol:
        problems: list[str] = []
        arm_ids = [a.id for a in self.arms]
        if len(set(arm_ids)) != len(arm_ids):
            problems.append("arms: arm ids must be unique")
        if set(self.randomization.ratio) != set(arm_ids):
            problems.append(f"randomization.ratio: must name every arm exactly once "
                            f"({', '.join(arm_ids)}), got {', '.join(self.randomization.ratio)}")
        if self.intervention.arm not in arm_ids:
            problems.append(f"intervention.arm: '{self.intervention.arm}' is not an arm")
        if sum(1 for a in self.arms if a.role == "control") < 1:
            problems.append("arms: at least one arm must have role 'control'")

        fields = {f.id: f for f in self.screening_fields}
        if len(fields) != len(self.screening_fields):
            problems.append("screening_fields: field ids must be unique")
        onset_field = fields.get(self.onset.field)
        if onset_field is None or onset_field.type is not FieldType.DATETIME:
            problems.append(f"onset.field: '{self.onset.field}' must be a datetime screening "
                            "field")

        consent = self.eligibility.consent_field
        if consent is not None and (consent not in fields
                                    or fields[consent].type is not FieldType.BOOLEAN):
            problems.append(f"eligibility.consent_field: '{consent}' must be a boolean "
                            "screening field")

        factor_ids = {f.id for f in self.stratification_factors}
        for name in self.randomization.stratify_by:
            if name not in factor_ids:
                problems.append(f"randomization.stratify_by: '{name}' is not a "
                                "stratification factor")
        for factor in self.stratification_factors:
            source = fields.get(factor.field)
            if source is None or source.type is not FieldType.CHOICE:
                problems.append(f"stratification_factors: {factor.id}: field '{factor.field}' "
                                "must be a choice screening field")
            elif {lvl.id for lvl in factor.levels} != set(source.choice_ids):
                problems.append(f"stratification_factors: {factor.id}: levels must equal the "
                                f"choices of '{factor.field}'")

        seen: set[str] = set()
        for kind in ("inclusion", "exclusion"):
            for index, crit in enumerate(getattr(self.eligibility, kind)):
                where = f"eligibility.{kind}.{index}"
                if crit.id in seen:
                    problems.append(f"{where}: criterion id '{crit.id}' is used twice")
                seen.add(crit.id)
                problems.extend(f"{where}: {p}" for p in _check_criterion_fields(crit, fields))
        for assessment in self.schedule.assessments + self.schedule.unscheduled:
            for arm in assessment.arms:
                if arm not in arm_ids:
                    problems.append(f"schedule.assessments: form '{assessment.form}' "
                                    f"names unknown arm '{arm}'")
        if problems:
            # one problem per line, each "dotted.path: message" (the loader adds line numbers)
            raise ValueError("\n".join(problems))
        return self


_EXPECTED_TYPE: dict[str, FieldType] = {
    "age": FieldType.DATE,
    "within_hours": FieldType.DATETIME,
    "event_recorded": FieldType.DATETIME,
    "measurement": FieldType.MEASUREMENT,
    "flag": FieldType.BOOLEAN,
    "choice": FieldType.CHOICE,
}


def _check_criterion_fields(crit: Criterion, fields: dict[str, RecordField]) -> list[str]:
    where = f"criterion {crit.id}"
    field = fields.get(crit.field)
    if field is None:
        return [f"{where}: field '{crit.field}' is not a screening field"]
    problems = []
    expected = _EXPECTED_TYPE[crit.kind]
    if field.type is not expected:
        problems.append(f"{where}: field '{crit.field}' is {field.type.value}, a {crit.kind} "
                        f"criterion needs a {expected.value} field")
    if isinstance(crit, MeasurementCriterion) and field.measure:
        if normalize_unit(crit.unit) not in measure_spec(field.measure).factors:
            problems.append(f"{where}: unit '{crit.unit}' is not a unit of {field.measure}")
    if isinstance(crit, ChoiceCriterion):
        unknown = set(crit.any_of) - set(field.choice_ids)
        if unknown:
            problems.append(f"{where}: {sorted(unknown)} are not choices of '{crit.field}'")
    if isinstance(crit, EventRecordedCriterion) and crit.negated_by:
        neg = fields.get(crit.negated_by)
        if neg is None or neg.type is not FieldType.BOOLEAN:
            problems.append(f"{where}: negated_by '{crit.negated_by}' must be a boolean field")
    if isinstance(crit, FlagCriterion):
        for other, value in crit.not_applicable_when.items():
            if other not in fields:
                problems.append(f"{where}: not_applicable_when names unknown field '{other}'")
            elif fields[other].type is FieldType.CHOICE and value not in fields[other].choice_ids:
                problems.append(f"{where}: '{value}' is not a choice of '{other}'")
    return problems
