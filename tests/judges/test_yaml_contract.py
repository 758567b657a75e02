"""Contract over every shipped judge YAML: loads, ids unique, conventions kept, tiny ones run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from t2iaudit.judges.base import JudgeContext, JudgeInput
from t2iaudit.judges.caption import CaptionJudgeConfig
from t2iaudit.judges.clip import ClipJudgeConfig
from t2iaudit.judges.common import COMMIT_RE
from t2iaudit.judges.loader import build_judge, load_judge_config
from t2iaudit.judges.mllm import MllmJudgeConfig
from t2iaudit.resources import builtin_dir
from t2iaudit.types import UNKNOWN, Prompt
from t2iaudit.vocabulary import ROLES, canonical_labels

YAMLS = sorted(builtin_dir("judges").glob("*.yaml"))
TINY = [p for p in YAMLS if p.stem.startswith("tiny-")]


def declared(config: object) -> dict[str, list[str]]:
    """Attribute -> declared labels (without unknown) of a config, read from the YAML alone."""
    return config.declared_labels()  # type: ignore[attr-defined]


def test_there_are_judges_of_every_kind() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in YAMLS}
    assert {"clip", "mllm", "caption"} <= kinds
    assert {"tiny-clip-hf", "tiny-clip-openclip", "tiny-mllm", "tiny-caption"} <= {p.stem for p in TINY}


def test_ids_and_judge_ids_unique() -> None:
    configs = [load_judge_config(p) for p in YAMLS]
    assert len({c.id for c in configs}) == len(configs)
    assert len({c.judge_id() for c in configs}) == len(configs)


@pytest.mark.parametrize("path", YAMLS, ids=[p.stem for p in YAMLS])
def test_yaml_loads_and_keeps_conventions(path: Path) -> None:
    config = load_judge_config(path)
    assert config.id == path.stem  # the shipped name is the id
    assert load_judge_config(path.stem) == config
    assert config.description.strip()
    info = config.attribute_info()
    assert set(info.roles) == set(declared(config)) and set(info.roles.values()) <= set(ROLES)
    for attribute, labels in declared(config).items():
        assert UNKNOWN not in labels
        canonical = canonical_labels(attribute)
        if canonical is not None and attribute not in config.maps_to:  # one vocabulary per attribute
            assert set(labels) <= set(canonical), attribute
    if isinstance(config, MllmJudgeConfig):
        for q in config.questions.values():
            assert UNKNOWN in q.options
    if isinstance(config, ClipJudgeConfig | MllmJudgeConfig | CaptionJudgeConfig):
        model = config.model
        if path.stem.startswith("tiny-"):
            assert model.startswith("tiny:")
        elif isinstance(config, MllmJudgeConfig) and config.backend == "openai":
            assert config.api is not None and config.api.max_retries <= 5
        elif isinstance(config, ClipJudgeConfig) and config.backend == "open_clip":
            assert config.pretrained  # a tag or a checkpoint file, never random weights
        else:
            # Real transformers models are pinned to a commit, and never run remote code.
            assert config.revision and COMMIT_RE.match(config.revision), "pin a 40-hex revision"
            assert not config.trust_remote_code


@pytest.mark.parametrize("path", TINY, ids=[p.stem for p in TINY])
def test_tiny_yaml_builds_and_judges(path: Path, context: JudgeContext) -> None:
    config = load_judge_config(path)
    judge = build_judge(config, context)
    assert judge.judge_id == config.judge_id()
    assert judge.attributes == declared(config)
    rng = np.random.default_rng(3)
    prompt = Prompt(
        prompt_id="p", set_id="s", template_id="t", text="a photo of one nurse", slots={"occupation": "nurse"}
    )
    items = [
        JudgeInput(f"i{k}", Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)), prompt)
        for k in range(3)
    ]
    out = judge.judge(items)
    assert len(out) == len(items) * len(judge.attributes)
    assert judge.judge([]) == []
    for j in out:
        labels = judge.attributes[j.attribute]
        assert j.label in labels or j.label == UNKNOWN or (not labels and j.label == "text")
        assert set(labels) <= set(j.scores)  # the full score vector is always there


@pytest.mark.gpu
@pytest.mark.parametrize("path", TINY, ids=[p.stem for p in TINY])
def test_tiny_yaml_runs_on_cuda(path: Path, tiny_cache: Path) -> None:
    """The same tiny judges on a GPU, in the dtype ``auto`` picks there (bfloat16)."""
    data = yaml.safe_load(path.read_text())
    data["dtype"] = "auto"
    config = load_judge_config(path).model_validate(data)
    cuda = JudgeContext(device="cuda", model_cache=tiny_cache)
    judge = build_judge(config, cuda)
    prompt = Prompt(prompt_id="p", set_id="s", template_id="t", text="a photo of one nurse")
    items = [JudgeInput(f"i{k}", Image.new("RGB", (48, 40), (50 * k, 90, 20)), prompt) for k in range(3)]
    assert len(judge.judge(items)) == len(items) * len(judge.attributes)
