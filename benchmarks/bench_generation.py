"""Generation throughput by batch size, measured side by side in one run.

Loads one diffusers pipeline through t2iaudit's generator (the code path audits use), then
times the same set of requests at each batch size, interleaving the sizes over several rounds
so machine noise hits them alike. Prints images per second per batch size and the ratio to
batch size 1. The images are identical across batch sizes (one seeded generator per image),
so only the speed differs.

    .venv/bin/python benchmarks/bench_generation.py                      # tiny SD on CPU
    .venv/bin/python benchmarks/bench_generation.py --model stable-diffusion-v1-5/stable-diffusion-v1-5 \\
        --revision <commit> --device cuda --dtype float16 --size 512 --steps 30 --batch-sizes 1 4 8 16
"""

from __future__ import annotations

import argparse
import statistics
import time

from t2iaudit.generators.base import GenerationRequest, derive_seed
from t2iaudit.generators.diffusers import DiffusersConfig, DiffusersGenerator
from t2iaudit.types import Prompt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny:sd15")
    ap.add_argument("--revision", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--images", type=int, default=16, help="images per timed pass (a multiple of every batch size)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    config = DiffusersConfig(
        model=args.model,
        revision=args.revision,
        device=args.device,
        dtype=args.dtype,
        steps=args.steps,
        width=args.size,
        height=args.size,
    )
    gen = DiffusersGenerator(config)
    prompts = [
        Prompt(prompt_id=f"bench/{i}", set_id="bench", template_id="t", text=f"a photo of person number {i}")
        for i in range(args.images)
    ]
    requests = [GenerationRequest(p, 0, derive_seed(0, "bench", p.prompt_id, 0)) for p in prompts]
    gen.generate(requests[: max(args.batch_sizes)])  # warm-up: kernels, caches, allocator

    def one_pass(batch: int) -> float:
        if gen.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, len(requests), batch):
            gen.generate(requests[i : i + batch])
        if gen.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        return time.perf_counter() - t0

    times: dict[int, list[float]] = {b: [] for b in args.batch_sizes}
    for _ in range(args.rounds):
        for b in args.batch_sizes:  # interleaved: every round times every size
            times[b].append(one_pass(b))
    print(
        f"model {args.model} on {gen.device} ({gen.dtype_name}), {args.size}px, {args.steps} steps, "
        f"{args.images} images per pass, median of {args.rounds} rounds"
    )
    base = statistics.median(times[args.batch_sizes[0]])
    for b in args.batch_sizes:
        t = statistics.median(times[b])
        print(
            f"batch {b:3d}: {args.images / t:8.2f} images/s  ({t:.3f} s per pass)  x{base / t:.2f} vs batch "
            f"{args.batch_sizes[0]}"
        )


if __name__ == "__main__":
    main()
