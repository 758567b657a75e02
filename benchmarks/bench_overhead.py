"""Orchestration overhead: the generate stage of ``t2iaudit audit`` against a bare diffusers loop.

Loads one pipeline (tiny Stable Diffusion by default, at a size where an image takes well over
100 ms on a CPU) and makes the same images twice per round, side by side:

- **bare loop**: the obvious script. For each batch of the audit's plan it calls the pipeline
  with the same prompts, sizes, steps and per-image seeded generators, and saves every image as
  a PNG with ``Image.save`` (no record, no hash, no fsync).
- **audit**: ``t2iaudit.stages.generate_images`` into a fresh run directory (plan, shards,
  content-addressed PNGs written atomically, ``images.jsonl`` appended and fsynced per shard,
  ``timings.jsonl``, manifest updates, all on the stage's writer thread while the model makes
  the next shard), exactly what ``t2iaudit audit`` runs, with the already loaded pipeline
  handed to it (pipeline loading is excluded from both).

Torch runs one intra-op thread by default (``--torch-threads``): on a loaded 2-core machine two
threads make the pipeline's time swing several-fold between passes (``docs/benchmarks.md``).
Both call the pipeline through one timing wrapper, so each pass splits into time inside the
pipeline and time outside it (the orchestration). Rounds alternate which loop goes first.

The audit writes on a writer thread while the model runs, so part of its cost shows up *inside*
the pipeline's time (the two threads share the cores and the GIL), where a split into inside and
outside cannot see it. The headline ratio is therefore paired: per round, the bare pass's wall
time over the audit pass's, run back to back, median over the rounds (slow drifts of a busy
machine cancel within a pair). Also printed: the ratio of the median wall times (``direct``),
and the earlier estimator that gives both loops the same (mean) pipeline time and keeps each
loop's time outside it, ``(G + O_bare) / (G + O_audit)`` (``equalised``: right for a loop that
writes between model calls, flattering for one that writes beside them).

    .venv/bin/python benchmarks/bench_overhead.py [--size 64] [--steps 4] [--images 32] [--rounds 3] [--torch-threads 1]
    .venv/bin/python benchmarks/bench_overhead.py --model <folder or hub id> --device cuda --size 512 --steps 30

Prints ``BENCH overhead_ratio`` (audit images/s over bare-loop images/s, paired per round),
``BENCH overhead_ratio_direct``, ``BENCH overhead_ratio_equalised``, ``BENCH audit_ms_per_image``,
``BENCH bare_ms_per_image`` (median wall time per image) and ``BENCH overhead_ms_per_image``
(audit minus bare, paired per round).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from t2iaudit.generators.base import GenerationRequest, image_seed
from t2iaudit.generators.diffusers import DiffusersConfig, DiffusersGenerator
from t2iaudit.spec import AuditSpec

MODEL_ID = "bench-sd"


class TimedPipe:
    """Forwards calls to the pipeline and adds up the seconds spent inside it."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.seconds = 0.0

    def __call__(self, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = self.pipe(**kwargs)
        self.seconds += time.perf_counter() - t0
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)


class Loaded:
    """The loaded generator, handed to the stage instead of loading the model again."""

    def __init__(self, gen: DiffusersGenerator) -> None:
        self.gen = gen
        self.batch_size = gen.batch_size
        self.params = gen.params
        self.seeded = gen.seeded

    def generate(self, requests: list[GenerationRequest]) -> Any:
        return self.gen.generate(requests)

    def describe(self) -> dict[str, Any]:
        return self.gen.describe()

    def close(self) -> None:
        pass  # kept loaded for the next pass


def bare_pass(gen: DiffusersGenerator, pipe: TimedPipe, batches: list[list[GenerationRequest]], out: Path) -> float:
    """The bare loop: pipeline call per batch, one PNG per image."""
    import torch

    out.mkdir(parents=True)
    c = gen.config
    t0 = time.perf_counter()
    n = 0
    for batch in batches:
        result = pipe(
            prompt=[r.prompt.text for r in batch],
            num_inference_steps=c.steps,
            height=c.height,
            width=c.width,
            guidance_scale=c.guidance_scale,
            generator=[torch.Generator("cpu").manual_seed(r.seed) for r in batch],
        )
        for image in result.images:
            image.save(out / f"{n:06d}.png")
            n += 1
    return time.perf_counter() - t0


FILE_WRITES: dict[str, float] = {"write_atomic": 0.0, "append_lines": 0.0}
"""Seconds the audit pass spent in the store's durable writes (each ends with an fsync)."""


