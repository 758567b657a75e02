"""Time ``run_families`` on a synthetic one-million-row judgement table.

Prints seconds per million rows for the vectorised metrics stage (every family, 1,000
bootstrap resamples, per-prompt and suite-level intervals) next to a naive per-group Python
loop computing a subset of the same numbers (shares, D1, D9 TV and entropy with per-prompt and
suite bootstrap intervals) measured in the same run, and the ratio. The naive loop is timed on
a slice of the table (default 2% of the prompts, all groups) and scaled linearly to one million
rows, since its cost is linear in the number of rows x resamples.

    .venv/bin/python benchmarks/bench_metrics.py [--rows 1000000] [--naive-fraction 0.02]
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter

import numpy as np
import pandas as pd

from t2iaudit.metrics.compute import MetricsOptions, family_names, run_families
from t2iaudit.metrics.table import JudgementTable

LABELS = {
    "gender": ["female", "male"],
    "race": ["White", "East Asian", "Black", "South Asian"],
    "age": ["young", "middle-aged", "older"],
}


def synthetic_table(rows: int, seed: int = 0) -> JudgementTable:
    """2 models x 2 judges x 3 attributes x 500 prompts; images per prompt fill ``rows``.

    One prompt in five has a reference distribution and a BIGbench-style weight; 8% of labels
    are unknown.
    """
    rng = np.random.default_rng(seed)
    models, judges, prompts = ["sd15", "sdxl"], ["clip@1#a", "mllm@1#b"], 500
    per_prompt = max(1, rows // (len(models) * len(judges) * len(LABELS) * prompts))
    n_images = len(models) * prompts * per_prompt
    model_of = np.repeat(np.arange(len(models)), prompts * per_prompt)
    prompt_of = np.tile(np.repeat(np.arange(prompts), per_prompt), len(models))
    image_ids = np.array([f"img{i}" for i in range(n_images)], dtype=object)
    prompt_ids = np.array([f"occ/photo/{j:03d}" for j in range(prompts)], dtype=object)
    references = {}
    for j in range(0, prompts, 5):
        references[f"bench/{j:03d}"] = {a: dict(zip(v, rng.dirichlet(np.ones(len(v))))) for a, v in LABELS.items()}
    ref_of = np.array([f"bench/{j:03d}" if j % 5 == 0 else None for j in range(prompts)], dtype=object)
    weight_of = np.where(np.arange(prompts) % 5 == 0, rng.integers(1, 6, prompts).astype(float), np.nan)
    parts = []
    for judge in judges:
        for attr, labels in LABELS.items():
            bias = rng.dirichlet(np.ones(len(labels)) * 2, size=prompts)  # per-prompt label mix
            u = rng.random(n_images)
            cum = np.cumsum(bias[prompt_of], axis=1)
            code = (u[:, None] > cum).sum(axis=1)
            label = np.array(labels, dtype=object)[np.minimum(code, len(labels) - 1)]
            label[rng.random(n_images) < 0.08] = "unknown"
            parts.append(
                pd.DataFrame(
                    {
                        "image_id": image_ids,
                        "model_id": np.array(models, dtype=object)[model_of],
                        "prompt_id": prompt_ids[prompt_of],
                        "replicate": np.arange(n_images) % per_prompt,
                        "judge_id": judge,
                        "attribute": attr,
                        "label": label,
                        "set_id": "occ",
                        "template_id": "photo",
                        "expected_people": 1,
                        "reference": ref_of[prompt_of],
                        "weight": weight_of[prompt_of],
                    }
                )
            )
    frame = pd.concat(parts, ignore_index=True)
    label_sets = {j: {a: list(v) for a, v in LABELS.items()} for j in judges}
    return JudgementTable(frame=frame, label_sets=label_sets, references=references)


def naive(table: JudgementTable, resamples: int, seed: int = 0) -> int:
    """Per-group Python loops: the obvious implementation the vectorised code replaces."""
    rng = np.random.default_rng(seed)
    out = 0
    frame = table.frame
    for (_model, judge, attr), group in frame.groupby(["model_id", "judge_id", "attribute"]):
        labels = table.label_sets[judge][attr]
        k = len(labels)
        per_prompt = {pid: list(g["label"]) for pid, g in group.groupby("prompt_id")}

        def metrics(sample: list[str], labels: list[str] = labels, k: int = k) -> dict[str, float] | None:
            c = Counter(x for x in sample if x != "unknown")
            n = sum(c.values())
            if n == 0:
                return None
            p = [c[x] / n for x in labels]
            ent = -sum(q * math.log(q) for q in p if q > 0) / math.log(k)
            return {
                **{f"share:{x}": q for x, q in zip(labels, p)},
                "D1": sum(abs(q - 1 / k) for q in p) / k,
                "TV": 0.5 * sum(abs(q - 1 / k) for q in p),
                "H": ent,
            }

        point = {pid: metrics(lab) for pid, lab in per_prompt.items()}
        for pid, lab in per_prompt.items():  # per-prompt bootstrap
            boots = [metrics(list(rng.choice(lab, len(lab)))) for _ in range(resamples)]
            out += len([b for b in boots if b]) + (point[pid] is not None)
        pids = list(per_prompt)
        for _ in range(resamples):  # suite bootstrap: prompts, then images within prompts
            chosen = rng.choice(len(pids), len(pids))
            vals = [metrics(list(rng.choice(per_prompt[pids[i]], len(per_prompt[pids[i]])))) for i in chosen]
            out += len([v for v in vals if v])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive-fraction", type=float, default=0.02)
    args = parser.parse_args()

    t0 = time.perf_counter()
    table = synthetic_table(args.rows)
    rows = len(table.frame)
    print(f"synthetic table: {rows:,} rows built in {time.perf_counter() - t0:.1f} s")

    options = MetricsOptions(bootstrap_resamples=args.resamples)
    t0 = time.perf_counter()
    values = run_families(table, options)
    total = time.perf_counter() - t0
    print(
        f"run_families, all families: {len(values):,} values in {total:.2f} s "
        f"= {total * 1e6 / rows:.2f} s per million rows ({args.resamples} resamples)"
    )
    per_family = {}
    for name in family_names():
        t0 = time.perf_counter()
        n = len(run_families(table, options.model_copy(update={"families": [name]})))
        per_family[name] = time.perf_counter() - t0
        print(f"  family {name:<15} {per_family[name]:7.2f} s  {n:>9,} values")

    prompts = sorted(table.frame["prompt_id"].unique())
    keep = set(prompts[: max(1, int(len(prompts) * args.naive_fraction))])
    sub = JudgementTable(table.frame[table.frame["prompt_id"].isin(keep)], table.label_sets)
    t0 = time.perf_counter()
    naive(sub, args.resamples)
    naive_s = time.perf_counter() - t0
    naive_per_million = naive_s * 1e6 / len(sub.frame)
    dist_per_million = per_family["distribution"] * 1e6 / rows
    print(
        f"naive per-group loop (shares, D1, TV, entropy + both bootstraps): {naive_s:.2f} s on "
        f"{len(sub.frame):,} rows = {naive_per_million:.1f} s per million rows (scaled linearly)"
    )
    print(
        f"vectorised distribution family (all D1-D4, D8, D9, shares, joint gender*race): "
        f"{dist_per_million:.2f} s per million rows"
    )
    print(f"ratio naive / vectorised distribution family: {naive_per_million / dist_per_million:.0f}x")


if __name__ == "__main__":
    main()
