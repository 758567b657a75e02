"""Safe loading of diffusers pipelines: safetensors only, trust_remote_code only when the spec says."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from t2iaudit.errors import InputError
from t2iaudit.generators.diffusers import DiffusersConfig, DiffusersGenerator
from tests.judges.test_safe_loading import pickled_checkpoint


def test_a_pipeline_whose_weights_are_a_pickle_is_refused_and_runs_nothing(tmp_path: Path, tiny_sd_dir: Path):
    folder = tmp_path / "sd"
    shutil.copytree(tiny_sd_dir, folder)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    marker = tmp_path / "ran"
    pickled_checkpoint(folder / "unet" / "diffusion_pytorch_model.bin", marker)
    with pytest.raises(InputError) as err:
        DiffusersGenerator(DiffusersConfig(model=str(folder), device="cpu"))
    assert err.value.field == "model"
    assert err.value.message == (
        f"cannot load {folder}: Error no file named diffusion_pytorch_model.safetensors found in directory "
        f"{folder / 'unet'}."
    )
    assert not marker.exists()


class StopLoading(Exception):
    pass


@pytest.mark.parametrize("options, trusted", [({}, False), ({"trust_remote_code": True}, True)])
def test_from_pretrained_gets_safetensors_and_trust_remote_code_from_the_spec(monkeypatch, options, trusted):
    import diffusers

    seen: list[dict] = []

    def recording(cls, ref, **kwargs):
        seen.append(kwargs)
        raise StopLoading

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", classmethod(recording))
    with pytest.raises(StopLoading):
        DiffusersGenerator(DiffusersConfig(model="org/model", revision="a" * 40, device="cpu", **options))
    assert seen[0]["use_safetensors"] is True and seen[0]["trust_remote_code"] is trusted


def test_no_shipped_audit_trusts_remote_code():
    from t2iaudit.spec import load_spec
    from tests.conftest import REPO

    specs = sorted((REPO / "audits").glob("*.yaml"))
    assert specs
    for path in specs:
        for model in load_spec(path).models:
            assert not model.options.get("trust_remote_code"), (path, model.id)
