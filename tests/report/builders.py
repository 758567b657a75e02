"""Builders of small synthetic run directories for the report tests (no model runs)."""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

from t2iaudit.report.html import CSP
from t2iaudit.run import provenance
from t2iaudit.run.manifest import RunManifest
from t2iaudit.run.store import METRICS, RunStore
from t2iaudit.spec import AuditSpec
from t2iaudit.stages import compute_metrics
from t2iaudit.types import ImageRecord, Judgement, Prompt

GENDER = ["female", "male"]
Labeller = Callable[[str, str, int, np.random.Generator], str]
"""(judge id, prompt id, replicate, rng) -> label."""


def png(seed: int, size: int = 48) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def build_run(
    root: Path,
    judges: dict[str, Labeller],
    *,
    prompts: int = 4,
    replicates: int = 10,
    models: tuple[str, ...] = ("m1",),
    roles: dict[str, dict[str, str]] | None = None,
    report: dict[str, Any] | None = None,
    primary_judges: dict[str, str] | None = None,
    images: bool = True,
    calibration: dict[str, str] | None = None,
    seed: int = 0,
) -> RunStore:
    """A run directory whose judges label perceived gender with ``judges[judge_id](...)``.

    Prompts ``set/p{i}`` of set ``set``; even prompts carry a BIGbench reference. Metrics are
    computed by the real metrics stage (100 resamples).
    """
    rng = np.random.default_rng(seed)
    store = RunStore(root)
    refs = ["bigbench/occupation/Nurse", "bigbench/occupation/CEO"]
    prompt_records = [
        Prompt(
            prompt_id=f"set/p{i}",
            set_id="set",
            template_id="t",
            text=f"a photo of person {i}",
            reference=refs[i // 2 % 2] if i % 2 == 0 else None,
        )
        for i in range(prompts)
    ]
    store.write_prompts(prompt_records)
    spec = AuditSpec(
        id="synthetic",
        prompts=[{"set": "occupations"}],
        replicates=replicates,
        models=[{"id": m, "generator": "replay", "options": {}} for m in models],
        metrics={"bootstrap_resamples": 100},
        report=report or {},
        primary_judges=primary_judges or {},
    )
    entries = {}
    for jid in judges:
        entry: dict[str, Any] = {
            "name": jid.split("@")[0],
            "version": "1",
            "kind": "clip",
            "attributes": {"gender": GENDER},
        }
        if roles and jid in roles:
            entry["roles"] = roles[jid]
        if calibration and jid in calibration:
            entry["calibration"] = calibration[jid]
        entries[jid] = entry
    ts = provenance.now()
    store.write_manifest(
        RunManifest(
            run_id=root.name, spec=spec.model_dump(mode="json"), created=ts, updated=ts, judges=entries, status="done"
        )
    )
    image_records, judgements = [], []
    for m in models:
        for p in prompt_records:
            for r in range(replicates):
                image_id = f"{m}/{p.prompt_id}/{r}"
                if images:
                    path, sha = store.save_image_bytes(png(zlib.crc32(image_id.encode())), ".png")
                else:
                    path, sha = "", ""
                image_records.append(
                    ImageRecord(
                        image_id=image_id,
                        model_id=m,
                        prompt_id=p.prompt_id,
                        replicate=r,
                        seed=None,
                        path=path,
                        sha256=sha,
                        width=48,
                        height=48,
                    )
                )
                for jid, labeller in judges.items():
                    label = labeller(jid, p.prompt_id, r, rng)
                    judgements.append(Judgement(image_id=image_id, judge_id=jid, attribute="gender", label=label))
    store.append_images(image_records)
    store.append_judgements(judgements)
    compute_metrics(store, spec)
    return store


def add_metrics(store: RunStore, rows: list[dict[str, Any]]) -> None:
    """Append metric rows (as a later metrics stage would write them) to ``metrics.jsonl``."""
    with store.path(METRICS).open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({"ci_low": None, "ci_high": None, "n": 10, "n_unknown": 0, "params": {}, **row}) + "\n")


def always(label: str) -> Labeller:
    return lambda jid, pid, r, rng: label


def mostly(label: str, unknown: float = 0.0, other: float = 0.0) -> Labeller:
    """``label``, except a share ``unknown`` of unknowns and ``other`` of the other gender label."""

    def labeller(jid: str, pid: str, r: int, rng: np.random.Generator) -> str:
        u = rng.random()
        if u < unknown:
            return "unknown"
        if u < unknown + other:
            return GENDER[1 - GENDER.index(label)]
        return label

    return labeller


class Page(HTMLParser):
    """Every tag with its attributes, and the text, of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]

    def ids(self) -> set[str]:
        return {str(a["id"]) for _, a in self.tags if a.get("id")}


def assert_self_contained(page: Page) -> None:
    """No script, every image a data: URL with alt text, links only to anchors, the strict CSP first."""
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    metas = page.all("meta")
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in metas
    assert "default-src 'none'" in CSP and "img-src data:" in CSP and "script-src" not in CSP
    for img in page.all("img"):
        assert str(img["src"]).startswith(("data:image/png;base64,", "data:image/jpeg;base64,")), img["src"][:40]
        assert img.get("alt"), "every image has alt text"
    for a in page.all("a"):
        assert str(a["href"]).startswith("#")
    for _, attrs in page.tags:
        for key, value in attrs.items():
            if key in ("src", "href", "action", "srcset", "poster", "data"):
                assert not re.match(r"^\s*(https?:|//|file:)", str(value)), (key, value)
