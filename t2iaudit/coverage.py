"""Can an audit's judges answer what its prompts ask? Checked when a spec is loaded.

A prompt *requests* values (``Prompt.requested``: ``{race: South Asian}``) and may have a
*reference* distribution whose labels are compared with judged labels (H4, D5, D6, D9 against
the prompt's reference). For each attribute involved:

- a judge that answers the attribute (itself or through a label mapping, see
  ``t2iaudit.vocabulary``) but can neither output nor map a requested value or reference label
  makes the spec an error (the metric would silently be wrong);
- when no judge answers it, those metrics cannot be computed: ``load_spec`` warns, and the run's
  manifest records it (``RunManifest.not_computed``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from t2iaudit.errors import InputError
from t2iaudit.vocabulary import judge_answers

if TYPE_CHECKING:
    from t2iaudit.judges.base import JudgeConfig
    from t2iaudit.types import Prompt

REQUEST_METRICS = ["H4_miss_rate", "H4_unknown_rate", "H4_realisation", "D6_bigbench_explicit"]
REFERENCE_METRICS = ["D9 against the prompt's reference", "D5_bigbench_implicit", "D7_bigbench_eta"]
LOG = logging.getLogger("t2iaudit")


@dataclass
class Coverage:
    """Attributes the prompts ask about that no judge answers."""

    not_computed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Attribute -> ``{"requested_by": [set ids], "referenced_by": [set ids], "metrics": [...]}``."""

    def messages(self) -> list[str]:
        """One warning for requested attributes and one for reference attributes no judge answers."""
        out = []
        for key, what, metrics in (
            ("requested_by", "requested by prompt sets", REQUEST_METRICS),
            ("referenced_by", "used by the references of", REFERENCE_METRICS),
        ):
            attrs = sorted(a for a, info in self.not_computed.items() if info[key])
            if attrs:
                sets = sorted({s for a in attrs for s in self.not_computed[a][key]})
                out.append(
                    f"no judge answers {', '.join(attrs)} ({what} {', '.join(sets)}): {', '.join(metrics)} "
                    "of these are not computed (the run's manifest lists them under not_computed)"
                )
        return out


def check_coverage(
    prompts: Mapping[str, Sequence[Prompt]],
    judges: Sequence[tuple[str, JudgeConfig]],
    file: str | Path | None = None,
    custom_references: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> Coverage:
    """Refuse values a judge can neither output nor map; list attributes no judge answers.

    Args:
        prompts: Prompt-set id -> the audit's prompts of that set.
        judges: ``(field, config)`` per judge, ``field`` naming it in the spec (``judges[1]``).
        file: The spec, for error messages.
        custom_references: ``metrics.custom_references`` tables (applied to every prompt).

    Raises:
        InputError: Naming the prompt set (or reference table), value, judge and attribute.
    """
    from t2iaudit.promptsets import resolve_reference

    answers = []
    for where, config in judges:
        info = config.attribute_info()
        answers.append((where, config.id, judge_answers(config.declared_labels(), info.maps_to)))
    asked: dict[tuple[str, str, str], str] = {}  # (attribute, value, kind) -> first source
    for set_id, set_prompts in prompts.items():
        for p in set_prompts:
            for attribute, value in p.requested.items():
                asked.setdefault((attribute, value, "requested"), set_id)
            if p.reference:
                for attribute, dist in resolve_reference(p.reference).items():
                    for label in dist:
                        asked.setdefault((attribute, label, "reference"), set_id)
    for name, table in (custom_references or {}).items():
        for attribute, shares in table.items():
            for label in shares:
                asked.setdefault((attribute, label, "reference"), f"custom reference {name}")
    coverage = Coverage()
    for (attribute, value, kind), source in sorted(asked.items()):
        answering = [(w, jid, a[attribute]) for w, jid, a in answers if attribute in a]
        if not answering:
            missing = coverage.not_computed.setdefault(
                attribute, {"requested_by": [], "referenced_by": [], "metrics": []}
            )
            sources = missing["requested_by" if kind == "requested" else "referenced_by"]
            if source not in sources:
                sources.append(source)
            for m in REQUEST_METRICS if kind == "requested" else REFERENCE_METRICS:
                if m not in missing["metrics"]:
                    missing["metrics"].append(m)
            continue
        for where, judge_id, labels in answering:
            if value not in labels:
                what = "requests" if kind == "requested" else "has reference label"
                origin = source if source.startswith("custom") else f"prompt set {source!r}"
                raise InputError(
                    f"{origin} {what} {attribute} {value!r}, which judge {judge_id!r} can neither output nor "
                    f"map (its {attribute} labels: {labels}); declare maps_to in the judge or use the "
                    "canonical labels (docs/labels.md)",
                    file=file,
                    field=where,
                )
    return coverage


def spec_coverage(spec: Any, file: str | Path | None = None, *, warn: bool = False) -> Coverage:
    """``check_coverage`` for a resolved ``AuditSpec`` (its prompt selections and judges)."""
    from t2iaudit.judges.loader import load_judge_config
    from t2iaudit.promptsets import expand_selections

    by_set: dict[str, list[Prompt]] = {}
    for p in expand_selections(spec.prompts):
        by_set.setdefault(p.set_id, []).append(p)
    judges = [(f"judges[{i}]", load_judge_config(name)) for i, name in enumerate(spec.judges)]
    custom = (spec.metrics or {}).get("custom_references") or {}
    coverage = check_coverage(by_set, judges, file, custom)
    if warn:
        for message in coverage.messages():
            LOG.warning(f"{file}: {message}" if file else message)
    return coverage
