"""Run R (Rscript) from the tests and read back its numbers.

The R reference tests compute the same quantities with R on the same data, in the
test run. R prints ``name<TAB>value<TAB>value…`` lines (values ``%.17g``, ``NA``);
:func:`run_r` returns them as ``{name: numpy array}``. Without ``Rscript`` the tests
FAIL (not skip) with a message saying how to get R: ``.ci/run`` installs it.
"""

from __future__ import annotations

import csv
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LUNG = SHARED_DATA / "lung.csv"

NO_R = ("Rscript not found: the R reference tests need R with the survival and epitools "
        "packages. .ci/run installs them (apt-get install r-base-core r-cran-survival "
        "r-cran-epitools); install R the same way to run these tests locally.")

PRELUDE = r"""
suppressPackageStartupMessages(library(survival))
emit <- function(name, x) {
  x <- as.numeric(x)
  cat(name, paste(ifelse(is.na(x), "NA", sprintf("%.17g", x)), collapse = "\t"), sep = "\t")
  cat("\n")
}
"""


def rscript() -> str:
    path = shutil.which("Rscript")
    if path is None:
        pytest.fail(NO_R, pytrace=False)
    return path


def run_r(script: str, tmp_path: Path, **tables: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Write each table as ``NAME.csv`` in ``tmp_path`` (R sees the path in ``NAME_csv``),
    run the script and parse what it emits."""
    lines = [PRELUDE]
    for name, rows in tables.items():
        path = tmp_path / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        lines.append(f'{name}_csv <- "{path.as_posix()}"')
    source = tmp_path / "reference.R"
    source.write_text("\n".join([*lines, script]), encoding="utf-8")
    proc = subprocess.run([rscript(), "--vanilla", str(source)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"R failed:\n{proc.stderr}"
    values: dict[str, np.ndarray] = {}
    for line in proc.stdout.splitlines():
        name, *rest = line.rstrip("\t").split("\t")
        values[name] = np.array([math.nan if v == "NA" else float(v) for v in rest])
    return values


def lung_records(strata: bool = False) -> list[dict[str, Any]]:
    """R's survival::lung as subjects: arm = sex (1 male, 2 female), event = status 2."""
    with LUNG.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    records = []
    for i, row in enumerate(rows, 1):
        record: dict[str, Any] = {"subject_id": f"L{i:03d}", "arm": row["sex"],
                                  "time": float(row["time"]),
                                  "event": int(row["status"] == "2")}
        if strata:
            age = int(row["age"])
            record["stratum"] = "lt60" if age < 60 else "60to69" if age < 70 else "ge70"
        records.append(record)
    return records
