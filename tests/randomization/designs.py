"""Protocols for the randomization tests: the shipped two, and variants of their design.

Variants that change only ``randomization`` are made with ``redesign`` (the Randomization
model is validated; the protocol's cross-references are unchanged). Variants with other
stratification factors are made by editing protocols/rumcess.yaml's text, so the loader
validates them like any protocol file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trialdesk.protocol import DEFAULT_PROTOCOL, Protocol, load_protocol, parse_protocol
from trialdesk.protocol.schema import Randomization

THREEARM = Path(__file__).resolve().parents[1] / "protocols" / "threearm.yaml"


def rumcess() -> Protocol:
    return load_protocol(DEFAULT_PROTOCOL)


def threearm() -> Protocol:
    return load_protocol(THREEARM)


def redesign(protocol: Protocol, *, arms: tuple[str, ...] | None = None,
             **changes: Any) -> Protocol:
    """``protocol`` with ``randomization`` fields replaced (and only ``arms`` kept)."""
    data = {**protocol.randomization.model_dump(), **changes}
    update: dict[str, Any] = {"randomization": Randomization.model_validate(data)}
    if arms is not None:
        update["arms"] = tuple(a for a in protocol.arms if a.id in arms)
    return protocol.model_copy(update=update)


def two_arm_two_factors() -> Protocol:
    """The threearm protocol's factors (cause × sex) with two arms, 1:1, minimization."""
    return redesign(threearm(), arms=("usual_care", "high_dose"),
                    ratio={"usual_care": 1, "high_dose": 1}, minimization_probability=1.0)


_AGE_CHOICES = """    choices:
      - {id: young, label: "17-39"}
      - {id: middle, label: "40-59"}
      - {id: old, label: "60-75"}
"""


def rumcess_three_factors() -> Protocol:
    """RUMCESS stratified by cause (4 levels) × sex (2) × age group (3): 24 strata, the
    situation minimization is for (more strata than a 60-patient trial can fill)."""
    text = Path(DEFAULT_PROTOCOL).read_text(encoding="utf-8")
    old = "  stratify_by: [neutropenia_cause]\n"
    assert old in text
    text = text.replace(old, "  stratify_by: [neutropenia_cause, sex, age_group]\n")
    text = text.replace("stratification_factors:\n", "stratification_factors:\n"
                        "  - {id: sex, label: Sex, field: sex, levels: [{id: female, label: "
                        "Female}, {id: male, label: Male}]}\n"
                        "  - id: age_group\n    label: Age group\n    field: age_group\n"
                        + _AGE_CHOICES.replace("choices:", "levels:"), 1)
    text = text.replace("screening_fields:\n", "screening_fields:\n  - id: age_group\n"
                        "    label: Age group\n    type: choice\n" + _AGE_CHOICES, 1)
    return parse_protocol(text, name="rumcess-three-factors")
