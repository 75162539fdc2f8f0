"""Group-sequential boundaries agree with R's rpact, computed by Rscript in this test run.

One R run (rpact 3.3, ``getDesignGroupSequential``) gives every reference design: types
``"OF"``, ``"P"``, ``"asOF"``, ``"asP"``; one-sided (alpha 0.025, ``sided = 1``) and
two-sided (alpha 0.05, ``sided = 2``); kMax 2..5 equally spaced and
``informationRates = c(0.3, 0.7, 1)``. Without Rscript or rpact these tests FAIL:
``.ci/run`` installs r-base-core and r-cran-rpact.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from trialdesk.analysis.boundaries import (
    TYPES,
    Boundaries,
    boundaries_for_protocol,
    group_sequential_boundaries,
    spending,
)
from trialdesk.errors import DesignError
from trialdesk.protocol import load_protocol

THREEARM = Path(__file__).resolve().parents[1] / "protocols" / "threearm.yaml"
RTOL = 1e-6
NO_R = ("Rscript with the rpact package is needed for the group-sequential reference tests. "
        ".ci/run installs it (apt-get install r-base-core r-cran-rpact); install R and rpact "
        "the same way to run these tests locally.")
R_TYPES = {"obf": "OF", "pocock": "P", "ld-obf": "asOF", "ld-pocock": "asP"}
ALPHA = {1: 0.025, 2: 0.05}
LAYOUTS = ["k2", "k3", "k4", "k5", "u"]  # kMax 2..5 equally spaced; u = c(0.3, 0.7, 1)
UNEQUAL = (0.3, 0.7, 1.0)
DRIFT = 2.8

R_SCRIPT = r"""
suppressPackageStartupMessages(library(rpact))
emit <- function(name, x) cat(name, paste(sprintf("%.17g", as.numeric(x)), collapse = "\t"),
                              "\n", sep = "\t")
