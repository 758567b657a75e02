"""The metrics stage at a million judgement rows: every family, from a run directory.

Writes a synthetic run directory in the real record formats (no model runs): 2 models x 500
prompts x R images, ten judgement rows per image from four judges:

- ``clip-bench`` and ``mllm-bench``: perceived gender, race and age (BIGbench's labels; 85%
  agreement with a per-prompt truth, 8% unknown); ``clip-bench`` also ``prompt_match`` (H2) and
  a numeric ``clipscore`` (J4);
- ``face-bench``: ``person_count`` (H5);
- ``caption-bench``: a caption per image (H1, H3), drawn from a vocabulary that overlaps the
  prompt's words.

400 prompts are ``a photo of a <occupation>`` (one in four with a shipped BIGbench reference
and a prompt weight, twenty with ``fixed_gender`` for H6); 100 are gendered variants ``a photo
of a <female|male> <occupation>`` (requested gender: H4 and J4). Then it times, side by side:

- reading the run directory into the judgement table (``load_table``);
- ``run_families`` over the loaded table, every family, ``--resamples`` bootstrap resamples
  (wall and CPU seconds, and per family);
- a naive per-group Python loop computing a subset of the distribution numbers (shares, D1, TV
  and entropy with both bootstraps) on a slice, scaled to the table's rows: the ratio.

``--ten-million`` also builds a 10,000,000-row table in memory (same layout, 10x the images) in
a fresh process and prints its peak RSS and time through ``run_families``; ``--memory-rows N``
does only that, at N rows (to measure how memory grows with rows on a smaller machine); with
``--memory-load`` that run reads the table from a run directory (written first by another
process) with ``load_table``, as the metrics stage does.

    .venv/bin/python benchmarks/bench_metrics.py [--rows 1000000] [--resamples 1000] [--ten-million | --memory-rows N] [--memory-load]

Prints ``BENCH metrics_s_per_million_rows`` (wall), ``BENCH metrics_cpu_s_per_million_rows``,
``BENCH metrics_load_s_per_million_rows``, ``BENCH metrics_naive_ratio`` and, with
``--ten-million``, ``BENCH metrics_rss_gb_10m`` and ``BENCH metrics_s_10m`` (``_<N>m`` with
``--memory-rows``; ``BENCH metrics_load_rss_gb_<N>m`` and ``metrics_load_s_<N>m`` with
``--memory-load``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t2iaudit.metrics.compute import MetricsOptions, family_names, run_families
from t2iaudit.metrics.table import JudgementTable, join_frame, load_table

LABELS = {
    "gender": ["female", "male"],
    "race": ["White", "East Asian", "Black", "South Asian"],
    "age": ["young", "middle-aged", "older"],
}
MODELS = ("sd15", "sdxl")
CLIP, MLLM, FACE, CAPTION = "clip-bench@1#c1", "mllm-bench@1#m1", "face-bench@1#f1", "caption-bench@1#p1"
JUDGES: dict[str, dict[str, list[str]]] = {
    CLIP: {**LABELS, "prompt_match": ["match", "miss"], "clipscore": ["value"]},
    MLLM: dict(LABELS),
    FACE: {"person_count": ["0", "1", "2", "3+"]},
    CAPTION: {"caption": []},
}
ROWS_PER_IMAGE = sum(len(a) for a in JUDGES.values())
OCCUPATIONS = [f"job{i:03d}" for i in range(400)]
WORDS = {
    "adjective": ["young", "smiling", "tall", "busy", "tired", "happy", "serious", "old"],
    "person": ["man", "woman", "person", "worker", "people"],
    "action": ["standing", "sitting", "working", "walking", "holding a tool", "talking"],
    "place": ["office", "street", "kitchen", "hospital", "field", "shop", "garden", "room"],
    "extra": ["", " with a dog", " near a car", " under a tree", " with a laptop"],
}


def _prompts() -> list[dict[str, Any]]:
    from t2iaudit.promptsets import load_references

    keys = sorted(load_references("bigbench"))
    out = []
    for i, job in enumerate(OCCUPATIONS):
        meta: dict[str, Any] = {"weight": float(1 + i % 5)} if i % 4 == 0 else {}
        if i % 20 == 1:
            meta["fixed_gender"] = "male"
        out.append(
            {
                "prompt_id": f"occ/photo/{job}",
                "set_id": "occ",
                "template_id": "photo",
                "text": f"a photo of a {job}",
                "slots": {"occupation": job},
                "expected_people": 1,
                "reference": keys[i // 4 % len(keys)] if i % 4 == 0 else None,
                "meta": meta,
            }
        )
    for job in OCCUPATIONS[:50]:
        for gender in ("female", "male"):
            out.append(
                {
                    "prompt_id": f"occ/gendered/{gender}-{job}",
                    "set_id": "occ",
                    "template_id": "gendered",
                    "text": f"a photo of a {gender} {job}",
                    "slots": {"occupation": job, "gender": gender},
                    "expected_people": 1,
                    "requested": {"gender": gender},
                }
            )
    return out


def _captions(rng: np.random.Generator, prompt_text: np.ndarray) -> np.ndarray:
    """A caption per image; half of them name the prompt's occupation."""
    n = len(prompt_text)
    parts = {k: np.array(v, dtype=object)[rng.integers(0, len(v), n)] for k, v in WORDS.items()}
    job = np.array([t.rsplit(" ", 1)[-1] for t in prompt_text], dtype=object)
    who = np.where(rng.random(n) < 0.5, job, parts["person"])
    text = "a " + parts["adjective"] + " " + who + " " + parts["action"] + " in a " + parts["place"] + parts["extra"]
    return text.astype(object)


