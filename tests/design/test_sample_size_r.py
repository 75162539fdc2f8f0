"""Sample sizes agree with R, computed by Rscript in this test run: ``power.prop.test``
(normal approximation), Fleiss' correction and the arcsine formula written out in R,
Fisher's exact power by enumerating ``fisher.test`` over every table, and rpact
(``getDesignCharacteristics``, ``getSampleSizeRates``, ``getSampleSizeSurvival``) for
group-sequential inflation and the Schoenfeld / Freedman events.

What ``power.prop.test`` computes: per-arm n solving
Φ((√n Δ − z_{α/2} √(2 p̄ q̄)) / √(p₁q₁ + p₂q₂)) = power by ``uniroot`` with
``tol = .Machine$double.eps^0.25`` (n good to about 1e-4 only); with ``tol = 1e-12`` it
is the closed form TrialDesk uses, to 1e-9. Its default ``strict = FALSE`` counts one
tail, like TrialDesk's ``normal`` method; ``strict = TRUE`` adds the wrong-direction
tail (TrialDesk ``strict=True``). Without Rscript and rpact these tests FAIL.
"""

from __future__ import annotations

import math

import pytest

from tests.analysis.rscript import run_r
from trialdesk.analysis.boundaries import group_sequential_boundaries
from trialdesk.design.sample_size import (
    arcsine_n,
    binary_sample_size,
    fisher_power,
    fleiss_n,
    inflate,
    inflation_factor,
    normal_n,
    normal_power,
    required_events,
    survival_sample_size,
)

CASES = [(0.8, 0.4, 0.05, 0.8, 2), (0.3, 0.15, 0.05, 0.9, 2), (0.5, 0.2, 0.025, 0.8, 1),
         (0.2, 0.35, 0.01, 0.8, 2)]


@pytest.fixture(scope="module")
def r_binary(tmp_path_factory):
    script = "\n".join(
        f"""p1 <- {p1}; p2 <- {p2}; a <- {a}; pw <- {pw}; s <- {s}
alt <- if (s == 2) "two.sided" else "one.sided"
n <- power.prop.test(p1 = p1, p2 = p2, sig.level = a, power = pw, alternative = alt,
                     tol = 1e-12)$n
emit("n{i}", n)
emit("n_default_tol{i}", power.prop.test(p1 = p1, p2 = p2, sig.level = a, power = pw,
                                         alternative = alt)$n)
emit("power{i}", power.prop.test(n = 17, p1 = p1, p2 = p2, sig.level = a,
                                 alternative = alt)$power)
emit("strict{i}", power.prop.test(n = 17, p1 = p1, p2 = p2, sig.level = a,
                                  alternative = alt, strict = TRUE)$power)
d <- abs(p1 - p2)
emit("fleiss{i}", n / 4 * (1 + sqrt(1 + 4 / (n * d)))^2)
h <- 2 * asin(sqrt(p1)) - 2 * asin(sqrt(p2))
emit("arcsine{i}", 2 * ((qnorm(1 - a / s) + qnorm(pw)) / h)^2)"""
        for i, (p1, p2, a, pw, s) in enumerate(CASES))
    return run_r(script, tmp_path_factory.mktemp("r"))


@pytest.mark.parametrize("i", range(len(CASES)))
def test_normal_matches_power_prop_test(r_binary, i):
    p1, p2, a, pw, s = CASES[i]
    assert normal_n(p1, p2, a, pw, s) == pytest.approx(r_binary[f"n{i}"][0], rel=1e-9)
    # R's default uniroot tolerance leaves n good to ~1e-4: documented, not a mismatch
    assert normal_n(p1, p2, a, pw, s) == pytest.approx(r_binary[f"n_default_tol{i}"][0],
                                                       rel=1e-3)
    assert normal_power(17, p1, p2, a, s) == pytest.approx(r_binary[f"power{i}"][0], abs=1e-12)
    assert normal_power(17, p1, p2, a, s, strict=True) == pytest.approx(
        r_binary[f"strict{i}"][0], abs=1e-12)
    result = binary_sample_size(p1, p2, alpha=a, power=pw, sides=s, method="normal")
    assert result.n_per_arm == math.ceil(r_binary[f"n{i}"][0])
    assert result.achieved_power >= pw


@pytest.mark.parametrize("i", range(len(CASES)))
def test_fleiss_and_arcsine_match_r(r_binary, i):
    p1, p2, a, pw, s = CASES[i]
    assert fleiss_n(normal_n(p1, p2, a, pw, s), p1, p2) == pytest.approx(
        r_binary[f"fleiss{i}"][0], rel=1e-9)
    assert arcsine_n(p1, p2, a, pw, s) == pytest.approx(r_binary[f"arcsine{i}"][0], rel=1e-9)
    for method in ("normal-cc", "arcsine"):
        result = binary_sample_size(p1, p2, alpha=a, power=pw, sides=s, method=method)
        # the rounded-up n reaches the target, one fewer does not
        assert result.achieved_power >= pw
        smaller = binary_sample_size.__globals__[
            "normal_cc_power" if method == "normal-cc" else "arcsine_power"](
            result.n_per_arm - 1, p1, p2, a, s)
        assert smaller < pw


