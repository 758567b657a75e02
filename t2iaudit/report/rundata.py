"""``RunData``: everything the report reads from one run directory, loaded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from t2iaudit.errors import InputError
from t2iaudit.report import fmt
from t2iaudit.report.metric_index import MetricIndex
from t2iaudit.report.options import ReportOptions, resolve_options
from t2iaudit.report.roles import Role, base_attribute, judge_roles

if TYPE_CHECKING:
    from t2iaudit.metrics.table import JudgementTable

ATTRIBUTE_ORDER = ("gender", "age", "race", "race_fairface", "ethnicity", "skin_tone")
"""Protected attributes in the order the report shows them (others follow, sorted)."""


@dataclass
class RunData:
    """A run directory as the report sees it: manifest, prompts, images, metrics, judgements.

    Nothing here runs a model or a metric: judgements and metrics are read as the stages wrote
    them (the judgement table only for counting and for contact sheets).
    """

    root: Path
    manifest: dict[str, Any]
    prompts: dict[str, dict[str, Any]]
    """Prompt id -> prompt record, in the run's order."""
    images: list[dict[str, Any]]
    metrics: MetricIndex
    _table: JudgementTable | None = field(default=None, repr=False)

    # -- identity --------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.root.name)

    @property
    def spec(self) -> dict[str, Any]:
        return self.manifest.get("spec") or {}

    @property
    def judges(self) -> dict[str, dict[str, Any]]:
        """Judge id -> manifest entry (name, kind, revision, attributes, roles, calibration)."""
        return self.manifest.get("judges") or {}

    def options(self, **overrides: Any) -> ReportOptions:
        """The spec's ``report:`` options with ``overrides`` (None values ignored) applied."""
        return resolve_options(self.spec.get("report"), **overrides)

    short = staticmethod(fmt.short_judge)

    def judge_name(self, judge_id: str) -> str:
        return str(self.judges.get(judge_id, {}).get("name") or judge_id.split("@", 1)[0])

    # -- attributes and roles ------------------------------------------------------------
    @cached_property
    def roles(self) -> dict[str, dict[str, Role]]:
        """Judge id -> attribute -> role (declared in the manifest, else inferred)."""
        return {jid: judge_roles(entry) for jid, entry in self.judges.items()}

    def labels(self, judge_id: str, attribute: str) -> list[str]:
        """Declared labels of a judge's attribute (without ``unknown``)."""
        return list((self.judges.get(judge_id, {}).get("attributes") or {}).get(attribute) or [])

    @cached_property
    def protected_attributes(self) -> list[str]:
        """Protected attributes some judge answers (no two-person suffixes, no intersections)."""
        found = {a for roles in self.roles.values() for a, r in roles.items() if r == "protected"}
        found = {a for a in found if "." not in a and "*" not in a}
        order = {a: i for i, a in enumerate(ATTRIBUTE_ORDER)}
        return sorted(found, key=lambda a: (order.get(a, len(order)), a))

    def judges_for(self, attribute: str) -> list[str]:
        """Judge ids that answer ``attribute`` (sorted)."""
        return sorted(j for j, roles in self.roles.items() if attribute in roles)

    def role(self, judge_id: str, attribute: str) -> Role | None:
        roles = self.roles.get(judge_id, {})
        return roles.get(attribute) or roles.get(base_attribute(attribute))

    # -- models, prompts, images ---------------------------------------------------------
    @cached_property
    def models(self) -> list[str]:
        seen = dict.fromkeys(str(im["model_id"]) for im in self.images)
        return sorted(seen) or sorted(self.manifest.get("models") or {})

    @cached_property
    def prompt_sets(self) -> dict[str, list[str]]:
        """Prompt set id -> its prompt ids, in the run's order."""
        out: dict[str, list[str]] = {}
        for pid, p in self.prompts.items():
            out.setdefault(str(p.get("set_id") or "prompts"), []).append(pid)
        return out

    def prompt_text(self, prompt_id: str) -> str:
        return str(self.prompts.get(prompt_id, {}).get("text") or prompt_id)

    def image_file(self, record: dict[str, Any]) -> Path | None:
        """The image's file inside the run directory, or None (imported labels, deleted files)."""
        rel = str(record.get("path") or "")
        parts = Path(rel).parts
        if not rel or Path(rel).is_absolute() or ".." in parts:  # the report reads only the run directory
            return None
        path = self.root / rel
        return path if path.is_file() else None

    @cached_property
    def image_files(self) -> dict[str, Path]:
        """Image id -> file, for images whose file is in the run directory."""
        out = {}
        for im in self.images:
            f = self.image_file(im)
            if f is not None:
                out[str(im["image_id"])] = f
        return out

    # -- judgements ------------------------------------------------------------------------
    @property
    def table(self) -> JudgementTable:
        """The judgement table (``t2iaudit.metrics.table.load_table``), loaded on first use."""
        if self._table is None:
            from t2iaudit.metrics.table import load_table

            self._table = load_table(self.root)
        return self._table

    def calibrated(self, judge_id: str, attribute: str) -> bool:
        """Whether a labelled calibration set measured this judge's errors on ``attribute``."""
        if self.metrics.rows("J3_corrected_share", attribute, judge_id=judge_id):
            return True
        rel = self.judges.get(judge_id, {}).get("calibration")
        path = self.root / str(rel) if rel else None
        if path is None or not path.is_file():
            return False
        with path.open(encoding="utf-8-sig") as f:  # the judged calibration CSV the judge stage wrote
            header = f.readline().strip().split(",")
        return f"judged_{attribute}" in header

    def reference(self, prompt_id: str, attribute: str) -> dict[str, float] | None:
        """The prompt's reference distribution over ``attribute``'s labels, when it has one."""
        key = self.prompts.get(prompt_id, {}).get("reference")
        if not key:
            return None
        dist = self.table.references.get(str(key), {}).get(attribute)
        return dict(dist) if dist else None


def load_run_data(run_dir: str | Path, *, require_metrics: bool = True) -> RunData:
    """Read a run directory for the report.

    Args:
        run_dir: The run directory.
        require_metrics: Refuse a run without ``metrics.jsonl`` (else its metrics are empty).

    Raises:
        InputError: Not a run directory, or no ``metrics.jsonl`` yet (naming the command that
            makes it).
    """
    from t2iaudit.run.store import IMAGES, METRICS, PROMPTS, RunStore

    store = RunStore(run_dir)
    manifest = store.read_manifest()
    if manifest is None:
        raise InputError("not a run directory (no manifest.json)", file=run_dir)
    if require_metrics and not store.path(METRICS).exists():
        raise InputError(f"no metrics.jsonl yet: run `t2iaudit metrics {run_dir}` first", file=run_dir)
    try:
        prompts = {str(p["prompt_id"]): p for p in store.read(PROMPTS)}
        images = store.read(IMAGES)
        metrics = MetricIndex(store.read(METRICS))
    except ValueError as e:  # a corrupt JSONL line names its file and line
        raise InputError(str(e), file=run_dir) from None
    return RunData(root=Path(run_dir), manifest=manifest, prompts=prompts, images=images, metrics=metrics)
