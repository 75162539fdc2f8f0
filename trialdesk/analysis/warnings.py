"""Statistical caveats: warnings that travel with a result instead of being lost.

Every analysis function collects its caveats (a subject counted as missing, a
small expected count, an estimate that does not exist) as
:class:`StatisticalWarning` objects in its result's ``warnings`` tuple, so a
report or a JSON file shows them next to the numbers they qualify. Each one is
also issued once through :mod:`warnings` when it is created (``warnings.warn``),
so interactive users see it; nothing here filters or silences warnings.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any


class StatisticalWarning(UserWarning):
    """A caveat about a statistical result, with a stable ``code``."""

    def __init__(self, message: str, *, code: str = "STATISTICAL_CAVEAT"):
        super().__init__(message)
        self.message = message
        self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"StatisticalWarning({self.code}: {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, StatisticalWarning) and other.code == self.code
                and other.message == self.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))


class Caveats:
    """Collector used while computing a result; ``tuple(caveats)`` goes into the result."""

    def __init__(self) -> None:
        self._items: list[StatisticalWarning] = []

    def add(self, code: str, message: str) -> StatisticalWarning:
        item = StatisticalWarning(message, code=code)
        self._items.append(item)
        warnings.warn(item, stacklevel=3)
        return item

    def extend(self, items: tuple[StatisticalWarning, ...]) -> None:
        """Take over caveats already issued by a sub-analysis (not issued again)."""
        for item in items:
            if item not in self._items:
                self._items.append(item)

    def __iter__(self) -> Iterator[StatisticalWarning]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def freeze(self) -> tuple[StatisticalWarning, ...]:
        return tuple(self._items)
