"""``tradeoff.md``: the closed loop's trade-off in plain Markdown, one section per round."""

from __future__ import annotations

from typing import TYPE_CHECKING

from t2iaudit.report import fmt

if TYPE_CHECKING:
    from t2iaudit.debias.tradeoff_records import DistributionChange, Rate, RoundTradeoff, Tradeoff


def rate_text(r: Rate | None, percent: bool = False) -> str:
    """``0.33 [0.17, 0.50] (n 12)``; an en dash when there is no value."""
    if r is None or r.value is None:
        return "–"
    head = fmt.pct(r.value, 1) if percent else fmt.num(r.value, 3)
    return f"{head} {fmt.interval(r.ci_low, r.ci_high, 3, percent)} (n {r.n})".replace("  ", " ")


def shares_text(change: DistributionChange, side: str) -> str:
    """``female 12%, male 88%`` among valid labels of one side (``original`` or ``debiased``)."""
    return ", ".join(f"{c.label} {fmt.pct(getattr(c, f'share_{side}').value)}" for c in change.labels)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _round(r: RoundTradeoff, tradeoff: Tradeoff) -> list[str]:
    plan = r.plan
    lines = [
        f"## Round {r.round} (`{r.run_dir}`)",
        "",
        f"Planned with profile `{plan.profile}`." if plan.profile else "Planned without a realisation profile.",
        f"{r.prompts_debiased} prompts debiased, {r.prompts_left_alone} left alone"
        + (f" ({', '.join(f'{k} {v}' for k, v in r.abstain_reasons.items())})" if r.abstain_reasons else "")
        + f"; rewrites passing every check: {rate_text(r.checks_ok, True)}"
        + (f"; text similarity to the original {rate_text(r.text_similarity)}" if r.text_similarity else "")
        + ".",
        "",
        "### Change in distribution",
        "",
        "| model | attribute | target | original | debiased | TV to target | test | p (Holm) | requested |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a in r.attributes:
        target = ", ".join(f"{k} {fmt.pct(v)}" for k, v in a.target.items())
        requested = ", ".join(f"{k} {fmt.pct(v)}" for k, v in plan.requested.get(a.attribute, {}).items())
        lines.append(
            f"| {a.model_id} | {fmt.perceived(a.attribute)} | {target} | {shares_text(a.pooled, 'original')} "
            f"| {shares_text(a.pooled, 'debiased')} | {fmt.num(a.tv_original)} -> {fmt.num(a.tv_debiased)} "
            f"| {a.pooled.test} | {fmt.pvalue(a.pooled.p_holm)} | {requested} |"
        )
    lines += [
        "",
        "### Realisation (H4), unknown rate and over-correction (H6)",
        "",
        "| model | attribute | realisation rate | matrix P(judged \\| planned) | unknown rate original -> debiased "
        "| p (Holm) | over-correction original -> debiased |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in r.attributes:
        m = a.realisation
        matrix = "; ".join(
            f"{req}: " + ", ".join(f"{lab} {fmt.pct(v)}" for lab, v in zip(m.labels, row))
            for req, row in zip(m.requested, m.matrix)
        )
        over = f"{rate_text(a.overcorrection_original, True)} -> {rate_text(a.overcorrection_debiased, True)}"
        lines.append(
            f"| {a.model_id} | {fmt.perceived(a.attribute)} | {rate_text(m.rate, True)} | {_cell(matrix) or '–'} "
            f"| {rate_text(a.pooled.unknown_original, True)} -> {rate_text(a.pooled.unknown_debiased, True)} "
            f"| {fmt.pvalue(a.pooled.unknown_p_holm)} | {over if a.overcorrection_original else 'no context-fixed prompt'} |"
        )
    lines += ["", "### Alignment to the original prompt", ""]
    if r.alignment:
        lines += [
            "| model | pairs | CLIPScore original | CLIPScore debiased (vs original prompt) | change | image similarity |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {al.model_id} | {al.pairs} | {rate_text(al.clipscore_original)} | {rate_text(al.clipscore_debiased)} "
            f"| {rate_text(al.clipscore_change)} | {rate_text(al.image_similarity)} |"
            for al in r.alignment
        ]
    else:
        lines.append("Not measured: the spec has no clip judge.")
    added = [b for b in plan.rewriter if b.added]
    lines += ["", "### The rewriter's own additions", ""]
    lines.append(
        "; ".join(f"{b.rewriter} added {b.attribute} {b.label} in {b.added} of {b.n} rewrites" for b in added)
        if added
        else f"No rewriter added an attribute word it was not asked for ({plan.rewriter[0].n} rewrites audited)."
        if plan.rewriter
        else "No rewrite to audit."
    )
    return lines


def render_tradeoff_md(tradeoff: Tradeoff, report: str | None) -> str:
    """The Markdown text of ``tradeoff.md``."""
    lines = [
        f"# Debiasing trade-off: `{tradeoff.spec_id}`",
        "",
        f"Original run `{tradeoff.original_run}`; models {', '.join(f'`{m}`' for m in tradeoff.models)}; "
        f"measured by judge `{fmt.short_judge(tradeoff.judge_id)}`; {tradeoff.variants} debiased variants per "
        f"prompt, variant k generated with the seed of the original's image k.",
        "",
        f"**{tradeoff.stopped[0].upper() + tradeoff.stopped[1:]}.** Tolerance: TV {tradeoff.tolerance:g}; "
        f"at most {tradeoff.max_rounds} round(s).",
        "",
    ]
    for r in tradeoff.rounds:
        lines += [*_round(r, tradeoff), ""]
    lines += [
        "Labels are perceived attributes assigned by a judge, not identity. Shares are among valid labels "
        "(unknowns apart, with their own test); p-values are Holm-adjusted across the cells tested together.",
    ]
    if report:
        lines += ["", f"Full report with figures and per-prompt tests: `{report}`."]
    return "\n".join(lines) + "\n"