R_FISHER_POWER = """
fisher_power <- function(n, pc, pt, a) {
  total <- 0
  for (xt in 0:n) for (xc in 0:n) {
    p <- fisher.test(matrix(c(xt, xc, n - xt, n - xc), 2))$p.value
    if (p <= a) total <- total + dbinom(xt, n, pt) * dbinom(xc, n, pc)
  }
  total
}
for (n in 10:23) emit(paste0("fisher", n), fisher_power(n, 0.8, 0.4, 0.05))
"""


def test_exact_power_and_saw_tooth_match_r_fisher_test(tmp_path):
    """RUMCESS's 0.8 vs 0.4: R's fisher.test over all tables gives the exact power for
    n = 10..23 per arm; the power is a saw-tooth (n = 14 has less than n = 13), so for a
    target of 0.45 the first n is 13 but the power stays at the target only later."""
    r = run_r(R_FISHER_POWER, tmp_path)
    powers = {n: r[f"fisher{n}"][0] for n in range(10, 24)}
    for n, expected in powers.items():
        assert fisher_power(n, 0.8, 0.4) == pytest.approx(expected, abs=1e-10)
    assert powers[14] < 0.45 <= powers[13]
    result = binary_sample_size(0.8, 0.4, power=0.45, method="exact")
    first = min(n for n in powers if powers[n] >= 0.45)
    assert (result.n_per_arm, result.stays_above_target) == (first, False)
    assert result.horizon == 23  # 13 + at least 10 more
    stable = 1 + max(n for n in powers if powers[n] < 0.45)
    assert result.n_stable == stable and result.achieved_power == pytest.approx(powers[13])
    rumcess = fisher_power(15, 0.8, 0.4)
    assert rumcess == pytest.approx(powers[15], abs=1e-10)


DESIGNS = [("ld-obf", 3, 0.05, 2, "asOF"), ("obf", 2, 0.05, 2, "OF"),
           ("pocock", 4, 0.025, 1, "P"), ("ld-pocock", 3, 0.05, 2, "asP")]


@pytest.fixture(scope="module")
def r_rpact(tmp_path_factory):
    lines = ["suppressPackageStartupMessages(library(rpact))"]
    for i, (_, k, a, s, rtype) in enumerate(DESIGNS):
        lines.append(f"""d <- getDesignGroupSequential(kMax = {k}, typeOfDesign = "{rtype}",
  alpha = {a}, sided = {s}, beta = 0.2)
emit("if{i}", getDesignCharacteristics(d)$inflationFactor)
ss <- getSampleSizeRates(d, pi1 = 0.4, pi2 = 0.8)
emit("max{i}", ss$maxNumberOfSubjects)
emit("fixed{i}", ss$nFixed)""")
    lines.append("""d1 <- getDesignGroupSequential(kMax = 1, alpha = 0.05, sided = 2, beta = 0.2)
for (t in c("Schoenfeld", "Freedman")) {
  emit(t, getSampleSizeSurvival(d1, hazardRatio = 0.5, pi2 = 0.8,
                                typeOfComputation = t)$eventsFixed)
  emit(paste0(t, "_2to1"), getSampleSizeSurvival(d1, hazardRatio = 0.6, pi2 = 0.8,
       typeOfComputation = t, allocationRatioPlanned = 2)$eventsFixed)
}""")
    return run_r("\n".join(lines), tmp_path_factory.mktemp("rpact"))


@pytest.mark.parametrize("i", range(len(DESIGNS)))
def test_group_sequential_inflation_matches_rpact(r_rpact, i):
    kind, k, a, s, _ = DESIGNS[i]
    b = group_sequential_boundaries(k, type=kind, alpha=a, sides=s)
    factor = inflation_factor(b, 0.8)
    assert factor == pytest.approx(r_rpact[f"if{i}"][0], rel=1e-6)
    fixed = normal_n(0.8, 0.4, a, 0.8, s)
    assert 2 * fixed == pytest.approx(r_rpact[f"fixed{i}"][0], rel=1e-9)
    size = inflate(fixed, b, 0.8)
    assert 2 * size.max_n_per_arm_unrounded == pytest.approx(r_rpact[f"max{i}"][0], rel=1e-6)
    assert size.max_n_per_arm == math.ceil(size.max_n_per_arm_unrounded)


def test_schoenfeld_and_freedman_events_match_rpact(r_rpact):
    assert required_events(0.5) == pytest.approx(r_rpact["Schoenfeld"][0], rel=1e-9)
    assert required_events(0.5, method="freedman") == pytest.approx(r_rpact["Freedman"][0],
                                                                    rel=1e-9)
    for method, key in (("schoenfeld", "Schoenfeld_2to1"), ("freedman", "Freedman_2to1")):
        assert required_events(0.6, method=method, allocation=2 / 3) == pytest.approx(
            r_rpact[key][0], rel=1e-9)
    size = survival_sample_size(0.5, event_probability=0.6)
    assert size.events == 66 and size.n_total == math.ceil(66 / 0.6)
