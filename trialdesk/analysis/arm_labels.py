"""Arm labels for readers: the protocol's ``arms[].label`` in place of the arm id.

Arm ids (``control``, ``msc``) are the machine names: the data files, the JSON of
``trialdesk analyze --json`` and the CSV exports keep them. What a person reads — the
report's tables, figures, CONSORT boxes, decisions and caveats, the web pages — shows
the protocol's label ("Standard therapy", "MSC + standard therapy"). Without a
protocol (an analysis run from CSV files alone) the label is the id itself.

Text written by the analyses ("msc vs control: a zero count …") names arms by id;
:meth:`ArmLabels.text` rewrites only the two forms the analyses use for an arm inside a
sentence — a comparison ``"<id> vs <id>"`` and a quoted ``'<id>'`` — never a bare
word, so an id that is also an English word ("control") is not replaced elsewhere;
:meth:`ArmLabels.term` does the same for model terms (``armmsc:day``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import permutations

from trialdesk.protocol.schema import Protocol


@dataclass(frozen=True)
class ArmLabels:
    """id → label; an id without a label (or any unknown name) reads as itself."""

    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, protocol: Protocol | None) -> ArmLabels:
        """The protocol's labels, or the ids themselves when there is no protocol."""
        if protocol is None:
            return cls({})
        return cls({arm.id: arm.label for arm in protocol.arms if arm.label})

    def __call__(self, arm_id: str) -> str:
        return self.labels.get(arm_id, arm_id)

    @property
    def relabels(self) -> bool:
        """True when at least one arm reads differently from its id."""
        return any(label != arm_id for arm_id, label in self.labels.items())

    def comparison(self, treatment: str, reference: str) -> str:
        return f"{self(treatment)} vs {self(reference)}"

    def text(self, sentence: str) -> str:
        """``sentence`` with every "<id> vs <id>" and "'<id>'" shown with the labels."""
        for treatment, reference in permutations(self.labels, 2):
            sentence = sentence.replace(f"{treatment} vs {reference}",
                                        self.comparison(treatment, reference))
        for arm_id in self.labels:
            sentence = sentence.replace(f"'{arm_id}'", f"'{self(arm_id)}'")
        return sentence

    def term(self, name: str) -> str:
        """A model term named R's way, ``arm<id>…`` ("armmsc:day"), as ``arm[<label>]…``."""
        for arm_id in sorted(self.labels, key=len, reverse=True):
            if name.startswith(f"arm{arm_id}"):
                return f"arm[{self(arm_id)}]{name[len(arm_id) + 3:]}"
        return name

    def legend(self, arm_ids: Iterable[str]) -> str:
        """"control = Standard therapy; msc = MSC + standard therapy" ("" if none differ)."""
        pairs = [f"{a} = {self(a)}" for a in arm_ids if self(a) != a]
        return "; ".join(pairs)
