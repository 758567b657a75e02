"""``manifest.json``: what produced a run directory, typed, with a format version.

Format versions:

- 1 (no ``format_version`` key): records carried their wall time (``ImageRecord.seconds``,
  ``Judgement.seconds``). Read as version 1; those fields are dropped on read.
- 2: timings live in ``timings.jsonl`` (``t2iaudit.run.timings``), so two runs of one spec give
  identical records.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 2
"""The version this code writes; older run directories are read and upgraded in memory."""


class StageStatus(BaseModel):
    """What one stage did in its latest run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: str = "pending"
    """``pending``, ``running``, ``done`` or ``failed``."""
    started: str | None = None
    ended: str | None = None
    new: int = 0
    """Records this run of the stage added."""
    total: int = 0
    """Records present after it."""
    error: str | None = None
    inputs: str | None = None
    """Derived stages (metrics, report): sha256 of what the output was computed from
    (``t2iaudit.run.fingerprint``); a rerun of the audit with the same inputs skips the stage."""


class ModelRun(BaseModel):
    """What a model of the run was: the entry ``manifest.models[<model id>]``.

    Backends add their own provenance (a replay ``folder`` and ``mapping``, an import's
    ``source``), kept as extra keys.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    generator: str
    """The backend (``diffusers``, ``replay``, ``import``, a plugin's name)."""
    config_hash: str | None = None
    """Hash of the model entry's options: a model id whose options change is refused."""
    model: str | None = None
    """Model reference: hub id, local folder or ``tiny:<name>``."""
    revision: str | None = None
    """Resolved revision: a hub commit, or ``sha256:...`` of a local folder (``t2iaudit.models``)."""
    device: str | None = None
    dtype: str | None = None
    pipeline: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class JudgeRun(BaseModel):
    """What a judge of the run was: the entry ``manifest.judges[<judge id>]``."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str
    version: str = "1"
    kind: str
    revision: str | None = None
    """What weights it ran on (hub commit, folder fingerprint, package version)."""
    attributes: dict[str, list[str]] = Field(default_factory=dict)
    """Declared labels per attribute, without ``unknown`` (free text: [])."""
    roles: dict[str, str] = Field(default_factory=dict)
    """Attribute -> role (``t2iaudit.vocabulary``)."""
    maps_to: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Source attribute -> label mapping onto a canonical attribute."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The judge definition (YAML) as validated."""
    calibration: str | None = None
    """The judged calibration set in the run directory (``t2iaudit.calibration``), if any."""

    """What one stage did in its latest run."""

    status: str = "pending"
    """``pending``, ``running``, ``done`` or ``failed``."""
    started: str | None = None
    ended: str | None = None
    new: int = 0
    """Records this run of the stage added."""
    total: int = 0
    """Records present after it."""
    error: str | None = None


class RunManifest(BaseModel):
    """``manifest.json``: everything needed to know what produced a run directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = 1
    """Run-directory format (``FORMAT_VERSION`` for new runs; absent: 1)."""
    run_id: str
    spec: dict[str, Any]
    """The resolved audit spec."""
    spec_path: str | None = None
    created: str
    updated: str
    git: dict[str, Any] = Field(default_factory=dict)
    """``commit`` and ``dirty`` of the t2iaudit checkout, when it is one."""
    packages: dict[str, str] = Field(default_factory=dict)
    """Versions of t2iaudit, torch, diffusers, transformers, open_clip, ..."""
    host: dict[str, Any] = Field(default_factory=dict)
    """Python, platform and accelerator."""
    seed: int = 0
    models: dict[str, ModelRun] = Field(default_factory=dict)
    """Per model id: generator, config hash, model reference, resolved revision, device, dtype."""
    judges: dict[str, JudgeRun] = Field(default_factory=dict)
    """Per judge id: name, version, kind, revision, declared labels per attribute
    (``attributes``), each attribute's role (``roles``) and label mappings (``maps_to``)."""
    not_computed: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Attributes the prompts request or have references for that no judge answers: attribute ->
    ``requested_by``/``referenced_by`` (prompt sets) and the ``metrics`` not computed for it."""
    reference_tables: list[dict[str, Any]] = Field(default_factory=list)
    """Users' reference tables, in precedence order: source, sha256, the run's copy (``path``),
    normalisation and warnings (``t2iaudit.reference_tables``)."""
    stages: dict[str, StageStatus] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    status: str = "running"
