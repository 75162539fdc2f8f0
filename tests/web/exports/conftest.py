"""A small trial entered through the production services, for the export tests.

Two randomized patients (casebook fixtures: randomized five days ago at NRCH); the MSC
patient has a SOFA form corrected with a reason and signed, inflammatory markers with
lactate entered in mg/dL, a standard-therapy form entered in error and entered again,
an adverse event updated once, and a signed casebook; the control patient one SOFA.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from tests.web.casebook import conftest as casebook
from trialdesk.clinical.timeutil import utcnow
from trialdesk.errors import ConfirmationRequired
from trialdesk.web.casebook.models import FormRecord
from trialdesk.web.casebook.services import mark_form_entered_in_error, save_form
from trialdesk.web.datamgmt.services import sign
from trialdesk.web.safety.services import report_ae, update_ae

# the casebook's patients and people (randomized five days ago at NRCH)
sealed_list = casebook.sealed_list
randomize_into = casebook.randomize_into
msc_patient = casebook.msc_patient
control_patient = casebook.control_patient
investigator = casebook.investigator
data_manager = casebook.data_manager

PASSWORD = "x" * 16  # the casebook fixtures' password
SOFA_DAY0 = {"pao2_mmhg": 70, "fio2_fraction": 0.5, "respiratory_support": "invasive",
             "platelets_10e9_per_l": 35, "bilirubin_umol_l": 40, "map_mmhg": 62,
             "norepinephrine_ug_kg_min": 0.25, "gcs": 11, "creatinine_umol_l": 180,
             "urine_ml_per_day": 350}
CORRECTION_REASON = "MAP transcribed from the wrong line of the chart"
ERROR_REASON = "wrong patient"
MARKERS_DAY1 = {"il6_pg_per_ml": 1250.5, "crp_mg_l": 120,
                "lactate_mmol_l": {"value": 36, "unit": "mg/dL"}}
THERAPY_DAY1 = {"antibiotics": "meropenem + vancomycin", "blood_culture_sets": 2,
                "hydrocortisone_mg_per_day": 200}


def save(protocol, allocation, form_id, day, data, user, reason=""):
    """save_form, confirming whatever unusual-value warnings it asks to confirm."""
    try:
        return save_form(protocol, allocation, form_id, day, data, user=user, reason=reason)
    except ConfirmationRequired as exc:
        keys = [p["key"] for p in exc.problems if p.get("severity") == "warning"]
        return save_form(protocol, allocation, form_id, day, data, user=user, reason=reason,
                         confirm=keys)


def ae_entry(**changes: Any) -> dict[str, Any]:
    now = utcnow()
    entry = {"term": "Febrile reaction during infusion",
             "onset": (now - dt.timedelta(hours=30)).isoformat(),
             "awareness": (now - dt.timedelta(hours=29)).isoformat(),
             "seriousness": [], "severity_grade": 2, "causality": "possible",
             "expectedness": "expected", "outcome": "recovering"}
    entry.update(changes)
    return entry


@dataclass
class Trial:
    msc: Any
    control: Any
    sofa: FormRecord
    markers: FormRecord
    retired: FormRecord
    therapy: FormRecord
    ae: Any


@pytest.fixture
def trial(rumcess, msc_patient, control_patient, investigator) -> Trial:
    ivan = investigator
    sofa = save(rumcess, msc_patient, "sofa", 0, SOFA_DAY0, ivan).record
    sofa = save(rumcess, msc_patient, "sofa", 0, {**SOFA_DAY0, "map_mmhg": 58}, ivan,
                reason=CORRECTION_REASON).record
    sign(sofa, ivan, password=PASSWORD, meaning="authorship")
    markers = save(rumcess, msc_patient, "inflammatory_markers", 1, MARKERS_DAY1, ivan).record
    retired = save(rumcess, msc_patient, "standard_therapy", 1, THERAPY_DAY1, ivan).record
    mark_form_entered_in_error(rumcess, msc_patient, "standard_therapy", 1, ivan,
                               reason=ERROR_REASON)
    therapy = save(rumcess, msc_patient, "standard_therapy", 1,
                   {**THERAPY_DAY1, "blood_culture_sets": 3}, ivan).record
    ae = report_ae(msc_patient, ivan, ae_entry(), protocol=rumcess)
    ae = update_ae(ae, ivan, ae_entry(outcome="recovered"), reason="follow-up: recovered",
                   protocol=rumcess)
    sign(msc_patient, ivan, password=PASSWORD, meaning="responsibility")
    save(rumcess, control_patient, "sofa", 0, {**SOFA_DAY0, "map_mmhg": 66}, ivan)
    return Trial(msc_patient, control_patient, sofa, markers, retired, therapy, ae)
