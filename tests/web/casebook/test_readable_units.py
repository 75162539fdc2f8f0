"""Casebook pages read right at the bedside: every number with its unit, written once.

The recorded-forms table shows what was typed with the unit the CRF defines for it
(62 → "62 mmHg", a lactate typed in mg/dL keeps "mg/dL"), choices by their label and
times on the site's clock (Moscow, UTC+03:00). Every form's entry page names each
field's unit once, in the readable form (µmol/L, never the ASCII code umol/L).
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.urls import reverse

from tests.web.casebook.conftest import browser
from tests.web.casebook.test_daily_forms import WORKED_DAY, form_url
from trialdesk.crf.forms import FORMS

pytestmark = pytest.mark.django_db

MOSCOW = dt.timezone(dt.timedelta(hours=3))
UNITS = ["µmol/L", "umol/L", "mg/dL", "mmHg", "mmol/L", "µg/kg/min", "mL/day", "mL/kg",
         "pg/mL", "mg/L", "ng/mL", "cells/mL", "10^9/L", "EU/mL", "mg/day"]


def _recorded(page: str, form: str, day: str) -> dict[str, str]:
    block = re.search(rf'<details data-form="{form}" data-day="{day}">(.*?)</details>', page,
                      re.S)
    assert block, f"{form} day {day} not in the recorded forms"
    rows = re.findall(r'<tr data-field="([^"]+)"><td>(.*?)</td><td class="value">(.*?)</td>',
                      block.group(1))
    return {field: html.unescape(value) for field, _, value in rows}


def test_recorded_forms_show_values_with_units_labels_and_site_time(investigator, msc_patient):
    client = browser(investigator)
    assert client.post(form_url(msc_patient, day="1"), WORKED_DAY).status_code == 302
    onset = msc_patient.screening.onset_utc.astimezone(MOSCOW)
    sampled = (onset + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    therapy = {"lactate_measured_at": sampled, "lactate_mmol_l": "36",
               "lactate_mmol_l__unit": "mg/dL", "crystalloid_ml_per_kg_3h": "30"}
    assert client.post(form_url(msc_patient, "standard_therapy"), therapy).status_code == 302
    page = client.get(reverse("casebook:detail", args=[msc_patient.subject_id])).content.decode()

    sofa = _recorded(page, "sofa", "1")
    assert sofa["map_mmhg"] == "62 mmHg"
    assert sofa["bilirubin_umol_l"] == "40 µmol/L"
    assert sofa["creatinine_umol_l"] == "180 µmol/L"
    assert sofa["norepinephrine_ug_kg_min"] == "0.25 µg/kg/min"
    assert sofa["urine_ml_per_day"] == "350 mL/day"
    assert sofa["respiratory_support"] == "Invasive mechanical ventilation"
    therapy_shown = _recorded(page, "standard_therapy", "0")
    assert therapy_shown["lactate_mmol_l"] == "36 mg/dL"  # kept as typed, with its unit
    assert therapy_shown["crystalloid_ml_per_kg_3h"] == "30 mL/kg"
    assert therapy_shown["lactate_measured_at"] == f"{sampled.replace('T', ' ')} MSK (UTC+03:00)"
    assert "Daily SOFA" in page and "UTC</summary>" not in page


def _labels(page: str) -> dict[str, str]:
    found = re.findall(r'<label for="id_([a-z0-9_]+)">(.*?)</label>', page, re.S)
    return {field: re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", text))).strip()
            for field, text in found}


def test_every_forms_entry_page_names_each_unit_once(investigator, lab_user, msc_patient):
    book = reverse("casebook:detail", args=[msc_patient.subject_id])
    pages: dict[str, str] = {}
    for user in (investigator, lab_user):
        client = browser(user)
        for href in re.findall(r'href="(/casebook/[^"]+/(?:forms/[^"]+|msc/[a-z-]+/))"',
                               client.get(book).content.decode()):
            form_id = href.split("/forms/")[1].split("/")[0] if "/forms/" in href else \
                "msc_" + href.rstrip("/").rsplit("/", 1)[1].replace("-", "_")
            if form_id not in pages:
                response = client.get(href)
                assert response.status_code == 200, href
                pages[form_id] = response.content.decode()
    assert set(pages) == set(FORMS), f"no entry page reached for {set(FORMS) - set(pages)}"
    for form_id, page in pages.items():
        for field, label in _labels(page).items():
            assert "umol" not in label, f"{form_id}.{field}: {label!r}"
            for unit in UNITS:
                assert label.count(unit) <= 1, f"{form_id}.{field}: {label!r}"
    sofa = _labels(pages["sofa"])
    assert sofa["bilirubin_umol_l"] == "Bilirubin (highest) (µmol/L)"
    assert sofa["bilirubin_mg_dl"] == "Bilirubin (highest) (mg/dL)"
    assert sofa["creatinine_umol_l"] == "Creatinine (highest) (µmol/L)"
    assert sofa["map_mmhg"] == "Mean arterial pressure (lowest) (mmHg)"
