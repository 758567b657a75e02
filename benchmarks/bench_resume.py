"""Resume: a rerun of a finished audit as a share of the first run's time, side by side.

Runs a fake audit (``fake_audit``: the fake generator and judge, every other stage real: the run
directory, metrics with 1,000 resamples, the report) of ``--images`` images in a fresh process,
then reruns the same command into the same run directory ``--reruns`` times. A rerun of a
finished audit makes no image and no judgement, and recomputes neither metrics nor report when
what they are computed from is unchanged (``t2iaudit.run.fingerprint``). The script checks that:
the record files, ``metrics.jsonl`` and ``report.html`` are byte-identical after the reruns.

    .venv/bin/python benchmarks/bench_resume.py [--images 1000] [--reruns 3]

Prints ``BENCH resume_ratio`` (median rerun wall time over the first run's), ``BENCH
resume_cpu_ratio``, ``BENCH resume_rerun_seconds`` and ``BENCH resume_first_run_seconds``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from fake_audit import run_cli, write_spec

CHECKED = ("prompts.jsonl", "images.jsonl", "judgements.jsonl", "metrics.jsonl", "report.html", "summary.md")


def digests(run: Path) -> dict[str, str]:
    return {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in CHECKED}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--reruns", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    try:
        spec = write_spec(base, args.images)
        run = base / "run"
        first = run_cli("audit", str(spec), "--out", str(run), "--quiet")
        before = digests(run)
        reruns = [run_cli("audit", str(spec), "--out", str(run), "--quiet") for _ in range(args.reruns)]
        changed = [name for name, digest in digests(run).items() if before[name] != digest]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    wall = statistics.median(r.wall for r in reruns)
    cpu = statistics.median(r.cpu for r in reruns)
    print(f"first run of {args.images} fake images: {first.wall:.2f} s wall, {first.cpu:.2f} s CPU")
    print(f"reruns: {', '.join(f'{r.wall:.2f} s' for r in reruns)} wall; median CPU {cpu:.2f} s")
    print(f"files rewritten by a rerun: {changed or 'none'}")
    print(f"BENCH resume_ratio {wall / first.wall:.4f}")
    print(f"BENCH resume_cpu_ratio {cpu / first.cpu:.4f}")
    print(f"BENCH resume_rerun_seconds {wall:.2f} s")
    print(f"BENCH resume_first_run_seconds {first.wall:.2f} s")
    if changed:
        sys.exit(f"a rerun of a finished audit rewrote {changed}")


if __name__ == "__main__":
    main()
