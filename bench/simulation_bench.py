"""Simulated trials per second: TrialDesk's table-driven simulator against a loop that
calls ``scipy.stats.fisher_exact`` on every trial, in the same run, on the same draws.

    python bench/simulation_bench.py [--trials 2000000] [--peer-trials 20000]

1. RUMCESS fixed design (its stratified permuted blocks, ~15 per arm, 28-day mortality
   0.8 vs 0.4, two-sided Fisher at 0.05). Both sides get the same seeded draws (allocation
   path, deaths per arm); the decisions must agree trial by trial (asserted).
2. The same trial with one interim look at half the patients (O'Brien-Fleming): pooled
   z at the interim look, Fisher at the final look with its nominal alpha; the peer loop
   computes z in Python and calls scipy at the final look; decisions asserted equal.

Throughput counts the vectorized core (draws, look-ups) with the allocation pool and
decision tables built beforehand; their one-off cost is reported separately.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trialdesk.protocol import load_protocol  # noqa: E402
from trialdesk.simulation.operating import (  # noqa: E402
    DecisionTables,
    allocation_paths,
    design_from_protocol,
    simulate_trials,
)

P_CONTROL, P_TREATMENT = 0.8, 0.4


def draws(paths: np.ndarray, trials: int, seed: int):
    """Per trial: path index and deaths per arm per look (cumulative)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(paths), size=trials)
    inc = np.diff(paths, axis=1, prepend=0)[idx]
    xt = np.cumsum(rng.binomial(inc[:, :, 0], P_TREATMENT), axis=1)
    xc = np.cumsum(rng.binomial(inc[:, :, 1], P_CONTROL), axis=1)
    return idx, xt, xc


def vectorized_decisions(design, paths, tables, idx, xt, xc) -> np.ndarray:
    """Signed decision per trial (+1/−1 reject at some look, 0 none) by table look-up."""
    out = np.zeros(len(idx), dtype=np.int8)
    active = np.ones(len(idx), dtype=bool)
    for k in range(design.looks):
        dec = tables.stack[k][tables.index[k][idx], xt[:, k], xc[:, k]]
        out = np.where(active & (dec != 0), dec, out)
        active &= dec == 0
    return out


def scipy_decisions(design, paths, idx, xt, xc) -> np.ndarray:
    """The peer: per trial, z in Python at interim looks and scipy's Fisher at the end."""
    b = design.boundaries
    out = np.zeros(len(idx), dtype=np.int8)
    for i in range(len(idx)):
        for k in range(design.looks):
            nt, nc = (int(v) for v in paths[idx[i], k])
            a, c = int(xt[i, k]), int(xc[i, k])
            sign = (c * nt > a * nc) - (c * nt < a * nc)
            if k < design.looks - 1:
                pooled = (a + c) / (nt + nc)
                se = math.sqrt(pooled * (1 - pooled) * (1 / nt + 1 / nc))
                z = (c / nc - a / nt) / se if se > 0 else 0.0
                if abs(z) >= b.z_upper[k]:
                    out[i] = 1 if z > 0 else -1
                    break
                continue
            alpha = design.alpha if b is None else b.nominal_alpha[-1]
            if stats.fisher_exact([[a, nt - a], [c, nc - c]]).pvalue <= alpha:
                out[i] = sign
    return out


def bench(name: str, protocol, trials: int, peer_trials: int, seed: int) -> dict:
    t0 = time.perf_counter()
    design = design_from_protocol(protocol)
    paths = allocation_paths(protocol, design, pool=1000, seed=seed)
    t1 = time.perf_counter()
    tables = DecisionTables(design, paths)
    t2 = time.perf_counter()
    # same draws, same decisions
    idx, xt, xc = draws(paths, peer_trials, seed)
    start = time.perf_counter()
    ours = vectorized_decisions(design, paths, tables, idx, xt, xc)
    ours_time = time.perf_counter() - start
    start = time.perf_counter()
    peer = scipy_decisions(design, paths, idx, xt, xc)
    peer_time = time.perf_counter() - start
    assert np.array_equal(ours, peer), "table-driven and scipy decisions differ"
    # throughput of the production core on many trials
    rng = np.random.default_rng(seed + 1)
    start = time.perf_counter()
    fav, unfav, _ = simulate_trials(design, paths, tables, P_TREATMENT, P_CONTROL, trials, rng)
    core_time = time.perf_counter() - start
    return {"name": name, "pool_s": t1 - t0, "tables_s": t2 - t1, "trials": trials,
            "rate": trials / core_time, "power": (fav.sum() + unfav.sum()) / trials,
            "peer_trials": peer_trials, "peer_rate": peer_trials / peer_time,
            "lookup_rate": peer_trials / ours_time, "agree": peer_trials,
            "rejected": int(np.count_nonzero(peer))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2_000_000)
    parser.add_argument("--peer-trials", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=20130501)
    args = parser.parse_args()
    rumcess = load_protocol()
    text = (ROOT / "protocols" / "rumcess.yaml").read_text(encoding="utf-8")
    text = text.replace("interim_looks: []", "interim_looks: [{information_fraction: 0.5}]")
    text = text.replace("alpha_spending: none", "alpha_spending: obrien_fleming")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rumcess-interim.yaml"
        path.write_text(text, encoding="utf-8")
        interim = load_protocol(path)
    rows = [bench("RUMCESS fixed (Fisher, n = 30)", rumcess, args.trials, args.peer_trials,
                  args.seed),
            bench("RUMCESS + interim look at 15 (OBF)", interim, args.trials,
                  args.peer_trials // 2, args.seed)]
    print("| design | TrialDesk trials/s | scipy loop trials/s | ratio | decisions "
          "agree | pool (1000 runs) s | tables s | simulated power |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['rate']:,.0f} | {r['peer_rate']:,.0f} | "
              f"{r['rate'] / r['peer_rate']:,.0f}× | {r['agree']:,} of {r['agree']:,} "
              f"({r['rejected']:,} rejections) | {r['pool_s']:.2f} | {r['tables_s']:.3f} | "
              f"{r['power']:.4f} |")


if __name__ == "__main__":
    main()
