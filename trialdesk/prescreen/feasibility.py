"""Retrospective feasibility: the pre-screening rules as DuckDB SQL over MIMIC-IV extracts.

The heavy part — scanning charted values, normalizing units, range checks, grouping
vasopressor records into episodes, testing hypotension/lactate around each start and
choosing the neutrophil count closest to each onset — is one SQL pipeline, executed
out of core by DuckDB over Parquet/CSV (``SET temp_directory`` spills to disk). It
returns one small row per vasopressor episode; the per-patient decision (age rules,
window, status) is then made by the *same* functions the live detector uses
(:func:`trialdesk.prescreen.detector._assess_onset`), so the two cannot disagree on the
rules; a test runs both on the MIMIC-IV demo and compares them.

Unit normalization is shared too: the distinct (kind, unit, drug) combinations of the
extract are mapped in Python by :func:`trialdesk.interop.events.unit_key` and the
clinical core's unit tables, and joined into the query as a small table of factors and
plausible ranges.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialdesk.clinical.units import MEASURES
from trialdesk.eligibility.results import CriterionStatus
from trialdesk.interop.events import (
    DRUG_RATES,
    VITAL_RANGES,
    EventKind,
    PatientInfo,
    unit_key,
)
from trialdesk.interop.mimic import DEFAULT_UNITS, MimicSource, patients_sql, raw_events_sql
from trialdesk.prescreen.config import PrescreenConfig
from trialdesk.prescreen.detector import (
    MET,
    NOT_MET,
    UNKNOWN,
    _ages,
    _Anc,
    _assess_onset,
    _Shock,
)
from trialdesk.prescreen.results import Check, DataPoint, PatientAssessment, Status

DETECTION_HOURS = (2, 4, 6, 10)
_LAB = {"lactate": "lactate", "anc": "neutrophils", "wbc": "wbc", "pao2": "pao2"}


def unit_table(combos: list[tuple[str, str | None, str | None]]) -> list[tuple[Any, ...]]:
    """(kind, raw unit, drug) → (factor, low, high, integer_only), or factor None if unknown.

    The same tables as :func:`trialdesk.interop.events.canonical_value`; ranges in the
    canonical unit.
    """
    rows = []
    for kind_text, raw, drug in combos:
        kind = EventKind(kind_text)
        key = unit_key(raw or DEFAULT_UNITS.get(kind))
        factor = low = high = None
        integer = False
        if kind_text in _LAB:
            spec = MEASURES[_LAB[kind_text]]
            if key in spec.factors:
                factor, low, high = spec.factors[key], spec.plausible_min, spec.plausible_max
                integer = key in spec.integer_units
        elif kind is EventKind.VASOPRESSOR:
            unit, top = DRUG_RATES.get(drug or "", ("?", 0.0))
            if key == unit:
                factor, low, high = 1.0, 0.0, top
        else:
            factors, low, high = VITAL_RANGES[kind]
            if kind is EventKind.GCS and key == "":
                key = "points"
            factor = factors.get(key)
            integer = kind is EventKind.GCS
        rows.append((kind_text, raw, drug, factor, low, high, integer))
    return rows


_EV_SQL = """
    SELECT r.patient_id, r.t, r.kind, r.value * u.factor AS value, r.source,
           coalesce(r.recorded, r.t) AS avail, r.drug, r.end_at
    FROM raw r JOIN units u ON u.kind = r.kind AND u.unit IS NOT DISTINCT FROM r.unit
         AND u.drug IS NOT DISTINCT FROM r.drug
    WHERE r.status IS NULL AND r.t IS NOT NULL AND r.value IS NOT NULL
      AND u.factor IS NOT NULL AND r.value * u.factor BETWEEN u.low AND u.high
      AND (NOT u.integer_only OR r.value = floor(r.value))
