"""Time ``t2iaudit report`` on a 10,000-image run directory of tiny images, and print its size.

Builds synthetic run directories (no model runs): 2 models x 250 prompts in 5 prompt sets x
20 replicates = 10,000 images of 128 x 128 pixels (smooth random colour fields with noise, so
thumbnails compress like photos rather than like flat colour), two judges answering perceived
gender and age (8% unknown), a labelled reference on every other prompt, and the real metrics
stage over them. Then runs ``python -m t2iaudit.cli report RUN`` in a fresh process (imports
included) and prints its wall time and the size of ``report.html``. The same is done for a
1,000-image run (2 replicates instead of 20), measured side by side, and the ratio printed: the
report's cost should grow far slower than the number of images, since figures and contact
sheets are capped per prompt (``ReportOptions``), not per image.

    .venv/bin/python benchmarks/bench_report.py [--keep DIR]

Prints ``BENCH report_seconds_10k <s> s`` (wall), ``BENCH report_cpu_seconds_10k`` (user +
system, less sensitive to a busy machine), ``BENCH report_mb_10k <MB> MB`` (bound: 30 MB), the
same for 1k, and ``BENCH report_time_ratio_10k_over_1k``.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = ("sd15", "sdxl")
SETS, PROMPTS_PER_SET = 5, 50
JUDGES = {
    "clip-demo@1#aaaa0001": {"gender": ["female", "male"], "age": ["young", "middle-aged", "older"]},
    "mllm-demo@1#bbbb0002": {"gender": ["female", "male"], "age": ["young", "middle-aged", "older"]},
}


def _image(rng: np.random.Generator) -> bytes:
    from PIL import Image

    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((128, 128), Image.BICUBIC)
    pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-12, 13, (128, 128, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def build_run(root: Path, replicates: int, seed: int = 0) -> int:
    """Write a run directory with ``2 x 250 x replicates`` images; returns the image count."""
    from t2iaudit.run import provenance
    from t2iaudit.run.manifest import RunManifest
    from t2iaudit.run.store import RunStore
    from t2iaudit.spec import AuditSpec
    from t2iaudit.stages import compute_metrics
    from t2iaudit.types import ImageRecord, Judgement, Prompt

    rng = np.random.default_rng(seed)
    store = RunStore(root)
    references = _reference_keys()
    prompts = []
    for s in range(SETS):
        for j in range(PROMPTS_PER_SET):
            i = s * PROMPTS_PER_SET + j
            prompts.append(
                Prompt(
                    prompt_id=f"set{s}/photo/p{j:02d}",
                    set_id=f"set{s}",
                    template_id="photo",
                    text=f"a photo of a person doing job {i}",
                    reference=references[(i // 2) % len(references)] if i % 2 == 0 else None,
                )
            )
    store.write_prompts(prompts)
    spec = AuditSpec(
        id="bench-report",
        prompts=[{"set": "occupations"}],
        replicates=replicates,
        models=[{"id": m, "generator": "replay", "options": {}} for m in MODELS],
        metrics={"bootstrap_resamples": 200},
    )
    ts = provenance.now()
    judges = {
        jid: {"name": jid.split("@")[0], "version": "1", "kind": "clip", "attributes": attrs}
        for jid, attrs in JUDGES.items()
    }
    store.write_manifest(
        RunManifest(
            run_id=root.name,
            spec=spec.model_dump(mode="json"),
            created=ts,
            updated=ts,
            models={m: {"generator": "replay"} for m in MODELS},
            judges=judges,
            status="done",
        )
    )
    images, judgements = [], []
    for m, model in enumerate(MODELS):
        for p in prompts:
            female = float(np.clip(rng.beta(2, 2) + (0.15 if m else -0.15), 0.02, 0.98))
            for r in range(replicates):
                path, sha = store.save_image_bytes(_image(rng), ".png")
                image_id = f"{model}/{p.prompt_id}/{r}"
                images.append(
                    ImageRecord(
                        image_id=image_id,
                        model_id=model,
                        prompt_id=p.prompt_id,
                        replicate=r,
                        seed=None,
                        path=path,
                        sha256=sha,
                        width=128,
                        height=128,
                    )
                )
                truth = {
                    "gender": "female" if rng.random() < female else "male",
                    "age": ["young", "middle-aged", "older"][int(rng.integers(0, 3))],
                }
                for jid in JUDGES:
                    for attr, true in truth.items():
                        label = true if rng.random() < 0.85 else str(rng.choice(JUDGES[jid][attr]))
                        label = "unknown" if rng.random() < 0.08 else label
                        judgements.append(Judgement(image_id=image_id, judge_id=jid, attribute=attr, label=label))
    store.append_images(images)
    store.append_judgements(judgements)
    compute_metrics(store, spec)
    return len(images)


def _reference_keys() -> list[str]:
    from t2iaudit.promptsets import load_references

    return sorted(load_references("bigbench"))


def time_report(root: Path) -> tuple[float, float, float]:
    """Wall and CPU seconds of ``t2iaudit report RUN`` in a fresh process, and the report's MB."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "t2iaudit.cli", "report", str(root)], check=True, env=env, stdout=subprocess.DEVNULL
    )
    seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return seconds, cpu, (root / "report.html").stat().st_size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Build the run directories here and keep them.")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    results = {}
    for name, replicates in (("1k", 2), ("10k", 20)):
        root = base / f"run-{name}"
        if not (root / "metrics.jsonl").exists():
            t0 = time.perf_counter()
            n = build_run(root, replicates)
            print(f"built {n} images, judgements and metrics in {time.perf_counter() - t0:.1f} s: {root}")
        results[name] = time_report(root)
    for name, (seconds, cpu, mb) in results.items():
        print(f"BENCH report_seconds_{name} {seconds:.2f} s")
        print(f"BENCH report_cpu_seconds_{name} {cpu:.2f} s")
        print(f"BENCH report_mb_{name} {mb:.2f} MB")
    print(f"BENCH report_time_ratio_10k_over_1k {results['10k'][0] / results['1k'][0]:.2f}")
    if results["10k"][2] >= 30:
        print("report of the 10,000-image run is over the 30 MB bound", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
