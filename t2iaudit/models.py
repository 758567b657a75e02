"""Model references, devices and revisions: one place for what every backend and judge needs.

A model reference is a hub id (``stabilityai/sdxl-turbo``; pin a commit with ``revision``), a
local file or folder, or ``tiny:<name>`` (a tiny random-weight model built on first use in the
tiny-model cache, ``t2iaudit.tiny``). What ran is recorded as a revision: the hub commit, or for
local and tiny models the ``fingerprint`` of their files. ``auto`` devices become CUDA when it
is available. Weights load only from safetensors, or from pickles with ``weights_only=True``
(tensors only); ``loading`` turns a refused pickle or a missing file into one line.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from t2iaudit.errors import InputError

TINY_PREFIX = "tiny:"


def is_tiny(ref: str) -> bool:
    return ref.startswith(TINY_PREFIX)


def is_local(ref: str) -> bool:
    """True for an existing file or folder (a local model rather than a hub id)."""
    return Path(ref).exists()


def resolve_reference(ref: str, cache_dir: Path | None = None) -> str:
    """A reference as ``from_pretrained`` takes it: ``tiny:<name>`` becomes its folder (built on
    first use); anything else is unchanged."""
    if not is_tiny(ref):
        return ref
    from t2iaudit.tiny import resolve_tiny

    return str(resolve_tiny(ref, cache_dir))


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, read in chunks (weights files can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


FULL_HASH_LIMIT = 256 << 20
"""Files up to this size are hashed whole; bigger ones by size plus their first and last 4 MiB."""


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    if size <= FULL_HASH_LIMIT:
        return file_sha256(path)
    # Hashing tens of GB of a local model at every run would cost minutes; size plus both ends
    # still changes whenever the weights file is replaced.
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(4 << 20))
        f.seek(size - (4 << 20))
        h.update(f.read())
    return h.hexdigest()


def fingerprint(path: str | Path) -> str:
    """``sha256:<hex>`` over the names and contents of a local model's files (or one file).

    The revision of local and tiny models, which have no hub commit: it changes whenever a
    config or weights file changes.
    """
    root = Path(path)
    files = [root] if root.is_file() else sorted(q for q in root.rglob("*") if q.is_file())
    h = hashlib.sha256()
    for p in files:
        if p.name.startswith("."):
            continue
        h.update(str(p.relative_to(root) if p != root else p.name).encode() + b"\0")
        h.update(_file_digest(p).encode())
    return "sha256:" + h.hexdigest()[:16]


@contextmanager
def loading(what: str, field: str = "model") -> Iterator[None]:
    """Model-loading failures as one-line input errors naming ``what`` (a model or judge).

    A checkpoint that is a pickle holding more than tensors is refused by ``weights_only=True``
    (it could run code when unpickled); a folder without the expected safetensors file, or a
    reference that cannot be found, is an ``OSError`` of the loading library.
    """
    try:
        yield
    except pickle.UnpicklingError:
        message = (
            f"{what}: refused to load weights from a pickle that holds more than tensors (it could run "
            "code); convert the checkpoint to safetensors"
        )
        raise InputError(message, field=field) from None
    except OSError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot load {what}: {first}", field=field) from None
