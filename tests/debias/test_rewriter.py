"""Rewriter and checks: insert-only rewrites, a/an, stated attributes kept, several subjects (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from t2iaudit.debias.checks import insert_check, names_check
from t2iaudit.debias.diffrule import check_insertions, words
from t2iaudit.debias.lexicon import shipped_occupations
from t2iaudit.debias.rewriter import RewriteTask, TemplateRewriter
from t2iaudit.debias.schema import PlanRequest
from t2iaudit.debias.tokens import article_for

OCCUPATIONS = sorted({o.lower() for o in shipped_occupations()})
TEMPLATES = ["a photo of {det} {mods}{noun}", "{det} {mods}{noun} at work", "a portrait of {det} {mods}{noun}, smiling"]
STATED = {
    "gender": ["female", "male"],
    "age": ["young", "older", "middle-aged"],
    "race": ["White", "Black", "East Asian"],
}


def test_article_agrees_with_the_inserted_phrase(engine):
    req = PlanRequest(
        prompt="An engineer and a nurse",
        n=4,
        seed=0,
        attributes={"race": {"classes": ["East Asian", "Black"], "target": [0.5, 0.5]}},
    )
    for item in engine.plan(req).items:
        r1, r2 = item.assignment["race.1"], item.assignment["race.2"]
        a1 = article_for(r1)
        assert item.prompt == f"{a1[0].upper() + a1[1:]} {r1} engineer and {article_for(r2)} {r2} nurse"
        assert item.checks.ok, item.checks


def test_check_flags_everything_but_planned_insertions_next_to_the_subject():
    ok = check_insertions("a photo of an engineer", "a photo of a female engineer", ["engineer"], ["female"])
    assert ok.ok and ok.inserted == ["female"]
    assert not check_insertions("a photo of a nurse", "a photo of a young nurse", ["nurse"], ["female"]).ok
    assert not check_insertions("a photo of a nurse", "a female photo of a nurse", ["nurse"], ["female"]).ok
    assert not check_insertions("a photo of a nurse", "a picture of a female nurse", ["nurse"], ["female"]).ok
    two = check_insertions(
        "a doctor and a nurse", "a male doctor and a female nurse", ["doctor", "nurse"], ["male", "female"]
    )
    assert two.ok


def test_names_check_catches_an_unplanned_attribute(rules, vocab):
    analysis = rules.analyse("a photo of a nurse")
    task = RewriteTask("a photo of a nurse", analysis, {0: ["female"]})
    assert names_check(task, "a photo of a female nurse", rules, vocab).ok
    extra = names_check(task, "a photo of a young female nurse", rules, vocab)
    assert not extra.ok and extra.found["1"]["age"] == "young"
    assert not names_check(task, "a photo of a nurse", rules, vocab).ok  # the planned one missing
    assert not insert_check(task, "a photo of a young female nurse").ok


def test_first_subject_mode_names_the_others_in_a_warning(engine):
    req = PlanRequest(prompt="a teacher helping a student", n=2, attributes={"gender": {}}, subjects="first")
    resp = engine.plan(req)
    assert all(set(it.assignment) == {"gender"} for it in resp.items)
    assert all(it.prompt.endswith("teacher helping a student") for it in resp.items)
    warn = [w for w in resp.warnings if w.code == "SUBJECTS_UNSPECIFIED"]
    assert warn and warn[0].details == {"subjects": ["student"]}


def test_each_subject_gets_its_own_assignment(engine):
    resp = engine.plan(PlanRequest(prompt="a teacher helping a student", n=8, seed=2, attributes={"gender": {}}))
    assert resp.planned_marginals == {"gender.1": {"female": 4, "male": 4}, "gender.2": {"female": 4, "male": 4}}
    for it in resp.items:
        assert it.prompt == f"a {it.assignment['gender.1']} teacher helping a {it.assignment['gender.2']} student"


def test_abstained_prompt_is_left_unchanged_with_its_reason(engine):
    resp = engine.plan(PlanRequest(prompt="a portrait of Marie Curie", n=3, attributes={"gender": {}}))
    assert resp.abstain_reasons == ["NAMED_PERSON"]
    assert [it.prompt for it in resp.items] == ["a portrait of Marie Curie"] * 3
    assert resp.planned_marginals == {} and all(it.checks is None for it in resp.items)
    assert len({it.image_seed for it in resp.items}) == 3


modifier = st.dictionaries(st.sampled_from(sorted(STATED)), st.none(), max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: st.sampled_from(STATED[k]) for k in keys})
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    noun=st.sampled_from(OCCUPATIONS),
    stated=modifier,
    template=st.sampled_from(TEMPLATES),
    seed=st.integers(0, 2**32),
    n=st.integers(1, 8),
)
@example(noun="wife", stated={"age": "young", "race": "White"}, template=TEMPLATES[0], seed=0, n=1)  # found in CI
def test_stated_attributes_never_change_and_the_diff_only_inserts(engine, rules, noun, stated, template, seed, n):
    order = ["age", "race", "gender"]
    mods = "".join(f"{stated[a]} " for a in order if a in stated)
    det = article_for((mods or noun).split()[0])
    prompt = template.format(det=det, mods=mods, noun=noun)
    resp = engine.plan(PlanRequest(prompt=prompt, n=n, seed=seed, attributes={"gender": {}, "age": {}, "race": {}}))
    bare = template.format(det=article_for(noun.split()[0]), mods="", noun=noun)
    implied = rules.analyse(bare).subjects[0].stated  # a gendered noun ("wife") states gender itself
    stated = {**{a: c for a, c in implied.items() if a in order}, **stated}
    if set(stated) == {"gender", "age", "race"}:
        assert resp.abstain_reasons == ["ALL_ATTRIBUTES_STATED"]
        return
    assert resp.abstain_reasons == [], resp.analysis
    for item in resp.items:
        assert not set(item.assignment) & set(stated), "a stated attribute was planned"
        after = rules.analyse(item.prompt).subjects[0].stated
        for attr, cls in stated.items():
            assert after[attr] == cls
        assert {after[a] for a in item.assignment} == set(item.assignment.values())
        check = check_insertions(prompt, item.prompt, [resp.analysis.subjects[0].noun], list(item.assignment.values()))
        assert check.ok, check.violations
        removed = [w for w in words(prompt) if w not in words(item.prompt)]
        assert removed in ([], ["a"], ["an"])
        assert item.checks.ok


@pytest.mark.parametrize("prompt", ["a Victorian chimney sweep", "Snow White with the seven dwarfs", "a red car"])
def test_nothing_is_inserted_when_the_prompt_is_left_alone(engine, prompt):
    resp = engine.plan(PlanRequest(prompt=prompt, n=2, attributes={"race": {}}))
    assert resp.abstain_reasons and {it.prompt for it in resp.items} == {prompt}


def test_template_rewriter_inserts_in_vocabulary_order(rules, vocab):
    analysis = rules.analyse("a photo of a nurse")
    phrases = vocab.ordered({"gender": "female", "race": "Black", "age": "young"})
    assert TemplateRewriter().rewrite(RewriteTask("a photo of a nurse", analysis, {0: phrases})) == (
        "a photo of a young Black female nurse"
    )