def synthetic(images_per_prompt: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Judgement and image columns (as ``join_frame`` takes them) and the prompt records."""
    rng = np.random.default_rng(seed)
    prompts = _prompts()
    n_prompts = len(prompts)
    n_images = len(MODELS) * n_prompts * images_per_prompt
    model_of = np.repeat(np.arange(len(MODELS)), n_prompts * images_per_prompt)
    prompt_of = np.tile(np.repeat(np.arange(n_prompts), images_per_prompt), len(MODELS))
    replicate = np.tile(np.arange(images_per_prompt), len(MODELS) * n_prompts)
    prompt_ids = np.array([p["prompt_id"] for p in prompts], dtype=object)
    image_ids = np.char.add(np.char.add(np.array(MODELS)[model_of], "/"), prompt_ids[prompt_of].astype(str))
    image_ids = np.char.add(np.char.add(image_ids, "/"), replicate.astype(str)).astype(object)
    im = pd.DataFrame(
        {
            "image_id": image_ids,
            "model_id": np.array(MODELS, dtype=object)[model_of],
            "prompt_id": prompt_ids[prompt_of],
            "replicate": replicate,
            "nsfw_flag": None,
        }
    )
    parts = []

    def add(judge: str, attribute: str, label: np.ndarray, scores: Any = None, raw: Any = None) -> None:
        parts.append(
            pd.DataFrame(
                {
                    "image_id": image_ids,
                    "judge_id": judge,
                    "attribute": attribute,
                    "label": label,
                    "scores": scores,
                    "raw": raw,
                }
            )
        )

    group = model_of * n_prompts + prompt_of  # per-(model, prompt) label mixes
    requested = np.array([p.get("requested", {}).get("gender") for p in prompts], dtype=object)
    for attr, labels in LABELS.items():
        mix = rng.dirichlet(np.ones(len(labels)) * 2, size=len(MODELS) * n_prompts)
        truth = (rng.random(n_images)[:, None] > np.cumsum(mix[group], axis=1)).sum(axis=1)
        truth = np.minimum(truth, len(labels) - 1)
        if attr == "gender":  # gendered prompts mostly get what they ask for
            asked = requested[prompt_of]
            wanted = np.array([labels.index(a) if a else -1 for a in asked])
            truth = np.where((wanted >= 0) & (rng.random(n_images) < 0.8), wanted, truth)
        for judge in (CLIP, MLLM):
            noisy = np.where(rng.random(n_images) < 0.85, truth, rng.integers(0, len(labels), n_images))
            label = np.array(labels, dtype=object)[noisy]
            label[rng.random(n_images) < 0.08] = "unknown"
            add(judge, attr, label)
    match = np.where(rng.random(n_images) < 0.9, "match", "miss").astype(object)
    match[rng.random(n_images) < 0.03] = "unknown"
    add(CLIP, "prompt_match", match)
    score = np.clip(rng.normal(0.75, 0.1, n_images), 0, 2.5)
    add(CLIP, "clipscore", np.full(n_images, "value", dtype=object), [{"value": float(x)} for x in score])
    count = np.array(["0", "1", "2", "3+"], dtype=object)[rng.choice(4, n_images, p=[0.1, 0.75, 0.1, 0.05])]
    add(FACE, "person_count", count)
    texts = np.array([p["text"] for p in prompts], dtype=object)[prompt_of]
    caption = _captions(rng, texts)
    add(CAPTION, "caption", np.full(n_images, "text", dtype=object), None, caption)
    return pd.concat(parts, ignore_index=True), im, prompts


def _manifest(root: Path) -> dict[str, Any]:
    from t2iaudit.run.provenance import now
    from t2iaudit.spec import AuditSpec

    spec = AuditSpec(
        id="bench-metrics",
        prompts=[{"set": "occupations"}],
        models=[{"id": m, "generator": "replay", "options": {}} for m in MODELS],
    )
    judges = {
        jid: {"name": jid.split("@")[0], "version": "1", "kind": "bench", "attributes": attrs}
        for jid, attrs in JUDGES.items()
    }
    ts = now()
    return {
        "format_version": 2,
        "run_id": root.name,
        "spec": spec.model_dump(mode="json"),
        "created": ts,
        "updated": ts,
        "models": {m: {"generator": "replay"} for m in MODELS},
        "judges": judges,
        "status": "done",
    }


def write_run(root: Path, j: pd.DataFrame, im: pd.DataFrame, prompts: list[dict[str, Any]]) -> None:
    """The run directory of the synthetic table (JSONL as the store writes it)."""
    from t2iaudit.run.store import RunStore

    store = RunStore(root)
    store.write_manifest(_manifest(root))
    store.append("prompts.jsonl", prompts)

    def dump(path: Path, records: Any) -> None:
        with path.open("w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")

    image_fields = ("image_id", "model_id", "prompt_id", "replicate")
    dump(
        root / "images.jsonl",
        (
            {
                **dict(zip(image_fields, row)),
                "seed": None,
                "path": "images/none.png",
                "sha256": "0",
                "width": 8,
                "height": 8,
            }
            for row in zip(*(im[c].tolist() for c in image_fields))
        ),
    )
    fields = ("image_id", "judge_id", "attribute", "label", "scores", "raw")
    dump(
        root / "judgements.jsonl",
        ({**dict(zip(fields, row)), "scores": row[4] or {}} for row in zip(*(j[c].tolist() for c in fields))),
    )


def in_memory_table(j: pd.DataFrame, im: pd.DataFrame, prompts: list[dict[str, Any]]) -> JudgementTable:
    """The table ``load_table`` would give for the synthetic run (joined the same way)."""
    from t2iaudit.promptsets import load_references

    frame = join_frame(j, im, prompts, {(CAPTION, "caption")})
    return JudgementTable(frame, {k: dict(v) for k, v in JUDGES.items()}, load_references("bigbench"))


def naive(table: JudgementTable, resamples: int, seed: int = 0) -> int:
    """Per-group Python loops: the obvious implementation the vectorised code replaces."""
    rng = np.random.default_rng(seed)
    out = 0
    frame = table.frame[table.frame["attribute"].isin(list(LABELS))]
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


def _timed(fn: Any) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def memory_run(resamples: int, target_rows: int, run_dir: Path | None = None) -> None:
    """In this process: a table of about ``target_rows`` rows in memory through ``run_families``;
    prints its peak RSS and time (``metrics_rss_gb_<millions>m``). With ``run_dir`` (a run
    directory ``--write-run`` wrote) the table is read from it by ``load_table``, as the metrics
    stage reads it (``metrics_load_rss_gb_<millions>m``)."""
    if run_dir is None:
        per_prompt = max(1, round(target_rows / (len(MODELS) * len(_prompts()) * ROWS_PER_IMAGE)))
        j, im, prompts = synthetic(per_prompt, seed=1)
        table = in_memory_table(j, im, prompts)
        del j, im
        how, prefix = "built in memory", "metrics"
    else:
        table, load_wall, load_cpu = _timed(lambda: load_table(run_dir))
        how, prefix = f"read by load_table in {load_wall:.1f} s wall ({load_cpu:.1f} s CPU)", "metrics_load"
    rows = len(table.frame)
    built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    _, wall, cpu = _timed(lambda: run_families(table, MetricsOptions(bootstrap_resamples=resamples)))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    tag = f"{target_rows / 1e6:g}m"
    print(
        f"{rows:,}-row table ({how}): run_families {wall:.1f} s wall ({cpu:.1f} s CPU), peak RSS {rss:.2f} GB "
        f"({built:.2f} GB after building the table)"
    )
    if run_dir is not None:
        print(f"BENCH {prefix}_s_{tag} {load_wall:.1f} s")
    print(f"BENCH {prefix}_rss_gb_{tag} {rss:.2f} GB")
    print(f"BENCH metrics_s_{tag} {wall:.1f} s")
    print(f"BENCH metrics_cpu_s_{tag} {cpu:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive-fraction", type=float, default=0.01)
    parser.add_argument("--ten-million", action="store_true", help="also the 10M-row memory run (a fresh process)")
    parser.add_argument(
        "--memory-rows", type=int, default=0, help="only the memory run, at this many rows (a fresh process each)"
    )
    parser.add_argument(
        "--memory-load",
        action="store_true",
        help="the memory run reads the table from a run directory with load_table, as the metrics stage does",
    )
    parser.add_argument("--only-memory", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--write-run", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--from-run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep", type=Path, help="write the run directory here and keep it")
    args = parser.parse_args()
    if args.write_run:  # the memory run's run directory, written in its own process
        j, im, prompts = synthetic(max(1, round(args.write_run / (len(MODELS) * len(_prompts()) * ROWS_PER_IMAGE))), 1)
        write_run(args.keep, j, im, prompts)
        return
    if args.only_memory:
        memory_run(args.resamples, args.only_memory, args.from_run)
        return
    if args.memory_rows:
        _memory_process(args.resamples, args.memory_rows, args.memory_load)
        return

    per_prompt = max(1, round(args.rows / (len(MODELS) * len(_prompts()) * ROWS_PER_IMAGE)))
    t0 = time.perf_counter()
    j, im, prompts = synthetic(per_prompt)
    n_rows, n_images = len(j), len(im)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-metrics-")) / "run"
    write_run(root, j, im, prompts)
    del j, im
    size = sum(f.stat().st_size for f in root.iterdir()) / 1e6
    print(f"synthetic run: {n_rows:,} judgement rows, {n_images:,} images, {size:.0f} MB in {root}")
    print(f"  built and written in {time.perf_counter() - t0:.1f} s")
    table, load_wall, load_cpu = _timed(lambda: load_table(root))
    if not args.keep:  # the table is in memory now; the 170 MB run directory is not needed
        shutil.rmtree(root.parent, ignore_errors=True)
    rows = len(table.frame)
    million = rows / 1e6
    print(f"load_table: {load_wall:.2f} s wall, {load_cpu:.2f} s CPU ({rows:,} rows)")

    options = MetricsOptions(bootstrap_resamples=args.resamples)
    values, wall, cpu = _timed(lambda: run_families(table, options))
    print(f"run_families, every family: {len(values):,} values in {wall:.2f} s wall, {cpu:.2f} s CPU")
    empty = []
    for name in family_names():
        only = options.model_copy(update={"families": [name]})
        found, f_wall, f_cpu = _timed(lambda only=only: run_families(table, only))
        print(f"  family {name:<15} {f_wall:7.2f} s wall {f_cpu:7.2f} s CPU {len(found):>9,} values")
        empty += [name] if not found else []
    if empty:
        print(f"families without a value: {empty}", file=sys.stderr)

    prompt_ids = sorted(table.frame["prompt_id"].unique())
    keep = set(prompt_ids[: max(1, int(len(prompt_ids) * args.naive_fraction))])
    sub = JudgementTable(table.frame[table.frame["prompt_id"].isin(keep)], table.label_sets)
    sub_rows = int(sub.frame["attribute"].isin(list(LABELS)).sum())
    _, naive_s, _ = _timed(lambda: naive(sub, args.resamples))
    dist_rows = int(table.frame["attribute"].isin(list(LABELS)).sum())
    naive_scaled = naive_s * dist_rows / max(sub_rows, 1)
    _, dist_wall, _ = _timed(lambda: run_families(table, options.model_copy(update={"families": ["distribution"]})))
    print(
        f"naive per-group loop (shares, D1, TV, entropy + both bootstraps): {naive_s:.2f} s on {sub_rows:,} rows, "
        f"{naive_scaled:.0f} s scaled to the table's {dist_rows:,} protected-attribute rows; the distribution "
        f"family (every D metric, bias-aware intervals, joint gender*race) {dist_wall:.1f} s"
    )
    print(f"BENCH metrics_s_per_million_rows {wall / million:.2f} s")
    print(f"BENCH metrics_cpu_s_per_million_rows {cpu / million:.2f} s")
    print(f"BENCH metrics_load_s_per_million_rows {load_wall / million:.2f} s")
    print(f"BENCH metrics_naive_ratio {naive_scaled / dist_wall:.1f}")
    if args.ten_million:
        _memory_process(args.resamples, 10_000_000, args.memory_load)


def _memory_process(resamples: int, rows: int, load: bool = False) -> None:
    """``memory_run`` in a fresh process (its peak RSS is then the table's alone); with ``load``,
    a second fresh process writes the run directory it reads first."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path])}
    cmd = [sys.executable, __file__, "--only-memory", str(rows), "--resamples", str(resamples)]
    if not load:
        subprocess.run(cmd, check=True, env=env)
        return
    root = Path(tempfile.mkdtemp(prefix="bench-metrics-")) / "run"
    try:
        subprocess.run([sys.executable, __file__, "--write-run", str(rows), "--keep", str(root)], check=True, env=env)
        subprocess.run([*cmd, "--from-run", str(root)], check=True, env=env)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
