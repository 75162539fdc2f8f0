"""The screening record, the allocation and data-management flags as parts of the export.

The ODM export (:mod:`trialdesk.interop.odm`) writes CRF forms from the form library.
Three more things of the trial record are not CRF forms and are described here, in the
same :class:`~trialdesk.crf.forms.FormDefinition` terms, so the writer and the long CSV
treat them like any other form (``docs/export.md``):

* **the screening record** (``F.screening`` in the study event ``SE.SCREENING``): the
  protocol's ``screening_fields`` as entered (the eligibility inputs, units included),
  the eligibility decision at the time of each save, the screening status and the
  reason for not enrolling. It holds no name: the screening log stores none (the date
  of birth is the only personal datum of the record, as entered for the age criteria);
  keys the protocol does not know are left out.
* **the allocation** (``F.randomization`` in ``SE.RANDOMIZATION``): arm, stratum, time,
  list and slot, emergency envelope — only when the protocol's ``identifiers.masking``
  is ``none`` (open label). Any other value, and a protocol that does not state its
  masking, keeps the arm out of the file (:func:`allocation_exportable`), and the file
  says so (:func:`allocation_statement`).
* **flags** of data-management annotations (queries, source-data verification, locks,
  deviations): the code lists of ODM ``Flag/FlagValue`` and ``Flag/FlagType``.

Pure domain code (no Django).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trialdesk.clinical.units import measure_spec, normalize_unit
from trialdesk.crf.forms import FieldKind, FormDefinition, FormField
from trialdesk.protocol.schema import FieldType, Protocol

SCREENING_FORM_ID = "screening"
SCREENING_EVENT_OID = "SE.SCREENING"
RANDOMIZATION_FORM_ID = "randomization"
RANDOMIZATION_EVENT_OID = "SE.RANDOMIZATION"

#: screening statuses (web app ``screening.ScreeningStatus``)
SCREENING_STATUSES = (("open", "Open"), ("randomized", "Randomized"),
                      ("not_enrolled", "Not enrolled"),
                      ("entered_in_error", "Entered in error"))
#: eligibility decisions of the engine (``trialdesk.eligibility.Decision``)
ELIGIBILITY_DECISIONS = (("eligible", "Eligible"), ("ineligible", "Not eligible"),
                         ("incomplete", "Incomplete: some criteria cannot be decided"))
#: keys that feed a measurement through the WBC differential (neutrophil counts)
_DIFFERENTIAL = (("wbc_10e9_per_l", "WBC", "10^9/L"),
                 ("neutrophil_percent", "Neutrophils (segmented + bands)", "%"),
                 ("segmented_percent", "Segmented neutrophils", "%"),
                 ("band_percent", "Band neutrophils", "%"))
_KINDS = {FieldType.DATE: FieldKind.DATE, FieldType.DATETIME: FieldKind.DATETIME,
          FieldType.BOOLEAN: FieldKind.BOOLEAN, FieldType.CHOICE: FieldKind.CHOICE,
          FieldType.MEASUREMENT: FieldKind.NUMBER}

# --- masking -------------------------------------------------------------------------------

OPEN_LABEL = "none"


def allocation_exportable(protocol: Protocol) -> bool:
    """The arm may be in the trial record: the protocol states masking ``none``."""
    return protocol.identifiers.masking == OPEN_LABEL


def allocation_statement(protocol: Protocol) -> str:
    """One sentence for the file and the export log: is the allocated arm in it, why."""
    masking = protocol.identifiers.masking
    if masking == OPEN_LABEL:
        return ("Allocated arm included (SE.RANDOMIZATION): the protocol states masking "
                "'none' (open label).")
    stated = f"masking '{masking}'" if masking else "no masking (treated as masked)"
    return (f"Allocated arm omitted: the protocol states {stated}, so the arm, stratum "
            "and list slot are not exported; forms that only one arm receives may still "
            "reveal it.")


# --- the forms -----------------------------------------------------------------------------


def _screening_field(f: Any) -> list[FormField]:
    kind = _KINDS[f.type]
    if f.type is FieldType.MEASUREMENT:
        spec = measure_spec(f.measure)
        # no canonical unit: every value names the unit it was entered in
        units = (spec.canonical_unit, *(u for u in spec.factors if u != spec.canonical_unit))
        out = [FormField(f.id, f.label, kind, None, alt_units=units, help=f.help or "")]
        if f.allow_wbc_differential:
            out += [FormField(k, label, FieldKind.NUMBER, unit) for k, label, unit
                    in _DIFFERENTIAL]
        return out
    return [FormField(f.id, f.label, kind, help=f.help or "",
                      choices=tuple((c.id, c.label) for c in f.choices))]


def screening_form(protocol: Protocol) -> FormDefinition:
    """``F.screening``: the screening number, the protocol's fields, decision, status."""
    fields = [FormField("screening_number", "Screening number", FieldKind.TEXT)]
    for f in protocol.screening_fields:
        fields += _screening_field(f)
    fields += [
        FormField("eligibility_decision", "Eligibility at the time of this save",
                  FieldKind.CHOICE, choices=ELIGIBILITY_DECISIONS,
                  help="Recomputed by the eligibility engine from the record as saved, "
                       "at the time of the save"),
        FormField("screening_status", "Screening status", FieldKind.CHOICE,
                  choices=SCREENING_STATUSES),
        FormField("not_enrolled_reason", "Reason not enrolled", FieldKind.TEXT),
    ]
    seen: dict[str, FormField] = {}
    for f in fields:
        seen.setdefault(f.id, f)
    return FormDefinition(SCREENING_FORM_ID, "Screening record", tuple(seen.values()))


