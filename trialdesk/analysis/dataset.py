"""The subjects dataset: one row per randomized subject, the input of every analysis.

CSV columns (UTF-8, a header row, comma separated):

==============  ========  ==========================================================
column          required  meaning
==============  ========  ==========================================================
``subject_id``  yes       unique, non-empty
``arm``         yes       the arm id (one of the protocol's arms when a protocol is
                          given)
``time``        yes       days from randomization to death (``event`` 1) or to the
                          last time the subject was known alive (``event`` 0,
                          censored); a number ≥ 0, fractions allowed
``event``       yes       ``1`` = died at ``time``, ``0`` = censored at ``time``
``stratum``     no        stratum label (stratified log-rank test and Cox model)
anything else   no        covariates, kept as text
==============  ========  ==========================================================

Every problem is a :class:`~trialdesk.errors.DatasetError` naming the line of the
file (the header is line 1) or the record (1-based) and the column.

The **reference arm** (the control of every comparison) is the first arm of the
protocol when one is given, else the arm of the first row. ``content_sha256`` is
the SHA-256 of the canonical data (JSON of the rows sorted by ``subject_id``, times
as floats, columns sorted by name): it does not change when rows or columns are
reordered or ``28`` is written ``28.0``, and it changes with any value.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from trialdesk.errors import DatasetError
from trialdesk.protocol.schema import Protocol

REQUIRED_COLUMNS = ("subject_id", "arm", "time", "event")
STRATUM = "stratum"


@dataclass(frozen=True, eq=False)
class SubjectsDataset:
    """Validated subjects; build it with :meth:`from_csv` or :meth:`from_records`."""

    subject_ids: tuple[str, ...]
    arms: tuple[str, ...]
    times: tuple[float, ...]
    events: tuple[int, ...]
    #: arms in analysis order: the reference arm first
    arm_order: tuple[str, ...]
    strata: tuple[str, ...] | None = None
    covariates: Mapping[str, tuple[str | None, ...]] = field(
        default_factory=lambda: MappingProxyType({}))
    source: str = ""
    protocol_id: str | None = None

    # -- constructors ------------------------------------------------------------
    @classmethod
    def from_csv(cls, path: str | Path, protocol: Protocol | None = None) -> SubjectsDataset:
        """Read and validate a subjects CSV file."""
        path = Path(path)
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                if header is None:
                    raise DatasetError(f"{path}: the file is empty; expected a header row "
                                       f"with {', '.join(REQUIRED_COLUMNS)}.")
                columns = [h.strip() for h in header]
                rows: list[tuple[str, dict[str, Any]]] = []
                for values in reader:
                    if not any(v.strip() for v in values):
                        continue
                    where = f"{path}, line {reader.line_num}"
                    if len(values) != len(columns):
                        raise DatasetError(f"{where}: {len(values)} values for "
                                           f"{len(columns)} columns.")
                    rows.append((where, dict(zip(columns, values, strict=True))))
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read the file ({exc.strerror}).") from None
        except UnicodeDecodeError:
            raise DatasetError(f"{path}: not UTF-8 text.") from None
        except csv.Error as exc:
            raise DatasetError(f"{path}: not a readable CSV file ({exc}).") from None
        return cls._build(columns, rows, protocol, source=str(path))

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]],
                     protocol: Protocol | None = None, *,
                     source: str = "records") -> SubjectsDataset:
        """Build from mappings with the CSV's keys (the web app's database rows)."""
        records = list(records)
        columns: list[str] = []
        for record in records:
            columns += [key for key in record if key not in columns]
        rows = [(f"{source}, record {i}", dict(record)) for i, record in enumerate(records, 1)]
        return cls._build(columns, rows, protocol, source=source)

    @classmethod
    def _build(cls, columns: list[str], rows: list[tuple[str, dict[str, Any]]],
               protocol: Protocol | None, source: str) -> SubjectsDataset:
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise DatasetError(f"{source}: column(s) {', '.join(dupes)} appear twice.",
                               field=dupes[0])
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise DatasetError(f"{source}: missing column(s) {', '.join(missing)}; required "
                               f"columns are {', '.join(REQUIRED_COLUMNS)}.", field=missing[0])
        if not rows:
            raise DatasetError(f"{source}: no subjects (no data rows).")
        has_stratum = STRATUM in columns
        extra = [c for c in columns if c not in REQUIRED_COLUMNS and c != STRATUM]
        allowed = protocol.arm_ids if protocol is not None else None
        ids: list[str] = []
        arms: list[str] = []
        times: list[float] = []
        events: list[int] = []
        strata: list[str] = []
        seen: dict[str, str] = {}
        for where, row in rows:
            subject = _text(row.get("subject_id"), where, "subject_id")
            if subject in seen:
                raise DatasetError(f"{where}, column subject_id: duplicate subject id "
                                   f"'{subject}' (first at {seen[subject]}).",
                                   field="subject_id")
            seen[subject] = where
            arm = _text(row.get("arm"), where, "arm")
            if allowed is not None and arm not in allowed:
                raise DatasetError(f"{where}, column arm: '{arm}' is not an arm of protocol "
                                   f"{protocol.protocol_id if protocol else ''} (arms: "
                                   f"{', '.join(allowed)}).", field="arm")
            ids.append(subject)
            arms.append(arm)
            times.append(_time(row.get("time"), where))
            events.append(_event(row.get("event"), where))
            if has_stratum:
                strata.append(_text(row.get(STRATUM), where, STRATUM))
        covariates = {c: tuple(_optional_text(row.get(c)) for _, row in rows) for c in extra}
        order = allowed if allowed is not None else tuple(dict.fromkeys(arms))
        return cls(subject_ids=tuple(ids), arms=tuple(arms), times=tuple(times),
                   events=tuple(events), arm_order=tuple(order),
                   strata=tuple(strata) if has_stratum else None,
                   covariates=MappingProxyType(covariates), source=source,
                   protocol_id=protocol.protocol_id if protocol is not None else None)

    def for_protocol(self, protocol: Protocol) -> SubjectsDataset:
        """The same subjects analysed under ``protocol``: its arms, its reference arm."""
        if self.protocol_id == protocol.protocol_id and self.arm_order == protocol.arm_ids:
            return self
        unknown = sorted(set(self.arms) - set(protocol.arm_ids))
        if unknown:
            raise DatasetError(f"{self.source}: arm(s) {', '.join(unknown)} are not arms of "
                               f"protocol {protocol.protocol_id} (arms: "
                               f"{', '.join(protocol.arm_ids)}).", field="arm")
        return replace(self, arm_order=protocol.arm_ids, protocol_id=protocol.protocol_id)

    # -- views ---------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.subject_ids)

    @property
    def reference_arm(self) -> str:
        return self.arm_order[0]

    @property
    def arms_present(self) -> tuple[str, ...]:
        """Arms with at least one subject, in analysis order (reference first)."""
        present = set(self.arms)
        return tuple(a for a in self.arm_order if a in present)

    @property
    def time(self) -> np.ndarray:
        return np.asarray(self.times, dtype=float)

    @property
    def event(self) -> np.ndarray:
        return np.asarray(self.events, dtype=int)

    @property
    def arm(self) -> np.ndarray:
        return np.asarray(self.arms, dtype=object)

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as mappings (the inverse of :meth:`from_records`)."""
        rows = []
        for i in range(self.n):
            row: dict[str, Any] = {"subject_id": self.subject_ids[i], "arm": self.arms[i],
                                   "time": self.times[i], "event": self.events[i]}
            if self.strata is not None:
                row[STRATUM] = self.strata[i]
            row.update({name: column[i] for name, column in self.covariates.items()})
            rows.append(row)
        return rows

    def arm_counts(self) -> dict[str, int]:
        return {a: self.arms.count(a) for a in self.arm_order}

    @property
    def content_sha256(self) -> str:
        columns = sorted(["subject_id", "arm", "time", "event",
                          *([STRATUM] if self.strata is not None else []), *self.covariates])
        rows = []
        for i in sorted(range(self.n), key=lambda k: self.subject_ids[k]):
            values: dict[str, Any] = {"subject_id": self.subject_ids[i], "arm": self.arms[i],
                                      "time": float(self.times[i]), "event": self.events[i]}
            if self.strata is not None:
                values[STRATUM] = self.strata[i]
            for name, column in self.covariates.items():
                values[name] = column[i]
            rows.append([values[c] for c in columns])
        canonical = json.dumps({"columns": columns, "rows": rows}, ensure_ascii=False,
                               separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Summary (not the rows): source, counts per arm, reference arm, hash."""
        return {"source": self.source, "protocol_id": self.protocol_id, "n": self.n,
                "events": int(sum(self.events)), "arms": self.arm_counts(),
                "reference_arm": self.reference_arm, "stratified": self.strata is not None,
                "covariates": list(self.covariates), "content_sha256": self.content_sha256}

    def __str__(self) -> str:
        arms = ", ".join(f"{a}{' (reference)' if a == self.reference_arm else ''} {k}"
                         for a, k in self.arm_counts().items())
        return (f"{self.n} subjects from {self.source} ({sum(self.events)} deaths); arms: "
                f"{arms}; sha256 {self.content_sha256}")


# --- value parsing ------------------------------------------------------------------


def _optional_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _text(value: Any, where: str, column: str) -> str:
    text = _optional_text(value)
    if text is None:
        raise DatasetError(f"{where}, column {column}: empty; every subject needs a "
                           f"{column}.", field=column)
    return text


def _time(value: Any, where: str) -> float:
    raw = _text(value, where, "time")
    try:
        time = float(value) if isinstance(value, int | float) else float(raw)
    except ValueError:
        raise DatasetError(f"{where}, column time: '{raw}' is not a number of days.",
                           field="time") from None
    if isinstance(value, bool) or not math.isfinite(time):
        raise DatasetError(f"{where}, column time: '{raw}' is not a finite number of days.",
                           field="time")
    if time < 0:
        raise DatasetError(f"{where}, column time: {raw} is negative; time is days from "
                           "randomization to death or censoring (≥ 0).", field="time")
    return time


def _event(value: Any, where: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    raw = _optional_text(value)
    if raw in ("0", "1"):
        return int(raw)
    raise DatasetError(f"{where}, column event: '{raw if raw is not None else ''}' is not "
                       "0 or 1 (1 = died at time, 0 = censored at time).", field="event")
