"""MIMIC-IV-layout ICU extracts (CSV, CSV.gz or Parquet) → the normalized event stream.

A folder in MIMIC-IV layout holds ``hosp/patients``, ``icu/icustays``,
``icu/chartevents``, ``hosp/labevents`` and ``icu/inputevents`` (each as ``.parquet``,
``.csv.gz`` or ``.csv``; the demo's ``chartevents_subset_from_meds`` stands in for
``chartevents``). Files are read by DuckDB, out of core. The item mapping:

==========  =====================================  ============================
kind        itemids (table)                        unit as charted
==========  =====================================  ============================
map         220052 arterial, 220181 non-invasive,  mmHg
            225312 ART BP mean (chartevents)
sbp         220050 arterial, 220179 non-invasive   mmHg
            (chartevents)
gcs         220739 + 223900 + 223901 eye, verbal,  points (total only when all
            motor (chartevents, same charttime)    three are charted together)
fio2        223835 (chartevents)                   % (no unit in the data)
pao2        220224 (chartevents), 50821 (labs)     mmHg
lactate     50813 (labevents)                      mmol/L
anc         52075 absolute neutrophil count        K/µL = 10^9/L
wbc         51301, 51300 (labevents)               K/µL
neutro. %   51256 (labevents)                      %
vasopressor 221906 norepinephrine, 221289          mcg/kg/min; vasopressin
            epinephrine, 221662 dopamine, 221749   units/hour
            phenylephrine, 222315 vasopressin,
            221653 dobutamine (inputevents.rate)
==========  =====================================  ============================

Every other itemid of chartevents and labevents is counted in ``unknown_codes``;
rows without a number, with a unit other than the one above, or outside the plausible
range are counted as well (never used). ``inputevents`` rows with status ``Rewritten``
(an entry later corrected) are not used. MIMIC-IV times are de-identified local times
shifted into the future with no offset; they are read as UTC (only differences
matter). Labs are available at ``storetime``, infusions at ``storetime`` when given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from trialdesk.errors import IngestError
from trialdesk.interop.events import EventKind, IngestReport, PatientInfo, make_event
from trialdesk.interop.fhir import IngestResult

CHART_ITEMS: dict[int, EventKind] = {
    220052: EventKind.MAP, 220181: EventKind.MAP, 225312: EventKind.MAP,
    220050: EventKind.SBP, 220179: EventKind.SBP,
    223835: EventKind.FIO2, 220224: EventKind.PAO2,
}
GCS_ITEMS: tuple[int, int, int] = (220739, 223900, 223901)
LAB_ITEMS: dict[int, EventKind] = {
    50813: EventKind.LACTATE, 52075: EventKind.ANC, 51301: EventKind.WBC,
    51300: EventKind.WBC, 51256: EventKind.NEUTROPHIL_PCT, 50821: EventKind.PAO2,
}
INPUT_ITEMS: dict[int, str] = {
    221906: "norepinephrine", 221289: "epinephrine", 221662: "dopamine",
    221749: "phenylephrine", 222315: "vasopressin", 221653: "dobutamine",
}
#: units assumed when the extract leaves the unit empty (FiO2 223835 is charted in %)
DEFAULT_UNITS: dict[EventKind, str] = {EventKind.FIO2: "%", EventKind.GCS: "points"}

TABLES: dict[str, tuple[str, ...]] = {
    "patients": ("hosp/patients", "patients"),
    "icustays": ("icu/icustays", "icustays"),
    "chartevents": ("icu/chartevents", "chartevents", "icu/chartevents_subset_from_meds"),
    "labevents": ("hosp/labevents", "labevents"),
    "inputevents": ("icu/inputevents", "inputevents"),
}
_SUFFIXES = (".parquet", ".csv.gz", ".csv")


@dataclass(frozen=True)
class MimicSource:
    """Where each MIMIC-IV table of a folder is, and how DuckDB reads it."""

    folder: Path
    paths: dict[str, Path]

    @classmethod
    def find(cls, folder: str | Path) -> MimicSource:
        """Locate the tables; a missing required table raises :class:`IngestError`."""
        root = Path(folder)
        if not root.is_dir():
            raise IngestError(f"{root} is not a folder; give a folder in MIMIC-IV layout "
                              "(hosp/, icu/) such as ../shared/data/mimic_iv_demo_2.2.",
                              field="path")
        paths: dict[str, Path] = {}
        for table, stems in TABLES.items():
            for stem in stems:
                found = [root / f"{stem}{suffix}" for suffix in _SUFFIXES
                         if (root / f"{stem}{suffix}").is_file()]
                if not found and (root / stem).is_dir():  # a folder of Parquet parts
                    found = [root / stem]
                if found:
                    paths[table] = found[0]
                    break
        missing = [t for t in TABLES if t not in paths]
        if missing:
            raise IngestError(
                f"{root}: no {', '.join(missing)} table found; expected e.g. "
                f"{TABLES[missing[0]][0]}.csv.gz or .parquet in MIMIC-IV layout.",
                field="path")
        return cls(root, paths)

    def relation(self, table: str) -> str:
        """A DuckDB table expression reading ``table`` (CSV with a fixed sample-free schema)."""
        path = self.paths[table]
        if path.is_dir():
            return f"read_parquet('{_quote(str(path))}/**/*.parquet')"
        if path.name.endswith(".parquet"):
            return f"read_parquet('{_quote(str(path))}')"
        return f"read_csv('{_quote(str(path))}', header=true, sample_size=-1)"


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _in(items: object) -> str:
    return ", ".join(str(i) for i in items)  # type: ignore[attr-defined]


def raw_events_sql(src: MimicSource) -> str:
    """One SQL relation of the mapped rows, not yet range-checked.

    Columns: patient_id, t, kind, value, unit, source, recorded, drug, end_at, status.
    Shared by the Python reader and the DuckDB feasibility query, so both see the
    same rows.
    """
    chart_kind = " ".join(f"WHEN {i} THEN '{k.value}'" for i, k in CHART_ITEMS.items())
    lab_kind = " ".join(f"WHEN {i} THEN '{k.value}'" for i, k in LAB_ITEMS.items())
    drug = " ".join(f"WHEN {i} THEN '{d}'" for i, d in INPUT_ITEMS.items())
    eye, verbal, motor = GCS_ITEMS
    return f"""
    SELECT subject_id AS patient_id, CAST(charttime AS TIMESTAMP) AS t,
           CASE itemid {chart_kind} END AS kind, CAST(valuenum AS DOUBLE) AS value,
           CAST(valueuom AS VARCHAR) AS unit,
           'chartevents/' || subject_id || '/' || strftime(CAST(charttime AS TIMESTAMP),
               '%Y-%m-%dT%H:%M:%S') || '/' || itemid AS source,
           CAST(NULL AS TIMESTAMP) AS recorded, CAST(NULL AS VARCHAR) AS drug,
           CAST(NULL AS TIMESTAMP) AS end_at, CAST(NULL AS VARCHAR) AS status
    FROM {src.relation('chartevents')} WHERE itemid IN ({_in(CHART_ITEMS)})
    UNION ALL
    SELECT subject_id, CAST(charttime AS TIMESTAMP), 'gcs', sum(valuenum), 'points',
           'chartevents/' || subject_id || '/' || strftime(CAST(charttime AS TIMESTAMP),
               '%Y-%m-%dT%H:%M:%S') || '/gcs',
           NULL, NULL, NULL,
           CASE WHEN count(DISTINCT itemid) = 3 AND count(valuenum) = count(*)
                 AND count(*) = 3 THEN NULL ELSE 'gcs_incomplete' END
    FROM {src.relation('chartevents')} WHERE itemid IN ({eye}, {verbal}, {motor})
    GROUP BY subject_id, charttime
    UNION ALL
    SELECT subject_id, CAST(charttime AS TIMESTAMP), CASE itemid {lab_kind} END,
           CAST(valuenum AS DOUBLE), CAST(valueuom AS VARCHAR),
           'labevents/' || labevent_id, CAST(storetime AS TIMESTAMP), NULL, NULL, NULL
    FROM {src.relation('labevents')} WHERE itemid IN ({_in(LAB_ITEMS)})
    UNION ALL
    SELECT subject_id, CAST(starttime AS TIMESTAMP), 'vasopressor', CAST(rate AS DOUBLE),
           CAST(rateuom AS VARCHAR),
           'inputevents/' || orderid || '/' || strftime(CAST(starttime AS TIMESTAMP),
               '%Y-%m-%dT%H:%M:%S') || '/' || itemid,
           CAST(storetime AS TIMESTAMP), CASE itemid {drug} END,
           CAST(endtime AS TIMESTAMP),
           CASE WHEN statusdescription = 'Rewritten' THEN 'rewritten' END
    FROM {src.relation('inputevents')} WHERE itemid IN ({_in(INPUT_ITEMS)})
    """  # noqa: S608 (item ids are constants; file paths are quoted)


def unknown_items_sql(src: MimicSource) -> str:
    """Counts of the chartevents/labevents itemids with no mapping (for the report)."""
    mapped_chart = _in([*CHART_ITEMS, *GCS_ITEMS])
    return f"""
    SELECT 'itemid:' || itemid AS code, count(*) AS n
    FROM {src.relation('chartevents')} WHERE itemid NOT IN ({mapped_chart}) GROUP BY itemid
    UNION ALL
    SELECT 'labitem:' || itemid, count(*)
    FROM {src.relation('labevents')} WHERE itemid NOT IN ({_in(LAB_ITEMS)}) GROUP BY itemid
    """  # noqa: S608 (item ids are constants; file paths are quoted)


def patients_sql(src: MimicSource) -> str:
    return (f"SELECT subject_id, gender, anchor_age, anchor_year "  # noqa: S608
            f"FROM {src.relation('patients')}")


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


def read_mimic(folder: str | Path, *, count_unknown: bool = True) -> IngestResult:
    """Read a MIMIC-IV-layout folder into events, patients and an ingest report."""
    import duckdb

    src = MimicSource.find(folder)
    result = IngestResult()
    report: IngestReport = result.report
    con = duckdb.connect()
    try:
        for subject_id, gender, anchor_age, anchor_year in con.sql(patients_sql(src)).fetchall():
            pid = str(subject_id)
            result.patients[pid] = PatientInfo(pid, f"patients/{pid}", sex=gender,
                                               anchor_age_years=int(anchor_age),
                                               anchor_year=int(anchor_year))
            report.accepted["patient"] += 1
        rows = con.sql(raw_events_sql(src)).fetchall()
        if count_unknown:
            for code, n in con.sql(unknown_items_sql(src)).fetchall():
                report.unknown_codes[code] += n
    finally:
        con.close()
    for patient_id, at, kind, value, unit, source, recorded, drug, end_at, status in rows:
        kind = EventKind(kind)
        report.resources[source.split("/", 1)[0]] += 1
        if status is not None:
            report.note("unusable", f"{kind.value}:{status}", f"{source}: {status}")
            continue
        if at is None:
            report.note("unusable", "no_time", f"{source}: no time")
            continue
        event = make_event(report, patient_id=str(patient_id), at_utc=_utc(at), kind=kind,
                           value=value, unit=unit or DEFAULT_UNITS.get(kind), source=source,
                           recorded_utc=_utc(recorded), drug=drug, end_utc=_utc(end_at))
        if event is not None:
            result.events.append(event)
    return result
