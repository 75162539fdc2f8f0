"""Small dataset builders shared by the analysis tests."""

from __future__ import annotations

from trialdesk.analysis import SubjectsDataset


def counts_dataset(x1: int, n1: int, x2: int, n2: int) -> SubjectsDataset:
    """Subjects with the given day-28 deaths: reference arm 'ref' (x2 of n2 died on day 10,
    the others censored at day 28), treatment arm 'trt' (x1 of n1)."""
    rows = []
    for arm, deaths, n in (("ref", x2, n2), ("trt", x1, n1)):
        rows += [{"subject_id": f"{arm}{i}", "arm": arm, "time": 10 if i < deaths else 28,
                  "event": int(i < deaths)} for i in range(n)]
    return SubjectsDataset.from_records(rows)
