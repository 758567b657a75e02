"""The face judge on a real photo (scikit-image's astronaut) and on images without a face."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from t2iaudit.judges.base import JudgeContext, JudgeInput
from t2iaudit.judges.face import FaceJudgeConfig
from t2iaudit.judges.loader import build_judge, load_judge_config
from t2iaudit.types import Prompt

PROMPT = Prompt(prompt_id="t/p/x", set_id="t", template_id="p", text="a photo of an astronaut")


@pytest.fixture(scope="module")
def face_judge():
    return build_judge(load_judge_config("face-age-gender"), JudgeContext())


def _by_attr(judgements):
    return {j.attribute: j for j in judgements}


def test_astronaut_is_one_face_perceived_female(face_judge, astronaut):
    out = _by_attr(face_judge.judge([JudgeInput("a", astronaut, PROMPT)]))
    assert set(out) == {"gender", "age", "person_count"}
    assert out["gender"].label == "female"
    assert out["gender"].scores["female"] > 0.8
    assert math.isclose(sum(out["gender"].scores.values()), 1.0, abs_tol=1e-6)
    assert math.isclose(sum(out["age"].scores.values()), 1.0, abs_tol=1e-6)
    assert out["age"].label in {"young", "middle-aged"}  # the package estimates 33 years
    assert 25 < out["gender"].raw["faces"][0]["age_years"] < 45
    assert out["person_count"].label == "1"
    assert out["gender"].judge_id == face_judge.judge_id


def test_no_face_gives_unknown_and_count_zero(face_judge):
    blank = Image.new("RGB", (96, 96), (128, 128, 128))
    out = _by_attr(face_judge.judge([JudgeInput("b", blank, PROMPT)]))
    assert out["gender"].label == "unknown"
    assert out["age"].label == "unknown"
    assert out["person_count"].label == "0"


def test_batch_gives_one_judgement_per_image_and_attribute(face_judge, astronaut):
    blank = Image.new("RGB", (64, 64))
    items = [JudgeInput(str(i), im, PROMPT) for i, im in enumerate([astronaut, blank, astronaut])]
    out = face_judge.judge(items)
    assert len(out) == 3 * 3
    assert {j.image_id for j in out} == {"0", "1", "2"}


def test_confidence_threshold_from_yaml_turns_labels_unknown(astronaut):
    base = load_judge_config("face-age-gender")
    strict = FaceJudgeConfig.model_validate(
        {**base.model_dump(), "min_gender_probability": 0.999, "min_age_probability": 0.99}
    )
    assert strict.judge_id() != base.judge_id()
    out = _by_attr(build_judge(strict, JudgeContext()).judge([JudgeInput("a", astronaut, PROMPT)]))
    assert out["gender"].label == "unknown" and out["gender"].scores["female"] > 0.8  # scores kept
    assert out["age"].label == "unknown"


def test_age_groups_must_be_contiguous():
    with pytest.raises(ValueError, match="contiguous"):
        FaceJudgeConfig(id="x", age_groups={"a": (0, 20), "b": (30, None)})
