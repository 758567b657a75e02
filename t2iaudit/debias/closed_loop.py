"""The closed loop: audit the original prompts, debias them, re-audit with the same seeds, report the trade-off.

    DIR/original/            run directory of the spec's prompts (``run_audit``)
    DIR/round-<k>/           run directory of round k's debiased prompts (one image per variant)
    DIR/plans/round-<k>.json how round k was planned (``RoundPlan``: profile, request proportions,
                             the rewriter's own additions)
    DIR/pairs/round-<k>.json original/debiased image pairs scored with the CLIP judge's model
    DIR/profiles/            realisation profiles the loop measured (``loop-round-<k>.json``)
    DIR/tradeoff.json        the trade-off of every round (``Tradeoff``); tradeoff.md, report.html

Each step is a plain function over the loop directory, so a flow can run them one by one:
``audit_original`` -> (``plan_round`` -> ``audit_round`` -> ``score_round`` -> ``measure_round``)
for k = 1.. -> ``write_tradeoff``. ``run_loop`` runs them all in process. Round k+1 (DebiasPI-style
iteration) requests the proportions solved, through the realisation matrix measured on the debiased
prompts of rounds 1..k (``t2iaudit.debias.profiles``), to reach the target; the loop stops when the
judged distribution is within ``tolerance`` of the target or after ``rounds`` rounds. Re-running
into the same directory resumes every run and recomputes nothing already there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from t2iaudit.debias.tradeoff_records import RoundPlan, RoundTradeoff, Tradeoff
from t2iaudit.errors import InputError
from t2iaudit.types import Prompt

if TYPE_CHECKING:
    from t2iaudit.debias.engine import DebiasEngine
    from t2iaudit.debias.loop_spec import LoopOptions
    from t2iaudit.debias.pairs import ImageTextEmbedder, PairScores
    from t2iaudit.run.store import RunStore
    from t2iaudit.spec import AuditSpec
    from t2iaudit.stages.common import Progress

PROFILE_PREFIX = "loop-round-"

RunStages = Callable[["RunStore", "AuditSpec", list[Prompt], "Progress | None"], None]
"""Runs one audit's stages: ``stages(store, spec, prompts, progress)`` generates, judges, computes
the metrics and finishes the run in ``store``."""


@dataclass(frozen=True)
class LoopLayout:
    """Where the loop keeps what it makes under its directory."""

    root: Path

    @property
    def original(self) -> Path:
        return self.root / "original"

    def round(self, k: int) -> Path:
        return self.root / f"round-{k}"

    def plan(self, k: int) -> Path:
        return self.root / "plans" / f"round-{k}.json"

    def pairs(self, k: int) -> Path:
        return self.root / "pairs" / f"round-{k}.json"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def tradeoff(self) -> Path:
        return self.root / "tradeoff.json"


def loop_options(spec: AuditSpec) -> LoopOptions:
    """The spec's ``debias:`` section (InputError naming it when absent)."""
    if spec.debias is None:
        raise InputError("the spec has no debias: section (targets of the loop)", field="debias")
    return spec.debias


def judge_ids(spec: AuditSpec) -> tuple[str, str | None]:
    """The ids of the loop's measuring judge and of its clip judge (None when there is none)."""
    from t2iaudit.judges.loader import load_judge_config

    options = loop_options(spec)
    if options.judge is None:
        raise InputError("the debias section was not resolved by load_spec", field="debias.judge")
    clip = load_judge_config(options.clip_judge).judge_id() if options.clip_judge else None
    return load_judge_config(options.judge).judge_id(), clip


def loop_engine(spec: AuditSpec, layout: LoopLayout) -> DebiasEngine:
    """The planner the loop uses: the shipped vocabulary and rules, the loop's and the spec's profile
    folders, the packaged sentence embedder unless ``similarity`` is off."""
    from t2iaudit.debias.engine import EngineSettings, build_engine

    options = loop_options(spec)
    settings = EngineSettings(profile_dirs=[str(layout.profiles), *options.profile_dirs])
    return build_engine(settings, embedder="minilm" if options.similarity else "none")


