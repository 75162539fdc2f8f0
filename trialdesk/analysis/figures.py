"""Report figures drawn with matplotlib's object API (no pyplot state, Agg canvas).

Each function returns a :class:`matplotlib.figure.Figure`; :func:`svg_text` turns one
into SVG for the HTML report and the PDF writer saves the same objects. Curves are
labelled by arm in the closed report and "all subjects" in the open one.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from trialdesk.analysis.boundaries import Boundaries
from trialdesk.analysis.consort import ArmFlow, ConsortCounts
from trialdesk.analysis.kaplan_meier import KaplanMeier
from trialdesk.analysis.results import Estimate

COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d68910")
A4_PORTRAIT = (8.27, 11.69)


def new_figure(size: tuple[float, float] = (7.5, 4.5)) -> Figure:
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def svg_text(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype for inline HTML


def km_figure(curves: Sequence[KaplanMeier], *, horizon: float = 28, step: int = 7,
              title: str = "Kaplan–Meier survival") -> Figure:
    """Survival curves with censoring ticks and the numbers at risk under the axis."""
    fig = new_figure((7.5, 5.0))
    ax = fig.add_axes((0.1, 0.32, 0.85, 0.6))
    ticks = np.arange(0, horizon + 1e-9, step)
    for k, c in enumerate(curves):
        colour = COLOURS[k % len(COLOURS)]
        x = np.concatenate(([0.0], c.time))
        y = np.concatenate(([1.0], c.survival))
        keep = x <= horizon
        x, y = np.append(x[keep], horizon), np.append(y[keep], y[keep][-1])
        ax.step(x, y, where="post", color=colour, label=f"{c.label} (n = {c.n})")
        censored = (c.n_censor > 0) & (c.time <= horizon)
        ax.plot(c.time[censored], c.survival[censored], "|", color=colour, markersize=7)
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ticks)
    ax.set_ylabel("Probability of survival")
    ax.set_xlabel("Days from randomization")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=9)
    table = fig.add_axes((0.1, 0.04, 0.85, 0.14))
    table.set_xlim(0, horizon)
    table.set_ylim(-0.5, len(curves) - 0.5)
    table.axis("off")
    table.text(0, len(curves) - 0.3, "Number at risk", fontsize=9, transform=table.transData,
               va="bottom")
    for k, c in enumerate(curves):
        row = len(curves) - 1 - k - 0.2
        for t in ticks:
            at_risk = int(np.sum(c.n_event[c.time >= t] + c.n_censor[c.time >= t]))
            table.text(t, row, str(at_risk), ha="center", fontsize=9,
                       color=COLOURS[k % len(COLOURS)])
    return fig


def trajectory_figure(series: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                      *, title: str, ylabel: str = "SOFA (points)") -> Figure:
    """Mean ± 1 SE by day; ``series`` = (label, days, means, standard errors)."""
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    for k, (label, days, mean, se) in enumerate(series):
        shift = (k - (len(series) - 1) / 2) * 0.08
        ax.errorbar(np.asarray(days) + shift, mean, yerr=se, marker="o", capsize=3,
                    color=COLOURS[k % len(COLOURS)], label=label)
    ax.set_xlabel("Study day (0 = randomization)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def forest_figure(rows: Sequence[tuple[str, Estimate, bool]], *, title: str) -> Figure:
    """One row per estimate with its CI; ``True`` = ratio (log axis, null 1), ``False`` =
    difference (null 0). Ratios and differences get separate panels. Labels are wrapped
    at 34 characters (arm labels such as "MSC + standard therapy" are long)."""
    rows = [(textwrap.fill(label, 34), e, is_ratio) for label, e, is_ratio in rows]
    ratios = [(label, e) for label, e, is_ratio in rows if is_ratio]
    diffs = [(label, e) for label, e, is_ratio in rows if not is_ratio]
    panels = [(p, r) for p, r in ((ratios, True), (diffs, False)) if p]
    lines = max((label.count("\n") + 1 for label, _, _ in rows), default=1)
    height = 1.2 + (0.3 + 0.15 * lines) * len(rows) + 0.6 * len(panels)
    fig = new_figure((7.5, height))
    ratios_in = [len(p) for p, _ in panels]
    axes = fig.subplots(len(panels), 1, squeeze=False,
                        gridspec_kw={"height_ratios": ratios_in})[:, 0]
    for ax, (panel, is_ratio) in zip(axes, panels, strict=True):
        y = np.arange(len(panel))[::-1]
        for yi, (_, e) in zip(y, panel, strict=True):
            lo, hi = e.lower, e.upper
            ax.plot([lo, hi], [yi, yi], color="#333333")
            ax.plot([e.estimate], [yi], "s", color=COLOURS[0])
            ax.text(1.02, yi, f"{e.estimate:.3g} ({lo:.3g} to {hi:.3g})",
                    transform=ax.get_yaxis_transform(), va="center", fontsize=8)
        ax.axvline(1.0 if is_ratio else 0.0, color="#888888", linestyle="--")
        if is_ratio:
            ax.set_xscale("log")
            # plain numbers at 0.2, 0.5, 1, 2, 5…: the default minor labels overlap
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(0.2, 0.5, 1.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(y, [label for label, _ in panel], fontsize=8)
        ax.set_ylim(-0.7, len(panel) - 0.3)
        ax.set_xlabel("ratio (log scale)" if is_ratio else "difference")
    axes[0].set_title(title)
    fig.subplots_adjust(left=0.33, right=0.72, hspace=0.6)
    return fig


def boundaries_figure(b: Boundaries, observed: Sequence[tuple[float, float]] = (),
                      *, title: str = "Group-sequential boundaries") -> Figure:
    """Efficacy boundaries (z) against the information fraction, with the observed z
    statistics (closed report only)."""
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    t = np.asarray(b.information_fractions)
    ax.plot(t, b.z_upper, "o-", color=COLOURS[1], label="upper boundary")
    if b.z_lower is not None:
        ax.plot(t, b.z_lower, "o-", color=COLOURS[1], alpha=0.6, label="lower boundary")
    if observed:
        ot, oz = zip(*observed, strict=True)
        ax.plot(ot, oz, "D", color=COLOURS[0], markersize=8, label="observed z")
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("Information fraction")
    ax.set_ylabel("z (positive favours the treatment arm)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def consort_figure(counts: ConsortCounts) -> Figure:
    """The CONSORT diagram drawn with matplotlib (the PDF's copy of the SVG)."""
    fig = new_figure(A4_PORTRAIT)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.axis("off")
    box = {"boxstyle": "square,pad=0.5", "facecolor": "white", "edgecolor": "#333333"}
    ax.text(50, 97, "CONSORT 2010 flow diagram", ha="center", fontsize=12,
            fontweight="bold")
    y = 92.0
    if counts.assessed is not None:
        ax.text(50, y, f"Assessed for eligibility (n = {counts.assessed})", ha="center",
                va="top", bbox=box, fontsize=9)
        lines = [f"Excluded (n = {counts.excluded})",
                 *(f"  {k} (n = {v})" for k, v in counts.exclusion_reasons.items())]
        ax.text(60, y - 5, "\n".join(lines), va="top", bbox=box, fontsize=8)
        y -= 8 + 2.2 * len(lines)
    ax.text(50, y, f"Randomized (n = {counts.randomized})", ha="center", va="top", bbox=box,
            fontsize=9)
    y -= 8
    width = 100 / len(counts.arms)
    for k, arm in enumerate(counts.arms):
        x = width * k + 3
        ax.text(x, y, "\n\n".join(_flow_text(arm)), va="top", bbox=box, fontsize=8,
                wrap=True)
    return fig


def _flow_text(a: ArmFlow) -> list[str]:
    parts = [f"Allocated to {a.arm} (n = {a.allocated})"]
    if a.received is not None:
        parts[0] += (f"\n  received allocated intervention (n = {a.received})"
                     f"\n  did not receive it (n = {a.not_received})")
        parts[0] += "".join(f"\n    {k} (n = {v})" for k, v in a.not_received_reasons.items())
        parts.append(f"Lost to follow-up (n = {a.lost_to_follow_up})\n"
                     f"Discontinued intervention (n = {a.discontinued})")
        parts.append(f"Analysed (n = {a.analysed})\n  excluded from analysis "
                     f"(n = {a.excluded_from_analysis})")
    return parts


def text_pages(lines: Sequence[str], *, header: str, footer: str,
               lines_per_page: int = 62) -> list[Figure]:
    """Monospaced text pages (A4) for the PDF; header and footer on every page."""
    pages = []
    chunks = [lines[i:i + lines_per_page] for i in range(0, max(len(lines), 1),
                                                         lines_per_page)]
    for chunk in chunks:
        fig = new_figure(A4_PORTRAIT)
        fig.text(0.06, 0.965, header, fontsize=9, fontweight="bold", va="top")
        fig.text(0.06, 0.94, "\n".join(chunk), fontsize=7, family="monospace", va="top")
        stamp(fig, footer)
        pages.append(fig)
    return pages


def stamp(fig: Figure, footer: str) -> None:
    fig.text(0.06, 0.015, footer, fontsize=6, color="#444444", va="bottom", wrap=True)
