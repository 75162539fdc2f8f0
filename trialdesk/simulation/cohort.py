"""The published RUMCESS cohort the virtual patients are calibrated to.

Source: Galstyan et al., Int J Blood Res Disord 2018;5:033, Table 1 (``../shared/
domain.md`` §1.2), 15 + 15 patients. Both arms are pooled: the trial randomized them
from one population. Continuous characteristics are drawn from a piecewise-linear
quantile function through the published quartiles, so the simulated median and
quartiles equal the published ones by construction; the tails (the 0 and 1 points) are
assumptions, marked below. Where no number was published (cytokines, neutrophil
counts, weights) the values are *assumed* for realism and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class QuantileCurve:
    """A distribution given by its quantile function, linear between the points
    (probability, value). Drawing = interpolating uniform numbers."""

    probabilities: tuple[float, ...]
    values: tuple[float, ...]

    def draw(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        return np.interp(rng.random(size), self.probabilities, self.values)

    def quantile(self, p: float) -> float:
        return float(np.interp(p, self.probabilities, self.values))


@dataclass(frozen=True)
class Categorical:
    """Levels with probabilities (summing to 1)."""

    levels: tuple[str, ...]
    probabilities: tuple[float, ...]

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(np.array(self.levels, dtype=object), size=size,
                          p=np.array(self.probabilities))


@dataclass(frozen=True)
class CohortCalibration:
    """Targets of the virtual-patient generator, with their sources."""

    #: age in years: published medians 40 and 47 (pooled ≈ 44), ranges 30–75 and 33–81;
    #: the registry admits 17–75, so the curve ends before the 76th birthday (quartiles
    #: 34/56 assumed); exact age, so completed years have median 44
    age_years: QuantileCurve = QuantileCurve((0, 0.05, 0.25, 0.5, 0.75, 1),
                                             (18, 30.5, 34.5, 44.5, 56.5, 75.99))
    #: 13 of 30 male
    p_male: float = 13 / 30
    #: cause of neutropenia (stratification factor): 23/30 had chemotherapy, 3/30
    #: immunosuppressive therapy (renal transplant: drug-induced, non-chemotherapy);
    #: the remaining 4 split between aplastic anaemia and other (assumed 1 and 3)
    neutropenia_cause: Categorical = Categorical(
        ("post_chemotherapy", "drug_induced_non_chemotherapy", "aplastic_anemia", "other"),
        (23 / 30, 3 / 30, 1 / 30, 3 / 30))
    #: APACHE II: medians 33.5 and 34.0, IQR 26.3–36.0 and 27–36 → pooled 34 (27–36);
    #: the ends (12, 55) are assumed; drawn values are rounded to whole points
    apache_ii: QuantileCurve = QuantileCurve((0, 0.25, 0.5, 0.75, 1), (12, 27, 34, 36, 55))
    #: baseline (day 0) SOFA: medians 16.0/16.5, IQR 15–17/15–17.8, abstract means
    #: 15.9/16.1 → a distribution on whole points with Q1 15, median 16, Q3 17, mean 16.0
    baseline_sofa_pmf: dict[int, float] = field(default_factory=lambda: {
        11: 0.02, 12: 0.03, 13: 0.05, 14: 0.08, 15: 0.17, 16: 0.25, 17: 0.22, 18: 0.10,
        19: 0.05, 20: 0.03})
    #: serum lactate mmol/L: medians 3.5 and 3.5, IQR 2.9–4.5 and 2.5–4.2 → 3.5 (2.7–4.35);
    #: tails 1.0 and 15 assumed
    lactate_mmol_per_l: QuantileCurve = QuantileCurve((0, 0.25, 0.5, 0.75, 0.97, 1),
                                                      (1.0, 2.7, 3.5, 4.35, 8.0, 15.0))
    #: hours from shock onset to randomization: medians 5 and 5.5, IQR 4–7 and 3–8 →
    #: 5.25 (3.5–7.5), inside the 10-h window
    onset_to_randomization_hours: QuantileCurve = QuantileCurve(
        (0, 0.25, 0.5, 0.75, 1), (1.0, 3.5, 5.25, 7.5, 10.0))
    #: 12 of 30 mechanically ventilated at baseline
    p_ventilated: float = 12 / 30
    #: 9 of 30 on renal replacement therapy
    p_renal_replacement: float = 9 / 30
    #: 28-day mortality on standard therapy: 12 of 15 died (20% alive)
    control_mortality_day28: float = 0.8
    #: of the control day-28 survivors, all 3 were alive at 3 months; of the MSC arm's 9,
    #: 5 died by 3 months: late deaths are assumed to happen to a fifth of the
    #: survivors (a compromise between 0/3 and 5/9)
    late_mortality_day28_to_90: float = 0.2
    #: shape of the Weibull time to death within 28 days (< 1: most deaths early;
    #: assumed, no event times were published)
    death_weibull_shape: float = 0.7
    #: absolute neutrophil count ×10^9/L at screening (≤ 1 by eligibility; assumed)
    neutrophils_10e9_per_l: QuantileCurve = QuantileCurve((0, 0.25, 0.5, 0.75, 1),
                                                          (0.0, 0.02, 0.1, 0.3, 1.0))
    #: body weight kg (assumed)
    weight_kg: QuantileCurve = QuantileCurve((0, 0.25, 0.5, 0.75, 1), (45, 62, 72, 84, 130))

    def baseline_sofa(self, rng: np.random.Generator, size: int) -> np.ndarray:
        values = np.array(list(self.baseline_sofa_pmf))
        return rng.choice(values, size=size, p=np.array(list(self.baseline_sofa_pmf.values())))


RUMCESS_COHORT = CohortCalibration()
