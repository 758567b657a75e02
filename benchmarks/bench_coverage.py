"""Coverage of the distribution family's 95% intervals over a grid of simulated audits.

For every scenario of ``t2iaudit.metrics.coverage.SCENARIOS`` (balanced, mildly and strongly
skewed models for 2, 3, 4 and 10 labels), prompts in {5, 20, 100} and images per prompt in
{5, 10, 20, 50}, it simulates audits with a known truth and prints, per metric, the share of
simulated audits whose aggregate interval covered the estimand (and whether every interval
contained its own value). Both estimands: ``audited_prompts`` (default) and
``prompt_population``. The done-when of the correctness issue: >= 0.90 in every cell.

    python benchmarks/bench_coverage.py [--sims 200] [--jobs 2] [--quick]

Prints one line per cell, a summary of the lowest coverage per metric, and
``BENCH coverage_min <value> share`` / ``BENCH coverage_cells <n> cells``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from t2iaudit.metrics.compute import MetricsOptions
from t2iaudit.metrics.distribution.simulation import SCENARIOS, coverage

REFERENCE = {2: (0.3, 0.7), 3: (0.5, 0.3, 0.2), 4: (0.6, 0.2, 0.1, 0.1)}
"""A non-uniform reference per label count for the D9 metrics (besides uniform)."""


def run_cell(args: tuple[str, int, int, int, str, int]) -> tuple[tuple, dict, float]:
    name, prompts, images, sims, estimand, seed = args
    scenario = SCENARIOS[name]
    options = MetricsOptions(bootstrap_resamples=400, estimand=estimand)
    start = time.perf_counter()
    cells = coverage(scenario, prompts, images, sims, options, reference=REFERENCE.get(len(scenario.labels)), seed=seed)
    rows = {}
    for (ref, metric, _label), cell in cells.items():
        key = metric if not ref else f"{metric}[{ref}]"
        rate, contains = cell.rate, cell.contains_value / cell.runs
        old = rows.get(key)
        if old is None or rate < old[0]:
            rows[key] = (rate, contains, float(np.mean(cell.width)))
    return (name, prompts, images, estimand), rows, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=200, help="simulated audits per cell")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--quick", action="store_true", help="a smaller grid (5/100 prompts, 5/50 images)")
    parser.add_argument("--estimand", choices=["audited_prompts", "prompt_population", "both"], default="both")
    args = parser.parse_args()
    prompts = [5, 100] if args.quick else [5, 20, 100]
    images = [5, 50] if args.quick else [5, 10, 20, 50]
    estimands = ["audited_prompts", "prompt_population"] if args.estimand == "both" else [args.estimand]
    grid = [
        (name, p, n, args.sims, est, i)
        for i, (est, name, p, n) in enumerate(itertools.product(estimands, SCENARIOS, prompts, images))
    ]
    worst: dict[tuple[str, str], tuple[float, tuple]] = {}
    never_contains = 0
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for (name, p, n, est), rows, seconds in pool.map(run_cell, grid):
            low = min(rows.items(), key=lambda kv: kv[1][0])
            print(f"{est:18s} {name:24s} P={p:<3d} n={n:<3d} lowest {low[0]} {low[1][0]:.3f} ({seconds:.0f} s)")
            for metric, (rate, contains, _) in rows.items():
                never_contains += contains < 1.0
                if (est, metric) not in worst or rate < worst[est, metric][0]:
                    worst[est, metric] = (rate, (name, p, n))
    print(f"\nlowest coverage per metric over {len(grid)} cells, {args.sims} simulated audits each:")
    for (est, metric), (rate, where) in sorted(worst.items()):
        print(f"  {est:18s} {metric:36s} {rate:.3f}  at {where}")
    print(f"intervals not containing their value: {never_contains} metric-cells")
    print(f"BENCH coverage_min {min(r for r, _ in worst.values()):.3f} share")
    print(f"BENCH coverage_cells {len(grid)} cells")
    print(f"BENCH coverage_seconds {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
