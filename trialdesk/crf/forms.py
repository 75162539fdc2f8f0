"""The library of case report forms: every field with its unit, ranges and help.

A form's data is stored **as entered** (``FormRecord.data`` in the web app, the JSON of
the API): a mapping of field id → value, where

* numbers are JSON numbers in the field's canonical unit (the unit is in the field id:
  ``map_mmhg``, ``crp_mg_l``), or — for fields that accept other units
  (:attr:`FormField.alt_units`) — ``{"value": 36, "unit": "mg/dL"}``;
* date-times are ISO 8601 strings **with a UTC offset** (``2026-03-01T02:15:00+03:00``);
  dates are ``YYYY-MM-DD`` (the site's calendar); choices are their ids; yes/no fields
  are ``true``/``false``; text is text;
* a field left out (or ``null``) was not measured / not known.

Ranges: ``hard_range`` is what is physically possible (outside → an error that blocks
saving); ``soft_range`` is what is usual in septic shock (outside → a warning to
confirm). Both are in the canonical unit. Lab values with a unit family in
:mod:`trialdesk.clinical.units` are converted and range-checked there; SOFA inputs are
checked by :mod:`trialdesk.clinical.sofa` itself (their ids are ``SofaInputs``'s keys).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from trialdesk.clinical.dosing import CONCENTRATION_RANGE
from trialdesk.crf.findings import Finding, error
from trialdesk.errors import InputRejected

#: unit codes kept ASCII in the data and the API, and how a person reads them
_UNIT_DISPLAY = {"umol/L": "µmol/L", "ug/L": "µg/L"}


def display_unit(unit: str | None) -> str:
    """A unit code as shown to people: ``umol/L`` → ``µmol/L``; empty for no unit."""
    return _UNIT_DISPLAY.get(unit or "", unit or "")


class FieldKind(StrEnum):
    NUMBER = "number"
    INTEGER = "integer"
    CHOICE = "choice"
    DATETIME = "datetime"
    DATE = "date"
    BOOLEAN = "boolean"
    TEXT = "text"


@dataclass(frozen=True)
class FormField:
    """One item of a form. Numbers carry their canonical unit in ``id`` and ``unit``."""

    id: str
    label: str
    kind: FieldKind
    unit: str | None = None
    #: unit family in trialdesk.clinical.units (converts alt_units, checks plausibility)
    measure: str | None = None
    #: other units accepted on entry, converted to ``unit`` by the measure's factors
    alt_units: tuple[str, ...] = ()
    hard_range: tuple[float, float] | None = None
    soft_range: tuple[float, float] | None = None
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    #: a SofaInputs key: checked and scored by trialdesk.clinical.sofa
    sofa_input: bool = False
    #: a time that normally lies ahead (a product's expiry): exempt from the future check
    may_be_future: bool = False

    @property
    def units(self) -> tuple[str, ...]:
        return ((self.unit,) if self.unit else ()) + self.alt_units

    @property
    def unit_display(self) -> str:
        """The canonical unit as a page shows it (``µmol/L`` for the stored ``umol/L``)."""
        return display_unit(self.unit)

    @property
    def choice_ids(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.choices)


@dataclass(frozen=True)
class FormDefinition:
    """A form: id (as named in the protocol's schedule), label, who records it, fields."""

    id: str
    label: str
    fields: tuple[FormField, ...]
    #: "site" = ICU staff (investigator/coordinator), "lab" = the cell-therapy lab
    recorded_by: str = "site"
    help: str = ""

    def field(self, field_id: str) -> FormField:
        for f in self.fields:
            if f.id == field_id:
                return f
        raise KeyError(field_id)

    @property
    def field_ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.fields)


N, INT, C, T, D, B, X = (FieldKind.NUMBER, FieldKind.INTEGER, FieldKind.CHOICE,
                       FieldKind.DATETIME, FieldKind.DATE, FieldKind.BOOLEAN, FieldKind.TEXT)

_DRUG_HELP = "Highest dose given for at least 1 h; empty = not given"

