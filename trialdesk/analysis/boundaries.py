"""Group-sequential efficacy boundaries (pure numpy/scipy), checked against R's rpact.

:func:`group_sequential_boundaries` gives the critical values of the standardized test
statistic Z_k at K looks with information fractions t_1 < … < t_K = 1:

* ``obf``: classical O'Brien–Fleming, c_k = c/√t_k (c·√(K/k) when equally spaced);
* ``pocock``: classical Pocock, c_k = c;
* ``ld-obf``: Lan–DeMets spending with the O'Brien–Fleming-type function;
* ``ld-pocock``: Lan–DeMets spending with the Pocock-type function α·ln(1 + (e − 1)t).

For the classical designs c is solved so that the total crossing probability under H0
equals alpha; for the spending designs each c_k is solved so that the cumulative crossing
probability equals the spending function at t_k (same conventions as rpact's
``getDesignGroupSequential``, ``typeOfDesign`` ``"OF"``, ``"P"``, ``"asOF"``, ``"asP"``).

Two-sided designs are symmetric and both sides are integrated: the trial continues
while −c_k < Z_k < c_k, and the exit probability at a look is P(Z_k ≥ c_k) +
P(Z_k ≤ −c_k) over the paths still running (not "one side, doubled"). Under H0 each
side spends exactly α/2. The spending functions spend **α/2 per side**: the two-sided
O'Brien–Fleming type is 2·(2 − 2Φ(z_{1−α/4}/√t)), not 2 − 2Φ(z_{1−α/2}/√t) (which
feeds the two-sided α into a one-sided function and spends too early).

Numerical method: the recursive integration of Armitage, McPherson and Rowe (1969) in
the form of Jennison & Turnbull (2000), chapter 19: the density of Z_k on the
continuation region is carried from look to look on a grid, integrated by Simpson's
rule. The grid points follow Jennison–Turnbull's spacing with r = 80 (``grid_r``;
points spaced 3/(2r) within ±3 of the mean, logarithmically wider out to
±(3 + 4 ln r)); the continuation region is covered by a fixed number (6r − 2) of Simpson
panels placed by that spacing, so that probabilities are smooth functions of the
boundaries (no jumps as grid points enter or leave the region while solving).
``nominal_alpha`` is the p-value a look needs in the design's sidedness
(2·(1 − Φ(c_k)) for two-sided designs; rpact's ``stageLevels`` are one-sided).
:meth:`Boundaries.crossing_probabilities` counts **upper** crossings only (rpact's
convention for power); paths that cross the lower boundary of a two-sided design stop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from trialdesk.errors import DesignError

if TYPE_CHECKING:
    from trialdesk.protocol import Protocol

BoundaryType = Literal["obf", "pocock", "ld-obf", "ld-pocock"]
TYPES: tuple[str, ...] = ("obf", "pocock", "ld-obf", "ld-pocock")
TYPE_LABELS = {"obf": "O'Brien-Fleming", "pocock": "Pocock",
               "ld-obf": "Lan-DeMets, O'Brien-Fleming-type spending",
               "ld-pocock": "Lan-DeMets, Pocock-type spending"}
#: protocol ``analysis.alpha_spending`` -> boundary type
PROTOCOL_TYPES = {"obrien_fleming": "obf", "pocock": "pocock", "lan_demets_of": "ld-obf",
                  "lan_demets_pocock": "ld-pocock"}
DEFAULT_GRID_R = 80
MAX_LOOKS = 50
_Z_MAX = 38.0  # P(Z > 38) underflows: the largest finite boundary searched
_SQRT_2PI = math.sqrt(2 * math.pi)


# --- the grid and the recursion ---------------------------------------------------


def _jt_point(u: np.ndarray, r: int) -> np.ndarray:
    """Jennison–Turnbull's grid point for a (real) index u in [1, 6r − 1], mean 0."""
    low = -3 - 4 * np.log(r / np.clip(u, 1e-300, None))
    mid = -3 + 3 * (u - r) / (2 * r)
    high = 3 + 4 * np.log(r / np.clip(6 * r - u, 1e-300, None))
    return np.where(u < r, low, np.where(u <= 5 * r, mid, high))


def _jt_index(x: float, r: int) -> float:
    """Inverse of :func:`_jt_point`."""
    if x < -3:
        return r * math.exp((x + 3) / 4)
    if x <= 3:
        return r + (x + 3) * 2 * r / 3
    return 6 * r - r * math.exp((3 - x) / 4)


