"""Memory: peak RSS of a 10,000-image audit against a 1,000-image one, side by side.

Runs two fake audits (``fake_audit``: fake generator and judge; run directory, metrics with
1,000 resamples and the report are the real code), each as ``python -m t2iaudit.cli audit`` in a
fresh process, and reads each process's own peak resident memory (``wait4``). Both audits have
the same 100 prompts, so the metrics and the report draw the same cells; what differs is the
number of images (10 and 100 per prompt): memory that grows with it is something held per image
or per record.

    .venv/bin/python benchmarks/bench_memory.py [--small 1000] [--large 10000]

Prints ``BENCH rss_ratio_10k_1k``, ``BENCH rss_mb_1k``, ``BENCH rss_mb_10k`` and the wall times.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from fake_audit import run_cli, write_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    results = {}
    try:
        for images in (args.small, args.large):
            spec = write_spec(base, images)
            results[images] = run_cli("audit", str(spec), "--out", str(base / f"run-{images}"), "--quiet")
            r = results[images]
            print(f"{images:>6} images: peak RSS {r.peak_mb:7.1f} MB, {r.wall:6.1f} s wall, {r.cpu:6.1f} s CPU")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    small, large = results[args.small], results[args.large]
    print(f"BENCH rss_ratio_10k_1k {large.peak_mb / small.peak_mb:.3f}")
    print(f"BENCH rss_mb_1k {small.peak_mb:.1f} MB")
    print(f"BENCH rss_mb_10k {large.peak_mb:.1f} MB")
    print(f"BENCH audit_seconds_1k {small.wall:.1f} s")
    print(f"BENCH audit_seconds_10k {large.wall:.1f} s")


if __name__ == "__main__":
    main()
