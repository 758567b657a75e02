"""A test generator for the Dask tests, registered in the test process and preloaded in workers.

``fake-probe`` makes exactly the fake generator's images, but declares it needs an accelerator
(so shards ask for a GPU and a machine slot), logs which process made which images, and can
kill its worker once, deterministically: on the prompt ``$T2IAUDIT_TEST_KILL_PROMPT``, once
the run directory ``$T2IAUDIT_TEST_KILL_RUN`` has ``$T2IAUDIT_TEST_KILL_AFTER`` images
committed, the first worker to get there creates ``$T2IAUDIT_TEST_KILL_MARKER`` and exits hard, as an out-of-memory kill would.
The test sets those variables for the cluster's workers only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from t2iaudit.fakes import FakeGenerator, FakeGeneratorConfig
from t2iaudit.generators.base import GeneratedImage, GenerationRequest, GeneratorKind
from t2iaudit.generators.registry import GENERATORS

PROBE_DIR = "T2IAUDIT_TEST_PROBE_DIR"


class ProbeGenerator(FakeGenerator):
    def generate(self, requests: list[GenerationRequest]) -> list[GeneratedImage]:
        kill = os.environ.get("T2IAUDIT_TEST_KILL_PROMPT")
        if kill and any(r.prompt.prompt_id == kill for r in requests):
            marker = Path(os.environ["T2IAUDIT_TEST_KILL_MARKER"])
            images = Path(os.environ["T2IAUDIT_TEST_KILL_RUN"]) / "images.jsonl"
            wanted = int(os.environ.get("T2IAUDIT_TEST_KILL_AFTER", "1"))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _committed(images) < wanted:
                time.sleep(0.05)
            try:
                marker.touch(exist_ok=False)
            except FileExistsError:
                pass
            else:
                os._exit(1)
        out = super().generate(requests)
        folder = os.environ.get(PROBE_DIR)
        if folder:
            with open(Path(folder) / f"{os.getpid()}.log", "a") as f:
                f.write(f"{time.time()} {len(requests)} {requests[0].prompt.prompt_id}/{requests[0].replicate}\n")
        return out


def _committed(images: Path) -> int:
    return len(images.read_bytes().splitlines()) if images.exists() else 0


def build(config: FakeGeneratorConfig, model_id: str, model_cache: Path | None) -> ProbeGenerator:
    return ProbeGenerator(config)


if "fake-probe" not in GENERATORS:
    GENERATORS.register("fake-probe", GeneratorKind(FakeGeneratorConfig, build, runs_on="accelerator"))
