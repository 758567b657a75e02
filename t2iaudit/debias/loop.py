"""Debiased prompt records for the closed loop (audit -> debias -> re-audit): parents, assignments, seeds.

Each debiased prompt keeps its parent's id in ``meta.parent_prompt_id`` and the replicate it
stands in for in ``meta.parent_replicate``; its image seed is the seed the parent's image of that
replicate had (:func:`parent_image_seed`), so original and debiased images pair up by seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from t2iaudit.debias.analysis import SubjectMode
from t2iaudit.debias.engine import DebiasEngine
from t2iaudit.debias.planner import UNSPECIFIED
from t2iaudit.debias.schema import AttributeTarget, PlanRequest
from t2iaudit.types import Prompt

DEBIASED_SUFFIX = "debiased"


def debias_prompts(
    prompts: Sequence[Prompt],
    attributes: Mapping[str, AttributeTarget],
    *,
    n: int,
    seed: int,
    engine: DebiasEngine,
    profile: str | None = None,
    subjects: SubjectMode = "each",
) -> list[Prompt]:
    """``n`` debiased variants of every prompt, as Prompt records an audit can generate from.

    A variant's ``requested`` holds the parent's stated attributes plus its planned classes (so
    the realisation rate and matrix, METRICS.md H4, come out of the re-audit); prompts left
    alone are kept as ``n`` unchanged variants with ``meta.debias_abstain`` naming the reasons.
    ``meta.debias_cosine``/``debias_masked_cosine`` hold the rewrite's sentence-embedding similarity
    to the original (None without an embedder).
    """
    out: list[Prompt] = []
    for parent in prompts:
        request = PlanRequest(
            prompt=parent.text, n=n, seed=seed, attributes=dict(attributes), profile=profile, subjects=subjects
        )
        response = engine.plan(request)
        for item in response.items:
            planned = {slot: cls for slot, cls in item.assignment.items() if cls != UNSPECIFIED}
            meta = {
                **parent.meta,
                "parent_prompt_id": parent.prompt_id,
                "parent_replicate": item.index,
                "debias_config": response.config_hash,
                "debias_abstain": ",".join(response.abstain_reasons) or None,
                "debias_checks_ok": item.checks.ok if item.checks else None,
                "debias_cosine": similarity.cosine if (similarity := item.checks and item.checks.similarity) else None,
                "debias_masked_cosine": similarity.masked_cosine if similarity else None,
            }
            out.append(
                parent.model_copy(
                    update={
                        "prompt_id": f"{parent.prompt_id}/{DEBIASED_SUFFIX}/{item.index}",
                        "text": item.prompt,
                        "requested": {**parent.requested, **planned},
                        "meta": meta,
                    }
                )
            )
    return out


def parent_image_seed(audit_seed: int, model_id: str, prompt: Prompt) -> int:
    """The image seed of a debiased prompt: its parent's seed for the replicate it stands in for."""
    from t2iaudit.generators.base import derive_seed

    parent, replicate = prompt.meta.get("parent_prompt_id"), prompt.meta.get("parent_replicate")
    if not isinstance(parent, str) or not isinstance(replicate, int):
        raise ValueError(f"{prompt.prompt_id} is not a debiased prompt (no parent_prompt_id/parent_replicate)")
    return derive_seed(audit_seed, model_id, parent, replicate)