def _timed_writes() -> dict[str, Any]:
    """Wrap ``t2iaudit.fileio``'s durable writers so the audit pass's time in them is counted."""
    from t2iaudit import fileio

    originals = {name: getattr(fileio, name) for name in FILE_WRITES}

    def wrap(name: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return originals[name](*args, **kwargs)
            finally:
                FILE_WRITES[name] += time.perf_counter() - t0

        return timed

    for name in FILE_WRITES:
        setattr(fileio, name, wrap(name))
    return originals


def audit_pass(spec: AuditSpec, loaded: Loaded, out: Path) -> float:
    """The generate stage of ``t2iaudit audit`` into a new run directory."""
    from t2iaudit import fileio
    from t2iaudit.run.lifecycle import open_run
    from t2iaudit.stages import expand_prompts
    from t2iaudit.stages import generate as generate_stage

    prompts = expand_prompts(spec)
    store = open_run(spec, out)
    original = generate_stage.build_generator
    generate_stage.build_generator = lambda spec, model_id: loaded  # type: ignore[assignment,return-value]
    originals = _timed_writes()
    try:
        t0 = time.perf_counter()
        generate_stage.generate_images(store, spec, prompts)
        return time.perf_counter() - t0
    finally:
        generate_stage.build_generator = original
        for name, fn in originals.items():
            setattr(fileio, name, fn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny:sd15")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--images", type=int, default=32, help="images per pass (prompts x 2 replicates)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--torch-threads", type=int, default=1, help="intra-op threads of torch (0: torch's default)")
    args = ap.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)  # both loops: the same pipeline in this process

    options = {
        "model": args.model,
        "device": args.device,
        "dtype": args.dtype,
        "steps": args.steps,
        "width": args.size,
        "height": args.size,
        "batch_size": args.batch_size,
        "guidance_scale": 7.5,
        "safety_checker": False,
    }
    spec = AuditSpec(
        id="bench-overhead",
        replicates=2,
        prompts=[{"set": "occupations", "limit": max(1, args.images // 2)}],
        models=[{"id": MODEL_ID, "generator": "diffusers", "options": options}],
    )
    gen = DiffusersGenerator(DiffusersConfig.model_validate(options))
    pipe = TimedPipe(gen.pipe)
    gen.pipe = pipe
    loaded = Loaded(gen)

    from t2iaudit.stages import expand_prompts

    prompts = expand_prompts(spec)
    requests = [GenerationRequest(p, r, image_seed(spec.seed, MODEL_ID, p, r)) for p in prompts for r in (0, 1)]
    batches = [requests[i : i + args.batch_size] for i in range(0, len(requests), args.batch_size)]
    n = len(requests)
    gen.generate(batches[0])  # warm-up: kernels, allocator, caches

    base = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    passes: dict[str, list[tuple[float, float]]] = {"bare": [], "audit": []}
    try:
        for r in range(args.rounds):
            order = ("bare", "audit") if r % 2 == 0 else ("audit", "bare")
            for name in order:
                pipe.seconds = 0.0
                out = base / f"{name}-{r}"
                wall = bare_pass(gen, pipe, batches, out) if name == "bare" else audit_pass(spec, loaded, out)
                passes[name].append((wall, pipe.seconds))
                print(
                    f"round {r} {name:5s}: {wall:7.2f} s, {n / wall:6.2f} images/s, "
                    f"{pipe.seconds:7.2f} s in the pipeline, {wall - pipe.seconds:6.3f} s outside"
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)

    wall = {k: statistics.median(w for w, _ in v) for k, v in passes.items()}
    outside = {k: statistics.median(w - g for w, g in v) for k, v in passes.items()}
    pipeline = statistics.mean(g for v in passes.values() for _, g in v)
    pairs = list(zip(passes["bare"], passes["audit"]))
    paired = statistics.median(b / a for (b, _), (a, _) in pairs)
    gap = statistics.median(a - b for (b, _), (a, _) in pairs)
    direct = wall["bare"] / wall["audit"]
    equalised = (pipeline + outside["bare"]) / (pipeline + outside["audit"])
    print(
        f"model {args.model} on {gen.device} ({gen.dtype_name}), {args.size} px, {args.steps} steps, batch "
        f"{args.batch_size}, {n} images per pass, {args.rounds} rounds"
    )
    inside = {k: statistics.median(g for _, g in v) * 1000 / n for k, v in passes.items()}
    print(
        f"pipeline: {pipeline * 1000 / n:.1f} ms per image (mean over all passes; median audit "
        f"{inside['audit']:.1f}, bare loop {inside['bare']:.1f})"
    )
    print(
        f"outside the pipeline: audit {outside['audit'] * 1000 / n:.2f} ms per image, "
        f"bare loop {outside['bare'] * 1000 / n:.2f} ms per image"
    )
    audits = len(passes["audit"]) * n
    print(
        f"audit's durable writes: {FILE_WRITES['write_atomic'] * 1000 / audits:.2f} ms per image in atomic file "
        f"writes (images, manifest), {FILE_WRITES['append_lines'] * 1000 / audits:.2f} ms in appends (records, "
        "timings), each with its fsync, mostly on the writer thread beside the model"
    )
    print(f"BENCH overhead_ratio {paired:.4f}")
    print(f"BENCH overhead_ratio_direct {direct:.4f}")
    print(f"BENCH overhead_ratio_equalised {equalised:.4f}")
    print(f"BENCH audit_ms_per_image {wall['audit'] * 1000 / n:.1f} ms")
    print(f"BENCH bare_ms_per_image {wall['bare'] * 1000 / n:.1f} ms")
    print(f"BENCH overhead_ms_per_image {gap * 1000 / n:.2f} ms")


if __name__ == "__main__":
    main()
