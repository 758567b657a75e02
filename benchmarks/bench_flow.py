"""The Prefect flow's overhead against the in-process audit, on the same spec, side by side.

Runs the same audit spec (default: the offline smoke audit) into fresh run directories, in
process (``t2iaudit.stages.run_audit``, what ``t2iaudit audit`` runs) and through the flow
(``flows.audit.audit``, thread runner, Prefect's embedded SQLite server), alternating the two
over several rounds (with a rest before each timed run) so machine noise hits both alike. Both do all the work (generation,
judging, metrics, report); models are released after every flow run, as a fresh process
would start without them. Torch runs with one intra-op thread in both paths (``--torch-threads``):
on a loaded 2-core machine a two-thread OpenMP team in the main thread ran the smoke audit five
times slower than in a task's worker thread, which would credit the flow with a speed-up that
has nothing to do with Prefect. A warm-up round (imports, tiny models built, the embedded server
started) is not timed; the server's start is reported on its own.

    .venv/bin/python benchmarks/bench_flow.py [--spec audits/smoke.yaml] [--rounds 3]

Prints ``BENCH flow_overhead_ratio <flow / in-process> ratio``, ``BENCH flow_overhead_seconds``
(median difference per audit) and ``BENCH flow_server_start_seconds``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(REPO / "audits" / "smoke.yaml"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds of rest before each timed run")
    ap.add_argument("--torch-threads", type=int, default=1, help="intra-op threads of torch in both paths")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    for key, value in {
        "PREFECT_HOME": str(work / "prefect-home"),  # a fresh embedded server, not the user's
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": str(args.torch_threads),
    }.items():
        os.environ.setdefault(key, value)
    sys.path.insert(0, str(REPO))
    logging.getLogger("t2iaudit").setLevel(logging.ERROR)  # the spec's coverage warning, once per run

    from flows.audit import audit
    from t2iaudit.spec import load_spec
    from t2iaudit.stages import release_generators, release_judges, run_audit

    spec = load_spec(args.spec)
    import torch

    torch.set_num_threads(args.torch_threads)

    def in_process(out: Path) -> float:
        t0 = time.perf_counter()
        run_audit(spec, out)
        return time.perf_counter() - t0

    def through_flow(out: Path) -> float:
        t0 = time.perf_counter()
        state = audit(spec=args.spec, out=str(out), return_state=True)
        seconds = time.perf_counter() - t0
        if not state.is_completed():
            raise SystemExit(f"flow run failed: {state}")
        release_generators()
        release_judges()
        return seconds

    in_process(work / "warm-cli")  # imports, tiny models built
    t0 = time.perf_counter()
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # starts the embedded server
        client.hello()
    server = time.perf_counter() - t0
    through_flow(work / "warm-flow")

    # Each timed run starts after a rest: the embedded server goes on recording a flow run's
    # events for a while after it ends, which would slow whatever runs next on a small machine.
    # The order alternates between rounds, so neither kind always runs right after the other.
    times: dict[str, list[float]] = {"in-process": [], "flow": []}
    runs = {"in-process": in_process, "flow": through_flow}
    for r in range(args.rounds):
        for name in ("in-process", "flow") if r % 2 == 0 else ("flow", "in-process"):
            time.sleep(args.settle)
            times[name].append(runs[name](work / f"{name}-{r}"))
    cli, flow = statistics.median(times["in-process"]), statistics.median(times["flow"])
    images = len((work / "in-process-0" / "images.jsonl").read_text().splitlines())
    print(f"spec {spec.id}: {images} images, {len(spec.judges)} judges; median of {args.rounds} rounds")
    for name, values in times.items():
        print(f"{name:10s}: {statistics.median(values):6.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
    print(f"BENCH flow_overhead_ratio {flow / cli:.2f} ratio")
    print(f"BENCH flow_overhead_seconds {flow - cli:.2f} s")
    print(f"BENCH flow_server_start_seconds {server:.2f} s")


if __name__ == "__main__":
    main()