SOFA = FormDefinition("sofa", "Daily SOFA (worst values of the day)", (
    FormField("pao2_mmhg", "PaO2 (lowest P/F pair)", N, "mmHg", soft_range=(40, 500),
              sofa_input=True, help="Arterial PaO2 of the worst PaO2/FiO2 pair; kPa × 7.5"),
    FormField("fio2_fraction", "FiO2 of that pair", N, "fraction", soft_range=(0.21, 1.0),
              sofa_input=True, help="A fraction 0.21–1.0 (40 % is 0.40)"),
    FormField("respiratory_support", "Respiratory support", C, choices=(
        ("none", "None (room air)"), ("oxygen", "Oxygen without ventilation"),
        ("noninvasive", "Non-invasive ventilation / CPAP"),
        ("invasive", "Invasive mechanical ventilation")),
        help="Oxygen alone is not ventilatory support for SOFA (scored as none)"),
    FormField("platelets_10e9_per_l", "Platelets (lowest)", N, "10^9/L",
              soft_range=(1, 1000), sofa_input=True, help="×10^9/L = ×10^3/µL"),
    FormField("bilirubin_umol_l", "Bilirubin (highest)", N, "umol/L",
              soft_range=(2, 700), sofa_input=True, help="Enter in µmol/L or in mg/dL, not both"),
    FormField("bilirubin_mg_dl", "Bilirubin (highest)", N, "mg/dL",
              soft_range=(0.1, 40), sofa_input=True),
    FormField("map_mmhg", "Mean arterial pressure (lowest)", N, "mmHg", soft_range=(35, 140),
              sofa_input=True),
    FormField("dopamine_ug_kg_min", "Dopamine", N, "µg/kg/min", soft_range=(0, 20),
              sofa_input=True, help=_DRUG_HELP),
    FormField("dobutamine_ug_kg_min", "Dobutamine", N, "µg/kg/min", soft_range=(0, 20),
              sofa_input=True, help=_DRUG_HELP),
    FormField("norepinephrine_ug_kg_min", "Norepinephrine", N, "µg/kg/min",
              soft_range=(0, 2), sofa_input=True, help=_DRUG_HELP),
    FormField("epinephrine_ug_kg_min", "Epinephrine", N, "µg/kg/min", soft_range=(0, 1),
              sofa_input=True, help=_DRUG_HELP),
    FormField("gcs", "Glasgow Coma Scale (lowest)", INT, "points", sofa_input=True,
              help="3–15"),
    FormField("gcs_basis", "GCS basis", C, choices=(
        ("actual", "Observed"), ("pre_sedation", "Last before sedation"),
        ("assumed_normal", "Sedated, assumed normal (15)")),
        help="Which GCS was entered for a sedated patient"),
    FormField("creatinine_umol_l", "Creatinine (highest)", N, "umol/L",
              soft_range=(20, 1200), sofa_input=True,
              help="Enter in µmol/L or in mg/dL, not both"),
    FormField("creatinine_mg_dl", "Creatinine (highest)", N, "mg/dL",
              soft_range=(0.2, 14), sofa_input=True),
    FormField("urine_ml_per_day", "Urine output", N, "mL/day", soft_range=(0, 8000),
              sofa_input=True, help="24-h volume in mL (0 if under 20 mL)"),
), help="Worst value of each item in the 24 h of the study day (Vincent 1996).")

STANDARD_THERAPY = FormDefinition("standard_therapy", "Standard therapy (SSC 2012)", (
    FormField("antibiotics", "Antibiotics given", X, help="Agents, e.g. meropenem + vancomycin"),
    FormField("antibiotics_first_dose_at", "First antibiotic dose", T),
    FormField("blood_cultures_at", "Blood cultures drawn", T),
    FormField("blood_culture_sets", "Blood culture sets", INT, "sets", hard_range=(0, 10),
              soft_range=(2, 4), help="SSC 2012: at least 2 sets before antibiotics"),
    FormField("lactate_measured_at", "Initial lactate measured", T),
    FormField("lactate_mmol_l", "Initial lactate", N, "mmol/L", measure="lactate",
              alt_units=("mg/dL",), soft_range=(0.3, 15)),
    FormField("crystalloid_ml_per_kg_3h", "Crystalloid in the first 3 h", N, "mL/kg",
              hard_range=(0, 300), soft_range=(0, 100),
              help="mL per kg body weight from shock onset to onset + 3 h"),
    FormField("vasopressor_start_at", "Vasopressor started", T),
    FormField("cvp_mmhg", "Central venous pressure", N, "mmHg", hard_range=(-10, 50),
              soft_range=(0, 25)),
    FormField("cvp_measured_at", "CVP measured", T),
    FormField("scvo2_percent", "ScvO2", N, "%", hard_range=(0, 100), soft_range=(40, 95)),
    FormField("scvo2_measured_at", "ScvO2 measured", T),
    FormField("repeat_lactate_at", "Repeat lactate measured", T),
    FormField("repeat_lactate_mmol_l", "Repeat lactate", N, "mmol/L", measure="lactate",
              alt_units=("mg/dL",), soft_range=(0.3, 15)),
    FormField("inotrope", "Inotrope", C, choices=(
        ("none", "None"), ("dobutamine", "Dobutamine"), ("milrinone", "Milrinone"),
        ("levosimendan", "Levosimendan"), ("other", "Other"))),
    FormField("hydrocortisone_mg_per_day", "Hydrocortisone", N, "mg/day",
              hard_range=(0, 1000), soft_range=(0, 300), help="SSC 2012: 200 mg/day"),
), help="Times relative to septic-shock onset give the 3-h and 6-h bundle compliance.")

