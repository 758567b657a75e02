"""Tiny random-weight models, saved with ``save_pretrained`` so the real loading code runs offline.

A model reference ``tiny:<name>`` in a spec or judge YAML resolves to a folder in the tiny-model
cache, built on first use and reused after. ``t2iaudit tiny-models DIR`` writes them all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from t2iaudit.models import TINY_PREFIX, is_tiny
from t2iaudit.registry import Registry

TINY_MODELS: Registry[Callable[[Path], None]] = Registry("tiny model", entry_points="t2iaudit.tiny_models")
"""name -> a function that writes the model into a folder (lazy: imported on first use)."""
TINY_MODELS.register_lazy("sd15", "t2iaudit.tiny.sd:save_tiny_sd15")
TINY_MODELS.register_lazy("clip-hf", "t2iaudit.tiny.clip:save_tiny_hf_clip")
TINY_MODELS.register_lazy("clip-openclip", "t2iaudit.tiny.clip:save_tiny_open_clip")
TINY_MODELS.register_lazy("llava", "t2iaudit.tiny.vlm:save_tiny_llava")
TINY_MODELS.register_lazy("blip", "t2iaudit.tiny.vlm:save_tiny_blip")
TINY_MODELS.register_lazy("qwen2.5-vl", "t2iaudit.tiny.vlm:save_tiny_qwen2_5_vl")


def default_cache_dir() -> Path:
    """``$T2IAUDIT_CACHE/tiny-models``, default ``~/.cache/t2iaudit/tiny-models``."""
    root = os.environ.get("T2IAUDIT_CACHE") or Path.home() / ".cache" / "t2iaudit"
    return Path(root) / "tiny-models"


def write_tiny_model(name: str, folder: Path) -> Path:
    """Build tiny model ``name`` into ``folder`` (atomically: a temp folder renamed into place)."""
    from t2iaudit.logs import silence_library_progress

    silence_library_progress()
    save = TINY_MODELS.get(name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    try:
        save(tmp)
        (tmp / ".complete").write_text(name + "\n")
        if folder.exists():  # another process won the race; theirs is identical
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def resolve_tiny(ref: str, cache_dir: Path | None = None) -> Path:
    """Folder of tiny model ``tiny:<name>``, building it on first use."""
    name = ref[len(TINY_PREFIX) :] if is_tiny(ref) else ref
    folder = (cache_dir or default_cache_dir()) / name
    if (folder / ".complete").is_file():
        return folder
    if folder.exists():  # a half-written folder from a killed build
        shutil.rmtree(folder)
    return write_tiny_model(name, folder)


def write_all(folder: Path) -> dict[str, Path]:
    """Write every registered tiny model into ``folder/<name>``."""
    return {name: resolve_tiny(name, folder) for name in TINY_MODELS.names()}
