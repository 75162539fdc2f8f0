"""The tidy tables of an analysis dataset, defined in one place: names, units, types, checks.

An analysis runs on six tables, one row per observation. The CSV files (``DIR/NAME.csv``)
and the frames built from the web database use exactly these column names; every
clinical number carries its unit in its name. :data:`TABLES` is the single definition;
:func:`validate_frame` applies it and raises :class:`~trialdesk.errors.DatasetError`
naming the file, the row (CSV: the line, header = line 1; frames: the 1-based record)
and the column.

Tables and keys (the key is unique per table):

* ``subjects`` (``subject_id``): see :mod:`trialdesk.analysis.dataset`; the optional
  baseline columns below are checked here (Table 1).
* ``daily`` (``subject_id, day``): day 0 = day of randomization; SOFA (Vincent 1996)
  components 0–4 and total 0–24 (when the total and all six components are given the
  total must be their sum), labs, organ support flags.
* ``adverse_events`` (``subject_id, ae_id``; ``ae_id`` optional): one row per event;
  ``related`` must agree with ``causality`` (1 for possible, probable, definite).
* ``deviations`` (``subject_id, deviation_id``; the id optional): one row per deviation.
* ``screening`` (``screening_id``): the screening log, every patient assessed.
* ``disposition`` (``subject_id``): one row per randomized subject, CONSORT flags.

Types: ``text`` (stripped, empty = missing), ``int``, ``float``, ``flag`` (0/1; also
``true``/``false``, ``yes``/``no``). Numbers are stored as float64 (NaN = missing), text
as Python ``str`` or ``None``. Unknown columns are refused (a typo such as ``il6``
without its unit must not be silently ignored), except in ``subjects`` (covariates).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialdesk.errors import DatasetError

Kind = Literal["text", "int", "float", "flag"]


@dataclass(frozen=True)
class Column:
    """One column of a tidy table: its type, unit, whether it is required, its range."""

    name: str
    kind: Kind
    description: str
    required: bool = False
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    #: keep columns not listed here (as text)? Only the subjects table does.
    extra_allowed: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


SOFA_COMPONENTS = ("sofa_respiration", "sofa_coagulation", "sofa_liver",
                   "sofa_cardiovascular", "sofa_cns", "sofa_renal")
CYTOKINES = ("il6_pg_per_ml", "il10_pg_per_ml", "crp_mg_per_l", "procalcitonin_ng_per_ml")
SEVERITY_GRADES = (1, 2, 3, 4, 5)
CAUSALITY = ("unrelated", "unlikely", "possible", "probable", "definite")
SCREENING_STATUS = ("randomized", "excluded")

_ID = Column("subject_id", "text", "the randomized subject's id (as in subjects)", True)

SUBJECTS = TableSpec(
    "subjects", "one row per randomized subject (the primary analysis input)",
    ("subject_id",),
    (_ID,
     Column("arm", "text", "allocated arm id", True),
     Column("time", "float", "days from randomization to death or censoring", True, "days",
            0),
     Column("event", "flag", "1 = died at time, 0 = censored at time", True),
     Column("stratum", "text", "stratum label (stratified log-rank and Cox)"),
     Column("age_years", "float", "age at randomization", unit="years", low=0, high=120),
     Column("sex", "text", "sex", allowed=("female", "male")),
     Column("apache_ii", "float", "APACHE II score at randomization", low=0, high=71),
     Column("neutropenia_cause", "text", "cause of neutropenia (e.g. chemotherapy, AML)")),
    extra_allowed=True)

DAILY = TableSpec(
    "daily", "one row per subject and study day (day 0 = day of randomization)",
    ("subject_id", "day"),
    (_ID,
     Column("day", "int", "study day, 0 = day of randomization", True, "days", 0, 365),
     Column("sofa_total", "int", "SOFA total (Vincent 1996), worst values of the day",
            unit="points", low=0, high=24),
     *(Column(c, "int", f"SOFA {c.removeprefix('sofa_')} component", unit="points", low=0,
              high=4) for c in SOFA_COMPONENTS),
     Column("il6_pg_per_ml", "float", "interleukin-6", unit="pg/mL", low=0),
     Column("il10_pg_per_ml", "float", "interleukin-10", unit="pg/mL", low=0),
     Column("crp_mg_per_l", "float", "C-reactive protein", unit="mg/L", low=0),
     Column("procalcitonin_ng_per_ml", "float", "procalcitonin", unit="ng/mL", low=0),
     Column("lactate_mmol_per_l", "float", "lactate", unit="mmol/L", low=0, high=50),
     Column("on_vasopressor", "flag", "any vasopressor given during the day (1/0)"),
     Column("on_invasive_ventilation", "flag",
            "invasive mechanical ventilation during the day (1/0)")))

ADVERSE_EVENTS = TableSpec(
    "adverse_events", "one row per adverse event", ("subject_id", "ae_id"),
    (_ID,
     Column("ae_id", "text", "event id, unique within the subject (optional)"),
     Column("term", "text", "adverse event term (e.g. MedDRA preferred term)", True),
     Column("serious", "flag", "serious adverse event (ICH E2A) 1/0", True),
     Column("severity_grade", "int", "CTCAE grade 1–5", True, low=1, high=5),
     Column("causality", "text", "relationship to the intervention", True,
            allowed=CAUSALITY),
     Column("related", "flag", "1 = related (causality possible, probable or definite)",
            True)))

DEVIATIONS = TableSpec(
    "deviations", "one row per protocol deviation", ("subject_id", "deviation_id"),
    (_ID,
     Column("deviation_id", "text", "deviation id, unique within the subject (optional)"),
     Column("code", "text", "deviation category code (e.g. WINDOW_MISSED)", True),
     Column("description", "text", "free text")))

SCREENING = TableSpec(
    "screening", "the screening log: one row per patient assessed for eligibility",
    ("screening_id",),
    (Column("screening_id", "text", "screening log id", True),
     Column("status", "text", "randomized or excluded", True, allowed=SCREENING_STATUS),
     Column("exclusion_reason", "text", "why not randomized (required when excluded)"),
     Column("subject_id", "text", "the subject id given at randomization (randomized "
                                  "rows)")))

DISPOSITION = TableSpec(
    "disposition", "one row per randomized subject: what happened after allocation",
    ("subject_id",),
    (_ID,
     Column("received_allocated_intervention", "flag", "received the allocated "
                                                       "intervention 1/0", True),
     Column("not_received_reason", "text", "why the allocated intervention was not given"),
     Column("lost_to_follow_up", "flag", "vital status at the time frame unknown 1/0", True),
     Column("discontinued", "flag", "discontinued the intervention or follow-up 1/0", True),
     Column("discontinued_reason", "text", "why discontinued"),
     Column("analysed", "flag", "included in the primary analysis 1/0", True),
     Column("excluded_from_analysis_reason", "text", "why not analysed")))

TABLES: dict[str, TableSpec] = {t.name: t for t in (SUBJECTS, DAILY, ADVERSE_EVENTS,
                                                     DEVIATIONS, SCREENING, DISPOSITION)}

_TRUE = {"1", "1.0", "true", "yes", "y"}
_FALSE = {"0", "0.0", "false", "no", "n"}


def records_frame(records: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A DataFrame from a DataFrame (copied) or from mappings (database rows)."""
    if isinstance(records, pd.DataFrame):
        return records.copy()
    return pd.DataFrame.from_records(list(records))


