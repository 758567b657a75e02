"""The debias engine: analyse, plan, rewrite and check one prompt; the library call behind the CLI and service."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.debias.analysis import Analyser, Analysis, abstain_reasons, planned_subjects
from t2iaudit.debias.checks import insert_check, names_check, similarity_checks, similarity_job
from t2iaudit.debias.embedding import Embedder
from t2iaudit.debias.planner import UNSPECIFIED, Group, plan
from t2iaudit.debias.profiles import Profile, load_profile, profile_dirs, solve
from t2iaudit.debias.rewriter import Rewriter, RewriteTask, TemplateRewriter
from t2iaudit.debias.schema import (
    BatchRequest,
    BatchResponse,
    Checks,
    PlanItem,
    PlanRequest,
    PlanResponse,
    PlanWarning,
)
from t2iaudit.debias.shuffle import hash_int
from t2iaudit.debias.targets import Joint, joint_marginal, resolve_joint, resolve_targets
from t2iaudit.debias.vocab import Vocabulary
from t2iaudit.errors import InputError

PLANNER_VERSION = "1"
UNREACHABLE_TV = 0.01
"""A profile's best reachable distribution farther than this (TV) from the target is reported."""


class EngineSettings(BaseModel):
    """Server-side settings that change responses (they enter the config hash)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    similarity_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    """Default minimum cosine between the original and a rewrite (all-MiniLM-L6-v2)."""
    vocabulary: str | None = None
    """A vocabulary YAML replacing the shipped one."""
    lexicon: str | None = None
    """A lexicon YAML replacing the shipped one."""
    profile_dirs: list[str] = Field(default_factory=list)
    """Folders searched for profiles before ``$T2IAUDIT_PROFILES`` and the shipped ``profiles/``."""


@dataclass
class _Draft:
    """One distinct rewrite and its checks (items with the same assignment share it)."""

    task: RewriteTask
    text: str
    checks: dict = field(default_factory=dict)


def image_seed(seed: int, prompt: str, index: int) -> int:
    """Item ``index``'s image seed: the same for every assignment, so original and debiased images pair up."""
    return hash_int("image", seed, prompt, index)