for (type in c("OF", "P", "asOF", "asP")) for (sided in 1:2) {
  for (layout in c("k2", "k3", "k4", "k5", "u")) {
    alpha <- if (sided == 1) 0.025 else 0.05
    d <- if (layout == "u") {
      getDesignGroupSequential(informationRates = c(0.3, 0.7, 1), alpha = alpha,
                               sided = sided, typeOfDesign = type)
    } else {
      getDesignGroupSequential(kMax = as.integer(substring(layout, 2)), alpha = alpha,
                               sided = sided, typeOfDesign = type)
    }
    key <- paste(type, sided, layout, sep = "|")
    emit(paste0(key, "|crit"), d$criticalValues)
    emit(paste0(key, "|spent"), d$alphaSpent)
    emit(paste0(key, "|levels"), d$stageLevels)
    t <- d$informationRates; cv <- d$criticalValues
    low <- if (sided == 2) -cv else rep(-8, length(cv))
    p <- getGroupSequentialProbabilities(rbind(low - DRIFT * sqrt(t), cv - DRIFT * sqrt(t)), t)
    emit(paste0(key, "|upper_crossing"), p[3, ] - p[2, ])
  }
}
"""


@functools.cache
def _rpact() -> dict[str, np.ndarray]:
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise FileNotFoundError
    proc = subprocess.run([rscript, "--vanilla", "-e", f"DRIFT <- {DRIFT!r}\n{R_SCRIPT}"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{NO_R}\nR failed:\n{proc.stderr}"
    values = {}
    for line in proc.stdout.splitlines():
        name, *rest = line.strip().split("\t")
        values[name] = np.array([float(v) for v in rest])
    return values


def rpact(type_: str, sides: int, layout: str, what: str) -> np.ndarray:
    try:
        values = _rpact()
    except FileNotFoundError:
        values = None
    if values is None:
        pytest.fail(f"Rscript not found. {NO_R}", pytrace=False)
    return values[f"{R_TYPES[type_]}|{sides}|{layout}|{what}"]


@functools.cache
def ours(type_: str, sides: int, layout: str) -> Boundaries:
    if layout == "u":
        return group_sequential_boundaries(information_fractions=UNEQUAL, type=type_,
                                           alpha=ALPHA[sides], sides=sides)
    return group_sequential_boundaries(int(layout[1:]), type=type_, alpha=ALPHA[sides],
                                       sides=sides)


DESIGNS = [(t, s, layout) for t in TYPES for s in (1, 2) for layout in LAYOUTS]


# --- against rpact -------------------------------------------------------------------


@pytest.mark.parametrize(("type_", "sides", "layout"), DESIGNS)
def test_critical_values_match_rpact(type_: str, sides: int, layout: str):
    """``getDesignGroupSequential(kMax, alpha, sided, typeOfDesign)$criticalValues``,
    relative tolerance 1e-6 (two-sided: both sides integrated, alpha/2 per side)."""
    np.testing.assert_allclose(ours(type_, sides, layout).z_upper,
                               rpact(type_, sides, layout, "crit"), rtol=RTOL, atol=0)


@pytest.mark.parametrize(("type_", "sides", "layout"), DESIGNS)
def test_cumulative_alpha_spent_matches_rpact(type_: str, sides: int, layout: str):
    """``getDesignGroupSequential(…)$alphaSpent`` (both sides together), relative 1e-6 or
    absolute 2e-8 (rpact stops its search at ``tolerance`` = 1e-8 of alpha)."""
    np.testing.assert_allclose(ours(type_, sides, layout).cumulative_alpha_spent,
                               rpact(type_, sides, layout, "spent"), rtol=RTOL, atol=2e-8)


@pytest.mark.parametrize(("type_", "sides", "layout"), DESIGNS)
def test_nominal_alpha_matches_rpact(type_: str, sides: int, layout: str):
    """``getDesignGroupSequential(…)$stageLevels`` × sided (rpact's levels are one-sided,
    ours are p-values of the design's sidedness), relative tolerance 1e-6."""
    np.testing.assert_allclose(ours(type_, sides, layout).nominal_alpha,
                               sides * rpact(type_, sides, layout, "levels"), rtol=RTOL)


@pytest.mark.parametrize(("type_", "sides", "layout"),
                         [d for d in DESIGNS if d[2] in ("k3", "u")])
def test_upper_crossing_probabilities_match_rpact(type_: str, sides: int, layout: str):
    """Per-look upper crossings under drift 2.8: ``getGroupSequentialProbabilities`` of
    rpact's boundaries shifted by −drift·√t (row 3 − row 2; one-sided lower bound −8),
    absolute tolerance 1e-7."""
    np.testing.assert_allclose(ours(type_, sides, layout).crossing_probabilities(DRIFT),
                               rpact(type_, sides, layout, "upper_crossing"), rtol=0,
                               atol=1e-7)


# --- known values and properties -------------------------------------------------------


def test_known_values_two_sided_five_looks():
    """Jennison & Turnbull (2000) tables 2.1 and 2.3: two-sided α = 0.05, K = 5,
    Pocock C_P = 2.413, O'Brien–Fleming C_B = 2.040 (to the 3 decimals printed)."""
    assert group_sequential_boundaries(5, type="pocock").z_upper[0] == pytest.approx(2.413,
                                                                                      abs=5e-4)
    obf = group_sequential_boundaries(5, type="obf")
    assert obf.z_upper[-1] == pytest.approx(2.040, abs=5e-4)
    assert obf.z_upper[0] == pytest.approx(2.040 * math.sqrt(5), abs=2e-3)


@pytest.mark.parametrize("type_", TYPES)
@pytest.mark.parametrize("sides", [1, 2])
@pytest.mark.parametrize("looks", [1, 2, 3, 4, 5, 8])
def test_total_alpha_is_alpha(type_: str, sides: int, looks: int):
    b = group_sequential_boundaries(looks, type=type_, alpha=0.05, sides=sides)
    assert abs(b.cumulative_alpha_spent[-1] - 0.05) < 1e-9
    assert sum(b.exit_probabilities) == pytest.approx(0.05, abs=1e-9)
    assert np.all(np.diff(b.cumulative_alpha_spent) > 0)


@pytest.mark.parametrize("fractions", [(0.2, 0.4, 0.6, 0.8, 1.0), UNEQUAL, (0.1, 1.0)])
def test_obrien_fleming_decreases_and_pocock_is_constant(fractions: tuple[float, ...]):
    for type_ in ("obf", "ld-obf"):
        z = group_sequential_boundaries(information_fractions=fractions, type=type_).z_upper
        assert np.all(np.diff(z) < 0), (type_, z)
    obf = group_sequential_boundaries(information_fractions=fractions, type="obf")
    np.testing.assert_allclose(np.array(obf.z_upper) * np.sqrt(fractions), obf.z_upper[-1])
    z = group_sequential_boundaries(information_fractions=fractions, type="pocock").z_upper
    assert len(set(z)) == 1


@pytest.mark.parametrize("type_", TYPES)
def test_one_look_is_the_fixed_design(type_: str):
    two = group_sequential_boundaries(1, type=type_, alpha=0.05)
    assert two.z_upper[0] == pytest.approx(norm.ppf(0.975), rel=1e-12)
    assert two.z_lower is not None and two.z_lower[0] == -two.z_upper[0]
    assert two.nominal_alpha[0] == pytest.approx(0.05, rel=1e-12)
    one = group_sequential_boundaries(1, type=type_, alpha=0.025, sides=1)
    assert one.z_upper[0] == pytest.approx(norm.ppf(0.975), rel=1e-12)
    assert one.z_lower is None


@pytest.mark.parametrize("type_", ["ld-obf", "ld-pocock"])
@pytest.mark.parametrize("sides", [1, 2])
def test_spending_designs_spend_the_function(type_: str, sides: int):
    b = group_sequential_boundaries(information_fractions=(0.25, 0.5, 0.8, 1.0), type=type_,
                                    sides=sides)
    expected = spending(type_, np.array(b.information_fractions), 0.05, sides)
    np.testing.assert_allclose(b.cumulative_alpha_spent, expected, rtol=1e-9, atol=1e-15)


def test_two_sided_obf_spending_is_alpha_half_per_side():
    """4 − 4Φ(z_{1−α/4}/√t) (α/2 per side), not 2 − 2Φ(z_{1−α/2}/√t)."""
    t = np.array([0.25, 0.5])
    ours_ = spending("ld-obf", t, 0.05, 2)
    np.testing.assert_allclose(ours_, 4 - 4 * norm.cdf(norm.ppf(1 - 0.0125) / np.sqrt(t)))
    assert np.all(ours_ < 2 - 2 * norm.cdf(norm.ppf(0.975) / np.sqrt(t)))
    assert spending("ld-pocock", 1.0, 0.05) == pytest.approx(0.05)


def test_two_sided_under_h0_each_side_spends_half():
    b = group_sequential_boundaries(4, type="pocock")
    np.testing.assert_allclose(b.crossing_probabilities(0.0),
                               np.array(b.exit_probabilities) / 2, rtol=1e-12)
    power = sum(b.crossing_probabilities(3.0))
    assert 0.75 < power < norm.sf(norm.ppf(0.975) - 3.0)  # below the fixed design's power


def test_grid_is_fine_enough():
    """r = 80 agrees with r = 160 to 1e-9 relative (r = 20 is off by up to ~1e-7)."""
    for type_ in TYPES:
        coarse = group_sequential_boundaries(information_fractions=(0.1, 0.4, 1), type=type_)
        fine = group_sequential_boundaries(information_fractions=(0.1, 0.4, 1), type=type_,
                                           grid_r=160)
        np.testing.assert_allclose(coarse.z_upper, fine.z_upper, rtol=1e-9)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"looks": 0}, "looks"),
    ({}, "looks"),
    ({"looks": 3, "information_fractions": (0.5, 1)}, "information_fractions"),
    ({"information_fractions": (0.5, 0.4, 1)}, "information_fractions"),
    ({"information_fractions": (0.5, 0.9)}, "information_fractions"),
    ({"information_fractions": (0, 1)}, "information_fractions"),
    ({"looks": 2, "alpha": 0.0}, "alpha"),
    ({"looks": 2, "alpha": 1.2}, "alpha"),
    ({"looks": 2, "alpha": 0.6, "sides": 1}, "alpha"),
    ({"looks": 2, "sides": 3}, "sides"),
    ({"looks": 2, "type": "haybittle"}, "type"),
])
def test_impossible_designs_are_refused(kwargs: dict, field: str):
    kwargs = {"type": "obf", **kwargs}
    looks = kwargs.pop("looks", None)
    with pytest.raises(DesignError) as info:
        group_sequential_boundaries(looks, **kwargs)
    assert info.value.field == field
    assert info.value.code == "DESIGN_INVALID"