def randomization_form(protocol: Protocol) -> FormDefinition:
    """``F.randomization``: the allocation (exported for open-label protocols only)."""
    return FormDefinition(RANDOMIZATION_FORM_ID, "Randomization", (
        FormField("arm", "Allocated arm", FieldKind.CHOICE,
                  choices=tuple((a.id, a.label) for a in protocol.arms)),
        FormField("stratum", "Stratum", FieldKind.TEXT),
        FormField("randomized_at", "Randomized at (UTC)", FieldKind.DATETIME),
        FormField("method", "Randomization method", FieldKind.TEXT),
        FormField("list_label", "Allocation list", FieldKind.TEXT),
        FormField("list_commitment_sha256", "SHA-256 commitment of the list", FieldKind.TEXT),
        FormField("sequence", "Slot (sequence number in the stratum)", FieldKind.INTEGER),
        FormField("emergency", "Emergency envelope (reconciled)", FieldKind.BOOLEAN),
        FormField("arm_recorded_by_site", "Arm the site recorded (emergency)",
                  FieldKind.TEXT),
        FormField("discrepancy", "Discrepancy found at reconciliation", FieldKind.TEXT),
    ))


def screening_values(definition: FormDefinition, record: Mapping[str, Any], *,
                     screening_number: str, status: str, not_enrolled_reason: str,
                     decision: str | None) -> dict[str, Any]:
    """One version of the screening form from the record as stored.

    Keys the form does not define are left out. A measurement keeps its value and the
    unit it was entered in (the spelling normalized: ``K/µL`` is ``10^3/uL``; the value is
    not converted); a unit no measure knows is kept in the text (``"0.3 giga"``), and a
    measurement without a value (``{"value": null}``) is not measured.
    """
    values: dict[str, Any] = {"screening_number": screening_number}
    for field in definition.fields:
        if field.id not in record:
            continue
        value = record[field.id]
        if isinstance(value, Mapping) and "value" in value:
            raw, unit = value.get("value"), str(value.get("unit") or "")
            if raw is None or raw == "":
                continue
            known = normalize_unit(unit) if unit else ""
            if known in field.units and isinstance(raw, int | float) \
                    and not isinstance(raw, bool):
                value = {"value": raw, "unit": known}
            else:
                value = f"{raw} {unit}".strip()
        values[field.id] = value
    values["eligibility_decision"] = decision
    values["screening_status"] = status
    values["not_enrolled_reason"] = not_enrolled_reason or None
    return values


# --- flags of annotations ------------------------------------------------------------------

FLAG_TYPE_CODELIST = "CL.flag_type"
FLAG_TYPES = (("query", "Data query"), ("sdv", "Source data verification"),
              ("lock", "Data lock"), ("deviation", "Protocol deviation"),
              ("allocation", "Disclosure of the allocated arm"))
FLAG_VALUES: dict[str, tuple[tuple[str, str], ...]] = {
    "query": (("open", "Open"), ("answered", "Answered by the site"),
              ("closed", "Closed"), ("reopened", "Reopened"),
              ("withdrawn", "Withdrawn (raised in error)")),
    "sdv": (("verified", "Verified against source"),
            ("not_verified", "Verification withdrawn")),
    "lock": (("locked", "Locked"), ("unlocked", "Unlocked")),
    "deviation": (("open", "Open"), ("acknowledged", "Acknowledged"),
                  ("resolved", "No longer shown by the data")),
    "allocation": (("included", "Arm included"), ("omitted", "Arm omitted (masked)")),
}


def flag_codelist(kind: str) -> str:
    """OID of the code list of ``FlagValue`` for annotations of ``kind``."""
    return f"CL.flag.{kind}"
