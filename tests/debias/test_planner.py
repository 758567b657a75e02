"""Planner guarantees: exact quotas, determinism, joint tables, the unspecified class (hypothesis properties)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t2iaudit.debias.planner import Group, plan
from t2iaudit.debias.quotas import apportion
from t2iaudit.debias.schema import PlanRequest
from t2iaudit.debias.shuffle import hash_int, seeded_shuffle
from t2iaudit.errors import InputError

shares_st = st.lists(st.integers(0, 20), min_size=1, max_size=6).filter(lambda w: sum(w) > 0)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 400), attrs=st.lists(shares_st, min_size=1, max_size=3), seed=st.integers(0, 2**31))
def test_every_marginal_is_within_one_of_n_times_target(n, attrs, seed):
    groups = [Group.single(f"a{j}", {f"c{i}": w / sum(ws) for i, w in enumerate(ws)}) for j, ws in enumerate(attrs)]
    p = plan(n, groups, str(seed))
    assert len(p.assignments) == n
    for j, ws in enumerate(attrs):
        counts = p.marginals[f"a{j}"]
        assert sum(counts.values()) == n
        for i, w in enumerate(ws):
            assert abs(counts[f"c{i}"] - n * w / sum(ws)) < 1
        # the assignments realise exactly the planned counts
        assert counts == {f"c{i}": sum(a[f"a{j}"] == f"c{i}" for a in p.assignments) for i in range(len(ws))}


def test_twelve_at_fifty_fifty_is_exactly_six_and_six():
    p = plan(12, [Group.single("gender", {"female": 0.5, "male": 0.5})], "7\x1fa photo of a nurse")
    assert p.marginals == {"gender": {"female": 6, "male": 6}}
    assert apportion(10, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 4, "b": 3, "c": 3}


def test_attributes_are_paired_by_a_seeded_shuffle_not_in_lockstep():
    groups = [Group.single("gender", {"female": 0.5, "male": 0.5}), Group.single("age", {"young": 0.5, "older": 0.5})]
    pairs = {(a["gender"], a["age"]) for a in plan(40, groups, "1").assignments}
    assert len(pairs) == 4  # all combinations occur: the lists are shuffled independently
    assert plan(40, groups, "1").assignments != plan(40, groups, "2").assignments


def test_seeded_shuffle_is_stable_across_versions():
    # A golden order: this must never change, or old plans stop being reproducible.
    assert seeded_shuffle(list(range(10)), "t2iaudit") == seeded_shuffle(list(range(10)), "t2iaudit")
    assert seeded_shuffle(list(range(10)), "t2iaudit") == [0, 8, 9, 3, 4, 2, 7, 1, 5, 6]
    assert hash_int("image", 7, "a photo of a nurse", 0) == 3449482722951077481
    assert sorted(seeded_shuffle(list(range(50)), "x")) == list(range(50))


def test_joint_table_cells_get_exact_quotas():
    cells = (("female", "young"), ("female", "older"), ("male", "young"), ("male", "older"))
    p = plan(8, [Group(("gender", "age"), cells, (0.5, 0.0, 0.25, 0.25))], "k")
    assert p.cell_counts[("gender", "age")] == [4, 0, 2, 2]
    assert p.marginals == {"gender": {"female": 4, "male": 4}, "age": {"young": 6, "older": 2}}
    assert sum(a == {"gender": "female", "age": "older"} for a in p.assignments) == 0


def test_unspecified_is_a_class_with_its_own_quota(engine):
    req = PlanRequest(
        prompt="a photo of a nurse",
        n=10,
        seed=3,
        attributes={"age": {"classes": ["young", "older", "unspecified"], "target": [0.3, 0.3, 0.4]}},
    )
    resp = engine.plan(req)
    assert resp.planned_marginals == {"age": {"young": 3, "older": 3, "unspecified": 4}}
    left = [it for it in resp.items if it.assignment["age"] == "unspecified"]
    assert len(left) == 4 and all(it.prompt == "a photo of a nurse" for it in left)
    assert resp.planning_gap == {"age": 0.0}


def test_joint_request_through_the_engine(engine):
    req = PlanRequest(
        prompt="a photo of a doctor",
        n=8,
        seed=1,
        attributes={"gender": {}, "race": {"classes": ["White", "Black"]}},
        joint=[
            {"classes": {"gender": "female", "race": "Black"}, "share": 0.5},
            {"classes": {"gender": "male", "race": "White"}, "share": 0.5},
        ],
    )
    resp = engine.plan(req)
    combos = {(it.assignment["gender"], it.assignment["race"]) for it in resp.items}
    assert combos == {("female", "Black"), ("male", "White")}
    assert resp.planned_marginals["gender"] == {"female": 4, "male": 4}
    with pytest.raises(InputError, match="not among the classes"):
        engine.plan(
            req.model_copy(
                update={
                    "joint": [
                        req.joint[0].model_copy(update={"classes": {"gender": "female", "race": "East Asian"}}),
                        req.joint[1],
                    ]
                }
            )
        )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**40), n=st.integers(1, 60), female=st.integers(0, 10))
def test_same_request_same_response_byte_for_byte(engine, seed, n, female):
    req = PlanRequest(
        prompt="a doctor talking to a nurse",
        n=n,
        seed=seed,
        attributes={"gender": {"target": [female / 10, 1 - female / 10]}, "age": {}},
    )
    first = engine.plan(req).model_dump_json()
    assert engine.plan(PlanRequest.model_validate_json(req.model_dump_json())).model_dump_json() == first


def test_bad_targets_are_input_errors_naming_the_field(engine):
    def plan_with(attributes):
        return engine.plan(PlanRequest(prompt="a nurse", n=4, attributes=attributes))

    with pytest.raises(InputError, match="unknown attribute") as e:
        plan_with({"height": {}})
    assert e.value.field == "attributes.height"
    with pytest.raises(InputError, match="unknown classes"):
        plan_with({"gender": {"classes": ["female", "diverse"]}})
    with pytest.raises(InputError, match="sum to 0.9"):
        plan_with({"gender": {"target": [0.5, 0.4]}})
    with pytest.raises(InputError, match="2 shares for 3 classes"):
        plan_with({"age": {"target": [0.5, 0.5]}})
    with pytest.raises(InputError, match="two schemes"):
        plan_with({"race": {}, "race_fairface": {}})


def test_joint_table_reduced_to_marginals_when_the_prompt_states_one_of_its_attributes(engine):
    req = PlanRequest(
        prompt="a photo of a female doctor",
        n=4,
        attributes={"gender": {}, "race": {"classes": ["White", "Black"]}},
        joint=[
            {"classes": {"gender": "female", "race": "Black"}, "share": 0.75},
            {"classes": {"gender": "male", "race": "White"}, "share": 0.25},
        ],
    )
    resp = engine.plan(req)
    assert resp.planned_marginals == {"race": {"White": 1, "Black": 3}}
    assert {w.code for w in resp.warnings} == {"JOINT_REDUCED", "STATED_ATTRIBUTE_KEPT"}
