"""The analysis dataset: every tidy table of one analysis, frozen under one content hash.

Build it from CSV files (:meth:`AnalysisDataset.from_csv_dir`, :meth:`from_csv`) or from
frames (:meth:`from_frames`: pandas DataFrames or lists of mappings with the columns of
:data:`trialdesk.analysis.tidy.TABLES` — what the web app builds from its database).
Only ``subjects`` is required; ``daily``, ``adverse_events``, ``deviations``,
``screening`` and ``disposition`` are optional and the report leaves out what they feed.

Checks across tables (each a :class:`~trialdesk.errors.DatasetError` naming the table,
row and column): every ``subject_id`` of another table is a subject; ``disposition`` has
one row per subject; the screening log's randomized rows are the subjects (same count,
and their ``subject_id`` when given); an excluded row gives its ``exclusion_reason``;
an adverse event's ``related`` agrees with its ``causality``.

``content_sha256`` is the SHA-256 of ``{"tables": {name: table hash}}`` (canonical JSON,
names sorted), each table hash being the SHA-256 of its canonical rows
(:func:`~trialdesk.analysis.tidy.canonical_sha256`; subjects:
:attr:`SubjectsDataset.content_sha256`). Every result and report cites it together with
the protocol id, version and file SHA-256 (:meth:`AnalysisDataset.citation`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from trialdesk.analysis.daily import DailyDataset
from trialdesk.analysis.dataset import SubjectsDataset
from trialdesk.analysis.tidy import (
    ADVERSE_EVENTS,
    CAUSALITY,
    DEVIATIONS,
    DISPOSITION,
    SCREENING,
    SUBJECTS,
    TABLES,
    TableSpec,
    canonical_sha256,
    csv_row_label,
    read_csv_frame,
    record_label,
    records_frame,
    validate_frame,
)
from trialdesk.errors import DatasetError
from trialdesk.protocol.schema import Protocol

RELATED_CAUSALITY = CAUSALITY[2:]  # possible, probable, definite
OPTIONAL_TABLES = ("daily", "adverse_events", "deviations", "screening", "disposition")


@dataclass(frozen=True, eq=False)
class AnalysisDataset:
    """The frozen input of the secondary analyses, the tables and the report."""

    subjects: SubjectsDataset
    #: typed subjects table (baseline columns as numbers/text) in the subjects' order
    baseline: pd.DataFrame
    daily: DailyDataset | None = None
    adverse_events: pd.DataFrame | None = None
    deviations: pd.DataFrame | None = None
    screening: pd.DataFrame | None = None
    disposition: pd.DataFrame | None = None
    table_sha256: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    content_sha256: str = ""
    protocol_id: str | None = None
    protocol_version: str | None = None
    protocol_sha256: str | None = None
    source: str = ""

    # -- constructors --------------------------------------------------------------
    @classmethod
    def from_frames(cls, subjects: Any, *, daily: Any = None, adverse_events: Any = None,
                    deviations: Any = None, screening: Any = None, disposition: Any = None,
                    protocol: Protocol | None = None, source: str = "records") -> AnalysisDataset:
        """From DataFrames or lists of mappings (one per table; None = table absent)."""
        frame = records_frame(subjects)
        subj = SubjectsDataset.from_records(frame.to_dict("records"), protocol,
                                            source=f"{source}: subjects")
        given = {"adverse_events": adverse_events, "deviations": deviations,
                 "screening": screening, "disposition": disposition}
        tables = {name: (records_frame(v), f"{source}: {name}",
                         record_label(f"{source}: {name}"))
                  for name, v in given.items() if v is not None}
        daily_ds = (DailyDataset.from_frame(daily, source=f"{source}: daily")
                    if daily is not None else None)
        return cls._build(subj, frame, record_label(f"{source}: subjects"), daily_ds, tables,
                          protocol, source)

    @classmethod
    def from_csv(cls, subjects: str | Path, *, daily: str | Path | None = None,
                 data_dir: str | Path | None = None,
                 protocol: Protocol | None = None) -> AnalysisDataset:
        """Subjects (and daily) files named explicitly; the other tables, when present,
        from ``data_dir`` (``adverse_events.csv``, ``deviations.csv``, ``screening.csv``,
        ``disposition.csv``; also ``daily.csv`` when ``daily`` is not given)."""
        subjects = Path(subjects)
        subj = SubjectsDataset.from_csv(subjects, protocol)
        frame = read_csv_frame(subjects)
        directory = Path(data_dir) if data_dir is not None else None
        if directory is not None and not directory.is_dir():
            raise DatasetError(f"{directory}: not a directory (expected the folder holding "
                               f"{', '.join(TABLES[t].file_name for t in OPTIONAL_TABLES)}).")
        if daily is None and directory is not None and (directory / "daily.csv").exists():
            daily = directory / "daily.csv"
        tables = {}
        for name in OPTIONAL_TABLES[1:]:
            if directory is not None and (directory / f"{name}.csv").exists():
                path = directory / f"{name}.csv"
                tables[name] = (read_csv_frame(path), str(path), csv_row_label(str(path)))
        daily_ds = DailyDataset.from_csv(daily) if daily is not None else None
        source = str(directory) if directory is not None else str(subjects.parent)
        return cls._build(subj, frame, csv_row_label(str(subjects)), daily_ds, tables,
                          protocol, source)

    @classmethod
    def from_csv_dir(cls, directory: str | Path,
                     protocol: Protocol | None = None) -> AnalysisDataset:
        """All tables from one folder: ``subjects.csv`` (required) and the optional ones."""
        directory = Path(directory)
        if not (directory / "subjects.csv").exists():
            raise DatasetError(f"{directory}: no subjects.csv (one row per randomized "
                               "subject: subject_id, arm, time, event).")
        return cls.from_csv(directory / "subjects.csv", data_dir=directory, protocol=protocol)

    @classmethod
    def _build(cls, subj: SubjectsDataset, subjects_frame: pd.DataFrame,
               subjects_where: Callable[[int], str], daily: DailyDataset | None,
               tables: dict[str, tuple[pd.DataFrame, str, Callable[[int], str]]],
               protocol: Protocol | None, source: str) -> AnalysisDataset:
        baseline = validate_frame(SUBJECTS, subjects_frame, subj.source, subjects_where)
        ids = set(subj.subject_ids)
        typed: dict[str, pd.DataFrame] = {}
        specs = {"adverse_events": ADVERSE_EVENTS, "deviations": DEVIATIONS,
                 "screening": SCREENING, "disposition": DISPOSITION}
        for name, (frame, src, where) in tables.items():
            spec = specs[name]
            t = validate_frame(spec, frame, src, where)
            if name != "screening":
                _known_subjects(t, ids, spec, where)
            typed[name] = t
        if daily is not None:
            _known_subjects(daily.frame, ids, TABLES["daily"], daily.row_label)
        if "disposition" in typed:
            _covers_every_subject(typed["disposition"], subj, tables["disposition"][1])
        if "screening" in typed:
            _screening_matches(typed["screening"], subj, *tables["screening"][1:])
        if "adverse_events" in typed:
            _related_agrees(typed["adverse_events"], tables["adverse_events"][2])
        hashes = {"subjects": subj.content_sha256}
        if daily is not None:
            hashes["daily"] = daily.content_sha256
        for name, t in typed.items():
            hashes[name] = canonical_sha256(name, t, specs[name].key)
        canonical = json.dumps({"tables": dict(sorted(hashes.items()))},
                               separators=(",", ":"))
        return cls(subjects=subj, baseline=baseline, daily=daily,
                   adverse_events=typed.get("adverse_events"),
                   deviations=typed.get("deviations"), screening=typed.get("screening"),
                   disposition=typed.get("disposition"),
                   table_sha256=MappingProxyType(dict(sorted(hashes.items()))),
                   content_sha256=hashlib.sha256(canonical.encode()).hexdigest(),
                   protocol_id=protocol.protocol_id if protocol else None,
                   protocol_version=protocol.protocol_version if protocol else None,
                   protocol_sha256=protocol.content_sha256 if protocol else None,
                   source=source)

    # -- views -----------------------------------------------------------------------
    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(self.table_sha256)

    def arm_of(self) -> dict[str, str]:
        return dict(zip(self.subjects.subject_ids, self.subjects.arms, strict=True))

    def citation(self) -> dict[str, Any]:
        """What every result cites: dataset hash and the protocol it was analysed under."""
        return {"dataset_sha256": self.content_sha256, "protocol_id": self.protocol_id,
                "protocol_version": self.protocol_version,
                "protocol_sha256": self.protocol_sha256}

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "subjects": self.subjects.to_dict(),
                "daily": self.daily.to_dict() if self.daily is not None else None,
                "tables": dict(self.table_sha256), **self.citation()}

    def __str__(self) -> str:
        return (f"analysis dataset from {self.source}: {self.subjects.n} subjects; tables "
                f"{', '.join(self.tables)}; sha256 {self.content_sha256}")


def _known_subjects(frame: pd.DataFrame, ids: set[str], spec: TableSpec,
                    where: Callable[[int], str]) -> None:
    unknown = ~frame["subject_id"].isin(ids).to_numpy()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise DatasetError(f"{where(i)}, column subject_id: '{frame['subject_id'].iloc[i]}' "
                           f"is not a subject of the subjects table ({spec.name} rows must "
                           "belong to randomized subjects).", field="subject_id")


def _covers_every_subject(frame: pd.DataFrame, subj: SubjectsDataset, source: str) -> None:
    missing = [s for s in subj.subject_ids if s not in set(frame["subject_id"])]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise DatasetError(f"{source}: no disposition row for {len(missing)} subject(s) "
                           f"({shown}); every randomized subject needs one.",
                           field="subject_id")


def _screening_matches(frame: pd.DataFrame, subj: SubjectsDataset, source: str,
                       where: Callable[[int], str]) -> None:
    excluded = (frame["status"] == "excluded").to_numpy()
    no_reason = excluded & frame.get("exclusion_reason", pd.Series(
        [None] * len(frame))).isna().to_numpy()
    if no_reason.any():
        i = int(np.flatnonzero(no_reason)[0])
        raise DatasetError(f"{where(i)}, column exclusion_reason: empty; an excluded patient "
                           "needs the reason (CONSORT lists them).", field="exclusion_reason")
    randomized = frame[frame["status"] == "randomized"]
    if len(randomized) != subj.n:
        raise DatasetError(f"{source}: {len(randomized)} row(s) with status randomized but "
                           f"{subj.n} subjects; the screening log and the subjects table "
                           "must describe the same patients.", field="status")
    if "subject_id" in frame:
        ids = set(subj.subject_ids)
        linked = randomized["subject_id"]
        bad = linked.notna() & ~linked.isin(ids)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            row = int(randomized.index[i])
            raise DatasetError(f"{where(row)}, column subject_id: "
                               f"'{linked.iloc[i]}' is not a subject of the subjects table.",
                               field="subject_id")


def _related_agrees(frame: pd.DataFrame, where: Callable[[int], str]) -> None:
    expected = frame["causality"].isin(RELATED_CAUSALITY).to_numpy().astype(float)
    wrong = frame["related"].to_numpy() != expected
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise DatasetError(f"{where(i)}, column related: {int(frame['related'].iloc[i])} "
                           f"disagrees with causality '{frame['causality'].iloc[i]}' (related "
                           f"= 1 exactly for {', '.join(RELATED_CAUSALITY)}).", field="related")
