"""Checks on every rewrite: insert-only diff, exactly the planned attributes named, similarity to the original.

METRICS.md, "Debiasing quality" (text preservation): the structural rule (only planned attribute
words, inserted next to a subject noun; a/an may change), and the cosine between sentence
embeddings of the original and the rewrite, also with the inserted words masked out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from t2iaudit.debias.analysis import Analyser, Analysis
from t2iaudit.debias.diffrule import check_insertions, mask_inserted, words
from t2iaudit.debias.embedding import Embedder
from t2iaudit.debias.rewriter import RewriteTask
from t2iaudit.debias.schema import InsertCheck, NamesCheck, SimilarityCheck
from t2iaudit.debias.vocab import Vocabulary


def phrase_states(vocab: Vocabulary, phrase: str) -> dict[str, str]:
    """The attributes a phrase states when it modifies a noun (``South Asian`` -> race and race_fairface)."""
    low = phrase.lower().split()
    out: dict[str, str] = {}
    i = 0
    while i < len(low):
        size, pairs = vocab.match_at(low, i)
        for attr, cls in pairs:
            out.setdefault(attr, cls)
        i += size or 1
    return out


def insert_check(task: RewriteTask, rewritten: str) -> InsertCheck:
    """The structural rule for a rewrite of ``task``."""
    subjects = [task.analysis.subjects[i].noun for i in task.phrases if task.phrases[i]]
    if not subjects:
        same = words(task.prompt) == words(rewritten)
        return InsertCheck(ok=same, inserted=[], violations=[] if same else ["changed a prompt with nothing planned"])
    r = check_insertions(task.prompt, rewritten, subjects, task.planned_phrases)
    return InsertCheck(ok=r.ok, inserted=r.inserted, violations=r.violations)


def names_check(task: RewriteTask, rewritten: str, analyser: Analyser, vocab: Vocabulary) -> NamesCheck:
    """Re-analyse the rewrite: each subject states its original attributes plus exactly the planned ones."""
    after: Analysis = analyser.analyse(rewritten)
    expected: dict[str, dict[str, str]] = {}
    for i, subject in enumerate(task.analysis.subjects):
        want = dict(subject.stated)
        for phrase in task.phrases.get(i, []):
            for attr, cls in phrase_states(vocab, phrase).items():
                want.setdefault(attr, cls)
        expected[str(i + 1)] = dict(sorted(want.items()))
    found = {str(i + 1): dict(sorted(s.stated.items())) for i, s in enumerate(after.subjects)}
    return NamesCheck(ok=found == expected, expected=expected, found=found)


@dataclass(frozen=True)
class SimilarityJob:
    """The texts one item's similarity check embeds."""

    original: str
    rewritten: str
    masked: str
    original_words: str


def similarity_job(task: RewriteTask, rewritten: str) -> SimilarityJob:
    masked = mask_inserted(task.prompt, rewritten, task.planned_phrases)
    return SimilarityJob(task.prompt, rewritten, masked, " ".join(words(task.prompt)))


def similarity_checks(embedder: Embedder, jobs: Sequence[SimilarityJob], threshold: float) -> list[SimilarityCheck]:
    """Embed every distinct text once, then the cosines per item (rounded to 4 digits)."""
    texts = sorted({t for j in jobs for t in (j.original, j.rewritten, j.masked, j.original_words)})
    if not texts:
        return []
    emb = embedder.encode(texts)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    row = {t: emb[i] for i, t in enumerate(texts)}
    out = []
    for j in jobs:
        cos = round(float(row[j.original] @ row[j.rewritten]), 4)
        masked = round(float(row[j.original_words] @ row[j.masked]), 4)
        out.append(SimilarityCheck(ok=cos >= threshold, cosine=cos, masked_cosine=masked, threshold=threshold))
    return out
