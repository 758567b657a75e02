"""Captioner: tiny random BLIP (direct mode) and tiny LLaVA (chat mode), end to end."""

from __future__ import annotations

import pytest

from t2iaudit.judges.base import JudgeContext
from t2iaudit.judges.caption import CaptionJudge, CaptionJudgeConfig
from t2iaudit.judges.loader import build_judge, load_judge_config
from t2iaudit.tiny.vlm import CAPTION_WORDS
from t2iaudit.types import UNKNOWN
from tests.judges.conftest import judge_inputs


@pytest.fixture(scope="session")
def blip(context: JudgeContext) -> CaptionJudge:
    return build_judge(load_judge_config("tiny-caption"), context)  # type: ignore[return-value]


def test_blip_captions_a_batch(blip: CaptionJudge) -> None:
    calls = []
    original = blip.model.generate

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return original(*args, **kwargs)

    blip.model.generate = counting
    try:
        out = blip.judge(judge_inputs(5, seed=2, size=(32, 48), texts=("a photo of a chef",), prompt_ids="p"))
    finally:
        del blip.model.generate
    assert blip.attributes == {"caption": []}
    assert [j.image_id for j in out] == [f"img{i}" for i in range(5)]
    assert len(calls) == 1  # one generate call for the batch
    assert calls[0]["do_sample"] is False and calls[0]["num_beams"] == 1
    for j in out:
        assert j.attribute == "caption" and j.scores == {}
        assert isinstance(j.raw, str)
        assert j.label == ("text" if j.raw else UNKNOWN)
        assert set(j.raw.split()) <= set(CAPTION_WORDS)  # the tiny model's vocabulary
    assert blip.revision.startswith("tiny:blip@sha256:")
    assert not blip.chat


def test_batch_size_does_not_change_captions(blip: CaptionJudge, context: JudgeContext) -> None:
    data = blip.config.model_dump()
    data["batch_size"] = 2
    small = CaptionJudge(CaptionJudgeConfig.model_validate(data), context)
    items = judge_inputs(5, seed=2, size=(32, 48), texts=("a photo of a chef",), prompt_ids="p")
    assert [j.raw for j in small.judge(items)] == [j.raw for j in blip.judge(items)]


def test_conditional_prefix(context: JudgeContext) -> None:
    config = CaptionJudgeConfig(
        id="blip-prefix", model="tiny:blip", dtype="float32", prompt="a photo of", max_new_tokens=4
    )
    [j] = CaptionJudge(config, context).judge(
        judge_inputs(1, seed=2, size=(32, 48), texts=("a photo of a chef",), prompt_ids="p")
    )
    assert j.raw.startswith("a photo of")  # BLIP returns the prefix with the continuation


def test_chat_vlm_as_captioner(context: JudgeContext) -> None:
    config = CaptionJudgeConfig(id="llava-caption", model="tiny:llava", dtype="float32", max_new_tokens=4)
    judge = CaptionJudge(config, context)
    assert judge.chat
    out = judge.judge(judge_inputs(3, seed=2, size=(32, 48), texts=("a photo of a chef",), prompt_ids="p"))
    assert len(out) == 3
    # Only the generated continuation is kept, never the chat prompt.
    assert all("<|user|>" not in j.raw and "Describe" not in j.raw for j in out)


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        CaptionJudgeConfig.model_validate({"id": "x", "kind": "caption", "model": "m", "beams": 3})
    with pytest.raises(ValueError, match="mode"):
        CaptionJudgeConfig.model_validate({"id": "x", "kind": "caption", "model": "m", "mode": "free"})


@pytest.mark.hub
def test_real_blip_captions(context: JudgeContext) -> None:
    """Needs Salesforce/blip-image-captioning-base in the local hub cache."""
    judge = build_judge(load_judge_config("caption-blip-base"), context)
    [j] = judge.judge(judge_inputs(1, seed=2, size=(32, 48), texts=("a photo of a chef",), prompt_ids="p"))
    assert j.label == "text" and j.raw