INFLAMMATORY_MARKERS = FormDefinition("inflammatory_markers", "Inflammatory markers", (
    FormField("sampled_at", "Blood sampled", T),
    FormField("il6_pg_per_ml", "IL-6", N, "pg/mL", measure="il6", soft_range=(0, 50000)),
    FormField("il10_pg_per_ml", "IL-10", N, "pg/mL", measure="il10", soft_range=(0, 5000)),
    FormField("crp_mg_l", "C-reactive protein", N, "mg/L", measure="crp", alt_units=("mg/dL",),
              soft_range=(0, 500)),
    FormField("procalcitonin_ng_ml", "Procalcitonin", N, "ng/mL", measure="procalcitonin",
              alt_units=("ug/L",), soft_range=(0, 200)),
    FormField("lactate_mmol_l", "Lactate", N, "mmol/L", measure="lactate", alt_units=("mg/dL",),
              soft_range=(0.3, 15)),
))

MSC_PRODUCT = FormDefinition("msc_product", "MSC product and release", (
    FormField("product_id", "Product / lot id", X, required=True,
              help="Unique product id (ISBT 128 where used)"),
    FormField("donor_id", "Donor id", X, required=True),
    FormField("passage", "Passage", INT, hard_range=(0, 20), soft_range=(1, 5)),
    FormField("viable_cells_total", "Viable cells in the product", N, "cells",
              hard_range=(1e5, 1e11), soft_range=(1e7, 1e9),
              help="Total viable cells, full number (70000000 for 70×10^6)"),
    FormField("viability_percent", "Viability", N, "%", hard_range=(0, 100),
              soft_range=(50, 100), help="Trypan blue or 7-AAD, per the lab's SOP"),
    FormField("concentration_cells_per_ml", "Viable cell concentration", N, "cells/mL",
              hard_range=CONCENTRATION_RANGE, soft_range=(2e5, 2e7)),
    FormField("volume_ml", "Product volume", N, "mL", hard_range=(0.1, 2000),
              soft_range=(5, 500)),
    FormField("thaw_start_at", "Thaw started", T),
    FormField("thaw_end_at", "Thaw ended", T),
    FormField("expiry_at", "Expires", T, may_be_future=True,
              help="Date and time after which it must not be given"),
    FormField("sterility", "Sterility", C, choices=(
        ("no_growth", "No growth"), ("gram_stain_negative", "Gram stain negative, culture pending"),
        ("growth", "Growth"), ("pending", "Pending"))),
    FormField("endotoxin_eu_per_ml", "Endotoxin", N, "EU/mL", hard_range=(0, 1000)),
    FormField("mycoplasma", "Mycoplasma", C, choices=(
        ("negative", "Negative"), ("positive", "Positive"), ("pending", "Pending"))),
    FormField("identity", "Identity (ISCT markers)", C, choices=(
        ("pass", "Meets specification"), ("fail", "Does not meet"), ("pending", "Pending"))),
    FormField("released_by", "Released by", X, help="QP / lab head who signed the release"),
    FormField("released_at", "Released at", T),
), recorded_by="lab", help="Release criteria come from the protocol (domain.md §6.3).")

MSC_INFUSION = FormDefinition("msc_infusion", "MSC infusion", (
    FormField("infusion_start_at", "Infusion started", T, required=True),
    FormField("infusion_end_at", "Infusion ended", T),
    FormField("weight_kg", "Dosing weight", N, "kg", measure="weight", alt_units=("lb",),
              required=True, soft_range=(40, 150)),
    FormField("weight_basis", "Weight basis", C, choices=(
        ("actual", "Actual body weight"), ("predicted", "Predicted body weight")),
        help="The protocol names the basis; a different one is flagged"),
    FormField("cells_infused", "Viable cells infused", N, "cells", hard_range=(0, 1e11),
              help="Full number; or leave empty and give the volume infused"),
    FormField("volume_infused_ml", "Volume infused", N, "mL", hard_range=(0, 2000),
              help="With the product's concentration gives the cells infused"),
    FormField("premedication", "Premedication", X, help="Drug, dose and time"),
    FormField("reaction", "Infusion reaction", C, choices=(("none", "None"), ("yes", "Yes"))),
    FormField("reaction_description", "Reaction", X),
    FormField("reaction_ctcae_grade", "Reaction CTCAE grade", INT, hard_range=(1, 5)),
    FormField("interruptions", "Interruptions", INT, hard_range=(0, 20)),
    FormField("interruption_reason", "Reason for interruptions", X),
), recorded_by="lab", help="The dose in cells/kg is computed (trialdesk.clinical.dosing).")

