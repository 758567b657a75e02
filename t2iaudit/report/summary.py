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
HEADLINE = (
    "D1_mad",
    "D2_gender_imbalance",
    "D3_skin_tone_imbalance",
    "D4_severity_context_free",
    "D9_tv",
    "D5_bigbench_implicit",
    "D6_bigbench_explicit",
    "D7_bigbench_eta",
    "H1_hallucination",
    "H2_miss_rate",
    "H4_miss_rate",
    "H5_count_mismatch",
    "J1_cohen_kappa",
    "J1_fleiss_kappa",
    "J2_unknown_rate",
    "J2_failure_rate",
    "J2_excluded_rate",
    "J3_corrected_share",
    "J4_acc",
)
"""Metrics the summary shows (every value of every metric is in ``metrics.jsonl``)."""
SCOPE_COLUMNS = ("model_id", "judge_id")


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ci(v: MetricValue, digits: int = 3) -> str:
    if v.ci_low is None or v.ci_high is None:
        return ""
    return f"[{_fmt(v.ci_low, digits)}, {_fmt(v.ci_high, digits)}]"


def _short(judge_id: str) -> str:
    """``face-age-gender@1#9339edf9`` -> ``face-age-gender@1`` (the full id is in the Judges table)."""
    return judge_id.split("#", 1)[0]


def _cell(v: MetricValue) -> str:
    """Scope keys beyond model and judge, and the reference, label or request a value is about."""
    parts = [f"{k}={_short(x) if k.startswith('judge') else x}" for k, x in v.scope.items() if k not in SCOPE_COLUMNS]
    parts += [f"{k}={v.params[k]}" for k in ("reference", "label", "requested", "error") if k in v.params]
    return ", ".join(parts)


def _is_aggregate(v: MetricValue) -> bool:
    return "prompt_id" not in v.scope and "image_id" not in v.scope


def _header(manifest: dict[str, Any], counts: dict[str, int]) -> list[str]:
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
        roles = info.get("roles") or {}
        attrs = ", ".join(
            f"{a} ({len(v)} labels{', ' + roles[a] if a in roles else ''})"
            for a, v in (info.get("attributes") or {}).items()
        )
        for source, m in (info.get("maps_to") or {}).items():
            excluded = f", excluded {', '.join(m.get('exclude') or [])}" if m.get("exclude") else ""
            attrs += f"; {source} mapped to {m.get('to')}{excluded}"
        lines.append(f"| {jid} | {info.get('kind', '')} | {info.get('revision', '')} | {attrs} |")
    not_computed = manifest.get("not_computed") or {}
    if not_computed:
        lines += ["", "## Not computed", "", "No judge of this audit answers these attributes:", ""]
        for attr, info in sorted(not_computed.items()):
            used = [*(info.get("requested_by") or []), *(info.get("referenced_by") or [])]
            lines.append(f"- {attr} (prompt sets {', '.join(sorted(set(used)))}): {', '.join(info.get('metrics', []))}")
    return lines


def render_summary(manifest: dict[str, Any], metrics: list[MetricValue], counts: dict[str, int]) -> str:
    """Markdown text of the summary (pure: no file access)."""
    lines = _header(manifest, counts)
    shares: dict[tuple[str, str, str], list[MetricValue]] = defaultdict(list)
    headline: list[MetricValue] = []
    for v in metrics:
        if not _is_aggregate(v):
            continue
        if v.metric == "share":
            shares[v.scope.get("model_id", "*"), v.scope.get("judge_id", "*"), v.attribute].append(v)
        elif v.metric in HEADLINE:
            headline.append(v)
    if shares:
        lines += ["", "## Label shares (mean over prompts, 95% CI)", ""]
        lines += ["| model | judge | attribute | shares | n | unknown |", "|---|---|---|---|---|---|"]
        for (mid, jid, attr), vals in sorted(shares.items()):
            cells = "; ".join(f"{v.params.get('label', '')} {_fmt(v.value, 2)} {_ci(v, 2)}" for v in vals)
            lines.append(f"| {mid} | {_short(jid)} | {attr} | {cells} | {vals[0].n} | {vals[0].n_unknown} |")
    if headline:
        order = {m: i for i, m in enumerate(HEADLINE)}
        lines += ["", "## Headline metrics", ""]
        lines += [
            "| metric | model | judge | attribute | cell | value | 95% CI | n | unknown |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for v in sorted(headline, key=lambda v: (order[v.metric], v.scope.get("model_id", ""), v.attribute)):
            lines.append(
                f"| {v.metric} | {v.scope.get('model_id', '*')} | {_short(v.scope.get('judge_id', '*'))} | "
                f"{v.attribute} | {_cell(v)} | {_fmt(v.value)} | {_ci(v)} | {v.n} | {v.n_unknown} |"
            )
    lines += [
        "",
        "Every metric, per prompt and pooled, is in `metrics.jsonl` (`t2iaudit list metrics` names them).",
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