class DebiasEngine:
    """Plans debiased prompts. Components are injectable (fakes in tests, LM analysers and rewriters)."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        vocabulary: Vocabulary | None = None,
        analyser: Analyser | None = None,
        rewriter: Rewriter | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        from t2iaudit.debias.lexicon import load_lexicon
        from t2iaudit.debias.rules import RuleAnalyser
        from t2iaudit.debias.vocab import load_vocabulary

        self.settings = settings or EngineSettings()
        self.vocabulary = vocabulary or load_vocabulary(self.settings.vocabulary)
        self.rules = RuleAnalyser(load_lexicon(self.settings.lexicon), self.vocabulary)
        self.analyser: Analyser = analyser or self.rules
        self.rewriter: Rewriter = rewriter or TemplateRewriter()
        self.template = TemplateRewriter()
        self.embedder = embedder
        self.profile_dirs = profile_dirs(self.settings.profile_dirs)

    # -- public -----------------------------------------------------------------------------
    def versions(self, profile: Profile | None = None) -> dict[str, str | None]:
        from t2iaudit import __version__

        prof = None
        if profile is not None:
            digest = hashlib.sha256(profile.model_dump_json().encode()).hexdigest()[:12]
            prof = f"{profile.name}@{profile.format_version}+{digest}"
        return {
            "t2iaudit": __version__,
            "planner": PLANNER_VERSION,
            "vocabulary": self.vocabulary.version,
            "analyser": getattr(self.analyser, "version", self.analyser.name),
            "rewriter": self.rewriter.name,
            "embedder": self.embedder.name if self.embedder is not None else None,
            "profile": prof,
        }

    def plan_batch(self, batch: BatchRequest) -> BatchResponse:
        return BatchResponse(results=[self.plan(r) for r in batch.requests])

    def plan(self, request: PlanRequest) -> PlanResponse:
        """The plan for one prompt (raises InputError naming the request field at fault)."""
        targets = resolve_targets(request, self.vocabulary)
        joint = resolve_joint(request, targets)
        profile = load_profile(request.profile, self.profile_dirs) if request.profile else None
        if profile is not None and joint is not None:
            raise InputError("a profile cannot be combined with a joint table", field="profile")
        analysis = self.analyser.analyse(request.prompt)
        warnings: list[PlanWarning] = []
        if analysis.fallback:
            warnings.append(PlanWarning(code="LM_ANALYSIS_FALLBACK", message=analysis.fallback))
        reasons = abstain_reasons(analysis, targets, request.subjects)
        base = {"prompt": request.prompt, "n": request.n, "seed": request.seed, "analysis": analysis}
        if reasons:
            items = [
                PlanItem(
                    index=i,
                    prompt=request.prompt,
                    assignment={},
                    image_seed=image_seed(request.seed, request.prompt, i),
                    checks=None,
                )
                for i in range(request.n)
            ]
            return self._response(request, base, items, {}, {}, reasons, warnings, profile, None)
        profile_info = self._apply_profile(profile, targets, warnings) if profile else None
        groups, slot_of = self._groups(request, analysis, targets, joint, warnings)
        planned = plan(request.n, groups, f"{request.seed}\x1f{request.prompt}")
        drafts: dict[tuple, _Draft] = {}
        drafted = []
        for i, assignment in enumerate(planned.assignments):
            key = tuple(sorted(assignment.items()))
            if key not in drafts:
                drafts[key] = self._draft(request.prompt, analysis, assignment, slot_of)
            drafted.append((i, assignment, drafts[key]))
        self._similarity(request, list(drafts.values()), warnings)
        out = [
            PlanItem(
                index=i,
                prompt=d.text,
                assignment=a,
                image_seed=image_seed(request.seed, request.prompt, i),
                checks=Checks(**d.checks),
            )
            for i, a, d in drafted
        ]
        failing = sum(not it.checks.ok for it in out if it.checks)
        if failing:
            warnings.append(
                PlanWarning(
                    code="CHECKS_FAILED",
                    message=f"{failing} of {len(out)} items fail a check",
                    details={"items": [it.index for it in out if it.checks and not it.checks.ok]},
                )
            )
        shares = {slot: dict(group_shares) for slot, group_shares in self._slot_shares(groups).items()}
        return self._response(request, base, out, planned.marginals, shares, [], warnings, profile, profile_info)

    def tasks(self, request: PlanRequest) -> list[RewriteTask]:
        """The rewrite task of every item (empty when the prompt is left alone): for text-stage audits."""
        targets = resolve_targets(request, self.vocabulary)
        analysis = self.analyser.analyse(request.prompt)
        if abstain_reasons(analysis, targets, request.subjects):
            return []
        groups, slot_of = self._groups(request, analysis, targets, resolve_joint(request, targets), [])
        planned = plan(request.n, groups, f"{request.seed}\x1f{request.prompt}")
        return [self._task(request.prompt, analysis, a, slot_of) for a in planned.assignments]

    # -- planning ---------------------------------------------------------------------------
    def _apply_profile(
        self, profile: Profile, targets: dict[str, dict[str, float]], warnings: list[PlanWarning]
    ) -> dict:
        info: dict = {"name": profile.name, "attributes": {}}
        for attr, shares in targets.items():
            ap = profile.attributes.get(attr)
            if ap is None:
                warnings.append(
                    PlanWarning(
                        code="PROFILE_ATTRIBUTE_MISSING",
                        message=f"profile {profile.name!r} has no matrix for {attr!r}; its target is planned as asked",
                    )
                )
                continue
            if shares.get(UNSPECIFIED, 0.0) > 0:
                raise InputError(
                    "with a profile the target is over judged labels: give 'unspecified' share 0 to let the "
                    "solver use the unedited prompt",
                    field=f"attributes.{attr}.target",
                )
            rows = [c for c in shares if c in ap.requested]
            missing = [c for c in shares if c not in ap.requested]
            if missing:
                warnings.append(
                    PlanWarning(
                        code="CLASS_NOT_IN_PROFILE",
                        details={"attribute": attr, "classes": missing},
                        message=f"profile {profile.name!r} has no row for {missing}: never requested",
                    )
                )
            if not rows:
                raise InputError(
                    f"profile {profile.name!r} measured none of the classes asked for", field=f"attributes.{attr}"
                )
            sol = solve(ap, {k: v for k, v in shares.items() if k != UNSPECIFIED}, rows)
            targets[attr] = {c: sol.proportions.get(c, 0.0) for c in shares}
            info["attributes"][attr] = sol.model_dump()
            if sol.tv > UNREACHABLE_TV:
                warnings.append(
                    PlanWarning(
                        code="TARGET_UNREACHABLE",
                        message=f"{attr}: the target cannot be reached through the profile's realisation matrix; the best "
                        f"reachable distribution is {sol.reachable} (TV {sol.tv:.3f} from the target)",
                        details={"attribute": attr, "reachable": sol.reachable, "tv": sol.tv, "target": sol.target},
                    )
                )
        return info

    def _groups(
        self,
        request: PlanRequest,
        analysis: Analysis,
        targets: dict[str, dict[str, float]],
        joint: Joint | None,
        warnings: list[PlanWarning],
    ) -> tuple[list[Group], dict[str, tuple[str, int]]]:
        chosen = planned_subjects(analysis, request.subjects)
        subjects = analysis.subjects
        if len(subjects) > len(chosen):
            left = [s.noun for i, s in enumerate(subjects) if i not in chosen]
            warnings.append(
                PlanWarning(
                    code="SUBJECTS_UNSPECIFIED",
                    details={"subjects": left},
                    message=f"no attributes planned for {', '.join(map(repr, left))}",
                )
            )
        multi = len(chosen) > 1
        groups: list[Group] = []
        slot_of: dict[str, tuple[str, int]] = {}

        def slot(attr: str, i: int) -> str:
            name = f"{attr}.{i + 1}" if multi else attr
            slot_of[name] = (attr, i)
            return name

        for i in chosen:
            stated = {a: c for a, c in subjects[i].stated.items() if a in targets}
            for attr, cls in stated.items():
                warnings.append(
                    PlanWarning(
                        code="STATED_ATTRIBUTE_KEPT",
                        details={"subject": i + 1, "attribute": attr},
                        message=f"{subjects[i].noun!r} is already {cls} ({attr}): left as stated",
                    )
                )
            if subjects[i].plural:
                warnings.append(
                    PlanWarning(
                        code="PLURAL_SUBJECT",
                        details={"subject": i + 1},
                        message=f"{subjects[i].noun!r} is plural: a planned class applies to the whole group",
                    )
                )
            free = [a for a in targets if a not in stated]
            whole = joint is not None and all(a in free for a in joint.attributes)
            if whole and joint is not None:
                groups.append(Group(tuple(slot(a, i) for a in joint.attributes), joint.cells, joint.shares))
            elif joint is not None:
                warnings.append(
                    PlanWarning(
                        code="JOINT_REDUCED",
                        details={"subject": i + 1},
                        message=f"{subjects[i].noun!r} states part of the joint table's attributes: the others are "
                        "planned from the table's marginals",
                    )
                )
            for attr in free:
                if whole and joint is not None and attr in joint.attributes:
                    continue
                shares = joint_marginal(joint, attr) if joint and attr in joint.attributes else targets[attr]
                groups.append(Group.single(slot(attr, i), {c: shares.get(c, 0.0) for c in targets[attr]}))
        return groups, slot_of

    @staticmethod
    def _slot_shares(groups: Sequence[Group]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for g in groups:
            total = sum(g.shares)
            for j, slot in enumerate(g.slots):
                margin = out.setdefault(slot, {})
                for cell, share in zip(g.cells, g.shares):
                    margin[cell[j]] = round(margin.get(cell[j], 0.0) + share / total, 9)
        return out

    # -- rewriting and checks ---------------------------------------------------------------
    def _task(
        self, prompt: str, analysis: Analysis, assignment: dict[str, str], slot_of: dict[str, tuple[str, int]]
    ) -> RewriteTask:
        per_subject: dict[int, dict[str, str]] = {}
        for slot, cls in assignment.items():
            attr, i = slot_of[slot]
            if cls != UNSPECIFIED:
                per_subject.setdefault(i, {})[attr] = cls
        phrases = {i: self.vocabulary.ordered(a) for i, a in sorted(per_subject.items())}
        return RewriteTask(prompt=prompt, analysis=analysis, phrases=phrases)

    def _draft(
        self, prompt: str, analysis: Analysis, assignment: dict[str, str], slot_of: dict[str, tuple[str, int]]
    ) -> _Draft:
        task = self._task(prompt, analysis, assignment, slot_of)
        text = self.rewriter.rewrite(task)
        ins, names = insert_check(task, text), names_check(task, text, self.rules, self.vocabulary)
        checks: dict = {"rewriter": self.rewriter.name}
        if self.rewriter.name != self.template.name and not (ins.ok and names.ok):
            rejected = [*ins.violations, *([] if names.ok else [f"names {names.found} instead of {names.expected}"])]
            checks.update(replaced=True, rejected=text, rejected_violations=rejected, rewriter=self.template.name)
            text = self.template.rewrite(task)
            ins, names = insert_check(task, text), names_check(task, text, self.rules, self.vocabulary)
        checks.update(insert_only=ins, names_planned=names, similarity=None, ok=ins.ok and names.ok)
        return _Draft(task, text, checks)

    def _similarity(self, request: PlanRequest, drafts: list[_Draft], warnings: list[PlanWarning]) -> None:
        if self.embedder is None:
            return
        threshold = request.similarity_threshold
        threshold = self.settings.similarity_threshold if threshold is None else threshold
        jobs = [similarity_job(d.task, d.text) for d in drafts]
        for d, sim in zip(drafts, similarity_checks(self.embedder, jobs, threshold)):
            d.checks.update(similarity=sim, ok=d.checks["ok"] and sim.ok)

    def _response(
        self,
        request: PlanRequest,
        base: dict,
        items: list[PlanItem],
        marginals: dict[str, dict[str, int]],
        shares: dict[str, dict[str, float]],
        reasons: list[str],
        warnings: list[PlanWarning],
        profile: Profile | None,
        profile_info: dict | None,
    ) -> PlanResponse:
        versions = self.versions(profile)
        gap = {
            slot: round(0.5 * sum(abs(marginals[slot].get(c, 0) / request.n - s) for c, s in shares[slot].items()), 9)
            for slot in marginals
        }
        settings = {"similarity_threshold": self.settings.similarity_threshold}
        blob = json.dumps(
            {"request": request.model_dump(mode="json"), "versions": versions, "settings": settings}, sort_keys=True
        )
        return PlanResponse(
            **base,
            items=items,
            planned_marginals=marginals,
            targets=shares,
            planning_gap=gap,
            abstain_reasons=reasons,
            warnings=warnings,
            profile=profile_info,
            versions=versions,
            config_hash=hashlib.sha256(blob.encode()).hexdigest()[:16],
        )


def build_engine(settings: EngineSettings | None = None, *, embedder: str = "minilm") -> DebiasEngine:
    """An engine with the packaged sentence embedder (``embedder="none"``: no similarity check)."""
    from t2iaudit.debias.embedding import minilm

    if embedder not in ("minilm", "none"):
        raise InputError(f"unknown embedder {embedder!r} (minilm or none)", field="embedder")
    return DebiasEngine(settings, embedder=minilm() if embedder == "minilm" else None)


def settings_from_paths(vocabulary: Path | None, profiles: Sequence[Path]) -> EngineSettings:
    return EngineSettings(vocabulary=str(vocabulary) if vocabulary else None, profile_dirs=[str(p) for p in profiles])