def targets(spec: AuditSpec, engine: DebiasEngine) -> dict[str, dict[str, float]]:
    """Target shares of the judged labels per attribute (classes and shares resolved)."""
    from t2iaudit.debias.schema import PlanRequest
    from t2iaudit.debias.targets import resolve_targets

    options = loop_options(spec)
    request = PlanRequest(prompt="x", n=1, attributes=dict(options.attributes))
    return resolve_targets(request, engine.vocabulary)


def round_spec(spec: AuditSpec) -> AuditSpec:
    """The spec a round runs under: one image per debiased variant (its seed is its parent's)."""
    return spec.model_copy(update={"replicates": 1})


def in_process_stages(store: RunStore, spec: AuditSpec, prompts: list[Prompt], progress: Progress | None) -> None:
    """Generate, judge, compute the metrics and finish one run in this process (``run_audit``'s stages)."""
    from t2iaudit.stages import compute_metrics, finish_run, generate_images, judge_images

    generate_images(store, spec, prompts, progress)
    judge_images(store, spec, progress)
    compute_metrics(store, spec)
    finish_run(store, len(prompts))


def _audit(
    spec: AuditSpec,
    out: Path,
    prompts: list[Prompt],
    spec_path: str | Path | None,
    progress: Progress | None,
    stages: RunStages | None = None,
) -> RunStore:
    """One audit over ``prompts`` into ``out`` (resumes), its stages run by ``stages`` (default: in
    process); the run's own report only with ``run_reports``."""
    from t2iaudit.run.lifecycle import open_run
    from t2iaudit.stages import check_inputs, write_report

    check_inputs(spec, prompts)
    store = open_run(spec, out, spec_path)
    known = {p.prompt_id: p for p in store.prompts()}
    changed = [
        p.prompt_id
        for p in prompts
        if p.prompt_id in known and (known[p.prompt_id].text, known[p.prompt_id].requested) != (p.text, p.requested)
    ]
    if changed:
        raise InputError(
            f"{len(changed)} prompts differ from those this run was made with (e.g. {changed[0]!r}): "
            "the spec's prompts or debias section changed; use a new --out directory",
            file=store.root,
        )
    (stages or in_process_stages)(store, spec, prompts, progress)
    if loop_options(spec).run_reports:
        write_report(store)
    return store


def audit_original(
    spec: AuditSpec,
    layout: LoopLayout,
    *,
    spec_path: str | Path | None = None,
    progress: Progress | None = None,
    stages: RunStages | None = None,
) -> RunStore:
    """Audit the spec's own prompts into ``DIR/original`` (resumes)."""
    from t2iaudit.stages import expand_prompts

    return _audit(spec, layout.original, expand_prompts(spec), spec_path, progress, stages)


def round_profile(k: int) -> str:
    """The name of the profile the loop measures after round ``k`` (used by round k+1)."""
    return f"{PROFILE_PREFIX}{k}"


def plan_round(spec: AuditSpec, layout: LoopLayout, k: int, engine: DebiasEngine) -> tuple[list[Prompt], RoundPlan]:
    """Round ``k``'s debiased prompts for the original run's prompts, and how they were planned.

    Round 1 uses the spec's ``profile`` (if any); round k > 1 the profile ``measure_profile`` wrote
    after round k-1. Writes ``plans/round-<k>.json``.
    """
    from t2iaudit.debias.loop import debias_prompts
    from t2iaudit.debias.profiles import load_profile, solve
    from t2iaudit.debias.schema import PlanRequest
    from t2iaudit.debias.textaudit import audit_rewriters
    from t2iaudit.fileio import write_atomic
    from t2iaudit.run.store import RunStore

    options = loop_options(spec)
    parents = RunStore(layout.original).prompts()
    if not parents:
        raise InputError("the original run has no prompts: run audit_original first", file=layout.original)
    n = options.variants(spec.replicates)
    profile_name = options.profile if k == 1 else round_profile(k - 1)
    wanted = targets(spec, engine)
    requested, solutions = dict(wanted), {}
    if profile_name is not None:
        profile = load_profile(profile_name, engine.profile_dirs)
        for attr, shares in wanted.items():
            measured = profile.attributes.get(attr)
            if measured is None:
                continue
            rows = [c for c in shares if c in measured.requested]
            solutions[attr] = solve(measured, shares, rows)  # what the planner solves too
            requested[attr] = {c: solutions[attr].proportions.get(c, 0.0) for c in shares}
    prompts = debias_prompts(
        parents,
        options.attributes,
        n=n,
        seed=options.seed,
        engine=engine,
        profile=profile_name,
        subjects=options.subjects,
    )
    tasks = []
    for parent in parents:
        request = PlanRequest(
            prompt=parent.text, n=n, seed=options.seed, attributes=dict(options.attributes), subjects=options.subjects
        )
        tasks += engine.tasks(request)
    plan = RoundPlan(
        round=k,
        profile=profile_name,
        targets=wanted,
        requested=requested,
        solutions=solutions,
        prompts=len(prompts),
        rewriter=audit_rewriters({engine.rewriter.name: engine.rewriter}, tasks, engine.vocabulary),
    )
    write_atomic(layout.plan(k), (plan.model_dump_json(indent=2) + "\n").encode("utf-8"))
    return prompts, plan