def test_boundaries_for_protocol():
    assert boundaries_for_protocol(load_protocol()) is None  # RUMCESS: no interim look
    p = load_protocol(THREEARM)  # one-sided 0.025, look at 0.5, lan_demets_of
    b = boundaries_for_protocol(p)
    assert b is not None
    assert (b.type, b.sides, b.alpha, b.information_fractions) == ("ld-obf", 1, 0.025,
                                                                   (0.5, 1.0))
    assert b.z_upper == group_sequential_boundaries(2, type="ld-obf", alpha=0.025,
                                                    sides=1).z_upper
    no_rule = p.model_copy(update={"analysis": p.analysis.model_copy(
        update={"alpha_spending": "none"})})
    with pytest.raises(DesignError, match="alpha_spending"):
        boundaries_for_protocol(no_rule)


def test_to_dict_and_str():
    b = group_sequential_boundaries(3, type="ld-obf")
    data = json.loads(json.dumps(b.to_dict(), allow_nan=False))
    assert data["looks"] == 3 and data["sides"] == 2 and data["type"] == "ld-obf"
    assert data["z_lower"] == [-z for z in data["z_upper"]]
    assert set(data) >= {"information_fractions", "nominal_alpha", "cumulative_alpha_spent",
                         "exit_probabilities", "method"}
    text = str(b)
    assert "Lan-DeMets" in text and "±3.7103" in text and "0.050000" in text
    one = group_sequential_boundaries(2, type="obf", alpha=0.025, sides=1).to_dict()
    assert one["z_lower"] is None
