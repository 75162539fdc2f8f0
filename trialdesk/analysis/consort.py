"""CONSORT 2010 flow diagram from the screening log and the dispositions, as SVG text.

Counts (:func:`consort_counts`):

* **assessed for eligibility** = rows of the screening log;
* **excluded** = rows with status ``excluded``, broken down by ``exclusion_reason``;
* **randomized** = rows with status ``randomized`` (= the subjects, checked when the
  dataset is built);
* per arm: **allocated** (subjects in the arm), **received allocated intervention** /
  did not (``received_allocated_intervention``), **lost to follow-up**,
  **discontinued** (``disposition`` flags), **analysed** / excluded from analysis
  (``analysed``).

Without a screening log the enrolment boxes show the randomized count only; without
dispositions the per-arm boxes show the allocation only. The SVG is hand-written
(no external tools), well-formed XML, with every count as text; ``pooled=True`` (the
open report) shows totals instead of arms. The boxes name each arm by its protocol label:
draw ``counts.with_labels(ArmLabels.of(protocol))`` (the counts themselves keep the ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from xml.sax.saxutils import escape

from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.analysis.arm_labels import ArmLabels


@dataclass(frozen=True)
class ArmFlow:
    arm: str
    allocated: int
    received: int | None = None
    not_received: int | None = None
    not_received_reasons: dict[str, int] = field(default_factory=dict)
    lost_to_follow_up: int | None = None
    discontinued: int | None = None
    analysed: int | None = None
    excluded_from_analysis: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ConsortCounts:
    assessed: int | None
    excluded: int | None
    exclusion_reasons: dict[str, int]
    randomized: int
    arms: tuple[ArmFlow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"assessed": self.assessed, "excluded": self.excluded,
                "exclusion_reasons": self.exclusion_reasons, "randomized": self.randomized,
                "arms": [a.to_dict() for a in self.arms]}

    def with_labels(self, labels: ArmLabels) -> ConsortCounts:
        """A copy for drawing: each arm named by its label instead of its id."""
        return replace(self, arms=tuple(replace(a, arm=labels(a.arm)) for a in self.arms))

    def pooled(self) -> ConsortCounts:
        """All arms summed into one column ("all arms"), for the open report."""
        def total(name: str) -> int | None:
            values = [getattr(a, name) for a in self.arms]
            return None if any(v is None for v in values) else sum(values)

        reasons: dict[str, int] = {}
        for a in self.arms:
            for k, v in a.not_received_reasons.items():
                reasons[k] = reasons.get(k, 0) + v
        arm = ArmFlow("all arms", sum(a.allocated for a in self.arms), total("received"),
                      total("not_received"), reasons, total("lost_to_follow_up"),
                      total("discontinued"), total("analysed"),
                      total("excluded_from_analysis"))
        return ConsortCounts(self.assessed, self.excluded, self.exclusion_reasons,
                             self.randomized, (arm,))


def consort_counts(dataset: AnalysisDataset) -> ConsortCounts:
    s = dataset.subjects
    screening = dataset.screening
    assessed = excluded = None
    reasons: dict[str, int] = {}
    if screening is not None:
        assessed = len(screening)
        ex = screening[screening["status"] == "excluded"]
        excluded = len(ex)
        reasons = {str(k): int(v) for k, v in ex["exclusion_reason"].value_counts()
                   .sort_index().items()}
    disp = dataset.disposition
    arms = []
    for arm in s.arm_order:
        members = [sid for sid, a in zip(s.subject_ids, s.arms, strict=True) if a == arm]
        if not members:
            continue
        if disp is None:
            arms.append(ArmFlow(arm, len(members)))
            continue
        d = disp[disp["subject_id"].isin(members)]
        not_rec = d[d["received_allocated_intervention"] == 0]
        why = (not_rec["not_received_reason"].fillna("reason not given")
               if "not_received_reason" in d else
               not_rec["subject_id"].map(lambda _: "reason not given"))
        arms.append(ArmFlow(
            arm, len(members), int((d["received_allocated_intervention"] == 1).sum()),
            len(not_rec), {str(k): int(v) for k, v in why.value_counts().sort_index().items()},
            int((d["lost_to_follow_up"] == 1).sum()), int((d["discontinued"] == 1).sum()),
            int((d["analysed"] == 1).sum()), int((d["analysed"] == 0).sum())))
    return ConsortCounts(assessed, excluded, reasons, s.n, tuple(arms))


# --- SVG ------------------------------------------------------------------------------

BOX_W = 250
LINE_H = 15
FONT = 'font-family="DejaVu Sans, Arial, sans-serif" font-size="11"'


def _box(x: float, y: float, w: float, lines: list[str], bold_first: bool = False
         ) -> tuple[str, float]:
    h = LINE_H * len(lines) + 10
    parts = [f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
             'fill="#ffffff" stroke="#333333" stroke-width="1"/>']
    for i, text in enumerate(lines):
        weight = ' font-weight="bold"' if bold_first and i == 0 else ""
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 17 + i * LINE_H:.1f}" {FONT}{weight}>'
                     f'{escape(text)}</text>')
    return "\n".join(parts), h


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            'stroke="#333333" stroke-width="1" marker-end="url(#arrow)"/>')


def _arm_lines(a: ArmFlow) -> dict[str, list[str]]:
    alloc = [f"Allocated to {a.arm} (n = {a.allocated})"]
    if a.received is not None:
        alloc.append(f"  Received allocated intervention (n = {a.received})")
        alloc.append(f"  Did not receive it (n = {a.not_received})")
        alloc += [f"    {k} (n = {v})" for k, v in a.not_received_reasons.items()]
    follow = ([f"Lost to follow-up (n = {a.lost_to_follow_up})",
               f"Discontinued intervention (n = {a.discontinued})"]
              if a.lost_to_follow_up is not None else ["Follow-up: no disposition data"])
    analysis = ([f"Analysed (n = {a.analysed})",
                 f"  Excluded from analysis (n = {a.excluded_from_analysis})"]
                if a.analysed is not None else [f"Analysed (n = {a.allocated}, all "
                                                "randomized: no disposition data)"])
    return {"Allocation": alloc, "Follow-up": follow, "Analysis": analysis}


def consort_svg(counts: ConsortCounts, *, title: str = "CONSORT 2010 flow diagram") -> str:
    """The diagram as an SVG document (UTF-8 text)."""
    n_arms = len(counts.arms)
    gap = 30
    width = max(2 * BOX_W + 120, n_arms * (BOX_W + gap) + 120)
    centre = width / 2
    parts: list[str] = []
    y = 40.0
    parts.append(f'<text x="{centre:.1f}" y="22" text-anchor="middle" {FONT} '
                 f'font-weight="bold">{escape(title)}</text>')
    if counts.assessed is not None:
        box, h = _box(centre - BOX_W / 2, y, BOX_W,
                      [f"Assessed for eligibility (n = {counts.assessed})"], True)
        parts.append(box)
        mid = y + h + 20
        ex_lines = [f"Excluded (n = {counts.excluded})"]
        ex_lines += [f"  {k} (n = {v})" for k, v in counts.exclusion_reasons.items()]
        ex_x = centre + 30
        ex_box, ex_h = _box(ex_x, mid, width - ex_x - 10, ex_lines, True)
        parts.append(ex_box)
        parts.append(f'<line x1="{centre:.1f}" y1="{y + h:.1f}" x2="{centre:.1f}" '
                     f'y2="{mid + ex_h + 20:.1f}" stroke="#333333" stroke-width="1" '
                     'marker-end="url(#arrow)"/>')
        parts.append(_arrow(centre, mid + ex_h / 2, ex_x, mid + ex_h / 2))
        y = mid + ex_h + 20
    box, h = _box(centre - BOX_W / 2, y, BOX_W, [f"Randomized (n = {counts.randomized})"],
                  True)
    parts.append(box)
    top = y + h
    y = top + 40
    columns = [_arm_lines(a) for a in counts.arms]
    col_w = (width - 40 - gap * (n_arms - 1)) / n_arms
    xs = [20 + k * (col_w + gap) for k in range(n_arms)]
    parts.append(f'<line x1="{xs[0] + col_w / 2:.1f}" y1="{top + 20:.1f}" '
                 f'x2="{xs[-1] + col_w / 2:.1f}" y2="{top + 20:.1f}" stroke="#333333"/>')
    parts.append(f'<line x1="{centre:.1f}" y1="{top:.1f}" x2="{centre:.1f}" '
                 f'y2="{top + 20:.1f}" stroke="#333333"/>')
    for x in xs:
        parts.append(_arrow(x + col_w / 2, top + 20, x + col_w / 2, y))
    for stage in ("Allocation", "Follow-up", "Analysis"):
        heights = []
        parts.append(f'<text x="6" y="{y - 4:.1f}" {FONT} fill="#555555">'
                     f'{stage}</text>')
        for x, col in zip(xs, columns, strict=True):
            box, h = _box(x, y, col_w, col[stage], True)
            parts.append(box)
            heights.append(h)
        nxt = y + max(heights) + 30
        if stage != "Analysis":
            for x, h in zip(xs, heights, strict=True):
                parts.append(_arrow(x + col_w / 2, y + h, x + col_w / 2, nxt))
        y = nxt
    height = y + 10
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'
            f' width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} '
            f'{height:.0f}" role="img" aria-label="{escape(title)}">\n'
            '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" '
            'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#333333"/></marker></defs>\n'
            f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>')
    return head + "\n" + "\n".join(parts) + "\n</svg>\n"
