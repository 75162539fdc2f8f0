"""Forms of the screening pages (input only; rules live in the domain core)."""

from __future__ import annotations

from django import forms

from trialdesk.web.screening.models import ConsentType
from trialdesk.web.screening.services import NOT_ENROLLED_REASONS


class ReasonForm(forms.Form):
    reason = forms.CharField(label="Reason for change", max_length=200,
                             help_text="Required for every correction (audit trail).")


class ConsentForm(forms.Form):
    consent_type = forms.ChoiceField(label="Who consented", choices=ConsentType.choices)
    document_version = forms.CharField(label="Consent document version", max_length=40)
    obtained_at = forms.DateTimeField(
        label="Date and time (site time)", input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    obtained_by = forms.CharField(label="Consent obtained by", max_length=120)
    signed_by = forms.CharField(label="Signed by (patient or representative)", max_length=120,
                                required=False)


class CloseForm(forms.Form):
    reason_code = forms.ChoiceField(label="Reason not enrolled",
                                    choices=list(NOT_ENROLLED_REASONS.items()))
    detail = forms.CharField(label="Details", max_length=150, required=False)
