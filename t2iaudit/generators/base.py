"""What a generator is: a batched text-to-image backend, configured by a spec's model entry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel

from t2iaudit.types import Prompt

if TYPE_CHECKING:
    from PIL import Image


def derive_seed(audit_seed: int, model_id: str, prompt_id: str, replicate: int) -> int:
    """``seed = hash(audit_seed, model_id, prompt_id, replicate)`` (DESIGN.md).

    Each image gets its own seed, so batch size, sharding and resume do not change it.
    """
    key = f"{audit_seed}\x1f{model_id}\x1f{prompt_id}\x1f{replicate}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & (2**63 - 1)


def image_seed(audit_seed: int, model_id: str, prompt: Prompt, replicate: int) -> int:
    """The seed of one image: :func:`derive_seed` of its own prompt id and replicate, except for
    replicate 0 of a debiased prompt (``meta.parent_prompt_id`` and ``meta.parent_replicate`` set,
    see ``t2iaudit.debias.loop``), which gets the seed of its parent's image of that replicate, so
    the original and the debiased image of one seed can be compared pair by pair. Any further
    replicate of a debiased prompt has a seed of its own.
    """
    parent, parent_replicate = prompt.meta.get("parent_prompt_id"), prompt.meta.get("parent_replicate")
    if replicate == 0 and isinstance(parent, str) and type(parent_replicate) is int:
        return derive_seed(audit_seed, model_id, parent, parent_replicate)
    return derive_seed(audit_seed, model_id, prompt.prompt_id, replicate)


@dataclass(frozen=True)
class GenerationRequest:
    """One image to make."""

    prompt: Prompt
    replicate: int
    seed: int


@dataclass
class GeneratedImage:
    """One image made (or read back), with what the backend knows about it."""

    image: Image.Image | None = None
    """Decoded image; None when ``data`` holds the file bytes (replay keeps files as they are)."""
    data: bytes | None = None
    suffix: str = ".png"
    nsfw_flag: bool | None = None
    params: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    """A backend that turns batches of requests into images."""

    batch_size: int
    params: dict[str, Any]
    """Generation parameters that change the pixels; recorded on every image."""
    seeded: bool
    """Whether the request's seed made the image (False for replayed files)."""

    def generate(self, requests: list[GenerationRequest]) -> list[GeneratedImage]:
        """One image per request, in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """Provenance for the manifest: model reference, resolved revision, device, dtype."""
        ...

    def close(self) -> None:
        """Release the model (GPU memory)."""
        ...


def full_plan(config: Any, prompts: list[Prompt], replicates: int) -> list[tuple[Prompt, int]]:
    """Every prompt, ``replicates`` times (the plan of generating backends)."""
    return [(p, r) for p in prompts for r in range(replicates)]


class GeneratorFactory(Protocol):
    """Builds a generator (loads its model) from a validated config."""

    def __call__(self, config: Any, model_id: str, model_cache: Path | None) -> Generator: ...


@dataclass(frozen=True)
class GeneratorKind:
    """A registered backend: its config model and factory ``build(config, model_id, cache)``."""

    config_model: type[BaseModel]
    build: GeneratorFactory
    path_fields: tuple[str, ...] = ()
    """Option fields holding paths, resolved against the spec's folder."""
    plan: Any = full_plan
    """``plan(config, prompts, replicates) -> [(prompt, replicate)]``: the images this model makes,
    without loading it (cheap; raises InputError on bad backend inputs). Default: every prompt
    times ``replicates``."""
    check: Any = None
    """``check(config, model_cache)``: checks ``load_spec`` runs on a validated config before
    anything is written (InputError whose ``field`` names the option); None: none."""
    runs_on: Literal["accelerator", "cpu", "api"] = "accelerator"
    """What a shard of this backend occupies: a local accelerator (the flows cap these per
    machine), the CPU only, or a remote API (no local slot; the flows retry it with backoff)."""

    def resolve_paths(self, options: dict[str, Any], spec_dir: Path) -> dict[str, Any]:
        out = dict(options)
        for name in self.path_fields:
            value = out.get(name)
            if isinstance(value, str) and not Path(value).is_absolute():
                candidate = spec_dir / value
                if candidate.exists():
                    out[name] = str(candidate.resolve())
        return out
