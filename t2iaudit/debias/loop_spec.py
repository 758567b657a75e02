"""The ``debias:`` section of an audit spec: what the closed loop (audit -> debias -> re-audit) aims for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.debias.attribute_target import MAX_N, NAME_PATTERN, AttributeTarget
from t2iaudit.errors import InputError

MAX_ROUNDS = 10


class LoopOptions(BaseModel):
    """Targets and settings of ``t2iaudit debias-audit`` (see docs/debias.md, "Closing the loop")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attributes: dict[Annotated[str, Field(pattern=NAME_PATTERN)], AttributeTarget] = Field(min_length=1, max_length=8)
    """Attribute -> wanted distribution of the *judged* labels (``classes`` + ``target`` shares, or
    ``uniform``), as in a plan request. ``unspecified`` may not have a share: the loop measures the
    target on judged labels."""
    n: int | None = Field(None, ge=1, le=MAX_N)
    """Debiased variants per original prompt; variant k stands in for the original's replicate k and
    is generated with that image's seed. Default: the spec's ``replicates`` (every original image
    gets one debiased twin)."""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    """Seed of the planner's shuffles (which variant gets which class)."""
    profile: str | None = Field(None, pattern=NAME_PATTERN)
    """Realisation profile for round 1 (``profiles/<name>.json``); later rounds measure their own."""
    profile_dirs: list[str] = Field(default_factory=list)
    """Extra folders searched for ``profile`` (relative paths: against the spec's folder)."""
    subjects: Literal["each", "first"] = "each"
    """``each``: every human subject of a prompt gets its own assignment; ``first``: only the first."""
    rounds: int = Field(1, ge=1, le=MAX_ROUNDS)
    """Rounds of debiasing at most (DebiasPI-style iteration): round k+1 requests the proportions
    solved from the realisation matrix measured in rounds 1..k. More than 1 needs exactly one model."""
    tolerance: float = Field(0.05, ge=0.0, le=1.0)
    """Stop iterating once the judged distribution of the debiased images is within this total
    variation distance of the target, for every model and attribute."""
    judge: str | None = None
    """The judge (as named in ``judges``, or its id) whose labels measure the target. Default: the
    attribute's ``primary_judges`` entry, else the first judge of the spec answering every attribute."""
    clip_judge: str | None = None
    """A ``kind: clip`` judge of the spec whose model embeds images and the original prompts for
    CLIPScore-against-the-original and paired image similarity. Default: the first clip judge; none:
    those two numbers are not measured."""
    run_reports: bool = True
    """Write each run's own ``report.html`` and ``summary.md`` (the original and every round) beside
    the loop's report. False: only the loop's (``t2iaudit report DIR/round-1`` writes one later)."""
    similarity: bool = True
    """Check every rewrite with the packaged sentence embedder (all-MiniLM-L6-v2, ~7 s to load):
    text preservation in the trade-off report. False: no embedder."""

    def variants(self, replicates: int) -> int:
        """Debiased variants per prompt: ``n``, or one per original image."""
        return self.n if self.n is not None else replicates


class SpecLike(Protocol):
    """What the check reads of an ``AuditSpec`` (typed structurally: spec.py imports this module)."""

    @property
    def judges(self) -> list[str]: ...
    @property
    def primary_judges(self) -> dict[str, str]: ...
    @property
    def models(self) -> Sequence[Any]: ...
    @property
    def debias(self) -> LoopOptions | None: ...


def _judge_entry(spec: SpecLike, name: str, path: Path, field: str) -> tuple[str, object]:
    from t2iaudit.judges.loader import load_judge_config

    for entry in spec.judges:
        config = load_judge_config(entry)
        if name in (entry, config.id, config.judge_id()) or Path(entry).name in (name, f"{name}.yaml"):
            return entry, config
    known = ", ".join(load_judge_config(e).id for e in spec.judges) or "none"
    raise InputError(f"judge {name!r} is not one of this spec's judges ({known})", file=path, field=field)


def check_loop_options(spec: SpecLike, path: Path) -> LoopOptions:
    """Validate ``spec.debias`` against the vocabulary, the judges, profiles and models (before anything
    is written); returns it with ``judge``/``clip_judge`` set to the spec's judge entries they name."""
    from t2iaudit.debias.planner import UNSPECIFIED
    from t2iaudit.debias.profiles import load_profile, profile_dirs
    from t2iaudit.debias.schema import PlanRequest
    from t2iaudit.debias.targets import resolve_targets
    from t2iaudit.debias.vocab import load_vocabulary
    from t2iaudit.generators.base import full_plan
    from t2iaudit.generators.registry import GENERATORS
    from t2iaudit.judges.loader import load_judge_config

    options = spec.debias
    assert options is not None
    try:
        targets = resolve_targets(PlanRequest(prompt="x", n=1, attributes=dict(options.attributes)), load_vocabulary())
    except InputError as e:
        raise InputError(e.message, file=path, field=f"debias.{e.field}") from None
    for attr, shares in targets.items():
        if shares.get(UNSPECIFIED, 0.0) > 0:
            raise InputError(
                "the loop's target is over judged labels: leave 'unspecified' out",
                file=path,
                field=f"debias.attributes.{attr}.classes",
            )
    for i, entry in enumerate(spec.models):
        if GENERATORS.get(entry.generator).plan is not full_plan:
            raise InputError(
                f"generator {entry.generator!r} picks its own images and cannot render debiased prompts",
                file=path,
                field=f"models[{i}].generator",
            )
    if options.rounds > 1 and len(spec.models) != 1:
        raise InputError(
            "more than one round needs exactly one model (the realisation matrix is per model)",
            file=path,
            field="debias.rounds",
        )
    wanted = set(targets)
    if options.judge is not None:
        judge, config = _judge_entry(spec, options.judge, path, "debias.judge")
    else:
        primary = {spec.primary_judges.get(a) for a in wanted}
        name = primary.pop() if len(primary) == 1 and None not in primary else None
        candidates = [name] if name else []
        candidates += [e for e in spec.judges if wanted <= set(load_judge_config(e).declared_labels())]
        if not candidates:
            raise InputError(
                f"no judge of the spec answers {sorted(wanted)}: the loop cannot measure its target",
                file=path,
                field="debias.attributes",
            )
        judge, config = _judge_entry(spec, str(candidates[0]), path, "debias.judge")
    missing = sorted(wanted - set(config.declared_labels()))  # type: ignore[attr-defined]
    if missing:
        raise InputError(f"judge {judge!r} does not answer {missing}", file=path, field="debias.judge")
    clip = options.clip_judge
    if clip is not None:
        clip, clip_config = _judge_entry(spec, clip, path, "debias.clip_judge")
        if getattr(clip_config, "kind", None) != "clip":
            raise InputError(f"judge {clip!r} is not a kind: clip judge", file=path, field="debias.clip_judge")
    else:
        clip = next((e for e in spec.judges if load_judge_config(e).kind == "clip"), None)
    spec_dir = path.resolve().parent
    dirs = [str(p if Path(p).is_absolute() else (spec_dir / p).resolve()) for p in options.profile_dirs]
    if options.profile is not None:
        try:
            load_profile(options.profile, profile_dirs(dirs))
        except InputError as e:
            raise InputError(e.message, file=path, field="debias.profile") from None
    return options.model_copy(update={"judge": judge, "clip_judge": clip, "profile_dirs": dirs})
