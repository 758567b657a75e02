"""A simulated generator with a known realisation matrix, and run directories made from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from t2iaudit.run.store import RunStore
from t2iaudit.types import ImageRecord, Judgement, Prompt

LABELS = ["female", "male"]
TRUE_M = {
    # requested -> P(judged female, male, unknown): the model under-renders "female" and leans male
    "female": [0.70, 0.20, 0.10],
    "male": [0.05, 0.90, 0.05],
    "unspecified": [0.15, 0.80, 0.05],
}
JUDGE = "face@1#sim"


def render(requested: list[str], rng: np.random.Generator) -> list[str]:
    """Judged labels of images generated for ``requested`` classes (``unknown`` included)."""
    out = []
    for r in requested:
        out.append(str(rng.choice([*LABELS, "unknown"], p=TRUE_M[r])))
    return out


def judged_share(labels: list[str]) -> dict[str, float]:
    known = [x for x in labels if x != "unknown"]
    return {k: known.count(k) / len(known) for k in LABELS}


def write_run(root: Path, per_row: int = 600, seed: int = 0) -> Path:
    """A run directory of the simulated model on gender-stated (and unstated) doctor prompts."""
    rng = np.random.default_rng(seed)
    store = RunStore(root)
    prompts = []
    for r in TRUE_M:
        stated = {} if r == "unspecified" else {"gender": r}
        text = "a photo of a doctor" if r == "unspecified" else f"a photo of a {r} doctor"
        prompts.append(Prompt(prompt_id=f"sim/{r}", set_id="sim", template_id="t", text=text, requested=stated))
    store.write_prompts(prompts)
    images, judgements = [], []
    for p in prompts:
        row = p.requested.get("gender", "unspecified")
        for i, label in enumerate(render([row] * per_row, rng)):
            image_id = f"simgen/{p.prompt_id}/{i}"
            images.append(
                ImageRecord(
                    image_id=image_id,
                    model_id="simgen",
                    prompt_id=p.prompt_id,
                    replicate=i,
                    seed=i,
                    path=f"images/{i}.png",
                    sha256="0" * 64,
                    width=1,
                    height=1,
                )
            )
            judgements.append(Judgement(image_id=image_id, judge_id=JUDGE, attribute="gender", label=label))
    store.append_images(images)
    store.append_judgements(judgements)
    manifest = {
        "run_id": "sim-run",
        "spec": {"id": "sim"},
        "updated": "2026-01-01T00:00:00Z",
        "models": {"simgen": {"model": "simulated", "revision": "none"}},
        "judges": {JUDGE: {"name": "face", "kind": "face", "attributes": {"gender": LABELS}}},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root
