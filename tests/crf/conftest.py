from __future__ import annotations

import pytest

from trialdesk.protocol import load_protocol


@pytest.fixture(scope="module")
def rumcess():
    """The shipped RUMCESS protocol (protocols/rumcess.yaml)."""
    return load_protocol()
