"""What an audit would do, before it runs: ``t2iaudit plan SPEC``.

Per model, the images to make and those already in the run directory; per judge, the images
to judge (those not yet judged, plus every image still to be made) and those done; which
models and judges would be loaded; and an estimated time from the throughput recorded in
``timings.jsonl`` of this run directory and of its sibling run directories (same model options,
same judge). Nothing is written and no model is loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from t2iaudit.run.store import RunStore
from t2iaudit.run.timings import TIMINGS, throughput

if TYPE_CHECKING:
    from t2iaudit.spec import AuditSpec


@dataclass(frozen=True)
class PlanRow:
    """One model (generate) or judge (judge) of the plan."""

    stage: str
    unit: str
    todo: int
    done: int
    loads: bool
    """Whether running the audit would load this model or judge (it has work)."""
    items_per_second: float | None
    """Recorded throughput, None when no earlier run measured it."""

    @property
    def seconds(self) -> float | None:
        if not self.todo:
            return 0.0
        return self.todo / self.items_per_second if self.items_per_second else None


@dataclass(frozen=True)
class AuditPlan:
    spec_id: str
    run_dir: str
    exists: bool
    rows: list[PlanRow]

    @property
    def seconds(self) -> float | None:
        """Estimated time of the whole audit; None when some work has no recorded throughput."""
        parts = [r.seconds for r in self.rows]
        return None if any(p is None for p in parts) else float(sum(p for p in parts if p is not None))

    def as_dict(self) -> dict[str, Any]:
        rows = [{**asdict(r), "seconds": r.seconds} for r in self.rows]
        return {
            "spec": self.spec_id,
            "run_dir": self.run_dir,
            "exists": self.exists,
            "rows": rows,
            "seconds": self.seconds,
        }


def plan_audit(spec: AuditSpec, out: str | Path) -> AuditPlan:
    """The plan of running ``spec`` into ``out`` (which may not exist yet)."""
    from t2iaudit.generators.registry import GENERATORS
    from t2iaudit.judges.loader import load_judge_config
    from t2iaudit.stages.audit import expand_prompts
    from t2iaudit.stages.generate import plan_generation
    from t2iaudit.stages.judge import plan_judging

    out = Path(out)
    store = RunStore(out)
    prompts = expand_prompts(spec)
    history = [out / TIMINGS, *sorted(out.parent.glob(f"*/{TIMINGS}"))] if out.parent.is_dir() else []
    rates = throughput(dict.fromkeys(history))
    shards = plan_generation(store, spec, prompts)
    rows = []
    to_make = 0
    for entry in spec.models:
        kind = GENERATORS.get(entry.generator)
        total = len(kind.plan(kind.config_model.model_validate(entry.options), prompts, spec.replicates))
        todo = sum(len(s.items) for s in shards if s.model_id == entry.id)
        to_make += todo
        rate = rates.get(("generate", entry.config_hash()))
        rows.append(PlanRow("generate", entry.id, todo, total - todo, todo > 0, rate))
    pending: dict[str, int] = {}
    for shard in plan_judging(store, spec):
        pending[shard.judge_id] = pending.get(shard.judge_id, 0) + len(shard.items)
    existing = len(store.images())
    for name in spec.judges:
        judge_id = load_judge_config(name).judge_id()
        todo = pending.get(judge_id, 0) + to_make
        done = existing - pending.get(judge_id, 0)
        rows.append(PlanRow("judge", judge_id, todo, done, todo > 0, rates.get(("judge", judge_id))))
    return AuditPlan(spec.id, str(out), store.read_manifest() is not None, rows)


def render_plan(plan: AuditPlan) -> str:
    """The plan as lines of text."""
    state = "resumes an existing run" if plan.exists else "creates a new run directory"
    lines = [f"audit {plan.spec_id} -> {plan.run_dir} ({state})"]
    for r in plan.rows:
        verb = "to make" if r.stage == "generate" else "to judge"
        load = "loads" if r.loads else "not loaded (nothing to do)"
        speed = (
            f"~{r.seconds:.1f} s at {r.items_per_second:.1f} images/s recorded"
            if r.seconds is not None and r.items_per_second
            else ("done" if not r.todo else "no recorded throughput")
        )
        lines.append(f"  {r.stage:8s} {r.unit}: {r.todo} {verb}, {r.done} done; {load}; {speed}")
    total = plan.seconds
    unknown = "estimated time: unknown (no recorded throughput for some of the work)"
    lines.append(f"estimated time: ~{total:.1f} s" if total is not None else unknown)
    return "\n".join(lines)
