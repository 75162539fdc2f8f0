from __future__ import annotations

import pytest

from tests.randomization import designs


@pytest.fixture(scope="session")
def rumcess():
    return designs.rumcess()


@pytest.fixture(scope="session")
def threearm():
    return designs.threearm()
