"""The whole trial report for a synthetic 1,000-patient trial with 28 days of daily data.

    python bench/report_bench.py [--subjects 1000] [--repeat 1]

Generates the trial deterministically (``trialdesk.analysis.synthetic``, seed 20130501:
1,000 subjects, ~7,000 daily rows to day 28, AEs, deviations, screening log,
dispositions), then times each stage of the closed report: building the
AnalysisDataset (validation and hashes), the primary analysis, the secondary analyses,
the tables and CONSORT, and writing the HTML and the PDF. Peer in the same run, on the
same rows: the two SOFA mixed models (``sofa ~ arm * day + (1 | subject)``, REML) with
statsmodels ``MixedLM`` (the usual Python route; no df, z tests) next to ours
(vectorized group sums, Satterthwaite df), with the largest relative difference of
the fixed effects and their SEs; and free days computed by a naive per-subject loop
over the daily rows next to ours.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trialdesk.analysis import AnalysisDataset, analyze_primary  # noqa: E402
from trialdesk.analysis.consort import consort_counts, consort_svg  # noqa: E402
from trialdesk.analysis.report import build_report  # noqa: E402
from trialdesk.analysis.secondary import (  # noqa: E402
    _sofa_model,
    analyze_secondary,
    free_days,
)
from trialdesk.analysis.synthetic import synthetic_trial  # noqa: E402
from trialdesk.analysis.tables import (  # noqa: E402
    adverse_event_table,
    baseline_table,
    deviation_table,
)
from trialdesk.protocol import load_protocol  # noqa: E402


def timed(func):
    start = time.perf_counter()
    value = func()
    return value, time.perf_counter() - start


def naive_free_days(ds: AnalysisDataset, flag: str) -> dict[str, float]:
    """Per subject, filter the daily rows and count (the loop a spreadsheet would do)."""
    frame = ds.daily.frame
    out = {}
    for sid, t, e in zip(ds.subjects.subject_ids, ds.subjects.times, ds.subjects.events,
                         strict=True):
        rows = frame[frame["subject_id"] == sid]
        if (e == 0 and t < 28) or rows.empty:
            continue
        if e == 1 and t <= 28:
            out[sid] = 0.0
            continue
        on = rows[(rows["day"] >= 1) & (rows["day"] <= 28) & (rows[flag] == 1)]
        out[sid] = float(28 - on["day"].nunique())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    protocol = load_protocol(ROOT / "protocols" / "rumcess.yaml")
    tables, t_gen = timed(lambda: synthetic_trial(args.subjects))
    subjects = tables.pop("subjects")
    ds, t_ds = timed(lambda: AnalysisDataset.from_frames(subjects, protocol=protocol,
                                                         **tables))
    print(f"# report benchmark: {ds.subjects.n} subjects, {ds.daily.n_rows} daily rows, "
          f"{len(ds.adverse_events)} AEs\n")
    _, t_primary = timed(lambda: analyze_primary(ds.subjects, protocol))
    _, t_secondary = timed(lambda: analyze_secondary(ds, protocol))
    _, t_tables = timed(lambda: (baseline_table(ds), adverse_event_table(ds),
                                 deviation_table(ds), consort_svg(consort_counts(ds))))
    report, t_build = timed(lambda: build_report(ds, protocol, closed=True))
    with tempfile.TemporaryDirectory() as tmp:
        _, t_html = timed(lambda: (Path(tmp) / "r.html").write_text(report.html()))
        pdf, t_pdf = timed(report.pdf_bytes)
        _, t_open = timed(lambda: build_report(ds, protocol, closed=False).write(tmp))
    rows = [("generate synthetic trial (not part of the report)", t_gen),
            ("AnalysisDataset.from_frames (validate, hash 6 tables)", t_ds),
            ("primary analysis (2×2 incl. Barnard/Boschloo, KM, log-rank, Cox)", t_primary),
            ("secondary analyses (2 mixed models, ΔSOFA, markers, free days)", t_secondary),
            ("Table 1, AE, deviations, CONSORT SVG", t_tables),
            ("build_report closed (all analyses + figures)", t_build),
            ("render HTML (inline SVG)", t_html),
            (f"render PDF ({len(pdf) // 1024} KiB)", t_pdf)]
    total = t_ds + t_build + t_html + t_pdf
    print("| stage | seconds |\n|---|---:|")
    for name, t in rows:
        print(f"| {name} | {t:.2f} |")
    print(f"| **closed report end to end (dataset + build + HTML + PDF)** | **{total:.2f}** |")
    print(f"| open report end to end (build + HTML + PDF) | {t_open:.2f} |\n")

    # peer 1: statsmodels MixedLM on the same SOFA models
    import statsmodels.formula.api as smf

    arms = ds.subjects.arms_present
    arm_of = dict(zip(ds.subjects.subject_ids, ds.subjects.arms, strict=True))
    print("| SOFA mixed model | ours (s) | statsmodels MixedLM (s) | ratio | max rel. diff "
          "β | max rel. diff SE |\n|---|---:|---:|---:|---:|---:|")
    for outcome in ("sofa_total", "sofa_without_coagulation"):
        long = ds.daily.long(outcome, (0, 7))
        long["arm"] = long["subject_id"].map(arm_of)
        fit, t_ours = timed(lambda long=long: _sofa_model(long, arms, (0, 7), "satterthwaite",
                                                          0.95))
        model = smf.mixedlm("value ~ C(arm, Treatment('control')) * day", long,
                            groups=long["subject_id"])
        peer, t_peer = timed(lambda model=model: model.fit(reml=True, method="lbfgs"))
        b_peer = np.asarray(peer.fe_params)
        se_peer = np.asarray(peer.bse_fe)
        db = np.max(np.abs(fit.beta - b_peer) / np.abs(b_peer))
        ds_ = np.max(np.abs(np.sqrt(np.diag(fit.vcov)) - se_peer) / se_peer)
        print(f"| {outcome} ({fit.n_obs} obs) | {t_ours:.3f} | {t_peer:.3f} | "
              f"{t_peer / t_ours:.0f}× | {db:.1e} | {ds_:.1e} |")

    # peer 2: free days by a per-subject loop
    (ours, _), t_fd = timed(lambda: free_days(ds, "on_vasopressor"))
    naive, t_naive = timed(lambda: naive_free_days(ds, "on_vasopressor"))
    same = ours.to_dict() == naive
    print("\n| vasopressor-free days | seconds | ratio |\n|---|---:|---:|")
    print(f"| ours (grouped) | {t_fd:.3f} | 1× |")
    print(f"| naive per-subject loop (peer) | {t_naive:.3f} | {t_naive / t_fd:.0f}× |")
    print(f"\nfree days identical: {same}")

    # peer 3: the exact unconditional tests on the primary 2×2 table, ours vs scipy
    from scipy import stats

    from trialdesk.analysis import proportions as pr
    x1, n1, x2, n2 = 200, 500, 150, 500
    columns = [[x1, x2], [n1 - x1, n2 - x2]]
    print("\n| exact test, 200/500 vs 150/500, two-sided | ours (s) | scipy (s) | ratio "
          "| p ours | p scipy |\n|---|---:|---:|---:|---:|---:|")
    for name, ours_fn, peer_fn in (
            ("Boschloo", lambda: pr.boschloo_exact(x1, n1, x2, n2)[1],
             lambda: stats.boschloo_exact(columns).pvalue),
            ("Barnard (pooled)", lambda: pr.barnard_exact(x1, n1, x2, n2)[1],
             lambda: stats.barnard_exact(columns).pvalue)):
        p_ours, t_ours = timed(ours_fn)
        p_peer, t_peer = timed(peer_fn)
        print(f"| {name} | {t_ours:.2f} | {t_peer:.2f} | {t_peer / t_ours:.0f}× "
              f"| {p_ours:.3e} | {p_peer:.3e} |")


if __name__ == "__main__":
    main()
