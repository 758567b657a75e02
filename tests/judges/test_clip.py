"""CLIP judge: both backends end to end on tiny random CLIPs, plus exact math on a fake backend."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from t2iaudit.judges.base import JudgeContext
from t2iaudit.judges.clip import ClipJudge, ClipJudgeConfig, build_clip_judge
from t2iaudit.judges.loader import load_judge_config
from t2iaudit.types import UNKNOWN
from tests.judges.conftest import judge_inputs

TINY = ["tiny-clip-hf", "tiny-clip-openclip"]


@pytest.fixture(scope="session", params=TINY)
def tiny_judge(request: pytest.FixtureRequest, context: JudgeContext) -> ClipJudge:
    return build_clip_judge(load_judge_config(request.param), context)


def config_with(judge: ClipJudge, **changes: object) -> ClipJudgeConfig:
    data = judge.config.model_dump()
    data.update(changes)
    return ClipJudgeConfig.model_validate(data)


def test_end_to_end_labels_and_scores(tiny_judge: ClipJudge) -> None:
    items = judge_inputs(5)
    out = tiny_judge.judge(items)
    attrs = tiny_judge.attributes
    assert list(attrs) == ["person", "gender", "age", "prompt_match", "clipscore"]
    assert len(out) == len(items) * len(attrs)
    assert [j.image_id for j in out] == [i.image_id for i in items for _ in attrs]
    assert [j.attribute for j in out] == list(attrs) * len(items)
    assert {j.judge_id for j in out} == {tiny_judge.judge_id}
    for j in out:
        assert j.label in attrs[j.attribute] or j.label == UNKNOWN
        assert list(j.scores) == attrs[j.attribute]
        if j.attribute == "clipscore":
            assert j.label == "value"
            assert j.scores["value"] == pytest.approx(2.5 * max(j.raw["cos"], 0.0))
        else:
            assert sum(j.scores.values()) == pytest.approx(1.0, abs=1e-5)
        if j.attribute == "prompt_match":
            assert j.label == ("match" if j.scores["match"] >= 0.5 else "miss")
    assert tiny_judge.revision.startswith(("tiny:clip-hf@sha256:", "tiny:clip-openclip@sha256:"))


def test_batching_does_not_change_results(tiny_judge: ClipJudge) -> None:
    items = judge_inputs(5)
    small = ClipJudge(config_with(tiny_judge, batch_size=2), tiny_judge.backend)
    a, b = tiny_judge.judge(items), small.judge(items)
    assert [(j.image_id, j.attribute, j.label) for j in a] == [(j.image_id, j.attribute, j.label) for j in b]
    for x, y in zip(a, b):
        assert x.scores == pytest.approx(y.scores, abs=1e-4)


class CountingBackend:
    """Wraps a backend and counts text and image encoder calls."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.revision = inner.revision  # type: ignore[attr-defined]
        self.logit_scale = inner.logit_scale  # type: ignore[attr-defined]
        self.text_calls: list[list[str]] = []
        self.image_calls = 0

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        self.text_calls.append(list(texts))
        return self.inner.encode_text(texts)  # type: ignore[attr-defined]

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        self.image_calls += 1
        return self.inner.encode_images(images)  # type: ignore[attr-defined]


def test_text_embeddings_computed_once(tiny_judge: ClipJudge) -> None:
    backend = CountingBackend(tiny_judge.backend)
    judge = ClipJudge(config_with(tiny_judge, batch_size=2), backend)
    # All label templates of all attributes (and TBYB's null text) in one text pass.
    assert len(backend.text_calls) == 1
    n_templates = sum(len(t) for a in judge.config.attributes.values() for t in a.texts().values())
    assert len(backend.text_calls[0]) == n_templates + 1 and backend.text_calls[0][-1] == " "
    judge.judge(judge_inputs(6))
    assert backend.image_calls == 3  # batches of 2
    # The two distinct prompt texts were embedded once each, in the first batch, one per pass.
    assert backend.text_calls[1:] == [["a photo of a doctor"], ["a photo of a nurse"]]
    judge.judge(judge_inputs(4))
    assert len(backend.text_calls) == 3