def _grid(mean: float, lower: float, upper: float, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Simpson nodes and weights covering (lower, upper) ∩ mean ± (3 + 4 ln r)."""
    reach = 3 + 4 * math.log(r)
    lo, hi = max(lower - mean, -reach), min(upper - mean, reach)
    if lo >= hi:
        return np.zeros(0), np.zeros(0)
    ends = _jt_point(np.linspace(_jt_index(lo, r), _jt_index(hi, r), 6 * r - 1), r) + mean
    ends[0], ends[-1] = lo + mean, hi + mean
    width = np.diff(ends)
    z = np.empty(2 * len(ends) - 1)
    z[0::2], z[1::2] = ends, (ends[:-1] + ends[1:]) / 2
    w = np.zeros_like(z)
    w[0:-1:2] += width / 6
    w[2::2] += width / 6
    w[1::2] = 4 * width / 6
    return z, w


@dataclass
class _State:
    """Paths still running after a look: grid z of Z_k and weight × density there."""

    t: float
    z: np.ndarray
    g: np.ndarray


def _exit(state: _State | None, t: float, upper: float, lower: float,
          drift: float) -> tuple[float, float]:
    """P(continue to this look and Z ≥ upper), P(… and Z ≤ lower) at fraction t."""
    if state is None:
        mean = drift * math.sqrt(t)
        return float(norm.sf(upper - mean)), float(norm.cdf(lower - mean))
    s = math.sqrt(t - state.t)
    shift = state.z * math.sqrt(state.t) + drift * (t - state.t)
    up = float(state.g @ norm.sf((upper * math.sqrt(t) - shift) / s))
    low = 0.0 if lower == -math.inf else \
        float(state.g @ norm.cdf((lower * math.sqrt(t) - shift) / s))
    return up, low


def _advance(state: _State | None, t: float, upper: float, lower: float, drift: float,
             r: int) -> _State:
    """The density of Z on the continuation region (lower, upper) at fraction t."""
    mean = drift * math.sqrt(t)
    z, w = _grid(mean, lower, upper, r)
    if state is None:
        h = np.exp(-0.5 * (z - mean) ** 2) / _SQRT_2PI
    else:
        s = math.sqrt(t - state.t)
        shift = state.z * math.sqrt(state.t) + drift * (t - state.t)
        x = (z[:, None] * math.sqrt(t) - shift[None, :]) / s
        h = (np.exp(-0.5 * x * x) @ state.g) * math.sqrt(t) / (s * _SQRT_2PI)
    return _State(t, z, w * h)


def _crossings(t: Sequence[float], upper: Sequence[float], lower: Sequence[float],
               drift: float, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-look probabilities of crossing the upper and the lower boundary first."""
    up, low = np.zeros(len(t)), np.zeros(len(t))
    state: _State | None = None
    for k, tk in enumerate(t):
        up[k], low[k] = _exit(state, tk, upper[k], lower[k], drift)
        if k + 1 < len(t):
            state = _advance(state, tk, upper[k], lower[k], drift, r)
    return up, low


# --- solving for the boundaries -----------------------------------------------------


def spending(kind: str, t: float | np.ndarray, alpha: float, sides: int = 2) -> Any:
    """Cumulative alpha (both sides together) a Lan–DeMets design spends by fraction t."""
    t = np.asarray(t, dtype=float)
    if kind == "ld-obf":
        per_side = alpha / sides
        with np.errstate(divide="ignore"):
            spent = 2 * norm.sf(norm.isf(per_side / 2) / np.sqrt(t)) * sides
        return np.where(t > 0, spent, 0.0)
    if kind == "ld-pocock":
        return alpha * np.log1p((math.e - 1) * t)
    raise ValueError(f"no spending function for type {kind!r}")


def _solve_classical(kind: str, t: np.ndarray, alpha: float, sides: int,
                     r: int) -> np.ndarray:
    shape = 1 / np.sqrt(t) if kind == "obf" else np.ones_like(t)
    if len(t) == 1:
        return shape * norm.isf(alpha / sides)

    def excess(c: float) -> float:
        b = c * shape
        up, low = _crossings(t, b, -b if sides == 2 else np.full_like(b, -np.inf), 0.0, r)
        return float(up.sum() + low.sum()) - alpha

    # alone, the final look already spends alpha at c = z_{1-α/sides}; Bonferroni bounds
    c = brentq(excess, norm.isf(alpha / sides), norm.isf(alpha / (sides * len(t))),
               xtol=1e-14, rtol=1e-15, maxiter=200)
    return c * shape


def _solve_spending(kind: str, t: np.ndarray, alpha: float, sides: int,
                    r: int) -> np.ndarray:
    cumulative = spending(kind, t, alpha, sides)
    cumulative[-1] = alpha
    increments = np.diff(cumulative, prepend=0.0)
    def lower(c: float) -> float:
        return -c if sides == 2 else -math.inf

    def excess(c: float, state: _State | None, tk: float, target: float) -> float:
        return sum(_exit(state, tk, c, lower(c), 0.0)) - target

    bounds = np.zeros(len(t))
    state: _State | None = None
    for k, tk in enumerate(t):
        args = (state, tk, increments[k])
        if increments[k] <= 0 or excess(_Z_MAX, *args) >= 0:
            bounds[k] = math.inf
        else:
            bounds[k] = brentq(excess, 0.0, _Z_MAX, args=args, xtol=1e-14, rtol=1e-15,
                               maxiter=200)
        if k + 1 < len(t):
            state = _advance(state, tk, bounds[k], lower(bounds[k]), 0.0, r)
    return bounds


def _fractions(looks: int | None, information_fractions: Sequence[float] | None) -> np.ndarray:
    if information_fractions is None:
        if looks is None:
            raise DesignError("give the number of looks or the information fractions",
                              field="looks")
        if not isinstance(looks, int) or not 1 <= looks <= MAX_LOOKS:
            raise DesignError(f"looks must be a whole number from 1 to {MAX_LOOKS}, "
                              f"not {looks!r}", field="looks")
        return np.arange(1, looks + 1) / looks
    try:
        t = np.array([float(x) for x in information_fractions])
    except (TypeError, ValueError):
        raise DesignError("information fractions must be numbers, e.g. 0.5, 1",
                          field="information_fractions") from None
    listed = ", ".join(f"{x:g}" for x in t)
    if not 1 <= len(t) <= MAX_LOOKS or not np.all(np.isfinite(t)):
        raise DesignError(f"need 1 to {MAX_LOOKS} finite information fractions, got "
                          f"[{listed}]", field="information_fractions")
    if looks is not None and looks != len(t):
        raise DesignError(f"{looks} looks but {len(t)} information fractions ({listed})",
                          field="information_fractions")
    if t[0] <= 0 or np.any(np.diff(t) <= 0) or abs(t[-1] - 1) > 1e-12:
        raise DesignError(f"information fractions must increase strictly from above 0 to "
                          f"1 (the final analysis), got [{listed}]",
                          field="information_fractions")
    t[-1] = 1.0
    return t


# --- the result -------------------------------------------------------------------


@dataclass(frozen=True)
class Boundaries:
    """Efficacy boundaries of a group-sequential design, one entry per look.

    ``z_upper``: reject H0 at look k when Z_k ≥ z_upper[k]; ``z_lower`` (two-sided
    designs only, −z_upper): reject when Z_k ≤ z_lower[k]. ``nominal_alpha``: the p-value
    (of the design's sidedness) that crosses the boundary. ``exit_probabilities``: the
    probability under H0 that the trial stops at look k (both sides);
    ``cumulative_alpha_spent``: their running sums (the last equals ``alpha``).
    """

    information_fractions: tuple[float, ...]
    z_upper: tuple[float, ...]
    z_lower: tuple[float, ...] | None
    nominal_alpha: tuple[float, ...]
    cumulative_alpha_spent: tuple[float, ...]
    exit_probabilities: tuple[float, ...]
    type: str
    alpha: float
    sides: int
    grid_r: int = DEFAULT_GRID_R

    @property
    def looks(self) -> int:
        return len(self.information_fractions)

    def crossing_probabilities(self, drift: float) -> tuple[float, ...]:
        """Per-look probability of first crossing the **upper** boundary when Z_k has mean
        drift·√t_k (drift = the mean of Z at the final analysis). Their sum is the power
        counting upper crossings only (rpact's convention); for drift 0 and a two-sided
        design each term is half of ``exit_probabilities``."""
        lower = self.z_lower if self.z_lower is not None else (-math.inf,) * self.looks
        up, _ = _crossings(self.information_fractions, self.z_upper, lower, float(drift),
                           self.grid_r)
        return tuple(float(p) for p in up)

    def to_dict(self) -> dict[str, Any]:
        def nums(xs: Sequence[float] | None) -> list[float | None] | None:
            return None if xs is None else [x if math.isfinite(x) else None for x in xs]

        return {"type": self.type, "label": TYPE_LABELS[self.type], "alpha": self.alpha,
                "sides": self.sides, "looks": self.looks,
                "information_fractions": list(self.information_fractions),
                "z_upper": nums(self.z_upper), "z_lower": nums(self.z_lower),
                "nominal_alpha": list(self.nominal_alpha),
                "cumulative_alpha_spent": list(self.cumulative_alpha_spent),
                "exit_probabilities": list(self.exit_probabilities),
                "method": f"recursive integration (Jennison-Turnbull ch. 19), grid r = "
                          f"{self.grid_r}"}

    def rows(self) -> list[tuple[str, ...]]:
        """Formatted table rows: look, t, boundary, nominal p, cumulative alpha."""
        sign = "±" if self.sides == 2 else ""

        def prob(p: float) -> str:
            return f"{p:.6f}" if p >= 1e-4 else f"{p:.3e}"

        return [(str(k + 1), f"{t:.4f}", f"{sign}{z:.4f}", prob(p), prob(a))
                for k, (t, z, p, a) in enumerate(zip(self.information_fractions,
                                                     self.z_upper, self.nominal_alpha,
                                                     self.cumulative_alpha_spent,
                                                     strict=True))]

    def __str__(self) -> str:
        head = ("look", "t", "z boundary", "nominal p", "cum. alpha")
        lines = [f"{TYPE_LABELS[self.type]} boundaries: {self.looks} looks, alpha "
                 f"{self.alpha:g} {'two' if self.sides == 2 else 'one'}-sided",
                 "  ".join(f"{h:>10}" for h in head)]
        lines += ["  ".join(f"{c:>10}" for c in row) for row in self.rows()]
        return "\n".join(lines)


def group_sequential_boundaries(
    looks: int | None = None, *, information_fractions: Sequence[float] | None = None,
    type: BoundaryType, alpha: float = 0.05, sides: Literal[1, 2] = 2,
    grid_r: int = DEFAULT_GRID_R,
) -> Boundaries:
    """Boundaries for ``looks`` equally spaced looks, or at ``information_fractions``
    (increasing, the last 1). ``alpha`` is the overall type I error (two-sided for
    ``sides=2``, α/2 per side). Raises :class:`DesignError` for an impossible design."""
    if type not in TYPES:
        raise DesignError(f"unknown boundary type {type!r}: use one of {', '.join(TYPES)}",
                          field="type")
    if sides not in (1, 2):
        raise DesignError(f"sides must be 1 or 2, not {sides!r}", field="sides")
    if not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        raise DesignError(f"alpha must lie strictly between 0 and 0.5 (the overall type I "
                          f"error, e.g. 0.05), not {alpha!r}", field="alpha")
    if not isinstance(grid_r, int) or grid_r < 8:
        raise DesignError("grid_r must be an integer ≥ 8", field="grid_r")
    t = _fractions(looks, information_fractions)
    solve = _solve_classical if type in ("obf", "pocock") else _solve_spending
    upper = solve(type, t, float(alpha), sides, grid_r)
    lower = -upper if sides == 2 else np.full_like(upper, -np.inf)
    up, low = _crossings(t, upper, lower, 0.0, grid_r)
    exits = up + low
    return Boundaries(
        information_fractions=tuple(float(x) for x in t),
        z_upper=tuple(float(x) for x in upper),
        z_lower=tuple(float(x) for x in -upper) if sides == 2 else None,
        nominal_alpha=tuple(float(sides * norm.sf(x)) for x in upper),
        cumulative_alpha_spent=tuple(float(x) for x in np.cumsum(exits)),
        exit_probabilities=tuple(float(x) for x in exits),
        type=type, alpha=float(alpha), sides=sides, grid_r=grid_r)


def boundaries_for_protocol(protocol: Protocol) -> Boundaries | None:
    """The boundaries of a protocol's ``analysis`` (alpha, sides, interim looks, spending),
    with the final analysis (t = 1) added after the interim looks; None without interim
    looks. Interim looks with ``alpha_spending: none`` are refused (DesignError): efficacy
    looks without a boundary rule do not control the type I error."""
    a = protocol.analysis
    if not a.interim_looks:
        return None
    if a.alpha_spending == "none":
        raise DesignError(f"the protocol has {len(a.interim_looks)} interim look(s) but "
                          "analysis.alpha_spending is 'none': choose obrien_fleming, pocock, "
                          "lan_demets_of or lan_demets_pocock", field="analysis.alpha_spending")
    fractions = [look.information_fraction for look in a.interim_looks]
    return group_sequential_boundaries(information_fractions=[*fractions, 1.0],
                                       type=PROTOCOL_TYPES[a.alpha_spending],
                                       alpha=a.alpha, sides=a.sides)
