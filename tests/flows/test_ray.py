"""The flow on a local Ray instance (only where the ``ray`` extra is installed; not in ``dev``)."""

from __future__ import annotations

import pytest

from tests.helpers import BALANCED, SKEWED, fake_spec

pytest.importorskip("prefect_ray")


def test_runner_ray_gives_the_in_process_records(prefect_harness, tmp_path):
    from flows.audit import audit
    from t2iaudit.spec import load_spec
    from t2iaudit.stages import run_audit

    spec = fake_spec(tmp_path, models={"fair": BALANCED, "skewed": SKEWED}, prompts=2, replicates=4)
    state = audit(spec=str(spec), out=str(tmp_path / "flow"), runner="ray", return_state=True)
    assert state.is_completed(), state
    reference = run_audit(load_spec(spec), tmp_path / "cli").root
    for name in ("images.jsonl", "judgements.jsonl", "metrics.jsonl"):
        flow = sorted((tmp_path / "flow" / name).read_text().splitlines())
        assert flow == sorted((reference / name).read_text().splitlines()), name