def test_a_prompts_scores_do_not_depend_on_what_the_judge_met_before(tiny_judge: ClipJudge) -> None:
    """A judge kept loaded across runs (a flow worker, a resumed run, the debias loop) must score
    an image as a fresh one does: prompt embeddings are not shaped by the batch they were first
    computed in (a batch pads to its longest text, which moved the last bits)."""
    long_text = "a photo of a doctor standing in a busy hospital corridor at night, holding a clipboard"
    fresh = ClipJudge(tiny_judge.config, tiny_judge.backend).judge(judge_inputs(2))
    seasoned = ClipJudge(tiny_judge.config, tiny_judge.backend)
    seasoned.judge(judge_inputs(2, texts=(long_text, "a photo of a doctor"), seed=1))
    again = seasoned.judge(judge_inputs(2))
    assert [(j.image_id, j.attribute, j.label, j.raw, j.scores) for j in again] == [
        (j.image_id, j.attribute, j.label, j.raw, j.scores) for j in fresh
    ]


def test_label_embeddings_are_template_ensembles(tiny_judge: ClipJudge) -> None:
    spec = tiny_judge.config.attributes["gender"]
    for k, texts in enumerate(spec.texts().values()):
        e = tiny_judge.backend.encode_text(texts)
        mean = torch.nn.functional.normalize(e.mean(0), dim=-1)
        assert torch.allclose(tiny_judge._classes["gender"][k], mean, atol=1e-5)
        assert e.shape[0] == 2 * 2  # two names x two templates


def test_high_thresholds_give_unknown_with_full_scores(tiny_judge: ClipJudge) -> None:
    attrs = {
        name: {**spec.model_dump(), "min_prob": 0.999, "requires": {}}
        for name, spec in tiny_judge.config.attributes.items()
    }
    judge = ClipJudge(config_with(tiny_judge, attributes=attrs, checks=[]), tiny_judge.backend)
    out = judge.judge(judge_inputs(3))
    assert len(out) == 3 * 3
    assert all(j.label == UNKNOWN for j in out)
    assert all(sum(j.scores.values()) == pytest.approx(1.0, abs=1e-5) for j in out)
    margin = {n: {**a, "min_prob": 0.0, "min_margin": 1.0} for n, a in attrs.items()}
    judge = ClipJudge(config_with(tiny_judge, attributes=margin, checks=[]), tiny_judge.backend)
    assert all(j.label == UNKNOWN for j in judge.judge(judge_inputs(2)))


def test_person_gate_closes_dependent_attributes(tiny_judge: ClipJudge) -> None:
    attrs = {name: spec.model_dump() for name, spec in tiny_judge.config.attributes.items()}
    attrs["person"]["min_prob"] = 1.0  # the gate never opens
    judge = ClipJudge(config_with(tiny_judge, attributes=attrs, checks=[]), tiny_judge.backend)
    for j in judge.judge(judge_inputs(3)):
        if j.attribute != "person":
            assert j.label == UNKNOWN
            assert j.raw["gated_by"] == {"person": UNKNOWN}
            assert sum(j.scores.values()) == pytest.approx(1.0, abs=1e-5)
    attrs["person"]["min_prob"] = 0.0
    attrs["person"]["labels"] = {"yes": ["a photo"], "no": ["a photo"]}  # a tie: "yes" wins
    judge = ClipJudge(config_with(tiny_judge, attributes=attrs, checks=[]), tiny_judge.backend)
    assert all("gated_by" not in j.raw for j in judge.judge(judge_inputs(2)))


class FakeBackend:
    """Fixed unit embeddings: exact checks of the math without a model."""

    revision = "fake"
    logit_scale = 10.0
    vectors = {
        "a photo of a cat": [1.0, 0.0, 0.0],
        "a photo of a dog": [0.0, 1.0, 0.0],
        " ": [0.0, 0.0, 1.0],
        "a cat on a sofa": [1.0, 0.0, 0.0],
        "a car": [-1.0, 0.0, 0.0],
    }

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([self.vectors[t] for t in texts])

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.tensor([[1.0, 0.0, 0.5]] * len(images)), dim=-1)


def test_checks_and_softmax_math_on_fake_backend() -> None:
    config = ClipJudgeConfig.model_validate(
        {
            "id": "fake",
            "kind": "clip",
            "model": "none",
            "attributes": {"animal": {"labels": {"cat": ["a photo of a cat"], "dog": ["a photo of a dog"]}}},
            "checks": ["prompt_match", "clipscore"],
        }
    )
    judge = ClipJudge(config, FakeBackend())
    items = judge_inputs(2, texts=("a cat on a sofa", "a car"))
    out = {(j.image_id, j.attribute): j for j in judge.judge(items)}
    c = 1 / math.sqrt(1.25)  # cos(image, cat) with image = (1, 0, 0.5) / |.|
    p_cat = math.exp(10 * c) / (math.exp(10 * c) + 1.0)
    assert out["img0", "animal"].scores["cat"] == pytest.approx(p_cat, rel=1e-5)
    assert out["img0", "animal"].label == "cat"
    assert out["img0", "clipscore"].scores["value"] == pytest.approx(2.5 * c, rel=1e-5)
    assert out["img1", "clipscore"].scores["value"] == 0.0  # negative cosine clips at 0
    null = 0.5 / math.sqrt(1.25)
    p_match = 1 / (1 + math.exp(10 * (null - c)))
    assert out["img0", "prompt_match"].scores["match"] == pytest.approx(p_match, rel=1e-5)
    assert out["img0", "prompt_match"].label == "match"
    assert out["img1", "prompt_match"].label == "miss"


