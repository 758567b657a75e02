"""Original/debiased image pairs of one seed, scored with a CLIP model: alignment to the original prompt.

For every debiased prompt variant (``meta.parent_prompt_id``, ``meta.parent_replicate``) whose parent
was rewritten, the debiased image and the original image of the same seed form a pair. A CLIP model
(the run's ``kind: clip`` judge's, loaded once) embeds both images and the *original* prompt; then
(METRICS.md, "Debiasing quality"):

- CLIPScore against the original prompt, ``2.5 max(cos(E_img, E_txt(original)), 0)`` (Hessel et
  al. 2021), of the debiased and the original image, and its paired change;
- paired image similarity: cosine between the two images' embeddings.

Means carry a percentile bootstrap interval over pairs, stratified by parent prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from t2iaudit.debias.tradeoff_records import Alignment, Rate
from t2iaudit.run.store import RunStore
from t2iaudit.types import ImageRecord, Prompt, Record

BATCH = 32
"""Images embedded per forward pass."""


class ImageTextEmbedder(Protocol):
    """What the scorer needs of a CLIP model (``t2iaudit.judges.clip.ClipBackend`` has it)."""

    def encode_text(self, texts: list[str]) -> Any: ...

    def encode_images(self, images: list[Any]) -> Any: ...


class PairScore(Record):
    """One original/debiased pair of the same seed."""

    model_id: str
    parent_prompt_id: str
    replicate: int
    """The original image's replicate (the variant's ``parent_replicate``)."""
    seed: int | None
    original_image: str
    debiased_image: str
    debiased_prompt: str
    """The debiased prompt's text (its image is scored against the parent's text)."""
    clipscore_original: float
    clipscore_debiased: float
    image_cosine: float


class PairScores(Record):
    """Every pair of one round, and their means per model (``pairs/round-<k>.json``)."""

    judge_id: str
    pairs: list[PairScore]
    alignment: list[Alignment]


def image_pairs(original: RunStore, debiased: RunStore) -> list[tuple[ImageRecord, ImageRecord, Prompt]]:
    """``(original image, debiased image, parent prompt)`` for every rewritten variant whose image and its
    parent's image of the same replicate exist and share a seed."""
    parents = {p.prompt_id: p for p in original.prompts()}
    variants = {p.prompt_id: p for p in debiased.prompts()}
    first = {(r.model_id, r.prompt_id, r.replicate): r for r in original.images()}
    out = []
    for image in debiased.images():
        variant = variants.get(image.prompt_id)
        if variant is None or image.replicate != 0 or variant.meta.get("debias_abstain"):
            continue
        parent, rep = variant.meta.get("parent_prompt_id"), variant.meta.get("parent_replicate")
        match = first.get((image.model_id, str(parent), rep)) if isinstance(rep, int) else None
        if match is not None and match.seed == image.seed and str(parent) in parents:
            out.append((match, image, parents[str(parent)]))
    return out


def clip_embedder(spec: Any, judge: str) -> tuple[str, ImageTextEmbedder]:
    """``(judge id, embedder)``: the model of the spec's clip judge ``judge``, loaded once."""
    from t2iaudit.stages.judge import build_judge

    try:  # no "Loading weights" bars on stderr (the CLI draws its own progress)
        import transformers.utils.logging as tlog

        tlog.disable_progress_bar()
    except ImportError:
        pass
    config, built = build_judge(spec, judge)
    backend = getattr(built, "backend", None)
    if backend is None:
        from t2iaudit.errors import InputError

        raise InputError(f"judge {config.id!r} has no CLIP model to embed with", field="debias.clip_judge")
    return config.judge_id(), backend


def _array(x: Any) -> Any:
    import numpy as np

    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def _embed_images(store: RunStore, records: Sequence[ImageRecord], embedder: ImageTextEmbedder) -> Any:
    import numpy as np

    parts = []
    for i in range(0, len(records), BATCH):
        images = [store.load_image(r) for r in records[i : i + BATCH]]
        parts.append(_array(embedder.encode_images(images)))
    return np.concatenate(parts) if parts else np.zeros((0, 1))


def _rate(e: Any) -> Rate:
    return Rate(value=e.value, ci_low=e.ci_low, ci_high=e.ci_high, n=e.n, interval="bootstrap")


def score_pairs(
    original_dir: str | Path,
    round_dir: str | Path,
    embedder: ImageTextEmbedder,
    judge_id: str,
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> PairScores:
    """Score every pair of a round against the original run (reads both run directories only)."""
    import numpy as np

    from t2iaudit.debias import loop_metrics as lm

    original, debiased = RunStore(original_dir), RunStore(round_dir)
    pairs = image_pairs(original, debiased)
    scores: list[PairScore] = []
    alignment: list[Alignment] = []
    for model_id in sorted({o.model_id for o, _, _ in pairs}):
        mine = [p for p in pairs if p[0].model_id == model_id]
        orig = _embed_images(original, [o for o, _, _ in mine], embedder)
        deb = _embed_images(debiased, [d for _, d, _ in mine], embedder)
        texts = sorted({p.text for _, _, p in mine})
        emb = dict(zip(texts, _array(embedder.encode_text(texts))))
        text = np.stack([emb[p.text] for _, _, p in mine])
        strata = [p.prompt_id for _, _, p in mine]
        cs_orig, cs_deb = lm.clipscore(orig, text), lm.clipscore(deb, text)
        cosine = lm.cosine_rows(deb, orig)
        variants = {p.prompt_id: p for p in debiased.prompts()}
        for (o, d, p), a, b, c in zip(mine, cs_orig, cs_deb, cosine):
            scores.append(
                PairScore(
                    model_id=model_id,
                    parent_prompt_id=p.prompt_id,
                    replicate=o.replicate,
                    seed=d.seed,
                    original_image=o.image_id,
                    debiased_image=d.image_id,
                    debiased_prompt=variants[d.prompt_id].text,
                    clipscore_original=round(float(a), 6),
                    clipscore_debiased=round(float(b), 6),
                    image_cosine=round(float(c), 6),
                )
            )
        aligned = lm.alignment_to_original(deb, orig, text, strata=strata, resamples=resamples, seed=seed)
        similar = lm.paired_image_similarity(deb, orig, strata=strata, resamples=resamples, seed=seed)
        alignment.append(
            Alignment(
                model_id=model_id,
                judge_id=judge_id,
                pairs=len(mine),
                clipscore_original=_rate(aligned["original"]),
                clipscore_debiased=_rate(aligned["debiased"]),
                clipscore_change=_rate(aligned["change"]),
                image_similarity=_rate(similar),
            )
        )
    return PairScores(judge_id=judge_id, pairs=scores, alignment=alignment)
