"""Shared debias fixtures: the shipped vocabulary and lexicon, engines, the packaged sentence embedder."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from t2iaudit.debias.engine import DebiasEngine
from t2iaudit.debias.lexicon import load_lexicon
from t2iaudit.debias.rules import RuleAnalyser
from t2iaudit.debias.vocab import load_vocabulary


class BagOfWordsEmbedder:
    """A fast stand-in embedder: hashed word counts (tests of plumbing, not of meaning)."""

    name = "bag-of-words"

    def encode(self, texts):
        out = np.zeros((len(texts), 64))
        for i, text in enumerate(texts):
            for w in text.lower().split():
                out[i, int(hashlib.sha256(w.encode()).hexdigest(), 16) % 64] += 1.0
        return out


@pytest.fixture(scope="session")
def vocab():
    return load_vocabulary()


@pytest.fixture(scope="session")
def rules(vocab):
    return RuleAnalyser(load_lexicon(), vocab)


@pytest.fixture(scope="session")
def engine():
    """The default engine without an embedder (no similarity check)."""
    return DebiasEngine()


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2, loaded once per test session (~7 s)."""
    from t2iaudit.debias.embedding import minilm

    return minilm()


@pytest.fixture(scope="session")
def minilm_engine(minilm):
    return DebiasEngine(embedder=minilm)