def audit_round(
    spec: AuditSpec,
    layout: LoopLayout,
    k: int,
    prompts: list[Prompt],
    *,
    spec_path: str | Path | None = None,
    progress: Progress | None = None,
    stages: RunStages | None = None,
) -> RunStore:
    """Audit round ``k``'s debiased prompts into ``DIR/round-<k>`` (resumes; same seeds as the parents)."""
    return _audit(round_spec(spec), layout.round(k), prompts, spec_path, progress, stages)


def score_round(
    spec: AuditSpec, layout: LoopLayout, k: int, embedder: ImageTextEmbedder | None = None
) -> PairScores | None:
    """Score round ``k``'s image pairs with the clip judge's model (None: the spec has no clip judge).
    Writes ``pairs/round-<k>.json``."""
    from t2iaudit.debias.pairs import clip_embedder, score_pairs
    from t2iaudit.fileio import write_atomic

    options = loop_options(spec)
    if options.clip_judge is None:
        return None
    judge_id = judge_ids(spec)[1] or ""
    if embedder is None:
        judge_id, embedder = clip_embedder(spec, options.clip_judge)
    resamples = int(spec.metrics.get("bootstrap_resamples", 1000))
    scores = score_pairs(layout.original, layout.round(k), embedder, judge_id, resamples=resamples, seed=spec.seed)
    write_atomic(layout.pairs(k), (scores.model_dump_json(indent=2) + "\n").encode("utf-8"))
    return scores


def measure_round(spec: AuditSpec, layout: LoopLayout, plan: RoundPlan, pairs: PairScores | None) -> RoundTradeoff:
    """Round ``plan.round``'s trade-off against the original run (``t2iaudit.debias.tradeoff``)."""
    from t2iaudit.debias.tradeoff import round_tradeoff

    judge_id, _ = judge_ids(spec)
    return round_tradeoff(
        layout.original,
        layout.round(plan.round),
        plan,
        judge_id,
        tolerance=loop_options(spec).tolerance,
        alignment=pairs.alignment if pairs else (),
    )


def measure_profile(spec: AuditSpec, layout: LoopLayout, k: int) -> Path:
    """Measure the realisation matrix on the debiased prompts of rounds 1..k (pooled: M does not depend
    on the request proportions) and write it as profile ``loop-round-<k>``; returns its path.

    Raises:
        InputError: No planned class has an image with a valid label (nothing to solve with).
    """
    import pandas as pd

    from t2iaudit.debias import loop_metrics as lm
    from t2iaudit.debias.profiles import Profile, attribute_profile, write_profile

    judge_id, _ = judge_ids(spec)
    frames, labels = [], {}
    for i in range(1, k + 1):
        table = lm.load_table(layout.round(i))
        frame = table.frame[table.frame["judge_id"] == judge_id]
        if "debias_abstain" in frame.columns:
            frame = frame[frame["debias_abstain"].isna()]
        frames.append(frame)
        labels.update(table.label_sets.get(judge_id, {}))
    rows = pd.concat(frames, ignore_index=True)
    attributes = {}
    for attr in loop_options(spec).attributes:
        col = f"requested_{attr}"
        sel = rows[(rows["attribute"] == attr) & rows[col].notna()] if col in rows.columns else rows.iloc[0:0]
        try:
            attributes[attr] = attribute_profile(list(sel[col]), list(sel["label"]), list(labels[attr]))
        except InputError as e:
            raise InputError(f"{attr}: {e.message}", file=layout.round(k)) from None
    model_id = spec.models[0].id
    profile = Profile(
        name=round_profile(k),
        model={"model_id": model_id},
        judge={"judge_id": judge_id},
        attributes=attributes,
        source={
            "spec_id": spec.id,
            "run_dir": layout.root.name,
            "rounds": list(range(1, k + 1)),
            "images": int(rows["image_id"].nunique()),
        },
    )
    return write_profile(profile, layout.profiles)


