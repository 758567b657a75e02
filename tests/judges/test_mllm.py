"""MLLM judge, transformers backend: option log-likelihood scoring on a tiny random LLaVA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from t2iaudit.judges.base import JudgeContext, JudgeInput
from t2iaudit.judges.loader import build_judge, load_judge_config
from t2iaudit.judges.mllm import MllmJudge, MllmJudgeConfig, ScoredSequence
from t2iaudit.types import UNKNOWN, Prompt
from tests.judges.conftest import judge_inputs


@pytest.fixture(scope="session")
def judge(context: JudgeContext) -> MllmJudge:
    return build_judge(load_judge_config("tiny-mllm"), context)  # type: ignore[return-value]


MLLM_ITEMS = dict(
    seed=1, size=(30, 50), grow=5, texts=("a photo {i}",), prompt_ids="p{i}", slots={"occupation": "nurse"}
)


def with_config(judge: MllmJudge, **changes: object) -> MllmJudge:
    data = judge.config.model_dump()
    data.update(changes)
    return MllmJudge(MllmJudgeConfig.model_validate(data), judge.scorer)


def test_end_to_end_labels_and_probabilities(judge: MllmJudge) -> None:
    items = judge_inputs(3, **MLLM_ITEMS)
    out = judge.judge(items)
    assert judge.attributes == {
        "gender": ["female", "male"],
        "age": ["young", "middle-aged", "older"],
        "person_count": ["0", "1", "2", "3+"],
        "shows_subject": ["yes", "no"],
    }
    assert len(out) == len(items) * 4
    assert [(j.image_id, j.attribute) for j in out] == [(i.image_id, a) for i in items for a in judge.attributes]
    for j in out:
        q = judge.config.questions[j.attribute]
        assert j.label in q.options  # a declared label or unknown
        assert list(j.scores) == q.options  # unknown is scored too
        assert sum(j.scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert set(j.raw["logprob"]) == set(q.options)
        assert all(v <= 0 for v in j.raw["logprob"].values())
        assert j.label == max(j.scores, key=j.scores.__getitem__)
    subjects = [j.raw["subject"] for j in out if j.attribute == "shows_subject"]
    assert subjects == ["nurse", "a photo 1", "nurse"]  # slot first, prompt text as fallback
    assert judge.revision.startswith("tiny:llava@sha256:")


def test_batched_scoring_matches_one_at_a_time(judge: MllmJudge) -> None:
    items = judge_inputs(3, **MLLM_ITEMS)
    requests = [
        (items[0].image, "How many?", "person_count"),
        (items[1].image, "A longer question, so that the padding differs between rows?", "person_count"),
        (items[2].image, "Gender?", "gender"),
    ]
    together = judge.scorer.score(requests)
    alone = [judge.scorer.score([r])[0] for r in requests]
    for a, b in zip(together, alone):
        assert a == pytest.approx(b, abs=2e-4)


def test_single_token_fast_path_equals_full_scoring(judge: MllmJudge) -> None:
    scorer = judge.scorer
    data = judge.config.model_dump()
    data["questions"] = {"letter": {"question": "Pick", "options": ["a", "b", UNKNOWN], "answers": {UNKNOWN: "?"}}}
    config = MllmJudgeConfig.model_validate(data)
    ids = [scorer.tokenizer(a, add_special_tokens=False)["input_ids"] for a in ["a", "b", "?"]]
    assert all(len(i) == 1 for i in ids)
    scorer.option_ids["letter"] = ids
    image = judge_inputs(1, **MLLM_ITEMS)[0].image
    try:
        fast = scorer.score([(image, "Pick one", "letter")])[0]
    finally:
        del scorer.option_ids["letter"]
    enc = scorer.processor(images=[image], text=[scorer.chat_prompt("Pick one")], return_tensors="pt")
    n = enc["input_ids"].shape[1]
    full = [scorer._forward([ScoredSequence(0, k, enc, i, [(n - 1, i[0])])])[0][0] for k, i in enumerate(ids)]
    assert fast == pytest.approx(full, abs=1e-4)
    assert config.questions["letter"].labels() == ["a", "b"]


def test_multi_token_option_sums_token_logprobs(judge: MllmJudge) -> None:
    scorer = judge.scorer
    image = judge_inputs(1, **MLLM_ITEMS)[0].image
    enc = scorer.processor(images=[image], text=[scorer.chat_prompt("Count")], return_tensors="pt")
    n = enc["input_ids"].shape[1]
    opt = scorer.option_ids["person_count"][3]  # "3+": two byte tokens
    assert len(opt) == 2
    ids = torch.cat([enc["input_ids"], torch.tensor([opt])], 1)
    with torch.inference_mode():
        logits = scorer.model(**{**enc, "input_ids": ids, "attention_mask": torch.ones_like(ids)}).logits
    lp = torch.log_softmax(logits[0].float(), -1)
    expected = float(lp[n - 1, opt[0]] + lp[n, opt[1]])
    assert scorer.score([(image, "Count", "person_count")])[0][3] == pytest.approx(expected, abs=1e-4)


def test_prompts_and_option_tokens_prepared_once(judge: MllmJudge) -> None:
    calls = []
    proc = judge.scorer.processor
    original = proc.apply_chat_template

    def counting(*args: object, **kwargs: object) -> str:
        calls.append(1)
        return original(*args, **kwargs)

    proc.apply_chat_template = counting
    try:
        fresh = with_config(judge)
        fresh.scorer._prompts.clear()
        fresh.judge(judge_inputs(4, **MLLM_ITEMS))
        # gender, age, person_count, and shows_subject for two distinct subjects ("nurse" for
        # the even images, the prompt text for each odd one).
        assert len(calls) == 3 + 3
        fresh.judge(judge_inputs(4, **MLLM_ITEMS))
        assert len(calls) == 6
    finally:
        proc.apply_chat_template = original
    assert set(judge.scorer.option_ids) == set(judge.config.questions)


def test_threshold_turns_answers_into_unknown(judge: MllmJudge) -> None:
    data = judge.config.model_dump()
    for q in data["questions"].values():
        q["min_prob"] = 1.0
    strict = MllmJudge(MllmJudgeConfig.model_validate(data), judge.scorer)
    out = strict.judge(judge_inputs(2, **MLLM_ITEMS))
    assert len(out) == 8
    assert all(j.label == UNKNOWN for j in out)
    assert all(sum(j.scores.values()) == pytest.approx(1.0, abs=1e-6) for j in out)


def test_chunking_keeps_results(judge: MllmJudge) -> None:
    items = judge_inputs(3, **MLLM_ITEMS)
    a = judge.judge(items)
    b = with_config(judge, batch_size=1).judge(items)
    assert [j.label for j in a] == [j.label for j in b]
    for x, y in zip(a, b):
        assert x.scores == pytest.approx(y.scores, abs=1e-3)


BASE = {"id": "x", "kind": "mllm", "model": "tiny:llava"}


@pytest.mark.parametrize(
    ("questions", "extra", "message"),
    [
        ({"g": {"question": "?", "options": ["female", "male"]}}, {}, "must include 'unknown'"),
        ({"g": {"question": "?", "options": ["a", "a", "unknown"]}}, {}, "distinct"),
        ({"g": {"question": "?", "options": ["a", "unknown"]}}, {}, "at least two labels"),
        ({"g": {"question": "?", "options": ["a", "b", "unknown"], "answers": {"c": "x"}}}, {}, "not listed"),
        ({"g": {"question": "?", "options": ["a", "b", "unknown"], "answers": {"a": "B"}}}, {}, "distinct"),
        ({"g": {"question": "?", "options": ["1", "10", "unknown"]}}, {}, "prefix"),
        ({"g": {"question": "?", "options": ["a", "b", "unknown"], "subject": "prompt"}}, {}, "subject"),
        ({}, {}, "at least one question"),
        ({"g": {"question": "?", "options": ["a", "b", "unknown"]}}, {"api": {"base_url": "http://x"}}, "api"),
        ({"g": {"question": "?", "options": ["a", "b", "unknown"]}}, {"backend": "openai"}, "api"),
    ],
)
def test_config_rejects_bad_questions(questions: dict, extra: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MllmJudgeConfig.model_validate({**BASE, "questions": questions, **extra})


def test_answer_suffix_allows_prefix_answers() -> None:
    q = {"g": {"question": "?", "options": ["1", "10", "unknown"]}}
    config = MllmJudgeConfig.model_validate({**BASE, "questions": q, "answer_suffix": "<|end|>"})
    assert config.questions["g"].labels() == ["1", "10"]


@pytest.mark.hub
@pytest.mark.gpu
def test_real_qwen_judge(context: JudgeContext) -> None:
    """Needs Qwen2.5-VL-7B in the local hub cache and a GPU."""
    real = build_judge(load_judge_config("mllm-qwen2.5-vl"), JudgeContext(device="cuda"))
    out = real.judge(judge_inputs(2, **MLLM_ITEMS))
    assert len(out) == 2 * len(real.attributes)


@pytest.fixture(scope="session")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from t2iaudit.tiny.vlm import save_tiny_qwen2_5_vl

    folder = tmp_path_factory.mktemp("tiny-qwen2.5-vl")
    save_tiny_qwen2_5_vl(folder)
    return folder


def test_qwen_family_like_the_shipped_yaml(qwen_dir: Path) -> None:
    """The shipped real judge's model family, tiny: mrope positions, a variable number of image
    tokens per image, a processor with a video side, digit answers with an end-of-turn suffix."""
    data = load_judge_config("mllm-qwen2.5-vl").model_dump()
    data.update(model=str(qwen_dir), revision=None, dtype="float32", batch_size=4)
    judge = build_judge(MllmJudgeConfig.model_validate(data), JudgeContext())
    rng = np.random.default_rng(4)
    prompt = Prompt(
        prompt_id="p", set_id="s", template_id="t", text="a photo of one nurse", slots={"occupation": "nurse"}
    )
    items = [
        JudgeInput(f"q{k}", Image.fromarray(rng.integers(0, 255, (56 + 28 * k, 84, 3), dtype=np.uint8)), prompt)
        for k in range(3)
    ]
    out = judge.judge(items)
    assert len(out) == 3 * 5
    for j in out:
        assert j.label in judge.config.questions[j.attribute].options
        assert sum(j.scores.values()) == pytest.approx(1.0, abs=1e-6)
    scorer = judge.scorer
    assert scorer.option_ids["skin_tone"][9][-1] == scorer.tokenizer.convert_tokens_to_ids("<|im_end|>")
    requests = [(items[k].image, f"Question {'long ' * k}?", "person_count") for k in range(3)]
    together = scorer.score(requests)
    alone = [scorer.score([r])[0] for r in requests]
    for a, b in zip(together, alone):
        assert a == pytest.approx(b, abs=2e-4)
