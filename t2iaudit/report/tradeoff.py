"""The closed loop's report: ``report.html`` (a trade-off section per round, with figures) and ``tradeoff.md``.

Read only from ``tradeoff.json`` (``t2iaudit.debias.tradeoff_records.Tradeoff``); each run of the
loop keeps its own full audit report in its run directory, linked from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from t2iaudit.report import fmt
from t2iaudit.report.tradeoff_md import rate_text, render_tradeoff_md

if TYPE_CHECKING:
    from t2iaudit.debias.tradeoff_records import AttributeTradeoff, Rate, RoundTradeoff, Tradeoff
    from t2iaudit.report.figures import Figure
    from t2iaudit.report.palette import Palette

REPORT = "report.html"
MARKDOWN = "tradeoff.md"


def _bar(name: str, r: Rate | None, colour: str = "#0072B2") -> Any:
    from t2iaudit.report.figures import Bar

    value = r.value if r is not None else None
    return Bar(name=name, value=value, ci_low=r.ci_low if r else None, ci_high=r.ci_high if r else None, colour=colour)


def share_figure(r: RoundTradeoff, a: AttributeTradeoff, palette: Palette) -> Figure:
    """Valid-label shares: original, debiased and the target, per label (Wilson intervals)."""
    from t2iaudit.report.figures import Bar, paired_bars

    labels = [c.label for c in a.pooled.labels]
    series = {
        "original": [_bar(c.label, c.share_original) for c in a.pooled.labels],
        f"round {r.round}": [_bar(c.label, c.share_debiased) for c in a.pooled.labels],
        "target": [Bar(name=k, value=a.target.get(k, 0.0)) for k in labels],
    }
    return paired_bars(
        f"tradeoff-{r.round}-{a.model_id}-{a.attribute}-shares",
        f"{a.model_id}, {fmt.perceived(a.attribute)}: original vs debiased prompts, round {r.round}",
        labels,
        series,
        palette,
        caption=f"Shares among valid labels over the {r.prompts_debiased} debiased prompts (95% Wilson intervals). "
        f"TV to the target {fmt.num(a.tv_original)} before, {fmt.num(a.tv_debiased)} after; "
        f"{a.pooled.test} p (Holm) {fmt.pvalue(a.pooled.p_holm)}.",
    )


def matrix_figure(r: RoundTradeoff, a: AttributeTradeoff) -> Figure | None:
    """The realisation matrix ``P(judged k | planned a)`` of the debiased prompts (H4)."""
    from t2iaudit.report.figures import heatmap

    m = a.realisation
    if not m.requested:
        return None
    return heatmap(
        f"tradeoff-{r.round}-{a.model_id}-{a.attribute}-realisation",
        f"{a.model_id}, {fmt.perceived(a.attribute)}: realisation matrix, round {r.round}",
        [f"planned {x} (n {sum(c)}, unknown {u})" for x, c, u in zip(m.requested, m.counts, m.unknown)],
        [f"judged {k}" for k in m.labels],
        m.matrix,
        caption="Row: the class the plan asked for; column: the judged label; shares among valid labels. "
        f"Realisation rate {rate_text(m.rate, True)}.",
        vmax=1.0,
        percent=True,
    )


def cost_figure(r: RoundTradeoff) -> Figure | None:
    """CLIPScore against the original prompt and paired image similarity, per model (bootstrap intervals)."""
    from t2iaudit.report.figures import bars

    items = []
    for al in r.alignment:
        items += [
            _bar(f"{al.model_id}: CLIPScore original images", al.clipscore_original, "#0072B2"),
            _bar(f"{al.model_id}: CLIPScore debiased images", al.clipscore_debiased, "#E69F00"),
            _bar(f"{al.model_id}: image similarity (cosine)", al.image_similarity, "#009E73"),
        ]
    if not items:
        return None
    top = max([b.ci_high or b.value or 0.0 for b in items] + [1.0])
    return bars(
        f"tradeoff-{r.round}-alignment",
        f"Round {r.round}: alignment to the original prompt and similarity to the original image",
        items,
        "CLIPScore 2.5 max(cos, 0) against the ORIGINAL prompt; cosine of CLIP image embeddings",
        caption="Pairs of one seed: the original prompt's image and its debiased variant's image. Means with "
        "95% bootstrap intervals over pairs, stratified by prompt.",
        xmax=top,
        percent=False,
    )


def rounds_figure(tradeoff: Tradeoff) -> Figure | None:
    """TV of the judged shares from the target, per round (the stopping rule)."""
    from t2iaudit.report.figures import Bar, bars

    items = []
    for r in tradeoff.rounds:
        for a in r.attributes:
            if r.round == 1:
                items.append(Bar(name=f"{a.model_id} {a.attribute}: original", value=a.tv_original, colour="#9e9e9e"))
            items.append(Bar(name=f"{a.model_id} {a.attribute}: round {r.round}", value=a.tv_debiased))
    if len(tradeoff.rounds) < 2 or not items:
        return None
    return bars(
        "tradeoff-rounds",
        "Distance from the target per round (total variation, valid labels)",
        items,
        "TV distance from the target",
        caption=f"Plug-in estimates; the loop stops below {tradeoff.tolerance:g}.",
        xmax=None,
        percent=False,
    )


def _attribute_view(r: RoundTradeoff, a: AttributeTradeoff, palette: Palette) -> dict[str, Any]:
    palette.extend(a.realisation.labels)
    figures = [share_figure(r, a, palette)]
    matrix = matrix_figure(r, a)
    if matrix is not None:
        figures.append(matrix)
    return {
        "a": a,
        "figures": figures,
        "requested": r.plan.requested.get(a.attribute, {}),
        "solution": r.plan.solutions.get(a.attribute),
        "prompts": a.prompts[:10],
    }


def build_context(tradeoff: Tradeoff, root: Path) -> dict[str, Any]:
    """What ``debias_audit.html.j2`` renders."""
    from t2iaudit import __version__
    from t2iaudit.report.palette import Palette

    palette = Palette()
    rounds = []
    for r in tradeoff.rounds:
        rounds.append(
            {
                "r": r,
                "attributes": [_attribute_view(r, a, palette) for a in r.attributes],
                "cost": cost_figure(r),
                "alignment": {al.model_id: al for al in r.alignment},
                "added": [b for b in r.plan.rewriter if b.added],
                "rewrites": r.plan.rewriter[0].n if r.plan.rewriter else 0,
                "report": f"{r.run_dir}/report.html" if (root / r.run_dir / "report.html").exists() else None,
            }
        )
    original = f"{tradeoff.original_run}/report.html"
    return {
        "version": __version__,
        "thumb_px": 96,
        "t": tradeoff,
        "rounds": rounds,
        "rounds_figure": rounds_figure(tradeoff),
        "original_report": original if (root / original).exists() else None,
        "rate": rate_text,
    }


def write_tradeoff_reports(root: str | Path, tradeoff: Tradeoff) -> list[Path]:
    """Write ``report.html`` (with the ``report`` extra) and ``tradeoff.md`` into the loop directory."""
    from t2iaudit.fileio import write_atomic
    from t2iaudit.report.build import html_available

    root = Path(root)
    written = []
    if html_available():
        from t2iaudit.report.html import render

        write_atomic(root / REPORT, render("debias_audit.html.j2", **build_context(tradeoff, root)).encode("utf-8"))
        written.append(root / REPORT)
    text = render_tradeoff_md(tradeoff, REPORT if written else None)
    write_atomic(root / MARKDOWN, text.encode("utf-8"))
    written.append(root / MARKDOWN)
    return written