def write_tradeoff(spec: AuditSpec, layout: LoopLayout, rounds: list[RoundTradeoff], stopped: str) -> Tradeoff:
    """Write ``tradeoff.json``, ``tradeoff.md`` and ``report.html`` (the latter with the report extra)."""
    from t2iaudit.fileio import write_atomic
    from t2iaudit.report.tradeoff import write_tradeoff_reports

    options = loop_options(spec)
    judge_id, clip_id = judge_ids(spec)
    tradeoff = Tradeoff(
        spec_id=spec.id,
        original_run=layout.original.name,
        models=spec.model_ids(),
        judge_id=judge_id,
        clip_judge_id=clip_id,
        variants=options.variants(spec.replicates),
        tolerance=options.tolerance,
        max_rounds=options.rounds,
        rounds=rounds,
        stopped=stopped,
    )
    write_atomic(layout.tradeoff, (tradeoff.model_dump_json(indent=2) + "\n").encode("utf-8"))
    write_tradeoff_reports(layout.root, tradeoff)
    return tradeoff


def run_loop(
    spec: AuditSpec,
    out: str | Path,
    *,
    spec_path: str | Path | None = None,
    progress: Progress | None = None,
    engine: DebiasEngine | None = None,
    embedder: ImageTextEmbedder | None = None,
    stages: RunStages | None = None,
) -> Tradeoff:
    """Every step of the loop (see the module docstring); returns the trade-off written.

    ``stages`` runs each audit's stages (default ``in_process_stages``; the ``debias-audit`` flow
    passes one that shards them over its task runner)."""
    options = loop_options(spec)
    layout = LoopLayout(Path(out))
    audit_original(spec, layout, spec_path=spec_path, progress=progress, stages=stages)
    engine = engine or loop_engine(spec, layout)
    rounds: list[RoundTradeoff] = []
    stopped = f"{options.rounds} round(s) run, the maximum"
    for k in range(1, options.rounds + 1):
        prompts, plan = plan_round(spec, layout, k, engine)
        audit_round(spec, layout, k, prompts, spec_path=spec_path, progress=progress, stages=stages)
        rounds.append(measure_round(spec, layout, plan, score_round(spec, layout, k, embedder)))
        if rounds[-1].reached:
            stopped = f"target reached in round {k} (TV within {options.tolerance:g} for every model and attribute)"
            break
        if k == options.rounds:
            break
        try:
            measure_profile(spec, layout, k)
        except InputError as e:
            stopped = f"stopped after round {k}: no realisation matrix to solve with ({e.message})"
            break
    return write_tradeoff(spec, layout, rounds, stopped)


def read_tradeoff(out: str | Path) -> Tradeoff:
    """The ``tradeoff.json`` of a loop directory."""
    path = LoopLayout(Path(out)).tradeoff
    if not path.is_file():
        raise InputError("not a loop directory (no tradeoff.json)", file=out)
    return Tradeoff.model_validate_json(path.read_text(encoding="utf-8"))


def loop_summary(tradeoff: Tradeoff) -> list[str]:
    """One line per round, model and attribute, then why the loop stopped (for the CLI)."""
    from t2iaudit.report import fmt

    lines = []
    for r in tradeoff.rounds:
        for a in r.attributes:
            lines.append(
                f"round {r.round} {a.model_id} {a.attribute}: TV to target {fmt.num(a.tv_original, 3)} -> "
                f"{fmt.num(a.tv_debiased, 3)}, p (Holm) {fmt.pvalue(a.pooled.p_holm)}, "
                f"realisation rate {fmt.pct(a.realisation.rate.value)}"
            )
    lines.append(tradeoff.stopped)
    return lines