BASE = {"id": "x", "kind": "clip", "model": "tiny:clip-hf"}
GOOD = {"g": {"labels": {"female": ["a woman"], "male": ["a man"]}}}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attributes": {"g": {"labels": {"female": ["a woman"]}}}}, "at least two labels"),
        ({"attributes": {"g": {"labels": {"unknown": ["?"], "male": ["a man"]}}}}, "reserved"),
        ({"attributes": {"g": {"labels": {"female": [], "male": ["a man"]}}}}, "at least one"),
        ({"attributes": {"g": {**GOOD["g"], "templates": ["a photo"]}}}, "exactly one"),
        ({"attributes": {"g": {**GOOD["g"], "requires": {"person": "yes"}}}}, "no other attribute"),
        ({"attributes": GOOD, "pretrained": "laion2b_s34b_b79k"}, "open_clip option"),
        ({}, "at least one attribute or check"),
        ({"attributes": {"clipscore": GOOD["g"]}}, "reserved for the check"),
        ({"attributes": GOOD, "checks": ["bogus"]}, "checks"),
        ({"attributes": GOOD, "min_prob": 0.5}, "Extra inputs"),
    ],
)
def test_config_rejects_bad_definitions(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClipJudgeConfig.model_validate({**BASE, **changes})


def test_yaml_templates_expand() -> None:
    spec = ClipJudgeConfig.model_validate(yaml.safe_load(open(_judges_dir() / "tiny-clip-hf.yaml")))
    assert spec.attributes["gender"].texts()["female"] == [
        "a photo of a woman.",
        "a portrait of a woman.",
        "a photo of a female person.",
        "a portrait of a female person.",
    ]


def _judges_dir():  # type: ignore[no-untyped-def]
    from t2iaudit.resources import builtin_dir

    return builtin_dir("judges")


def test_open_clip_builtin_name_with_checkpoint_file(context: JudgeContext, tmp_path: Path) -> None:
    import json

    import open_clip

    from t2iaudit.tiny import resolve_tiny
    from t2iaudit.tiny.clip import OPEN_CLIP_TINY_CONFIG

    # A "built-in" architecture (registered the way open_clip's own JSON configs are) plus a
    # checkpoint file: the offline form of `model: ViT-B-32, pretrained: laion2b_s34b_b79k`.
    (tmp_path / "T2iauditTinyViT.json").write_text(json.dumps(OPEN_CLIP_TINY_CONFIG["model_cfg"]))
    open_clip.add_model_config(tmp_path)
    weights = resolve_tiny("tiny:clip-openclip", context.model_cache) / "open_clip_model.safetensors"
    config = ClipJudgeConfig.model_validate(
        {
            "id": "file",
            "kind": "clip",
            "backend": "open_clip",
            "model": "T2iauditTinyViT",
            "pretrained": str(weights),
            "checks": ["clipscore"],
        }
    )
    judge = build_clip_judge(config, context)
    assert judge.revision.startswith("T2iauditTinyViT/open_clip_model.safetensors@sha256:")
    assert len(judge.judge(judge_inputs(2))) == 2


def test_open_clip_tag_offline_is_a_clear_error(context: JudgeContext) -> None:
    from t2iaudit.errors import InputError

    config = ClipJudgeConfig.model_validate(
        {
            "id": "tag",
            "kind": "clip",
            "backend": "open_clip",
            "model": "ViT-B-32",
            "pretrained": "no-such-tag",
            "checks": ["clipscore"],
        }
    )
    with pytest.raises(InputError, match="no pretrained tag"):
        build_clip_judge(config, context)


@pytest.mark.hub
@pytest.mark.parametrize("name", ["clip-gender", "openclip-demographics"])
def test_real_clip_judge_labels_an_image(name: str, context: JudgeContext) -> None:
    """Needs the real checkpoints in the local hub cache (or network)."""
    judge = build_clip_judge(load_judge_config(name), context)
    out = judge.judge(judge_inputs(2))
    assert len(out) == 2 * len(judge.attributes)