#: why an MSC-arm patient did not get the dose (CONSORT "did not receive allocated
#: intervention (give reasons)"; the labels are what the CONSORT diagram prints)
MSC_NOT_GIVEN_REASONS = (
    ("product_failed_release", "Product failed a release criterion"),
    ("product_not_released", "Product not released in time (release results pending)"),
    ("patient_unstable", "Patient too unstable for the infusion"),
    ("consent_withdrawn", "Consent withdrawn before the infusion"),
    ("died_before_infusion", "Died before the infusion"),
    ("other", "Other"))

MSC_NOT_GIVEN = FormDefinition("msc_not_given", "MSC dose not given", (
    FormField("reason", "Reason the dose was not given", C, required=True,
              choices=MSC_NOT_GIVEN_REASONS),
    FormField("reason_detail", "Details", X, help="Required when the reason is 'Other'"),
    FormField("decided_at", "Decided at", T, required=True,
              help="When it was decided not to give the dose (not before randomization)"),
), recorded_by="lab", help="Closes the MSC dose for a patient of the MSC arm who will not "
   "get it; an infusion and a not-given record exclude each other.")

VITAL_STATUS = FormDefinition("vital_status", "Vital status", (
    FormField("status", "Vital status", C, required=True, choices=(
        ("alive", "Alive"), ("dead", "Dead"), ("unknown", "Unknown"))),
    FormField("date_of_death", "Date of death", D),
    FormField("last_known_alive_date", "Last known alive", D),
    FormField("source", "Source", C, choices=(
        ("seen", "Seen in hospital"), ("phone", "Telephone"), ("records", "Medical records"),
        ("registry", "Death registry"), ("other", "Other"))),
))

END_OF_STUDY = FormDefinition("end_of_study", "End of study", (
    FormField("status", "End of study", C, required=True, choices=(
        ("completed", "Completed"), ("withdrawn", "Withdrawn"),
        ("lost_to_follow_up", "Lost to follow-up"), ("died", "Died"))),
    FormField("date", "Date", D, required=True, help="Date of completion, withdrawal, last "
              "contact or death"),
    FormField("reason", "Reason", X, help="Required for a withdrawal"),
))

FORMS: dict[str, FormDefinition] = {f.id: f for f in (
    SOFA, STANDARD_THERAPY, INFLAMMATORY_MARKERS, MSC_PRODUCT, MSC_INFUSION, MSC_NOT_GIVEN,
    VITAL_STATUS, END_OF_STUDY)}

#: Forms the cell-therapy lab records (the others are recorded by ICU staff).
LAB_FORMS = frozenset(f.id for f in FORMS.values() if f.recorded_by == "lab")


def form_definition(form_id: str) -> FormDefinition:
    try:
        return FORMS[form_id]
    except KeyError:
        raise InputRejected(f"Unknown form '{form_id}'; forms: {', '.join(FORMS)}.",
                            field="form_id") from None


# --- raw text (a web form) to data --------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def _parse_number(text: str) -> float | int | None:
    cleaned = text.replace(" ", "").replace("\u202f", "").replace("_", "")
    if not _NUMBER.match(cleaned):
        return None
    value = float(cleaned.replace(",", "."))
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


def parse_entry(definition: FormDefinition, raw: Mapping[str, str],
                timezone: str) -> tuple[dict[str, Any], tuple[Finding, ...]]:
    """Turn a web form's text fields into form data, plus errors for unreadable text.

    Empty fields are left out. Numbers accept a decimal comma and spaces (``1 000,5``);
    a unit other than the canonical one comes from ``<field>__unit``. A local
    date-time without offset (``2026-03-01T02:15`` from a browser) is read in the
    site's ``timezone`` and stored with its offset. Unreadable text stays in the data
    as entered (so the page can show it again) and gets an error.
    """
    zone = ZoneInfo(timezone)
    data: dict[str, Any] = {}
    problems: list[Finding] = []
    for field in definition.fields:
        text = (raw.get(field.id) or "").strip()
        if not text:
            continue
        if field.kind in (FieldKind.NUMBER, FieldKind.INTEGER):
            number = _parse_number(text)
            if number is None:
                data[field.id] = text
                problems.append(error("NOT_A_NUMBER", field.id,
                                      f"{field.label}: '{text}' is not a number."))
                continue
            unit = (raw.get(f"{field.id}__unit") or field.unit or "").strip()
            data[field.id] = (number if not field.alt_units or unit in ("", field.unit)
                              else {"value": number, "unit": unit})
        elif field.kind is FieldKind.DATETIME:
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                data[field.id] = text
                problems.append(error("NOT_A_TIME", field.id, f"{field.label}: '{text}' is "
                                      "not a date and time (YYYY-MM-DD HH:MM)."))
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=zone)
            data[field.id] = parsed.isoformat()
        elif field.kind is FieldKind.BOOLEAN:
            data[field.id] = text.lower() in ("1", "true", "yes", "on")
        else:
            data[field.id] = text
    return data, tuple(problems)
