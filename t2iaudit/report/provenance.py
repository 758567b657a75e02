"""Provenance: what produced the run (spec, model and judge revisions, seeds, packages, commit)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.report.rundata import RunData


class ProvenanceSection(BaseModel):
    """The manifest, laid out for reading."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    status: str
    created: str
    updated: str
    spec_path: str
    git: str
    """Commit of the t2iaudit checkout that ran, with a dirty flag."""
    seeds: list[tuple[str, str]]
    models: list[dict[str, str]]
    judges: list[dict[str, str]]
    packages: list[tuple[str, str]]
    host: list[tuple[str, str]]
    stages: list[dict[str, str]]
    counts: list[tuple[str, str]] = Field(default_factory=list)
    spec_yaml: str


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def provenance_section(data: RunData) -> ProvenanceSection:
    """The provenance of a run from its manifest."""
    import yaml

    m = data.manifest
    spec = data.spec
    git = m.get("git") or {}
    metrics = spec.get("metrics") or {}
    seeds = [
        ("audit seed (each image's seed derives from it, the model, prompt and replicate)", _text(m.get("seed"))),
        ("replicates per prompt", _text(spec.get("replicates"))),
        ("bootstrap seed", _text(metrics.get("seed", 0))),
        ("bootstrap resamples", _text(metrics.get("bootstrap_resamples", 1000))),
    ]
    models = [
        {
            "id": mid,
            "model": _text(info.get("model") or info.get("folder") or info.get("source")),
            "revision": _text(info.get("revision")),
            "generator": _text(info.get("generator")),
            "settings": ", ".join(
                f"{k}={v}" for k, v in (info.get("config") or {}).items() if v not in (None, {}, []) and k != "model"
            ),
        }
        for mid, info in sorted((m.get("models") or {}).items())
    ]
    judges = []
    for jid, info in sorted(data.judges.items()):
        roles = data.roles.get(jid, {})
        judges.append(
            {
                "id": jid,
                "kind": _text(info.get("kind")),
                "revision": _text(info.get("revision")),
                "attributes": "; ".join(
                    f"{a} ({roles.get(a, '?')}: {', '.join(map(str, v)) or 'free text'})"
                    for a, v in (info.get("attributes") or {}).items()
                ),
                "calibration": _text(info.get("calibration")),
            }
        )
    stages = [
        {
            "stage": name,
            "status": _text(s.get("status")),
            "ended": _text(s.get("ended")),
            "records": _text(s.get("total")),
            "error": _text(s.get("error")),
        }
        for name, s in (m.get("stages") or {}).items()
        if name != "report"  # the stage writing this report is still running
    ]
    return ProvenanceSection(
        run_id=data.run_id,
        status=_text(m.get("status")),
        created=_text(m.get("created")),
        updated=_text(m.get("updated")),
        spec_path=_text(m.get("spec_path")),
        git=(_text(git.get("commit")) + (" (uncommitted changes)" if git.get("dirty") else "")) or "not a git checkout",
        seeds=seeds,
        models=models,
        judges=judges,
        packages=sorted((k, _text(v)) for k, v in (m.get("packages") or {}).items()),
        host=sorted((k, _text(v)) for k, v in (m.get("host") or {}).items()),
        stages=stages,
        counts=[(k, _text(v)) for k, v in (m.get("counts") or {}).items()],
        spec_yaml=yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
    )
