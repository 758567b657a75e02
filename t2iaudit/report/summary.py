"""``summary.md``: a short Markdown digest of a run directory (provenance, counts, headline metrics)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from t2iaudit.store import IMAGES, JUDGEMENTS, PROMPTS, SUMMARY, RunStore
from t2iaudit.types import MetricValue

LIMITATIONS = (
    "Labels are *perceived* attributes assigned by automatic judges from pixels; they are not "
    "anyone's identity. Every number depends on the judge and its label set: read it beside "
    "the judge's unknown rate and, where available, judge agreement and error correction."
)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ci(v: MetricValue) -> str:
    if v.ci_low is None or v.ci_high is None:
        return ""
    return f"[{_fmt(v.ci_low)}, {_fmt(v.ci_high)}]"


def _is_aggregate(v: MetricValue) -> bool:
    return "prompt_id" not in v.scope and "image_id" not in v.scope


def render_summary(manifest: dict[str, Any], metrics: list[MetricValue], counts: dict[str, int]) -> str:
    """Markdown text of the summary (pure: no file access)."""
    spec = manifest.get("spec", {})
    lines = [
        f"# Audit `{spec.get('id', '?')}` — run `{manifest.get('run_id', '?')}`",
        "",
        f"- status: {manifest.get('status', '?')}; created {manifest.get('created')}; updated {manifest.get('updated')}",
        f"- prompts: {counts['prompts']}; images: {counts['images']}; judgements: {counts['judgements']}",
        f"- seed: {manifest.get('seed')}; replicates per prompt: {spec.get('replicates')}",
    ]
    git = manifest.get("git") or {}
    if git:
        lines.append(f"- t2iaudit commit: {git.get('commit', '?')[:12]}{' (dirty)' if git.get('dirty') else ''}")
    lines += ["", "## Models", "", "| model | reference | revision | device | dtype |", "|---|---|---|---|---|"]
    for mid, info in sorted((manifest.get("models") or {}).items()):
        ref = info.get("model") or info.get("folder") or ""
        lines.append(
            f"| {mid} | {ref} | {info.get('revision', '')} | {info.get('device', '')} | {info.get('dtype', '')} |"
        )
    lines += ["", "## Judges", "", "| judge | kind | revision | attributes |", "|---|---|---|---|"]
    for jid, info in sorted((manifest.get("judges") or {}).items()):
        attrs = ", ".join(f"{a} ({len(v)} labels)" for a, v in (info.get("attributes") or {}).items())
        lines.append(f"| {jid} | {info.get('kind', '')} | {info.get('revision', '')} | {attrs} |")

    shares: dict[tuple[str, str, str], list[MetricValue]] = defaultdict(list)
    others: list[MetricValue] = []
    for v in metrics:
        if not _is_aggregate(v):
            continue
        key = (v.scope.get("model_id", "*"), v.scope.get("judge_id", "*"), v.attribute)
        (shares[key] if v.metric == "share" else others).append(v)
    if shares:
        lines += ["", "## Label shares (all prompts pooled)", ""]
        lines += [
            "| model | judge | attribute | label | share | 95% CI | n | unknown |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for (mid, jid, attr), vals in sorted(shares.items()):
            for v in vals:
                label = v.params.get("label", v.scope.get("label", ""))
                lines.append(
                    f"| {mid} | {jid} | {attr} | {label} | {_fmt(v.value)} | {_ci(v)} | {v.n} | {v.n_unknown} |"
                )
    if others:
        lines += ["", "## Headline metrics (mean over prompts)", ""]
        lines += ["| metric | model | judge | attribute | reference | value | 95% CI | n | unknown |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for v in sorted(others, key=lambda v: (v.metric, v.scope.get("model_id", ""), v.attribute)):
            ref = v.params.get("reference", "")
            lines.append(f"| {v.metric} | {v.scope.get('model_id', '*')} | {v.scope.get('judge_id', '*')} | "
                         f"{v.attribute} | {ref} | {_fmt(v.value)} | {_ci(v)} | {v.n} | {v.n_unknown} |")  # fmt: skip
    lines += [
        "",
        "All values are in `metrics.jsonl` (per prompt and pooled).",
        "",
        "## Limitations",
        "",
        LIMITATIONS,
        "",
    ]
    return "\n".join(lines)


def write_summary(store: RunStore) -> str:
    counts = {
        "prompts": len(store.read(PROMPTS)),
        "images": len(store.read(IMAGES)),
        "judgements": len(store.read(JUDGEMENTS)),
    }
    text = render_summary(store.read_manifest() or {}, store.metrics(), counts)
    store.write_text(SUMMARY, text)
    return text
