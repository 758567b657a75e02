"""Debiased Prompt records for the closed loop, and the shipped vocabulary's rules."""

from __future__ import annotations

import pytest

from t2iaudit.debias.loop import debias_prompts, parent_image_seed
from t2iaudit.debias.schema import AttributeTarget
from t2iaudit.debias.vocab import FORBIDDEN_WORDS, parse_vocabulary
from t2iaudit.errors import InputError
from t2iaudit.generators.base import derive_seed
from t2iaudit.types import Prompt


def test_debiased_prompts_record_their_parent_and_reuse_its_seeds(engine):
    parents = [
        Prompt(prompt_id="occ/nurse", set_id="occ", template_id="t", text="a photo of a nurse", meta={"weight": 2}),
        Prompt(prompt_id="hist/knight", set_id="hist", template_id="t", text="a medieval knight"),
    ]
    out = debias_prompts(parents, {"gender": AttributeTarget()}, n=4, seed=9, engine=engine)
    assert [p.prompt_id for p in out[:2]] == ["occ/nurse/debiased/0", "occ/nurse/debiased/1"]
    nurse = out[:4]
    assert sorted(p.requested["gender"] for p in nurse) == ["female", "female", "male", "male"]
    assert all(p.meta["parent_prompt_id"] == "occ/nurse" and p.meta["weight"] == 2 for p in nurse)
    assert [p.meta["parent_replicate"] for p in nurse] == [0, 1, 2, 3]
    assert parent_image_seed(0, "sd15", nurse[2]) == derive_seed(0, "sd15", "occ/nurse", 2)
    knight = out[4:]
    assert {p.text for p in knight} == {"a medieval knight"} and knight[0].meta[
        "debias_abstain"
    ] == "HISTORICAL_CONTEXT"
    assert knight[0].requested == {}
    with pytest.raises(ValueError, match="not a debiased prompt"):
        parent_image_seed(0, "sd15", parents[0])


def test_vocabulary_uses_the_canonical_class_names(vocab):
    # The labels t2iaudit's judges answer with (to be checked against t2iaudit.vocabulary once it lands).
    assert vocab.classes["gender"] == ["female", "male"]
    assert vocab.classes["age"] == ["young", "middle-aged", "older"]
    assert vocab.classes["race"] == ["White", "East Asian", "Black", "South Asian"]
    assert "Latino_Hispanic" in vocab.classes["race_fairface"] and len(vocab.classes["race_fairface"]) == 7
    phrases = {p.lower() for by_class in vocab.phrases.values() for p in by_class.values()}
    assert not phrases & FORBIDDEN_WORDS


def test_a_vocabulary_with_diverse_is_refused():
    raw = {"version": "1", "attributes": {"race": {"classes": {"mixed": {"phrase": "diverse"}}}}}
    with pytest.raises(InputError, match="must name one class") as e:
        parse_vocabulary(raw, "my.yaml")
    assert e.value.file == "my.yaml" and e.value.field == "attributes.race.classes.mixed.phrase"
    with pytest.raises(InputError, match="attributes"):
        parse_vocabulary({"version": "1", "attributes": {}}, "my.yaml")


def test_fairface_scheme_is_stated_beside_bigbench(rules):
    s = rules.analyse("an Indian chef in a busy kitchen").subjects[0]
    assert s.stated == {"race": "South Asian", "race_fairface": "Indian"}
    assert rules.analyse("a Vietnamese farmer").subjects[0].stated == {"race_fairface": "Southeast Asian"}
