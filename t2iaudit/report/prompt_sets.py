"""Per prompt set: label shares per prompt, a skew heatmap, and the tests against references.

The tests against the reference are issue 8's metrics, shown when the run has them: which
prompts differ from their reference after Holm correction (``D10_gof_p`` with
``params.p_holm``; chi-square goodness of fit) and how the prompts split into amplified,
reflected and mitigated bias (``D11_amplification``, Fair Diffusion's rule, Friedrich et al.
2023; Seshadri et al. 2024).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.report import figures
from t2iaudit.report.figures import Figure, ShareBar
from t2iaudit.report.options import ReportOptions
from t2iaudit.report.palette import Palette
from t2iaudit.report.primary import PrimaryJudge
from t2iaudit.report.rundata import RunData
from t2iaudit.report.verdict import PER_PROMPT, prompt_shares, prompt_skews

CLASSES = ("amplified", "reflected", "mitigated")


class RefTest(BaseModel):
    """One prompt's goodness-of-fit test against its reference."""

    model_config = ConfigDict(frozen=True)

    prompt_id: str
    text: str
    chi2: float | None
    dof: Any = None
    p: float | None
    p_holm: float | None
    gap: str = ""
    """The label furthest from its reference share (``D10_spd``), e.g. ``female -0.31``."""


class RefTests(BaseModel):
    """Goodness-of-fit tests of one model and attribute over a prompt set."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    attribute: str
    tested: int
    significant: list[RefTest]
    """Prompts that differ significantly after Holm, smallest p first."""


class Amplification(BaseModel):
    """How one model's prompts of a set split into amplified, reflected and mitigated bias."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    attribute: str
    counts: dict[str, int]
    """Class -> prompts."""
    significant: dict[str, int]
    """Class -> prompts whose class holds across the interval of TV(p, r)."""
    opposite: int = 0
    """Prompts leaning the other way from their reference."""
    examples: dict[str, list[str]] = Field(default_factory=dict)
    """Class -> a few prompt texts."""


class PromptSetSection(BaseModel):
    """What the report shows for one prompt set."""

    model_config = ConfigDict(frozen=True)

    set_id: str
    prompts: int
    figures: list[Figure]
    ref_tests: list[RefTests] = Field(default_factory=list)
    amplification: list[Amplification] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def _slug(*parts: str) -> str:
    return "-".join("".join(c if c.isalnum() else "-" for c in p).strip("-") for p in parts).lower()


def _set_reference(data: RunData, prompt_ids: set[str], attribute: str, judge: str) -> str:
    for row in data.metrics.rows("D9_tv", attribute, keys=PER_PROMPT, params={"reference": "prompt"}, judge_id=judge):
        if row["scope"]["prompt_id"] in prompt_ids:
            return "prompt"
    return "uniform"


def _share_bars(
    data: RunData, model: str, primary: PrimaryJudge, pids: list[str], reference: str, options: ReportOptions
) -> tuple[list[ShareBar], int]:
    attribute, judge = primary.attribute, primary.judge_id
    shares = prompt_shares(data, model, judge, attribute)
    skews = {s.prompt_id: s for s in prompt_skews(data, model, judge, attribute, reference)}
    present = [p for p in pids if p in shares]
    present.sort(
        key=lambda p: (skews[p].value is None if p in skews else True, -((skews.get(p) and skews[p].value) or 0))
    )
    kept = present[: options.max_prompts]
    labels = data.labels(judge, attribute)
    first = labels[0] if labels else None
    kept.sort(key=lambda p: -((shares[p].get(first) or {}).get("value") or 0.0) if first else 0.0)
    bars = []
    for pid in kept:
        by_label = shares[pid]
        any_row = next(iter(by_label.values()))
        bars.append(
            ShareBar(
                name=data.prompt_text(pid),
                shares={lab: (r.get("value") or 0.0, r.get("ci_low"), r.get("ci_high")) for lab, r in by_label.items()},
                reference=data.reference(pid, attribute),
                n=int(any_row.get("n") or 0),
                n_unknown=int(any_row.get("n_unknown") or 0),
            )
        )
    return bars, len(present) - len(kept)