def read_csv_frame(path: Path) -> pd.DataFrame:
    """A CSV file as text columns (validation converts them), empty cells as None."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            skip_blank_lines=True)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file.") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc.strerror}).") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text.") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: the file is empty; expected a header row.") from None
    except pd.errors.ParserError as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc}).") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def csv_row_label(source: str) -> Callable[[int], str]:
    return lambda i: f"{source}, line {i + 2}"


def record_label(source: str) -> Callable[[int], str]:
    return lambda i: f"{source}, record {i + 1}"


def validate_frame(spec: TableSpec, frame: pd.DataFrame, source: str,
                   where: Callable[[int], str] | None = None) -> pd.DataFrame:
    """Check ``frame`` against ``spec``; return it with typed columns (numbers float64,
    text ``str``/None), in the spec's column order (extra columns of ``subjects`` after).
    ``where(i)`` names row ``i`` (0-based) in messages."""
    where = where or record_label(source)
    columns = [str(c) for c in frame.columns]
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise DatasetError(f"{source}: column(s) {', '.join(dupes)} appear twice.",
                           field=dupes[0])
    missing = [c.name for c in spec.columns if c.required and c.name not in columns]
    if missing:
        required = ", ".join(c.name for c in spec.columns if c.required)
        raise DatasetError(f"{source}: missing column(s) {', '.join(missing)}; the "
                           f"{spec.name} table requires {required}.", field=missing[0])
    unknown = [c for c in columns if c not in spec.column_names]
    if unknown and not spec.extra_allowed:
        raise DatasetError(f"{source}: unknown column(s) {', '.join(unknown)} in the "
                           f"{spec.name} table; known columns: "
                           f"{', '.join(spec.column_names)} (units are part of the names).",
                           field=unknown[0])
    frame = frame.reset_index(drop=True)
    out: dict[str, Any] = {}
    for col in spec.columns:
        if col.name not in columns:
            continue
        out[col.name] = _convert(col, frame[col.name], spec, source, where)
    for name in unknown:
        out[name] = pd.Series([_text_value(v) for v in frame[name]], dtype=object)
    typed = pd.DataFrame(out, index=frame.index)
    _check_key(spec, typed, where)
    return typed


def _text_value(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _convert(col: Column, series: pd.Series, spec: TableSpec, source: str,
             where: Callable[[int], str]) -> pd.Series:
    if col.kind == "text":
        values = pd.Series([_text_value(v) for v in series], dtype=object)
        empty = values.isna().to_numpy()
        if col.allowed is not None:
            bad = ~empty & ~values.isin(col.allowed).to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DatasetError(f"{where(i)}, column {col.name}: '{values[i]}' is not one "
                                   f"of {', '.join(col.allowed)}.", field=col.name)
    else:
        if col.kind == "flag":
            values = pd.Series([_flag(v) for v in series], dtype=float)
            raw_empty = pd.Series([_text_value(v) is None for v in series])
            bad = values.isna().to_numpy() & ~raw_empty.to_numpy()
            what = "0 or 1"
        else:
            if series.dtype == object:
                texts = pd.Series([_text_value(v) for v in series], dtype=object)
                values = pd.to_numeric(texts, errors="coerce").astype(float)
                raw_empty = texts.isna()
            else:
                values = pd.to_numeric(series, errors="coerce").astype(float)
                raw_empty = series.isna()
            bad = (values.isna().to_numpy() & ~raw_empty.to_numpy()) | np.isinf(values)
            what = "a whole number" if col.kind == "int" else "a number"
            if col.kind == "int":
                bad |= values.notna().to_numpy() & (values.to_numpy() % 1 != 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{where(i)}, column {col.name}: '{series.iloc[i]}' is not "
                               f"{what}{_unit(col)}.", field=col.name)
        v = values.to_numpy()
        for limit, fails, word in ((col.low, v < (col.low if col.low is not None else 0),
                                    "below"),
                                   (col.high, v > (col.high if col.high is not None else 0),
                                    "above")):
            if limit is not None and np.any(fails):
                i = int(np.flatnonzero(fails)[0])
                raise DatasetError(f"{where(i)}, column {col.name}: {v[i]:g} is {word} the "
                                   f"possible range {_range(col)}{_unit(col)}.",
                                   field=col.name)
        empty = values.isna().to_numpy()
    if col.required and empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise DatasetError(f"{where(i)}, column {col.name}: empty; every row of the "
                           f"{spec.name} table needs a {col.name}.", field=col.name)
    return values


def _flag(value: Any) -> float:
    if isinstance(value, bool | np.bool_):
        return float(value)
    text = _text_value(value)
    if text is None:
        return math.nan
    low = text.lower()
    return 1.0 if low in _TRUE else 0.0 if low in _FALSE else math.nan


def _unit(col: Column) -> str:
    return f" ({col.unit})" if col.unit and col.unit != "days" else ""


def _range(col: Column) -> str:
    low = "" if col.low is None else f"{col.low:g}"
    high = "…" if col.high is None else f"{col.high:g}"
    return f"{low}–{high}"


def _check_key(spec: TableSpec, typed: pd.DataFrame, where: Callable[[int], str]) -> None:
    key = list(spec.key)
    if any(k not in typed.columns for k in key):
        return  # an optional id column (ae_id, deviation_id) is absent: no key to check
    dup = typed.duplicated(subset=key, keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        values = ", ".join(f"{k} {_show(typed[k].iloc[i])}" for k in key)
        first = int(np.flatnonzero((typed[key] == typed[key].iloc[i]).all(axis=1))[0])
        raise DatasetError(f"{where(i)}, column {key[-1]}: duplicate row for {values} "
                           f"(first at {where(first)}).", field=key[-1])


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def canonical_sha256(spec_name: str, frame: pd.DataFrame, key: Iterable[str]) -> str:
    """SHA-256 of a table's canonical JSON: columns sorted by name, rows sorted by the key,
    numbers as floats (NaN → null), text as strings. Independent of row and column order
    and of how a number was written (``28`` = ``28.0``)."""
    columns = sorted(frame.columns)
    by = [k for k in key if k in frame.columns]
    by += [c for c in columns if c not in by]
    ordered = frame.sort_values(by, kind="mergesort", na_position="first") if len(frame) \
        else frame
    rows = []
    data = {c: ordered[c].tolist() for c in columns}
    for i in range(len(ordered)):
        rows.append([_canonical(data[c][i]) for c in columns])
    text = json.dumps({"table": spec_name, "columns": columns, "rows": rows},
                      ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, int | np.integer):
        return float(value)
    return str(value)


def describe_tables() -> str:
    """The table definitions as Markdown (for docs/formats.md and the lead's builder)."""
    lines = []
    for spec in TABLES.values():
        lines += [f"### `{spec.file_name}` — {spec.description}", "",
                  f"Key: `{', '.join(spec.key)}`.", "",
                  "| Column | Type | Unit | Required | Range / values | Meaning |",
                  "|---|---|---|---|---|---|"]
        for c in spec.columns:
            values = ", ".join(c.allowed) if c.allowed else (
                _range(c) if c.low is not None or c.high is not None else "")
            lines.append(f"| `{c.name}` | {c.kind} | {c.unit or ''} | "
                         f"{'yes' if c.required else 'no'} | {values} | {c.description} |")
        lines.append("")
    return "\n".join(lines)