"""


def _sql(config: PrescreenConfig, period: tuple[dt.datetime | None, dt.datetime | None]) -> str:
    vaso = ", ".join(f"'{d}'" for d in sorted(config.vasopressors))
    lo = "TIMESTAMP '-infinity'" if period[0] is None else \
        f"TIMESTAMP '{period[0].replace(tzinfo=None).isoformat()}'"
    hi = "TIMESTAMP 'infinity'" if period[1] is None else \
        f"TIMESTAMP '{period[1].replace(tzinfo=None).isoformat()}'"
    look = f"INTERVAL {int(config.hypotension_lookback.total_seconds())} SECOND"
    lwin = f"INTERVAL {int(config.lactate_window.total_seconds())} SECOND"
    gap = f"INTERVAL {int(config.episode_gap.total_seconds())} SECOND"
    nlook = f"INTERVAL {int(config.neutrophil_lookback.total_seconds())} SECOND"
    dead = f"INTERVAL {int(config.deadline.total_seconds())} SECOND"
    if config.definition.value == "sepsis3":
        shock = f"""
        low AS (SELECT s.patient_id, s.t AS start_at,
                       bool_or(b.value < {config.sepsis3_map_below_mmhg}) AS has_low,
                       count(b.t) AS n_map,
                       arg_min(b.value, (b.value >= {config.sepsis3_map_below_mmhg}, b.t,
                               b.source)) AS low_value,
                       arg_min(b.t, (b.value >= {config.sepsis3_map_below_mmhg}, b.t,
                               b.source)) AS low_at,
                       arg_min(b.source, (b.value >= {config.sepsis3_map_below_mmhg}, b.t,
                               b.source)) AS low_source,
                       arg_min(b.avail, (b.value >= {config.sepsis3_map_below_mmhg}, b.t,
                               b.source)) AS low_avail
                FROM starts s LEFT JOIN ev b ON b.patient_id = s.patient_id
                     AND b.kind = 'map' AND b.t BETWEEN s.t - {look} AND s.t
                GROUP BY ALL),
        lac AS (SELECT s.patient_id, s.t AS start_at, count(l.t) AS n_lac,
                       arg_min(l.t, (l.t, l.source)) FILTER (WHERE l.value > 2) AS lac_at,
                       arg_min(l.value, (l.t, l.source)) FILTER (WHERE l.value > 2) AS lac_v,
                       arg_min(l.source, (l.t, l.source)) FILTER (WHERE l.value > 2)
                           AS lac_source,
                       arg_min(l.avail, (l.t, l.source)) FILTER (WHERE l.value > 2)
                           AS lac_avail
                FROM starts s LEFT JOIN ev l ON l.patient_id = s.patient_id
                     AND l.kind = 'lactate' AND abs(epoch(l.t) - epoch(s.t))
                         <= epoch({lwin})
                GROUP BY ALL),
        shock AS (SELECT s.*, CASE WHEN NOT coalesce(low.has_low, false) THEN
                              (CASE WHEN low.n_map > 0 THEN 'not_met' ELSE 'unknown' END)
                              WHEN lac.lac_at IS NULL THEN
                              (CASE WHEN lac.n_lac > 0 THEN 'not_met' ELSE 'unknown' END)
                              ELSE 'met' END AS shock_status,
                         greatest(s.t, lac.lac_at) AS onset,
                         greatest(s.avail, lac.lac_avail, low.low_avail) AS shock_avail,
                         low.low_value AS hypo_value, 'map' AS hypo_kind,
                         low.low_at AS hypo_at, low.low_source AS hypo_source,
                         lac.lac_v, lac.lac_at, lac.lac_source
                  FROM starts s JOIN low USING (patient_id) JOIN lac USING (patient_id)
                  WHERE low.start_at = s.t AND lac.start_at = s.t),"""  # noqa: S608 (config numbers)
    else:
        hypo = "((b.kind = 'sbp' AND b.value < 90) OR (b.kind = 'map' AND b.value < 70))"
        shock = f"""
        bp AS (SELECT s.patient_id, s.t AS start_at, count(b.t) AS n_bp,
                      arg_min(b.value, (b.value, b.t, b.source)) FILTER (WHERE {hypo})
                          AS hypo_value,
                      arg_min(b.kind, (b.value, b.t, b.source)) FILTER (WHERE {hypo})
                          AS hypo_kind,
                      arg_min(b.t, (b.value, b.t, b.source)) FILTER (WHERE {hypo})
                          AS hypo_at,
                      arg_min(b.source, (b.value, b.t, b.source)) FILTER (WHERE {hypo})
                          AS hypo_source,
                      arg_min(b.avail, (b.value, b.t, b.source)) FILTER (WHERE {hypo})
                          AS hypo_avail
               FROM starts s LEFT JOIN ev b ON b.patient_id = s.patient_id
                    AND b.kind IN ('map', 'sbp') AND b.t BETWEEN s.t - {look} AND s.t
               GROUP BY ALL),
        shock AS (SELECT s.*, CASE WHEN bp.hypo_at IS NOT NULL THEN 'met'
                                   WHEN bp.n_bp > 0 THEN 'not_met' ELSE 'unknown' END
                                   AS shock_status,
                         s.t AS onset, greatest(s.avail, bp.hypo_avail) AS shock_avail,
                         bp.hypo_value, bp.hypo_kind, bp.hypo_at, bp.hypo_source,
                         NULL::DOUBLE AS lac_v, NULL::TIMESTAMP AS lac_at,
                         NULL::VARCHAR AS lac_source
                  FROM starts s JOIN bp ON bp.patient_id = s.patient_id
                       AND bp.start_at = s.t),"""  # noqa: S608 (config numbers)
    return f"""
    WITH
    vrec AS (
        SELECT patient_id, t, source, avail, drug, coalesce(end_at, t) AS end_at,
               max(coalesce(end_at, t)) OVER (PARTITION BY patient_id ORDER BY t, source
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
        FROM ev WHERE kind = 'vasopressor' AND drug IN ({vaso}) AND value > 0
    ),
    starts AS (
        SELECT patient_id, t, source, avail, drug FROM vrec
        WHERE prev_end IS NULL OR t > prev_end + {gap}
    ),
    {shock}
    counts AS (
        SELECT patient_id, t, value, avail, 'absolute' AS route, source AS src1,
               NULL::VARCHAR AS src2, value AS v1, NULL::DOUBLE AS v2
        FROM ev WHERE kind = 'anc'
        UNION ALL
        SELECT w.patient_id, w.t, round(w.value * p.value / 100.0, 6),
               greatest(w.avail, p.avail), 'wbc_differential', w.source, p.source,
               w.value, p.value
        FROM (SELECT patient_id, t, arg_max(value, source) AS value,
                     arg_max(avail, source) AS avail, max(source) AS source
              FROM ev WHERE kind = 'wbc' GROUP BY ALL) w
        JOIN (SELECT patient_id, t, arg_max(value, source) AS value,
                     arg_max(avail, source) AS avail, max(source) AS source
              FROM ev WHERE kind = 'neutrophil_pct' GROUP BY ALL) p
          USING (patient_id, t)
        WHERE NOT EXISTS (SELECT 1 FROM ev a WHERE a.kind = 'anc'
                          AND a.patient_id = w.patient_id AND a.t = w.t)
    ),
    best AS (
        SELECT s.patient_id, s.t AS start_at,
               arg_min(c.value, (abs(epoch(c.t) - epoch(s.onset)), c.t)) AS anc,
               arg_min(c.t, (abs(epoch(c.t) - epoch(s.onset)), c.t)) AS anc_at,
               arg_min(c.avail, (abs(epoch(c.t) - epoch(s.onset)), c.t)) AS anc_avail,
               arg_min(c.route, (abs(epoch(c.t) - epoch(s.onset)), c.t)) AS anc_route,
               arg_min(c.src1, (abs(epoch(c.t) - epoch(s.onset)), c.t)) AS anc_src1,
               arg_min(c.src2, (abs(epoch(c.t) - epoch(s.onset)), c.t)) AS anc_src2,
               arg_min(c.v1, (abs(epoch(c.t) - epoch(s.onset)), c.t)) AS anc_v1,
               arg_min(c.v2, (abs(epoch(c.t) - epoch(s.onset)), c.t)) AS anc_v2
        FROM shock s JOIN counts c ON c.patient_id = s.patient_id
             AND c.t BETWEEN s.onset - {nlook} AND s.onset + {dead}
        WHERE s.shock_status = 'met'
        GROUP BY ALL
    )
    SELECT s.patient_id, s.t AS start_at, s.drug, s.source AS start_source, s.avail,
           s.shock_status, s.onset, s.shock_avail, s.hypo_value, s.hypo_kind, s.hypo_at,
           s.hypo_source, s.lac_v, s.lac_at, s.lac_source,
           b.anc, b.anc_at, b.anc_avail, b.anc_route, b.anc_src1, b.anc_src2, b.anc_v1,
           b.anc_v2
    FROM shock s LEFT JOIN best b ON b.patient_id = s.patient_id AND b.start_at = s.t
    WHERE s.t BETWEEN {lo} AND {hi}
    ORDER BY s.patient_id, s.t, s.source
    """  # noqa: S608 (numbers from the protocol config, no user text)


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    return None if t is None else t.replace(tzinfo=dt.UTC)


@dataclass
class FeasibilityResult:
    """Per-patient assessments and the summary of a retrospective run."""

    assessments: list[PatientAssessment]
    sources: list[str]
    period: tuple[dt.datetime | None, dt.datetime | None]
    protocol_id: str
    detection_hours: tuple[int, ...] = DETECTION_HOURS
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def candidates(self) -> list[PatientAssessment]:
        return [a for a in self.assessments if a.status is Status.CANDIDATE]

    def summary(self) -> dict[str, Any]:
        counts = Counter(a.status.value for a in self.assessments)
        detected = {f"within_{h}h": sum(1 for a in self.candidates
                                        if a.hours_to_detection is not None
                                        and a.hours_to_detection <= h)
                    for h in self.detection_hours}
        return {
            "patients": len(self.assessments),
            "candidates": counts.get("candidate", 0),
            "possible": counts.get("possible", 0),
            "no": counts.get("no", 0),
            "candidate_onsets": [{"subject_id": a.patient_id,
                                  "onset": a.onset_utc.isoformat() if a.onset_utc else None,
                                  "hours_to_detection": a.hours_to_detection}
                                 for a in self.candidates],
            "detectable": detected,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"protocol_id": self.protocol_id, "sources": self.sources,
                "from": self.period[0].isoformat() if self.period[0] else None,
                "to": self.period[1].isoformat() if self.period[1] else None,
                "summary": self.summary(),
                "patients": [a.to_dict() for a in self.assessments]} | self.extra


def _shock_from_row(row: dict[str, Any], config: PrescreenConfig) -> _Shock:
    start_at = _utc(row["start_at"])
    start = DataPoint(f"{row['drug']} start", "", "", start_at, row["start_source"])
    status = CriterionStatus(row["shock_status"])
    if status is not MET:
        why = {"unknown": "no blood pressure charted" if config.definition.value == "ssc2012"
               else "no MAP or lactate charted", "not_met": "no qualifying hypotension "
               "or lactate"}[status.value]
        return _Shock(status, f"{row['drug']} started {{start}} but {why} around it",
                      points=(start,), times=(("start", start_at),))
    points = [start]
    if row["hypo_at"] is not None:
        points.append(DataPoint(row["hypo_kind"].upper(), row["hypo_value"], "mmHg",
                                _utc(row["hypo_at"]), row["hypo_source"]))
    if row["lac_at"] is not None:
        points.append(DataPoint("lactate", row["lac_v"], "mmol/L", _utc(row["lac_at"]),
                                row["lac_source"]))
    reason = f"{row['drug']} started {{start}}"
    times = [("start", start_at)]
    if row["hypo_at"] is not None:
        reason += (f" after {row['hypo_kind'].upper()} {row['hypo_value']:g} mmHg at "
                   "{hypotension}")
        times.append(("hypotension", _utc(row["hypo_at"])))
    return _Shock(MET, reason, _utc(row["onset"]), _utc(row["shock_avail"]), (),
                  tuple(points), tuple(times))


def _anc_from_row(row: dict[str, Any]) -> list[_Anc]:
    if row["anc"] is None:
        return []
    at = _utc(row["anc_at"])
    if row["anc_route"] == "absolute":
        points = (DataPoint("ANC", row["anc_v1"], "10^9/L", at, row["anc_src1"]),)
        detail = "absolute count"
    else:
        points = (DataPoint("WBC", row["anc_v1"], "10^9/L", at, row["anc_src1"]),
                  DataPoint("neutrophils %", row["anc_v2"], "%", at, row["anc_src2"]))
        detail = f"WBC {row['anc_v1']:g} ×10^9/L × {row['anc_v2']:g}% neutrophils"
    return [_Anc(row["anc"], at, _utc(row["anc_avail"]), points, detail)]


def run_feasibility(paths: list[str | Path], config: PrescreenConfig, *,
                    date_from: dt.datetime | None = None, date_to: dt.datetime | None = None,
                    temp_directory: str | None = None) -> FeasibilityResult:
    """Pre-screen every patient of one or more MIMIC-IV-layout folders retrospectively."""
    import duckdb

    assessments: list[PatientAssessment] = []
    for path in paths:
        src = MimicSource.find(path)
        con = duckdb.connect()
        try:
            if temp_directory:
                con.execute(f"SET temp_directory = '{temp_directory}'")
            con.execute("SET preserve_insertion_order = false")
            con.execute(f"CREATE TEMP VIEW raw AS {raw_events_sql(src)}")
            combos = con.sql("SELECT DISTINCT kind, unit, drug FROM raw").fetchall()
            con.execute("CREATE TEMP TABLE units (kind VARCHAR, unit VARCHAR, drug VARCHAR, "
                        "factor DOUBLE, low DOUBLE, high DOUBLE, integer_only BOOLEAN)")
            con.executemany("INSERT INTO units VALUES (?, ?, ?, ?, ?, ?, ?)",
                            unit_table(combos))
            con.execute(f"CREATE TEMP TABLE ev AS {_EV_SQL}")
            cursor = con.execute(_sql(config, (date_from, date_to)))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
            people = con.sql(patients_sql(src)).fetchall()
            last = dict(con.sql(
                "SELECT patient_id, max(t) FROM ev "
                "GROUP BY patient_id").fetchall())
        finally:
            con.close()
        infos = {str(s): PatientInfo(str(s), f"patients/{s}", sex=g, anchor_age_years=int(a),
                                     anchor_year=int(y)) for s, g, a, y in people}
        by_patient: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_patient.setdefault(str(row["patient_id"]), []).append(row)
        for pid in sorted(set(infos) | {str(p) for p in last}):
            assessments.append(_patient(pid, by_patient.get(pid, []), infos.get(pid),
                                        _utc(last.get(int(pid)) if pid.isdigit() else None),
                                        config))
    if date_from is not None or date_to is not None:
        assessments = [a for a in assessments if a.onset_utc is not None
                       or a.check("shock_onset").data_used]
    return FeasibilityResult(assessments, [str(p) for p in paths], (date_from, date_to),
                             config.protocol_id)


def _patient(pid: str, rows: list[dict[str, Any]], info: PatientInfo | None,
             last_event: dt.datetime | None, config: PrescreenConfig) -> PatientAssessment:
    """The detector's episode choice: first candidate, else first possible, else first onset."""
    shocks = [_shock_from_row(r, config) for r in rows]
    assessed = [_assess_onset(pid, s, _anc_from_row(r), info, config, None)
                for s, r in zip(shocks, rows, strict=True) if s.status is MET]
    for wanted in (Status.CANDIDATE, Status.POSSIBLE):
        for a in assessed:
            if a.status is wanted:
                return a
    if assessed:
        return assessed[0]
    label = f"septic shock ({config.definition.label})"
    if not shocks:
        check = Check("shock_onset", label, NOT_MET, "no vasopressor infusion charted")
    else:
        pick = next((s for s in shocks if s.status is UNKNOWN), shocks[0])
        check = pick.check(label)
    checks = [check] + (_ages(info, last_event, config) if last_event else [])
    status = Status.NO if any(c.status is NOT_MET for c in checks) else Status.POSSIBLE
    return PatientAssessment(pid, status, tuple(checks), None, None, None, None, None)


