"""Forms generated from the protocol's screening fields and the SOFA inputs.

They only collect and shape input; every check and calculation is the domain
core's (``trialdesk.eligibility``, ``trialdesk.clinical``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from trialdesk.clinical.sofa import RespiratorySupport
from trialdesk.clinical.units import measure_spec
from trialdesk.protocol.schema import FieldType, Protocol

_UNKNOWN = ""
_BOOL_CHOICES = [(_UNKNOWN, "unknown"), ("true", "yes"), ("false", "no")]


class ScreeningForm(forms.Form):
    """One input per protocol screening field; empty means unknown."""

    def __init__(self, protocol: Protocol, *args: Any, zone: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.protocol = protocol
        self.zone = zone or protocol.sites[0].timezone
        for spec in protocol.screening_fields:
            help_text = spec.help or ""
            if spec.type is FieldType.DATE:
                self.fields[spec.id] = forms.DateField(
                    label=spec.label, required=False, help_text=help_text,
                    widget=forms.DateInput(attrs={"type": "date"}))
            elif spec.type is FieldType.DATETIME:
                self.fields[spec.id] = forms.DateTimeField(
                    label=f"{spec.label} (site time, {self.zone})", required=False,
                    help_text=help_text,
                    widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                    input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
            elif spec.type is FieldType.BOOLEAN:
                self.fields[spec.id] = forms.ChoiceField(
                    label=spec.label, required=False, choices=_BOOL_CHOICES,
                    help_text=help_text, widget=forms.RadioSelect)
            elif spec.type is FieldType.CHOICE:
                self.fields[spec.id] = forms.ChoiceField(
                    label=spec.label, required=False, help_text=help_text,
                    choices=[(_UNKNOWN, "unknown"), *[(c.id, c.label) for c in spec.choices]])
            else:
                units = list(measure_spec(spec.measure or "").factors)
                self.fields[spec.id] = forms.FloatField(
                    label=spec.label, required=False, help_text=help_text)
                self.fields[f"{spec.id}__unit"] = forms.ChoiceField(
                    label=f"{spec.label}: unit", choices=[(u, u) for u in units],
                    initial=spec.default_unit or units[0])

    @staticmethod
    def initial_from_record(protocol: Protocol, record: dict[str, Any],
                            zone_name: str) -> dict[str, Any]:
        """Form initial values for a stored record (times shown in the site's zone)."""
        from trialdesk.clinical.timeutil import parse_aware
        from trialdesk.errors import TrialError

        zone = ZoneInfo(zone_name)
        initial: dict[str, Any] = {}
        for spec in protocol.screening_fields:
            value = record.get(spec.id)
            if value is None:
                continue
            if spec.type is FieldType.DATETIME:
                try:
                    initial[spec.id] = parse_aware(value, field=spec.id).astimezone(zone) \
                        .replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M")
                except TrialError:
                    continue
            elif spec.type is FieldType.BOOLEAN:
                initial[spec.id] = "true" if value is True else "false" if value is False else ""
            elif spec.type is FieldType.MEASUREMENT and isinstance(value, dict):
                initial[spec.id] = value.get("value")
                if value.get("unit"):
                    initial[f"{spec.id}__unit"] = value["unit"]
            else:
                initial[spec.id] = value
        return initial

    def to_record(self) -> dict[str, Any]:
        """The cleaned data in the ``screen`` JSON format (absent = unknown)."""
        record: dict[str, Any] = {}
        zone = ZoneInfo(self.zone)
        for spec in self.protocol.screening_fields:
            value = self.cleaned_data.get(spec.id)
            if value in (None, _UNKNOWN):
                continue
            if spec.type is FieldType.DATE:
                record[spec.id] = value.isoformat()
            elif spec.type is FieldType.DATETIME:
                local = value.replace(tzinfo=None) if isinstance(value, dt.datetime) else value
                record[spec.id] = local.replace(tzinfo=zone).isoformat()
            elif spec.type is FieldType.BOOLEAN:
                record[spec.id] = value == "true"
            elif spec.type is FieldType.CHOICE:
                record[spec.id] = value
            else:
                record[spec.id] = {"value": value,
                                   "unit": self.cleaned_data.get(f"{spec.id}__unit")}
        return record


SOFA_FIELDS: list[tuple[str, str]] = [
    ("pao2_mmhg", "PaO2 (mmHg)"),
    ("fio2_fraction", "FiO2 (fraction, 0.21–1.0)"),
    ("platelets_10e9_per_l", "Platelets (×10^9/L)"),
    ("bilirubin_mg_dl", "Bilirubin (mg/dL)"),
    ("bilirubin_umol_l", "or bilirubin (µmol/L)"),
    ("map_mmhg", "Mean arterial pressure (mmHg)"),
    ("dopamine_ug_kg_min", "Dopamine (µg/kg/min)"),
    ("dobutamine_ug_kg_min", "Dobutamine (µg/kg/min)"),
    ("epinephrine_ug_kg_min", "Epinephrine (µg/kg/min)"),
    ("norepinephrine_ug_kg_min", "Norepinephrine (µg/kg/min)"),
    ("gcs", "Glasgow Coma Scale (3–15)"),
    ("creatinine_mg_dl", "Creatinine (mg/dL)"),
    ("creatinine_umol_l", "or creatinine (µmol/L)"),
    ("urine_ml_per_day", "Urine output (mL/day)"),
]


class SofaForm(forms.Form):
    """Worst values of the day; every field optional (missing scores 0 and is flagged)."""

    respiratory_support = forms.ChoiceField(
        label="Respiratory support", required=False,
        choices=[(_UNKNOWN, "unknown")] + [(s.value, s.value) for s in RespiratorySupport])

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for name, label in SOFA_FIELDS:
            self.fields[name] = forms.FloatField(label=label, required=False)
        self.order_fields(["pao2_mmhg", "fio2_fraction", "respiratory_support"])

    def to_mapping(self) -> dict[str, Any]:
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, _UNKNOWN)}


class DoseForm(forms.Form):
    weight_kg = forms.FloatField(label="Body weight (kg)")
    cells_per_kg = forms.FloatField(label="Target dose (cells/kg)", required=False)
    concentration_cells_per_ml = forms.FloatField(
        label="Product concentration (cells/mL)", required=False)
