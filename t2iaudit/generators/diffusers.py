"""Generator backend for any pipeline ``diffusers.DiffusionPipeline.from_pretrained`` loads.

A new diffusers-compatible model is a spec entry, not code: ``model`` is a hub id (pin
``revision``), a local folder, or ``tiny:sd15``. Every image gets its own CPU
``torch.Generator`` seeded from (audit seed, model, prompt, replicate), so batch size and
resume do not change the initial noise (diffusers "Reproducibility" docs).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from t2iaudit.errors import InputError
from t2iaudit.generators.base import GeneratedImage, GenerationRequest, GeneratorKind


class DiffusersConfig(BaseModel):
    """Options of a ``generator: diffusers`` model entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    """Hub id, local pipeline folder, or ``tiny:sd15``."""
    revision: str | None = None
    """Hub revision; pin a commit hash for audits."""
    variant: str | None = None
    """Weight variant, e.g. ``fp16``."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, ``mps``."""
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """``auto``: float16 on CUDA, float32 on CPU."""
    steps: int = Field(30, ge=1)
    guidance_scale: float | None = 7.5
    """Classifier-free guidance; None leaves the pipeline default (e.g. distilled models)."""
    width: int = Field(512, ge=8)
    height: int = Field(512, ge=8)
    batch_size: int = Field(4, ge=1)
    """Images per pipeline call; does not change the images (per-image generators)."""
    scheduler: str | None = None
    """Scheduler class name from diffusers (e.g. ``DPMSolverMultistepScheduler``)."""
    negative_prompt: str | None = None
    safety_checker: bool = True
    """Keep the pipeline's safety checker (SD 1.x/2.x). It replaces flagged images with black
    ones; those images are recorded with ``nsfw_flag`` and their labels count as ``unknown``
    (failure ``nsfw_blacked_out``) in the metrics. False removes it and keeps every image."""
    local_files_only: bool = False
    """Never contact the hub (tiny and local models are always local)."""
    trust_remote_code: bool = False
    """Run a custom pipeline's own Python code from the model repository. Leave off unless you
    have read that code: weights always load from safetensors, never from pickles."""
    call_options: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for the pipeline call (e.g. ``max_sequence_length``)."""

    @field_validator("scheduler")
    @classmethod
    def _scheduler_name(cls, v: str | None) -> str | None:
        if v is not None and not v.endswith("Scheduler"):
            raise ValueError("must be a diffusers scheduler class name ending in 'Scheduler'")
        return v


def _scheduler_class(name: str) -> Any:
    """The diffusers scheduler class ``name``; InputError (field ``scheduler``) when there is none."""
    import difflib

    import diffusers

    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        known = [n for n in dir(diffusers) if n.endswith("Scheduler")]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(f"diffusers {diffusers.__version__} has no scheduler {name!r}{hint}", field="scheduler")
    return cls


def _local_folder(config: DiffusersConfig, model_cache: Path | None) -> Path | None:
    """The pipeline folder of a local or (already built) tiny model; None for hub models."""
    from t2iaudit.models import TINY_PREFIX, is_tiny
    from t2iaudit.tiny import default_cache_dir

    if is_tiny(config.model):
        folder = (model_cache or default_cache_dir()) / config.model[len(TINY_PREFIX) :]
        return folder if (folder / ".complete").is_file() else None
    return Path(config.model) if Path(config.model).is_dir() else None


def check_diffusers(config: DiffusersConfig, model_cache: Path | None = None) -> None:
    """Checks a spec's model entry can pass before anything is written (no weights are loaded).

    The scheduler must be a diffusers scheduler class; ``negative_prompt`` needs a pipeline
    that takes one, which is known here for local and tiny folders (their ``model_index.json``
    names the class) and otherwise when the pipeline loads, before any image is recorded.

    Raises:
        InputError: With ``field`` the option at fault.
    """
    if config.scheduler:
        _scheduler_class(config.scheduler)
    folder = _local_folder(config, model_cache) if config.negative_prompt else None
    if folder is not None and (folder / "model_index.json").is_file():
        import diffusers

        name = json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("_class_name", "")
        cls = getattr(diffusers, str(name), None)
        if isinstance(cls, type) and "negative_prompt" not in inspect.signature(cls.__call__).parameters:
            raise InputError(f"{name} (from {folder}) takes no negative_prompt", field="negative_prompt")


class DiffusersGenerator:
    """Loads one pipeline and runs batches through it."""

    def __init__(self, config: DiffusersConfig, model_cache: Path | None = None) -> None:
        import torch
        from diffusers import DiffusionPipeline

        from t2iaudit.logs import silence_library_progress
        from t2iaudit.models import fingerprint, is_tiny, loading, resolve_device, resolve_reference

        silence_library_progress()
        self.config = config
        self.batch_size = config.batch_size
        self.seeded = True
        self.device = resolve_device(config.device)
        dtype_name = config.dtype
        if dtype_name == "auto":
            dtype_name = "float16" if self.device.startswith("cuda") else "float32"
        self.dtype_name = dtype_name
        ref = resolve_reference(config.model, model_cache)
        local = is_tiny(config.model) or Path(ref).is_dir()
        with loading(config.model):
            self.pipe = DiffusionPipeline.from_pretrained(
                ref,
                revision=None if local else config.revision,
                variant=config.variant,
                dtype=getattr(torch, dtype_name),
                use_safetensors=True,  # never unpickle a .bin checkpoint
                trust_remote_code=config.trust_remote_code,
                local_files_only=local or config.local_files_only,
            )
        if not config.safety_checker and getattr(self.pipe, "safety_checker", None) is not None:
            self.pipe.safety_checker = None
        if config.scheduler:
            self.pipe.scheduler = _scheduler_class(config.scheduler).from_config(self.pipe.scheduler.config)
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self._accepts = set(inspect.signature(self.pipe.__call__).parameters)
        if config.negative_prompt and "negative_prompt" not in self._accepts:
            # Known only now for hub models: raised before any image is recorded.
            raise InputError(f"{type(self.pipe).__name__} takes no negative_prompt", field="negative_prompt")
        self.revision = fingerprint(Path(ref)) if local else (config.revision or "unpinned")
        self.params = {
            "model": config.model,
            "pipeline": type(self.pipe).__name__,
            "scheduler": type(self.pipe.scheduler).__name__,
            "steps": config.steps,
            "guidance_scale": config.guidance_scale,
            "width": config.width,
            "height": config.height,
            "negative_prompt": config.negative_prompt,
            "dtype": dtype_name,
            "generator_device": "cpu",
            **({"call_options": config.call_options} if config.call_options else {}),
        }

    def call_kwargs(self, requests: list[GenerationRequest]) -> dict[str, Any]:
        """Keyword arguments of one pipeline call (per-image CPU generators)."""
        import torch

        c = self.config
        kwargs: dict[str, Any] = {
            "prompt": [r.prompt.text for r in requests],
            "num_inference_steps": c.steps,
            "height": c.height,
            "width": c.width,
            "generator": [torch.Generator("cpu").manual_seed(r.seed) for r in requests],
            "output_type": "pil",
            **c.call_options,
        }
        if c.guidance_scale is not None:
            kwargs["guidance_scale"] = c.guidance_scale
        if c.negative_prompt:
            kwargs["negative_prompt"] = [c.negative_prompt] * len(requests)
        return {k: v for k, v in kwargs.items() if k in self._accepts or k in c.call_options}

    def generate(self, requests: list[GenerationRequest]) -> list[GeneratedImage]:
        import torch

        with torch.inference_mode():
            out = self.pipe(**self.call_kwargs(requests))
        flags = getattr(out, "nsfw_content_detected", None) or [None] * len(requests)
        return [
            GeneratedImage(
                image=im if im.mode == "RGB" else im.convert("RGB"), nsfw_flag=None if f is None else bool(f)
            )
            for im, f in zip(out.images, flags)
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "revision": self.revision,
            "device": self.device,
            "dtype": self.dtype_name,
            "pipeline": type(self.pipe).__name__,
            "config": json.loads(json.dumps(self.config.model_dump(mode="json"))),
        }

    def close(self) -> None:
        import gc

        import torch

        del self.pipe
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def build_diffusers(config: DiffusersConfig, model_id: str, model_cache: Path | None) -> DiffusersGenerator:
    return DiffusersGenerator(config, model_cache)


KIND = GeneratorKind(DiffusersConfig, build_diffusers, ("model",), check=check_diffusers)
"""The ``diffusers`` backend (registered in ``t2iaudit.generators.registry``)."""
