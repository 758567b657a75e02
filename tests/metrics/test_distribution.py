"""Distribution metrics (D1-D4, D8, D9) and the distribution family on hand-built tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2iaudit.errors import InputError
from t2iaudit.metrics.catalog import METRICS
from t2iaudit.metrics.compute import MetricsOptions, run_families
from t2iaudit.metrics.distribution import formulas as dist
from tests.metrics.builders import image_rows, pick, records_table, table

GENDER = ["female", "male"]
RACE = ["A", "B", "C"]


SETS = {"j": {"gender": GENDER, "race": RACE}}


# --- pure functions -------------------------------------------------------------------------


def test_binary_metrics_hand_computed() -> None:
    p, u = np.array([0.75, 0.25]), np.array([0.5, 0.5])
    assert dist.mad(p) == pytest.approx(0.25)  # = |p_a - 0.5| for K = 2
    assert dist.gender_imbalance(0.75) == pytest.approx(0.25)
    assert dist.signed_imbalance(1, 3) == pytest.approx(-0.5)  # (n_m - n_f)/(n_m + n_f)
    assert dist.total_variation(p, u) == pytest.approx(0.25)
    assert dist.max_deviation(p, u) == pytest.approx(0.25)
    assert dist.fairness_discrepancy(p, u) == pytest.approx(math.sqrt(2 * 0.25**2))
    assert dist.pairwise_gap(p) == pytest.approx(0.5)
    assert dist.cosine(p, u) == pytest.approx(0.5 / (math.sqrt(0.625) * math.sqrt(0.5)))
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert dist.normalized_entropy(p) == pytest.approx(h)  # 0.811278
    assert dist.severity(p) == pytest.approx(1 - h, abs=1e-8)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)  # 0.130812
    assert dist.kl_divergence(p, u, eps=1e-12) == pytest.approx(kl, abs=1e-9)


def test_class_never_observed() -> None:
    p = np.array([0.5, 0.5, 0.0])
    assert dist.mad(p) == pytest.approx((1 / 6 + 1 / 6 + 1 / 3) / 3)
    assert dist.pairwise_gap(p) == pytest.approx(1 / 3)  # (0 + .5 + .5) * 2 / (3 * 2)
    assert dist.normalized_entropy(p) == pytest.approx(math.log(2) / math.log(3))
    assert dist.severity(p) == pytest.approx(1 - math.log(2) / math.log(3), abs=1e-8)
    assert np.isfinite(dist.kl_divergence(p, np.array([0.5, 0.5, 0.0]), 1e-6))
    # KL against a reference with an empty class stays finite thanks to eps; p has mass there:
    assert dist.kl_divergence(np.array([0.0, 0.0, 1.0]), np.array([0.5, 0.5, 0.0]), 1e-6) > 10


def test_skin_tone_imbalance_heim_and_n_only() -> None:
    counts, unknown = np.array([5, 5] + [0] * 8), np.array(10)
    assert dist.skin_tone_imbalance(counts, unknown) == pytest.approx((0.15 * 2 + 0.1 * 8) / 10)
    assert dist.skin_tone_imbalance(counts, unknown, False) == pytest.approx((0.4 * 2 + 0.1 * 8) / 10)
    assert np.isnan(dist.skin_tone_imbalance(np.zeros(10), np.array(0)))


def test_empty_cell_is_nan() -> None:
    p = dist.proportions(np.array([[0, 0], [1, 3]]))
    assert np.isnan(p[0]).all()
    for fn in (dist.mad, dist.normalized_entropy, dist.pairwise_gap, dist.severity):
        assert np.isnan(fn(p)[0]) and np.isfinite(fn(p)[1])


# --- the family -----------------------------------------------------------------------------


def test_family_per_prompt_and_aggregate() -> None:
    rows = image_rows("p1", {"gender": ["female"] * 3 + ["male", "unknown"]})
    rows += image_rows("p2", {"gender": ["unknown", "unknown"]})  # all unknown
    rows += image_rows("p3", {"gender": ["male"]})  # a single image
    values = run_families(table(rows, SETS), MetricsOptions(bootstrap_resamples=100, families=["distribution"]))
    share = pick(values, "share", "gender", prompt_id="p1", params={"label": "female"})
    lo, hi = 0.30064, 0.95441  # Wilson 3/4
    assert (share.value, share.n, share.n_unknown) == (0.75, 4, 1)
    assert (share.ci_low, share.ci_high) == (pytest.approx(lo, abs=1e-5), pytest.approx(hi, abs=1e-5))
    assert share.params["unknown_in_denominator"] is False and share.params["interval"] == "wilson"
    empty = pick(values, "D1_mad", "gender", prompt_id="p2")
    assert (empty.value, empty.n, empty.n_unknown, empty.ci_low) == (None, 0, 2, None)
    single = pick(values, "D2_gender_imbalance", "gender", prompt_id="p3")
    assert (single.value, single.n) == (0.5, 1)
    d8 = pick(values, "D8_signed_imbalance", "gender", prompt_id="p1")
    assert d8.value == pytest.approx(-0.5)
    assert (d8.ci_low, d8.ci_high) == (
        pytest.approx(2 * 0.04559 - 1, abs=1e-4),
        pytest.approx(2 * 0.69936 - 1, abs=1e-4),
    )
    # Aggregates: mean over prompts with labels (p1: |.75-.5|, p3: |0-.5|), p2 left out.
    agg = pick(values, "D2_gender_imbalance", "gender")
    assert agg.value == pytest.approx((0.25 + 0.5) / 2)
    assert (agg.n, agg.n_unknown) == (5, 3)
    assert agg.params["resamples"] == 100 and agg.params["seed"] == 0 and agg.params["prompts"] == 3
    assert agg.ci_low <= agg.value <= agg.ci_high
    assert pick(values, "share", "gender", params={"label": "female"}).value == pytest.approx((0.75 + 0.0) / 2)
    # OpenBias: context-free pools counts (3 f, 2 m); context-aware averages per-prompt Hn.
    pooled = np.array([3, 2]) / 5
    assert pick(values, "D4_severity_context_free", "gender").value == pytest.approx(float(dist.severity(pooled)))
    aware = np.mean([dist.severity(np.array([0.75, 0.25])), dist.severity(np.array([0.0, 1.0]))])
    assert pick(values, "D4_severity_context_aware", "gender").value == pytest.approx(float(aware))


def test_unknown_in_denominator_switch() -> None:
    rows = image_rows("p1", {"gender": ["female"] * 3 + ["male", "unknown"]})
    opts = MetricsOptions(bootstrap_resamples=0, unknown_in_denominator=True, families=["distribution"])
    share = pick(run_families(table(rows, SETS), opts), "share", "gender", prompt_id="p1", params={"label": "female"})
    assert (share.value, share.n, share.n_unknown) == (0.6, 5, 1)
    assert share.params["unknown_in_denominator"] is True


def test_references_uniform_prompt_and_custom() -> None:
    rows = image_rows("p1", {"gender": ["female"] * 3 + ["male"]}, reference="ref/p1")
    rows += image_rows("p2", {"gender": ["male"] * 2})  # no reference key
    refs = {"ref/p1": {"gender": {"female": 0.3, "male": 0.7}}}
    opts = MetricsOptions(
        bootstrap_resamples=0,
        references=["uniform", "prompt", "census"],
        custom_references={"census": {"gender": {"female": 0.6, "male": 0.4}}},
        families=["distribution"],
    )
    values = run_families(table(rows, SETS, refs), opts)
    assert pick(values, "D9_tv", "gender", prompt_id="p1", params={"reference": "uniform"}).value == pytest.approx(0.25)
    against_prompt = pick(values, "D9_tv", "gender", prompt_id="p1", params={"reference": "prompt"})
    assert against_prompt.value == pytest.approx(0.45) and against_prompt.params["reference_key"] == "ref/p1"
    assert not [v for v in values if v.params.get("reference") == "prompt" and v.scope.get("prompt_id") == "p2"]
    assert pick(values, "D9_tv", "gender", params={"reference": "prompt"}).params["prompts"] == 1
    assert pick(values, "D9_tv", "gender", prompt_id="p2", params={"reference": "census"}).value == pytest.approx(0.6)
    agg = pick(values, "D9_max_dev", "gender", params={"reference": "census"})
    assert agg.value == pytest.approx((0.15 + 0.6) / 2)
    kl = pick(values, "D9_kl", "gender", prompt_id="p1", params={"reference": "uniform"})
    assert kl.params["eps"] == 1e-6


def test_intersectional_joint_labels() -> None:
    rows = image_rows("p1", {"gender": ["female", "female", "male", "unknown"]})
    rows += image_rows("p1", {"race": ["A", "B", "A", "A"]})
    values = run_families(table(rows, SETS), MetricsOptions(bootstrap_resamples=0, families=["distribution"]))
    shares = {
        v.params["label"]: v.value
        for v in values
        if v.metric == "share" and v.attribute == "gender*race" and "prompt_id" in v.scope
    }
    assert len(shares) == 6  # K = 2 x 3 declared, not the observed support
    assert shares["female*A"] == pytest.approx(1 / 3) and shares["male*C"] == 0.0
    joint = pick(values, "D1_mad", "gender*race", prompt_id="p1")
    assert joint.n == 3 and joint.n_unknown == 1
    p = np.array([1, 1, 0, 1, 0, 0]) / 3
    assert joint.value == pytest.approx(float(dist.mad(p)))


def test_skips_free_text_and_numeric_and_rejects_undeclared() -> None:
    rows = image_rows("p1", {"caption": ["a cat", "a dog"]}) + image_rows("p1", {"faces": ["1", "2"]})
    rows += image_rows("p1", {"gender": ["female"]})
    sets = {"j": {"caption": [], "faces": ["0", "1", "2"], "gender": GENDER}}
    values = run_families(table(rows, sets), MetricsOptions(bootstrap_resamples=0, families=["distribution"]))
    assert {v.attribute for v in values} == {"gender"}
    bad = image_rows("p1", {"gender": ["femme"]})
    with pytest.raises(InputError, match="'femme' is not declared"):
        run_families(table(bad, SETS), MetricsOptions(families=["distribution"]))


def test_skin_tone_family_uses_unknown_denominator() -> None:
    monk = [f"monk{i}" for i in range(1, 11)]
    rows = image_rows("p1", {"skin_tone": ["monk1"] * 5 + ["monk2"] * 5 + ["unknown"] * 10})
    values = run_families(
        table(rows, {"j": {"skin_tone": monk}}), MetricsOptions(bootstrap_resamples=0, families=["distribution"])
    )
    d3 = pick(values, "D3_skin_tone_imbalance", "skin_tone", prompt_id="p1")
    assert d3.value == pytest.approx(0.11) and d3.n == 20 and d3.params["unknown_in_denominator"] is True


def test_options_validation_and_metric_filter() -> None:
    with pytest.raises(ValueError, match="did you mean 'D9_tv'"):
        MetricsOptions(metrics=["D9_tvv"])
    with pytest.raises(ValueError, match="sum to 1"):
        MetricsOptions(custom_references={"x": {"gender": {"female": 0.2}}})
    with pytest.raises(ValueError, match="custom_references"):
        MetricsOptions(references=["nope"])
    with pytest.raises(ValueError, match="extra"):
        MetricsOptions(bootstrap=5)
    rows = image_rows("p1", {"gender": ["female", "male"]})
    values = run_families(table(rows, SETS), MetricsOptions(metrics=["D1_mad"], bootstrap_resamples=10))
    assert {v.metric for v in values} == {"D1_mad"}
    assert "D9_tv" in METRICS and "share" in METRICS.names()


def test_seeded_and_reproducible() -> None:
    rows = image_rows("p1", {"gender": ["female"] * 3 + ["male"]}) + image_rows("p2", {"gender": ["male", "female"]})
    opts = MetricsOptions(bootstrap_resamples=200, seed=7, families=["distribution"])
    a = [v.model_dump() for v in run_families(table(rows, SETS), opts)]
    b = [v.model_dump() for v in run_families(table(rows, SETS), opts)]
    assert a == b


def test_jeffreys_option_in_family() -> None:
    from t2iaudit.metrics.stats import jeffreys_interval

    rows = image_rows("p1", {"gender": ["female"] * 3 + ["male"]})
    opts = MetricsOptions(bootstrap_resamples=0, interval="jeffreys", families=["distribution"])
    share = pick(run_families(table(rows, SETS), opts), "share", "gender", prompt_id="p1", params={"label": "female"})
    lo, hi = jeffreys_interval(3, 4)
    assert share.params["interval"] == "jeffreys" and (share.ci_low, share.ci_high) == (
        pytest.approx(lo),
        pytest.approx(hi),
    )


_dists = st.integers(2, 6).flatmap(
    lambda k: st.tuples(
        st.lists(st.integers(0, 50), min_size=k, max_size=k).filter(lambda c: sum(c) > 0),
        st.lists(st.integers(1, 50), min_size=k, max_size=k),
    )
)


@settings(max_examples=60, deadline=None)
@given(_dists)
def test_properties(pair: tuple[list[int], list[int]]) -> None:
    p = dist.proportions(np.array(pair[0]))
    r = dist.proportions(np.array(pair[1]))
    k = len(p)
    i, j = np.triu_indices(k, 1)
    assert dist.pairwise_gap(p) == pytest.approx(np.abs(p[i] - p[j]).sum() * 2 / (k * (k - 1)))
    assert 0.0 <= dist.total_variation(p, r) <= 1.0 + 1e-12
    assert dist.max_deviation(p, r) <= 2 * dist.total_variation(p, r) + 1e-12
    assert dist.kl_divergence(p, r) >= -1e-12
    assert -1e-12 <= dist.normalized_entropy(p) <= 1.0 + 1e-12
    assert dist.total_variation(p, np.full(k, 1 / k)) == pytest.approx(k / 2 * dist.mad(p))


def test_unanimous_labels_do_not_get_a_zero_width_interval():
    """12 images all judged female (3 prompts x 4): a bootstrap at the observed shares collapses to
    one point; the intervals must not claim that certainty from 12 images."""
    from t2iaudit.metrics.distribution.bias_aware import METHOD

    prompts = [{"prompt_id": f"p{i}", "set_id": "s", "template_id": "t", "expected_people": 1} for i in range(3)]
    images = [
        {"image_id": f"p{i}/{r}", "model_id": "m", "prompt_id": f"p{i}", "replicate": r}
        for i in range(3)
        for r in range(4)
    ]
    judgements = [
        {"image_id": im["image_id"], "judge_id": "j", "attribute": "gender", "label": "female", "scores": {}}
        for im in images
    ]
    data = records_table(judgements, images, prompts, {"j": {"gender": ["female", "male"]}})
    values = run_families(data, MetricsOptions(families=["distribution"], bootstrap_resamples=200))
    agg = {(v.metric, v.params.get("label")): v for v in values if "prompt_id" not in v.scope}
    share = agg["share", "female"]
    assert share.value == 1.0 and share.ci_high == 1.0
    assert share.ci_low <= 0.7575 + 1e-4  # at most the Wilson bound of 12/12
    d2 = agg["D2_gender_imbalance", None]  # |f - 0.5|
    # 4 images per prompt all female are likely (>= 5%) for a female share as low as 0.5^(1/4)
    # = 0.84 per prompt: D2 of 0.34 must be inside the interval.
    assert d2.value == 0.5 and d2.ci_high == 0.5 and d2.ci_low < 0.34
    assert d2.params["interval"] == METHOD and d2.params["estimand"] == "audited_prompts"
    per_prompt = [v for v in values if v.metric == "D2_gender_imbalance" and "prompt_id" in v.scope]
    assert all(v.ci_low < 0.34 for v in per_prompt)  # per-prompt intervals do not collapse either


def test_seed_effect_metric_is_gone():
    """Seeds are hashed per (model, prompt, replicate): replicate r shares no seed across prompts,
    so a "spread over seed sets" measured nothing (issue 7, finding 5)."""
    from t2iaudit.metrics.compute import FAMILIES

    assert "seed_sd_share" not in METRICS
    assert "seed_spread" not in FAMILIES


def test_fast_records_are_what_model_construct_makes():
    from t2iaudit.metrics.distribution import records
    from t2iaudit.types import MetricValue

    assert records._PLAIN_CONSTRUCT  # else _value falls back to model_construct (correct, slower)
    got = records._value("D1_mad", "gender", {"model_id": "m"}, 0.25, np.float64(0.1), float("nan"), 7, 1, {"a": 1})
    want = MetricValue.model_construct(
        metric="D1_mad",
        attribute="gender",
        scope={"model_id": "m"},
        value=0.25,
        ci_low=0.1,
        ci_high=None,
        n=7,
        n_unknown=1,
        params={"a": 1},
    )
    assert got == want and repr(got) == repr(want) and got.model_dump_json() == want.model_dump_json()
    assert list(got.__dict__) == list(want.__dict__) and got.model_fields_set == want.model_fields_set
    assert got.__pydantic_extra__ is None and got.__pydantic_private__ is None
    with pytest.raises(ValueError):  # still frozen
        got.value = 1.0
    assert MetricValue.model_validate(got.model_dump()) == got
