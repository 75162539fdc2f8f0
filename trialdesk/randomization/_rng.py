"""Seeded generators and draws that reproduce on every Python version.

An allocation list may have to be regenerated from its seed for an audit years later,
on another Python. The standard library guarantees only that ``Random.random()`` gives
the same sequence for the same seed across versions (``shuffle``, ``choice`` and
``randrange`` have changed before), so every draw here is built on ``random()`` alone.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def seeded_rng(*parts: str) -> random.Random:
    """A generator seeded from sha256 of ``parts`` joined by ':' (independent streams)."""
    digest = hashlib.sha256(":".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest, "big"))


def fingerprint(seed: str) -> str:
    """sha256 of a seed: identifies it in published files without revealing it."""
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n); the bias is at most n / 2**53, far below detection."""
    return min(int(rng.random() * n), n - 1)


def shuffle(rng: random.Random, items: list[T]) -> None:
    """Fisher–Yates shuffle in place, on ``below`` (so on ``random()`` only)."""
    for i in range(len(items) - 1, 0, -1):
        j = below(rng, i + 1)
        items[i], items[j] = items[j], items[i]


def pick(draw: float, options: Sequence[T], weights: Sequence[float]) -> T:
    """The option whose cumulative-weight interval contains ``draw`` (0 <= draw < 1).

    Options with weight 0 are never picked; one uniform draw decides, so the decision
    can be recomputed from the draw when it is audited.
    """
    threshold = draw * sum(weights)
    cumulative = 0.0
    for option, weight in zip(options, weights, strict=True):
        cumulative += weight
        if weight > 0 and threshold < cumulative:
            return option
    for option, weight in zip(reversed(options), reversed(weights), strict=True):
        if weight > 0:  # rounding left the draw past the last boundary
            return option
    raise ValueError("no option has a positive weight")
