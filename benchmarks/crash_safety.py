"""Crash safety in full: SIGKILL an audit 20 times at seeded random points, resume, compare.

Runs the harness of ``tests/run/crash_harness.py`` (the test suite runs it with a few kills):
a fake audit (2 models x 6 prompts x 4 replicates, two judges) killed ``--kills`` times all
through generation and judging, resumed after each kill, then checked against an uninterrupted
run (image hashes, judgements and metrics byte for byte; no torn line, orphan image, temporary
file or duplicate record). ``--tiny N`` adds N kills of a reduced tiny-model audit (tiny SD and
the face judge; about 20 s per kill on a 2-core CPU). Prints where each kill landed and
``BENCH`` lines; exits 1 when any promise is broken.

    .venv/bin/python benchmarks/crash_safety.py                 # 20 kills of the fake audit
    .venv/bin/python benchmarks/crash_safety.py --tiny 5        # plus 5 kills of a tiny audit
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness lives with the tests

from tests.run.crash_harness import describe, fake_crash_spec, run_harness, tiny_crash_spec  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20, help="kills of the fake audit")
    ap.add_argument("--tiny", type=int, default=0, help="kills of the tiny-model audit (0: skip it)")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    broken = 0
    runs = [("fake", fake_crash_spec, args.kills)] + ([("tiny", tiny_crash_spec, args.tiny)] if args.tiny else [])
    with tempfile.TemporaryDirectory(prefix="t2iaudit-crash-") as tmp:
        for name, make_spec, kills in runs:
            work = Path(tmp) / name
            t0 = time.perf_counter()
            result = run_harness(make_spec(work / "spec"), work, kills=kills, seed=args.seed)
            seconds = time.perf_counter() - t0
            print(f"== {name} audit, seed {args.seed}, {seconds:.0f} s")
            print(describe(result))
            survived = len(result.kills) if not result.violations else 0
            print(f"BENCH crash_{name}_kills_survived {survived} kills")
            print(f"BENCH crash_{name}_violations {len(result.violations)} count")
            broken += len(result.violations) + int(len(result.kills) < kills)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
