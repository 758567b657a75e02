"""``summary.md``: the verdict, the headline table and where the full report is, in plain Markdown.

Short enough for a pull request or a chat message (under 60 lines for the smoke audit);
everything else is in ``report.html`` and ``metrics.jsonl``.
"""

from __future__ import annotations

from typing import Any

from t2iaudit.report import fmt
from t2iaudit.report.options import ReportOptions
from t2iaudit.report.rundata import RunData
from t2iaudit.report.verdict import LIMITATIONS, PER_PROMPT, Verdict


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _header(data: RunData) -> list[str]:
    m = data.manifest
    git = m.get("git") or {}
    commit = f"; t2iaudit commit `{str(git.get('commit'))[:12]}`{' (dirty)' if git.get('dirty') else ''}" if git else ""
    judges = ", ".join(f"`{data.short(j)}`" for j in sorted(data.judges))
    return [
        f"# Audit `{data.spec.get('id', data.run_id)}`, run `{data.run_id}`",
        "",
        f"Status {m.get('status', '?')}, updated {m.get('updated', '?')}: {len(data.prompts)} prompts, "
        f"{len(data.images)} images; models {', '.join(f'`{x}`' for x in data.models)}; judges {judges}{commit}.",
    ]


def _table(data: RunData, verdict: Verdict) -> list[str]:
    lines = [
        "| model | attribute | judge | most common label | skew: TV [95% CI] | against | differs from reference "
        "| unknown rate | judge trustworthy? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in verdict.rows:
        top = f"{r.top_label} {fmt.pct(r.top_share)}" if r.top_label else "–"
        trust = "yes" if r.trust.trustworthy else "no"
        against = "prompt's reference" if r.reference == "prompt" else "uniform"
        lines.append(
            f"| {r.model_id} | {r.attribute} | {data.short(r.judge.judge_id)} | {top} | {fmt.value_ci(r.skew)} "
            f"| {against} | {_cell(r.differs_text)} | {fmt.pct(r.trust.unknown_rate)} | {trust} |"
        )
    return lines


def _reference_lines(data: RunData, verdict: Verdict, alpha: float) -> list[str]:
    """Issue 8's tests, per prompt set, when the run has them."""
    out = []
    primaries = {(r.attribute, r.judge.judge_id) for r in verdict.rows}
    for set_id, pids in data.prompt_sets.items():
        members = set(pids)
        for attribute, judge in sorted(primaries):
            for model in data.models:
                tests = [
                    r
                    for r in data.metrics.rows("D10_gof_p", attribute, keys=PER_PROMPT, model_id=model, judge_id=judge)
                    if r["scope"]["prompt_id"] in members
                ]
                amp = [
                    r
                    for r in data.metrics.rows(
                        "D11_amplification", attribute, keys=PER_PROMPT, model_id=model, judge_id=judge
                    )
                    if r["scope"]["prompt_id"] in members
                ]
                if not tests and not amp:
                    continue
                parts = []
                if tests:
                    p = [(r.get("params") or {}).get("p_holm", r.get("value")) for r in tests]
                    k = sum(1 for x in p if x is not None and float(x) < alpha)
                    parts.append(
                        f"{k} of {sum(x is not None for x in p)} prompts differ from their reference "
                        f"(Holm, alpha {alpha:g})"
                    )
                if amp:
                    classes = [str((r.get("params") or {}).get("class")) for r in amp]
                    parts.append(" · ".join(f"{c} {classes.count(c)}" for c in ("amplified", "reflected", "mitigated")))
                out.append(f"- `{set_id}`, {model}, {attribute}: " + "; ".join(parts))
    return (["", "## Against the reference", "", *out]) if out else []


def _not_computed(manifest: dict[str, Any]) -> list[str]:
    """Attributes the prompts request or reference but no judge of the audit answers."""
    missing = manifest.get("not_computed") or {}
    lines = []
    for attr, info in sorted(missing.items()):
        used = sorted({*(info.get("requested_by") or []), *(info.get("referenced_by") or [])})
        lines.append(f"- {attr} (prompt sets {', '.join(used)}): {', '.join(info.get('metrics', []))} not computed")
    return ["", "## Not computed", "", "No judge of this audit answers these attributes:", "", *lines] if lines else []


def render_summary(
    data: RunData, verdict: Verdict, options: ReportOptions, report: str | None, report_note: str | None = None
) -> str:
    """Markdown text of ``summary.md`` (pure: no file access)."""
    lines = _header(data)
    lines += ["", "## Verdict", "", verdict.overall, ""]
    for row in verdict.rows:
        sentence = next(
            s for s in verdict.paragraphs[row.model_id] if s.startswith(fmt.perceived(row.attribute).capitalize())
        )
        lines.append(f"- **{row.model_id}**: {sentence}")
    if verdict.rows:
        lines += ["", *_table(data, verdict)]
    lines += _reference_lines(data, verdict, options.alpha)
    lines += _not_computed(data.manifest)
    lines += ["", "## Full report", ""]
    if report:
        sheets = "contact sheets, " if data.image_files else ""
        lines.append(
            f"`{report}` in this run directory (one file; open it in a browser, it needs no network): label shares "
            f"per prompt, adherence and hallucination, judge validity, {sheets}provenance."
        )
    elif report_note:
        lines.append(report_note)
    lines += [
        "Every metric, per prompt and pooled, with its interval: `metrics.jsonl`.",
        "",
        "## Limitations",
        "",
        LIMITATIONS,
        "",
    ]
    return "\n".join(lines)
