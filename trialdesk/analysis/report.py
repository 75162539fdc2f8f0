"""The trial report: one HTML document and its PDF, closed (by arm, for the DMC) or open.

:func:`build_report` receives an :class:`AnalysisDataset` (from CSV files or, later, the
web database) and the protocol, runs every analysis the tables allow and returns a
:class:`Report`; :meth:`Report.write` saves ``report-closed.html`` / ``.pdf`` (or
``report-open.*``).

* **Closed** (unblinded, for the data monitoring committee): CONSORT by arm, Table 1 by
  arm, the primary analysis (2×2 estimates and tests, Kaplan–Meier with numbers at risk,
  log-rank, Cox, forest plot), secondary analyses, adverse events and deviations by arm
  and, when the protocol has interim looks, the observed z against the group-sequential
  boundaries.
* **Open** (pooled): the same sections with all arms pooled and no comparison: no test,
  estimate, forest plot or observed z; curves and tables for all subjects together.

Every section of the HTML and every page of the PDF states the dataset SHA-256, the
protocol id, version and file SHA-256, the report version and the generation time
(UTC). Figures are inline SVG in the HTML and the same matplotlib figures in the PDF.

Arms are named by the protocol's labels (``arms[].label``) in every table, figure,
CONSORT box, decision and caveat; the analysis printouts in the PDF keep the ids and
are preceded by a legend (id = label). Without a protocol the ids are shown.

Observed z at an interim look: the log-rank z of the first treatment arm,
(E − O)/√V (positive favours the treatment arm), at information fraction = subjects
with a known day-28 outcome / the protocol's planned enrolment (capped at 1) unless
``information_fraction`` is given.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

import trialdesk
from trialdesk.analysis import figures as fg
from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.analysis.arm_labels import ArmLabels
from trialdesk.analysis.binary import day_outcome
from trialdesk.analysis.boundaries import TYPE_LABELS, Boundaries, boundaries_for_protocol
from trialdesk.analysis.consort import consort_counts, consort_svg
from trialdesk.analysis.kaplan_meier import kaplan_meier
from trialdesk.analysis.primary import DEFAULT_DAY, PrimaryAnalysis, analyze_primary
from trialdesk.analysis.results import Estimate, fmt, fmt_p
from trialdesk.analysis.secondary import SecondaryAnalysis, analyze_secondary
from trialdesk.analysis.tables import (
    SummaryTable,
    adverse_event_table,
    baseline_table,
    deviation_table,
)
from trialdesk.analysis.warnings import StatisticalWarning
from trialdesk.errors import InputRejected
from trialdesk.protocol.schema import Protocol


@dataclass
class Section:
    title: str
    html: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    figures: list[tuple[str, Figure, str | None]] = field(default_factory=list)

    def para(self, line: str) -> None:
        self.html.append(f"<p>{html.escape(line)}</p>")
        self.text.append(line)

    def table(self, t: SummaryTable) -> None:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in t.rows)
        self.html.append(f"<table><caption>{html.escape(t.title)}</caption><thead><tr>{head}"
                         f"</tr></thead><tbody>{body}</tbody></table>")
        if t.note:
            self.html.append(f'<p class="note">{html.escape(t.note)}</p>')
        self.text += ["", *str(t).splitlines(), *([t.note] if t.note else []), ""]

    def figure(self, name: str, fig: Figure, svg: str | None = None) -> None:
        """Add a figure; ``svg`` overrides the HTML copy (the hand-written CONSORT)."""
        self.figures.append((name, fig, svg))


@dataclass(frozen=True, eq=False)
class Report:
    closed: bool
    generated_at: dt.datetime
    citation: dict[str, Any]
    sections: tuple[Section, ...]
    primary: PrimaryAnalysis | None
    secondary: SecondaryAnalysis | None

    @property
    def version(self) -> str:
        return "closed" if self.closed else "open"

    @property
    def stamp(self) -> str:
        c = self.citation
        proto = (f"protocol {c['protocol_id']} v{c['protocol_version']} (sha256 "
                 f"{c['protocol_sha256']})" if c.get("protocol_id") else "no protocol")
        return (f"{self.version.upper()} report · dataset sha256 {c['dataset_sha256']} · "
                f"{proto} · generated {self.generated_at:%Y-%m-%d %H:%M:%S} UTC · "
                f"TrialDesk {trialdesk.__version__}")

    @property
    def title(self) -> str:
        trial = self.citation.get("protocol_id") or "trial"
        kind = ("CLOSED report for the data monitoring committee (unblinded, by arm)"
                if self.closed else "OPEN report (pooled, no arm-level results)")
        return f"{trial.upper()} — {kind}"

    # -- HTML ---------------------------------------------------------------------------
    def html(self) -> str:
        stamp = html.escape(self.stamp)
        parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                 f"<title>{html.escape(self.title)}</title>", f"<style>{CSS}</style>",
                 "</head><body>", f"<h1>{html.escape(self.title)}</h1>",
                 f'<p class="stamp">{stamp}</p>']
        for k, s in enumerate(self.sections, 1):
            parts.append(f'<section id="s{k}"><h2>{k}. {html.escape(s.title)}</h2>')
            parts += s.html
            for name, fig, svg in s.figures:
                parts.append(f'<figure id="{name}">{svg or fg.svg_text(fig)}</figure>')
            parts.append(f'<p class="stamp">{stamp}</p></section>')
        parts.append("</body></html>")
        return "\n".join(parts)

    # -- PDF ----------------------------------------------------------------------------
    def pdf_bytes(self) -> bytes:
        buffer = io.BytesIO()
        footer = self.stamp
        with PdfPages(buffer, metadata={"Title": self.title, "Creator": "TrialDesk",
                                        "Subject": footer}) as pdf:
            cover = [self.title, "", *(f"{k}. {s.title}"
                                       for k, s in enumerate(self.sections, 1))]
            for page in fg.text_pages(cover, header="Contents", footer=footer):
                pdf.savefig(page)
            for k, s in enumerate(self.sections, 1):
                header = f"{k}. {s.title}"
                if s.text:
                    for page in fg.text_pages(s.text, header=header, footer=footer):
                        pdf.savefig(page)
                for _, fig, _ in s.figures:
                    fig.suptitle(header, x=0.02, ha="left", fontsize=8, y=0.995)
                    fg.stamp(fig, footer)
                    pdf.savefig(fig)
        return buffer.getvalue()

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            html_path = out / f"report-{self.version}.html"
            pdf_path = out / f"report-{self.version}.pdf"
            html_path.write_text(self.html(), encoding="utf-8")
            pdf_path.write_bytes(self.pdf_bytes())
        except OSError as exc:
            raise InputRejected(f"{out}: cannot write the report ({exc.strerror}).",
                                field="out") from None
        return html_path, pdf_path


CSS = """body{font-family:DejaVu Sans,Arial,sans-serif;max-width:1000px;margin:2em auto;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left}caption{font-weight:bold;
text-align:left}.stamp{font-size:.75em;color:#555;border-top:1px solid #ddd}
.note{font-size:.8em;color:#555}figure{margin:1em 0}svg{max-width:100%;height:auto}
.warn{color:#8a5a00}"""


def build_report(dataset: AnalysisDataset, protocol: Protocol | None = None, *,
                 closed: bool = True, generated_at: dt.datetime | None = None,
                 information_fraction: float | None = None) -> Report:
    """Run the analyses the dataset allows and lay out the report (nothing written)."""
    now = (generated_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    citation = dataset.citation()
    if protocol is not None:
        citation |= {"protocol_id": protocol.protocol_id,
                     "protocol_version": protocol.protocol_version,
                     "protocol_sha256": protocol.content_sha256}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # carried in the results
        # the open report shows pooled data only: no comparison is computed for it
        primary = analyze_primary(dataset.subjects, protocol) if closed else None
        secondary = (analyze_secondary(dataset, protocol)
                     if dataset.daily is not None and closed else None)
    by_arm = closed
    labels = ArmLabels.of(protocol)
    sections = [_data_section(dataset, citation)]
    counts = consort_counts(dataset)
    counts = counts.with_labels(labels) if closed else counts.pooled()
    s = Section("CONSORT flow diagram")
    s.text += [f"Randomized: {counts.randomized}"] + [
        f"{a.arm}: allocated {a.allocated}, received {a.received}, lost to follow-up "
        f"{a.lost_to_follow_up}, discontinued {a.discontinued}, analysed {a.analysed}"
        for a in counts.arms]
    s.figure("consort", fg.consort_figure(counts), consort_svg(counts))
    sections.append(s)
    s = Section("Baseline characteristics")
    s.table(baseline_table(dataset, by_arm=by_arm, labels=labels))
    sections.append(s)
    sections.append(_primary_section(primary, labels) if primary is not None
                    else _pooled_primary_section(dataset, protocol))
    if secondary is not None:
        sections.append(_secondary_section(dataset, secondary, labels))
    elif dataset.daily is not None:
        sections.append(_pooled_secondary_section(dataset))
    s = Section("Safety: adverse events and protocol deviations")
    for t in (adverse_event_table(dataset, by_arm=by_arm, labels=labels),
              deviation_table(dataset, by_arm=by_arm, labels=labels)):
        if t is not None:
            s.table(t)
    if not s.html:
        s.para("No adverse-event or deviation table in the dataset.")
    sections.append(s)
    bounds = boundaries_for_protocol(protocol) if protocol is not None else None
    if bounds is not None:
        sections.append(_interim_section(dataset, primary, bounds, protocol,
                                         information_fraction))
    if closed:
        s = Section("Statistical caveats")
        caveats = [*(primary.warnings if primary else ()),
                   *(secondary.warnings if secondary else ())]
        for w in caveats:
            s.para(f"{w.code}: {labels.text(w.message)}")
        if not caveats:
            s.para("None.")
        sections.append(s)
    return Report(closed, now, citation, tuple(sections), primary if closed else None,
                  secondary if closed else None)


# --- sections ---------------------------------------------------------------------------


def _data_section(ds: AnalysisDataset, citation: dict[str, Any]) -> Section:
    s = Section("Data and provenance")
    s.para(f"Dataset SHA-256: {citation['dataset_sha256']} (source {ds.source}).")
    s.para(f"Protocol: {citation.get('protocol_id')} version "
           f"{citation.get('protocol_version')}, file SHA-256 {citation.get('protocol_sha256')}.")
    for name, sha in ds.table_sha256.items():
        s.para(f"Table {name}: SHA-256 {sha}")
    s.para(f"{ds.subjects.n} randomized subjects; {sum(ds.subjects.events)} deaths recorded.")
    return s


def _timeframe(protocol: Protocol | None) -> float:
    if protocol is None:
        return float(DEFAULT_DAY)
    return float(next((o.timeframe_days for o in protocol.outcomes.primary
                       if o.timeframe_days), DEFAULT_DAY))


def _pooled_primary_section(ds: AnalysisDataset, protocol: Protocol | None) -> Section:
    day = _timeframe(protocol)
    s = Section(f"Primary outcome: mortality by day {day:g}")
    subj = ds.subjects
    outcome = day_outcome(subj.time, subj.event, day)
    s.para(f"All subjects: {subj.n}; died by day {day:g}: {int((outcome == 1).sum())}; "
           f"alive: {int((outcome == 0).sum())}; outcome missing: "
           f"{int((outcome == -1).sum())}.")
    conf_type = protocol.analysis.km_ci_transform if protocol else "log"
    curve = kaplan_meier(np.minimum(subj.time, day), np.where(subj.time > day, 0, subj.event),
                         conf_type=conf_type, label="all subjects")
    s.figure("km", fg.km_figure([curve], horizon=day,
                                title="Kaplan–Meier survival, all subjects pooled"))
    return s


def _printout(s: Section, result: Any, labels: ArmLabels, arm_ids: tuple[str, ...]) -> None:
    """The analysis object's own printout (PDF only; arms by id, after a legend)."""
    legend = labels.legend(arm_ids)
    if legend:
        s.text.append(f"Analysis printout (arm ids: {legend})")
    s.text += str(result).splitlines()


def _primary_section(r: PrimaryAnalysis, labels: ArmLabels) -> Section:
    s = Section(f"Primary outcome: mortality by day {r.day:g}")
    _printout(s, r, labels, r.dataset.arm_order)
    rows = [(labels(a.arm), str(a.n), str(a.deaths), str(a.alive), str(a.missing),
             fmt(a.mortality, 3)) for a in r.binary.arms]
    s.table(SummaryTable(f"Day-{r.day:g} mortality by arm (reference first)",
                         ("arm", "n", "died", "alive", "missing", "mortality"), tuple(rows)))
    for c in r.binary.comparisons:
        vs = labels.comparison(c.treatment.arm, c.reference.arm)
        s.table(SummaryTable(f"Estimates, {vs}", ("estimate", "value", "CI", "method"),
                             tuple((e.name, fmt(e.estimate), f"{fmt(e.lower)} to "
                                    f"{fmt(e.upper)}", e.method) for e in c.estimates)))
        s.table(SummaryTable(f"Tests, {vs}", ("test", "statistic", "p two-sided",
                                                   "p one-sided"),
                             tuple((t.label + (" (primary)" if t.primary else ""),
                                    fmt(t.statistic), fmt_p(t.p_value), fmt_p(t.p_one_sided))
                                   for t in (*c.tests, *r.survival.tests))))
    for d in r.decisions:
        s.para(f"Decision: {labels.text(str(d))}")
    curves = [dataclasses.replace(c, label=labels(c.label)) for c in r.survival.curves]
    s.figure("km", fg.km_figure(curves, horizon=r.day,
                                title=f"Kaplan–Meier survival by arm ({r.survival.conf_type} "
                                      "CI transform)"))
    forest = []
    for c in r.binary.comparisons:
        vs = labels.comparison(c.treatment.arm, c.reference.arm)
        forest += [(f"risk difference {vs} (Newcombe)",
                    c.estimate("risk_difference", "newcombe"), False),
                   (f"relative risk of death {vs}", c.estimate("relative_risk", "log"),
                    True),
                   (f"odds ratio of death {vs} (Woolf)",
                    c.estimate("odds_ratio", "woolf"), True)]
    if r.survival.cox is not None:
        for coef in r.survival.cox.coefficients:
            forest.append((f"hazard ratio {labels.comparison(coef.arm, r.survival.reference_arm)}"
                           " (Cox)",
                           Estimate("hazard_ratio", coef.hazard_ratio, coef.lower, coef.upper,
                                    r.survival.cox.ties, r.conf_level), True))
    forest = [f for f in forest if all(math.isfinite(v) and (not f[2] or v > 0) for v in
                                       (f[1].estimate, f[1].lower, f[1].upper))]
    if forest:
        s.figure("forest", fg.forest_figure(forest, title=f"Primary effect measures "
                                            f"({r.conf_level:.0%} CI)"))
    return s


def _pooled_secondary_section(ds: AnalysisDataset,
                              days: tuple[int, int] = (0, 7)) -> Section:
    s = Section("Secondary outcomes")
    for outcome, label in (("sofa_total", "SOFA total"),
                           ("sofa_without_coagulation", "SOFA without coagulation")):
        long = ds.daily.long(outcome, days)
        if long.empty:
            continue
        g = long.groupby("day")["value"].agg(["count", "mean", "std"])
        s.table(SummaryTable(f"{label}, all subjects pooled", ("day", "n", "mean", "SD"),
                             tuple((str(int(d)), str(int(row["count"])),
                                    fmt(row["mean"]), fmt(row["std"]))
                                   for d, row in g.iterrows())))
        se = (g["std"] / np.sqrt(g["count"])).to_numpy()
        s.figure(f"traj_{outcome}", fg.trajectory_figure(
            [("all subjects", g.index.to_numpy(), g["mean"].to_numpy(), se)],
            title=f"{label}, days {days[0]}–{days[1]}: mean ± SE, pooled"))
    return s


def _secondary_section(ds: AnalysisDataset, r: SecondaryAnalysis,
                       labels: ArmLabels) -> Section:
    s = Section("Secondary outcomes")
    _printout(s, r, labels, r.arms)
    for m in r.sofa_models:
        f = m.fit
        s.table(SummaryTable(
            f"{m.label}: {f.formula}, REML, {f.df_method} df ({f.n_obs} observations, "
            f"{f.n_groups} subjects)", ("term", "estimate", "SE", "df", "CI", "p"),
            tuple((labels.term(c.name), fmt(c.estimate), fmt(c.se), fmt(c.df), f"{fmt(c.lower)} to "
                   f"{fmt(c.upper)}", fmt_p(c.p_value))
                  for c in (*f.coefficients, *f.contrasts))))
        series = []
        for arm in r.arms:
            pts = [p for p in r.trajectories if p.outcome == m.outcome and p.arm == arm]
            series.append((labels(arm), np.array([p.day for p in pts]),
                           np.array([p.mean for p in pts]),
                           np.array([p.sd / math.sqrt(p.n) if p.n > 1 else 0.0
                                     for p in pts])))
        s.figure(f"traj_{m.outcome}", fg.trajectory_figure(
            series, title=f"{m.label} by arm, days {r.sofa_days[0]}–{r.sofa_days[1]}: "
                          "mean ± SE"))
    rows = []
    for c in (*r.delta_sofa, *r.free_days):
        ref, trt = c.arms
        rows.append((c.label, labels.text(c.comparison),
                     str(dataclasses.replace(ref, arm=labels(ref.arm))),
                     str(dataclasses.replace(trt, arm=labels(trt.arm))),
                     f"{fmt(c.rank_sum.shift)} ({fmt(c.rank_sum.lower)} to "
                     f"{fmt(c.rank_sum.upper)})", fmt_p(c.rank_sum.p_value)))
    if rows:
        s.table(SummaryTable("ΔSOFA and organ-support-free days (Wilcoxon rank-sum, "
                             "Hodges–Lehmann shift)", ("outcome", "comparison", "reference",
                                                       "treatment", "shift (CI)", "p"),
                             tuple(rows)))
    if r.markers:
        s.table(SummaryTable("Inflammatory markers: change from day 0 on the log scale",
                             ("marker", "day", "comparison", "ratio of geometric mean fold "
                              "changes (CI)", "p"),
                             tuple((m.label, str(m.day), labels.text(m.comparison),
                                    f"{fmt(m.ratio.estimate)} ({fmt(m.ratio.lower)} to "
                                    f"{fmt(m.ratio.upper)})", fmt_p(m.p_value))
                                   for m in r.markers)))
    return s


def observed_logrank_z(primary: PrimaryAnalysis) -> float:
    """(E − O)/√V of the first treatment arm: positive favours the treatment arm."""
    lr = primary.survival.logrank
    if len(lr.arms) < 2 or not lr.variance[1, 1] > 0:
        return math.nan
    return float((lr.expected[1] - lr.observed[1]) / math.sqrt(lr.variance[1, 1]))


def _interim_section(ds: AnalysisDataset, primary: PrimaryAnalysis | None, b: Boundaries,
                     protocol: Protocol, fraction: float | None) -> Section:
    s = Section("Interim monitoring: group-sequential boundaries")
    if fraction is None:
        day = _timeframe(protocol)
        known = int((day_outcome(ds.subjects.time, ds.subjects.event, day) >= 0).sum())
        planned = protocol.identifiers.planned_enrolment or ds.subjects.n
        fraction = min(1.0, known / planned)
    s.para(f"{TYPE_LABELS[b.type]}, alpha {b.alpha:g} "
           f"{'two' if b.sides == 2 else 'one'}-sided; current information fraction "
           f"{fraction:.3f}.")
    s.table(SummaryTable("Boundaries", ("look", "information fraction", "z boundary",
                                        "nominal p", "cumulative alpha"), tuple(b.rows())))
    observed = []
    if primary is not None:  # closed report only
        z = observed_logrank_z(primary)
        s.para(f"Observed log-rank z (positive favours the treatment arm): {fmt(z)}.")
        observed = [(fraction, z)] if math.isfinite(z) else []
    s.figure("boundaries", fg.boundaries_figure(b, observed))
    return s
