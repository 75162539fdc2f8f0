"""Protocol variants of the shipped RUMCESS file for the design simulation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialdesk.protocol import load_protocol

RUMCESS = Path(__file__).resolve().parents[2] / "protocols" / "rumcess.yaml"


def variant(tmp_path: Path, name: str, *replacements: tuple[str, str]):
    """RUMCESS with some lines replaced (each replacement must apply)."""
    text = RUMCESS.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return load_protocol(path)


@pytest.fixture
def rumcess():
    return load_protocol(RUMCESS)


@pytest.fixture
def balanced(tmp_path):
    """Unstratified blocks of 2: always exactly n per arm."""
    return variant(tmp_path, "balanced", ("  block_sizes: [2, 4]", "  block_sizes: [2]"),
                   ("  stratify_by: [neutropenia_cause]", "  stratify_by: []"))


@pytest.fixture
def interim(tmp_path):
    """RUMCESS with one interim look at half the patients, O'Brien-Fleming boundaries."""
    return variant(tmp_path, "interim",
                   ("interim_looks: []", "interim_looks: [{information_fraction: 0.5}]"),
                   ("alpha_spending: none", "alpha_spending: obrien_fleming"))


@pytest.fixture
def minimization(tmp_path):
    return variant(tmp_path, "minimization",
                   ("method: permuted_blocks", "method: minimization"),
                   ("  block_sizes: [2, 4]", "  minimization_probability: 0.8"))


@pytest.fixture
def complete(tmp_path):
    return variant(tmp_path, "complete", ("method: permuted_blocks", "method: complete"),
                   ("  block_sizes: [2, 4]\n", ""))