def prompt_set_sections(
    data: RunData, primaries: list[PrimaryJudge], palette: Palette, options: ReportOptions
) -> list[PromptSetSection]:
    """One section per prompt set of the run."""
    out = []
    for set_id, pids in data.prompt_sets.items():
        figs: list[Figure] = []
        notes: list[str] = []
        heat_cols: list[str] = []
        heat: dict[str, dict[str, float | None]] = {}
        for primary in primaries:
            attribute, judge = primary.attribute, primary.judge_id
            reference = _set_reference(data, set(pids), attribute, judge)
            for model in data.models:
                bars, hidden = _share_bars(data, model, primary, pids, reference, options)
                if not bars:
                    continue
                title = f"{set_id}: {attribute} shares per prompt, model {model} (judge {data.short(judge)})"
                caption = (
                    "Lines on the bars: 95% intervals of each label's share. Thin pale strip: the prompt's reference. "
                    "Dotted lines: uniform shares. "
                    "Prompts sorted by their first label's share."
                )
                if hidden:
                    caption += f" Showing the {len(bars)} most skewed prompts; {hidden} more are in metrics.jsonl."
                    notes.append(f"{model}, {attribute}: {hidden} prompts not drawn")
                figs.append(
                    figures.stacked_shares(
                        _slug("fig", set_id, attribute, model),
                        title,
                        bars,
                        data.labels(judge, attribute),
                        palette,
                        caption,
                    )
                )
                column = f"{model} · {attribute}"
                heat_cols.append(column)
                for s in prompt_skews(data, model, judge, attribute, reference):
                    if s.prompt_id in pids:
                        heat.setdefault(s.prompt_id, {})[column] = s.value
        if heat:
            ranked = sorted(heat, key=lambda p: -max([v for v in heat[p].values() if v is not None] or [0.0]))
            shown = ranked[: options.max_prompts]
            figs.append(
                figures.heatmap(
                    _slug("heat", set_id),
                    f"{set_id}: distance from reference (TV) per prompt",
                    [data.prompt_text(p) for p in shown],
                    heat_cols,
                    [[heat[p].get(c) for c in heat_cols] for p in shown],
                    caption="Total variation distance of each prompt's label shares from its reference (the prompt's own "
                    "reference where it has one, else uniform); 0 = matches it. Most skewed prompts first"
                    + (f"; {len(ranked) - len(shown)} more not shown." if len(ranked) > len(shown) else "."),
                    vmax=1.0,
                )
            )
        out.append(
            PromptSetSection(
                set_id=set_id,
                prompts=len(pids),
                figures=figs,
                notes=notes,
                ref_tests=_ref_tests(data, set(pids), primaries, options),
                amplification=_amplification(data, set(pids), primaries),
            )
        )
    return out


def _ref_tests(data: RunData, pids: set[str], primaries: list[PrimaryJudge], options: ReportOptions) -> list[RefTests]:
    out = []
    for primary in primaries:
        attribute, judge = primary.attribute, primary.judge_id
        for model in data.models:
            rows = [
                r
                for r in data.metrics.rows("D10_gof_p", attribute, keys=PER_PROMPT, model_id=model, judge_id=judge)
                if r["scope"]["prompt_id"] in pids
            ]
            if not rows:
                continue
            chi2 = {
                r["scope"]["prompt_id"]: r
                for r in data.metrics.rows("D10_gof_chi2", attribute, keys=PER_PROMPT, model_id=model, judge_id=judge)
            }
            gaps: dict[str, tuple[str, float]] = {}
            for r in data.metrics.rows("D10_spd", attribute, keys=PER_PROMPT, model_id=model, judge_id=judge):
                pid, v = r["scope"]["prompt_id"], r.get("value")
                if v is not None and (pid not in gaps or abs(v) > abs(gaps[pid][1])):
                    gaps[pid] = (str((r.get("params") or {}).get("label")), float(v))
            tested, significant = 0, []
            for r in rows:
                p_holm = (r.get("params") or {}).get("p_holm", r.get("value"))
                if p_holm is None:
                    continue
                tested += 1
                if float(p_holm) < options.alpha:
                    pid = r["scope"]["prompt_id"]
                    c = chi2.get(pid) or {}
                    gap = gaps.get(pid)
                    significant.append(
                        RefTest(
                            prompt_id=pid,
                            text=data.prompt_text(pid),
                            chi2=c.get("value"),
                            dof=(c.get("params") or {}).get("dof", (r.get("params") or {}).get("dof")),
                            p=r.get("value"),
                            p_holm=float(p_holm),
                            gap=f"{gap[0]} {gap[1]:+.2f}" if gap else "",
                        )
                    )
            significant.sort(key=lambda t: (t.p_holm if t.p_holm is not None else 1.0, t.prompt_id))
            out.append(
                RefTests(
                    model_id=model, attribute=attribute, tested=tested, significant=significant[: options.max_prompts]
                )
            )
    return out


def _amplification(data: RunData, pids: set[str], primaries: list[PrimaryJudge]) -> list[Amplification]:
    out = []
    for primary in primaries:
        attribute, judge = primary.attribute, primary.judge_id
        for model in data.models:
            rows = [
                r
                for r in data.metrics.rows(
                    "D11_amplification", attribute, keys=PER_PROMPT, model_id=model, judge_id=judge
                )
                if r["scope"]["prompt_id"] in pids
            ]
            if not rows:
                continue
            counts = dict.fromkeys(CLASSES, 0)
            sig = dict.fromkeys(CLASSES, 0)
            examples: dict[str, list[str]] = {c: [] for c in CLASSES}
            opposite = 0
            for r in rows:
                params = r.get("params") or {}
                cls = str(params.get("class"))
                if cls not in counts:
                    continue
                counts[cls] += 1
                sig[cls] += bool(params.get("significant"))
                opposite += str(params.get("direction", "")).startswith(("opposite", "other"))
                if len(examples[cls]) < 3:
                    examples[cls].append(data.prompt_text(r["scope"]["prompt_id"]))
            out.append(
                Amplification(
                    model_id=model,
                    attribute=attribute,
                    counts=counts,
                    significant=sig,
                    opposite=opposite,
                    examples=examples,
                )
            )
    return out
