"""Analysis commands: ``analyze`` (the primary analysis of a subjects file)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from trialdesk.analysis import PrimaryAnalysis, StatisticalWarning, SubjectsDataset
from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.analysis.primary import analyze_primary
from trialdesk.analysis.results import fmt, fmt_p
from trialdesk.analysis.secondary import SecondaryAnalysis, analyze_secondary
from trialdesk.cli.base import JsonOpt, app, err, handles_errors, out, print_json
from trialdesk.errors import InputRejected
from trialdesk.protocol import load_protocol


@app.command()
@handles_errors
def analyze(
    subjects: Annotated[Path, typer.Option(
        "--subjects", help="Subjects CSV: subject_id, arm, time (days), event (1/0), "
                           "optional stratum; see docs/formats.md.")],
    protocol: Annotated[Path | None, typer.Option(
        "--protocol", "-p", help="Protocol file (YAML): arms, time frame, alpha, sides, "
                                 "primary test. Without it: arms from the file (first = "
                                 "reference), day 28, alpha 0.05 two-sided, Fisher.")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Also write the full result to DIR/primary.json (and "
                      "DIR/secondary.json with --daily).")] = None,
    daily: Annotated[Path | None, typer.Option(
        "--daily", help="Daily CSV (subject_id, day, sofa_total, …, il6_pg_per_ml, …, "
                        "on_vasopressor, on_invasive_ventilation): adds the secondary "
                        "analyses; see docs/formats.md.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Primary analysis: 28-day mortality (2×2 tests, risk difference) and time to death
    (Kaplan–Meier, log-rank, Cox), with the protocol's primary test and alpha; with
    --daily also the secondary analyses (SOFA mixed model, ΔSOFA, cytokines, free days)."""
    p = load_protocol(protocol) if protocol is not None else None
    dataset = SubjectsDataset.from_csv(subjects, p)
    full = (AnalysisDataset.from_csv(subjects, daily=daily, protocol=p)
            if daily is not None else None)
    with warnings.catch_warnings():
        # the caveats are part of the result and are printed with it (below / in JSON)
        warnings.simplefilter("ignore", StatisticalWarning)
        result = analyze_primary(dataset, p)
        secondary = analyze_secondary(full, p) if full is not None else None
    data = result.to_dict()
    outputs = {"primary.json": data}
    if secondary is not None:
        outputs["secondary.json"] = secondary.to_dict()
    if out_dir is not None:
        for name, content in outputs.items():
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
                target = out_dir / name
                target.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
            except OSError as exc:
                raise InputRejected(f"{out_dir}: cannot write {name} ({exc.strerror}).",
                                    field="out") from None
            err.print(f"wrote {escape(str(target))}", soft_wrap=True)
    if as_json:
        print_json(data if secondary is None else data | {"secondary": outputs[
            "secondary.json"]})
        return
    _show(result)
    if secondary is not None:
        _show_secondary(secondary)


def _show_secondary(r: SecondaryAnalysis) -> None:
    out.print(f"[bold]Secondary analyses[/] (reference arm {escape(r.reference_arm)}, "
              f"{r.conf_level:.0%} CIs, mixed-model df {r.df_method})")
    for m in r.sofa_models:
        t = Table("term", "estimate", "SE", "df", "CI", "p",
                  title=f"{escape(m.label)}: {escape(m.fit.formula)}, REML")
        for c in (*m.fit.coefficients, *m.fit.contrasts):
            t.add_row(escape(c.name), fmt(c.estimate), fmt(c.se), fmt(c.df),
                      f"{fmt(c.lower)} to {fmt(c.upper)}", fmt_p(c.p_value))
        out.print(t)
    for c in (*r.delta_sofa, *r.free_days):
        out.print(f"{escape(c.label)}, {escape(c.comparison)}: {escape(str(c.rank_sum))}",
                  soft_wrap=True)
    for m in r.markers:
        out.print(f"{escape(m.label)} day {m.day}, {escape(m.comparison)}: ratio of geometric "
                  f"mean fold changes {fmt(m.ratio.estimate)} ({fmt(m.ratio.lower)} to "
                  f"{fmt(m.ratio.upper)}), p = {fmt_p(m.p_value)}", soft_wrap=True)
    for w in r.warnings:
        out.print(f"[yellow]warning[/] {w.code}: {escape(w.message)}", soft_wrap=True)


def _show(r: PrimaryAnalysis) -> None:
    proto = f"protocol {r.protocol_id} v{r.protocol_version}" if r.protocol_id else \
        "no protocol: default settings"
    out.print(f"[bold]Primary analysis[/]: mortality by day {r.day:g} · {escape(proto)} · "
              f"alpha {r.alpha:g} {'two' if r.sides == 2 else 'one'}-sided · "
              f"primary test {r.primary_test}")
    out.print(f"{r.dataset.n} subjects from {escape(r.dataset.source)} · sha256 "
              f"{r.dataset.content_sha256}", soft_wrap=True)
    b = r.binary
    arms = Table("arm", "n", "died", "alive", "missing", "mortality",
                 title=f"Day-{r.day:g} outcome (reference arm first)")
    for a in b.arms:
        arms.add_row(escape(a.arm), str(a.n), str(a.deaths), str(a.alive), str(a.missing),
                     fmt(a.mortality, 3))
    out.print(arms)
    level = f"{r.conf_level:.0%} CI"
    for c in b.comparisons:
        est = Table("estimate", "value", level, "method", title=f"{escape(c.label)}")
        for e in c.estimates:
            est.add_row(e.name, fmt(e.estimate), f"{fmt(e.lower)} to {fmt(e.upper)}", e.method)
        out.print(est)
        tests = Table("test", "statistic", "p (two-sided)", "p (one-sided)",
                      title=f"Tests, {escape(c.label)}")
        for t in c.tests:
            tests.add_row(t.label + (" [bold](primary)[/]" if t.primary else ""),
                          fmt(t.statistic), fmt_p(t.p_value), fmt_p(t.p_one_sided))
        out.print(tests)
    s = r.survival
    km = Table("arm", "n", "deaths", "median", level, f"S({r.day:g})", f"{level} of S",
               title=f"Kaplan–Meier, censored at day {r.day:g} ({s.conf_type} transform)")
    for curve, at in zip(s.curves, s.survival_at_day, strict=True):
        med, lo, hi = curve.median
        km.add_row(escape(curve.label), str(curve.n), str(curve.events), fmt(med),
                   f"{fmt(lo)} to {fmt(hi)}", fmt(at.estimate), f"{fmt(at.lower)} to "
                   f"{fmt(at.upper)}")
    out.print(km)
    out.print(escape(str(s.logrank.test)))
    if s.cox is not None:
        for coef in s.cox.coefficients:
            out.print(f"Cox hazard ratio ({s.cox.ties} ties) {escape(coef.arm)} vs "
                      f"{escape(s.reference_arm)}: {fmt(coef.hazard_ratio)} ({level} "
                      f"{fmt(coef.lower)} to {fmt(coef.upper)}), Wald p = "
                      f"{fmt_p(coef.p_value)}")
    for w in r.warnings:
        out.print(f"[yellow]warning[/] {w.code}: {escape(w.message)}", soft_wrap=True)
    for d in r.decisions:
        colour = "green" if d.significant else "red" if d.significant is False else "yellow"
        out.print(f"Decision: [bold {colour}]{escape(str(d))}[/]", soft_wrap=True)
