"""AuditSpec (what to run, from YAML) and RunManifest (what ran, in the run directory)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from t2iaudit.debias.loop_spec import LoopOptions
from t2iaudit.errors import InputError, pydantic_field_path, pydantic_message
from t2iaudit.flow_options import RegressionOptions, RunnerOptions
from t2iaudit.registry import UnknownNameError
from t2iaudit.report.options import ReportOptions
from t2iaudit.yamlfile import read_yaml


class SpecModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PromptSelection(SpecModel):
    """Which prompts of a prompt set to run."""

    set: str
    """A shipped prompt-set id (``occupations``) or a path to a prompt-set YAML."""
    limit: int | None = Field(None, ge=1)
    """Keep only the first ``limit`` prompts (in expansion order) of the set."""
    templates: list[str] | None = None
    """Keep only these template ids."""


class ModelEntry(SpecModel):
    """One model to audit. ``options`` are the generator's own fields, validated by it."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Short id used in image ids and reports, e.g. ``sd15``."""
    generator: str = "diffusers"
    """Registered generator backend: ``diffusers`` or ``replay``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Backend options (validated against the backend's config model at load time)."""

    def config_hash(self) -> str:
        blob = json.dumps({"generator": self.generator, **self.options}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class AuditSpec(SpecModel):
    """An audit: prompt sets x models x replicates, judged by judges, summarised by metrics."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Audit id; the default run directory is ``outputs/<id>``."""
    description: str = ""
    seed: int = 0
    """Audit seed: each image's seed is derived from it, the model, prompt and replicate."""
    replicates: int = Field(1, ge=1)
    """Images per (model, prompt)."""
    prompts: list[PromptSelection] = Field(min_length=1)
    models: list[ModelEntry] = Field(min_length=1)
    judges: list[str] = Field(default_factory=list)
    """Shipped judge ids or paths to judge YAML files."""
    calibration: dict[str, str] = Field(default_factory=dict)
    """Judge (as named in ``judges``) -> CSV of calibration images (``path``, relative to the
    CSV) and their true labels (one column per attribute). The judge labels these images too,
    and J3 corrects its distributions with the measured confusion matrix."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Options of the metrics stage (``t2iaudit.metrics.compute.MetricsOptions``)."""
    references: list[str] = Field(default_factory=list)
    """Users' own reference tables (CSV: ``prompt_id, attribute, label, share``; see
    ``t2iaudit.reference_tables``). For the prompts and attributes a table lists it takes
    precedence over the prompt set's own reference; a copy and its sha256 go into the run."""
    primary_judges: dict[str, str] = Field(default_factory=dict)
    """Protected attribute -> the judge (as named in ``judges``, or its id) whose labels give
    the attribute's headline number in the report. Unlisted attributes: the judge with a
    calibration set, else the one with the lowest unknown rate."""
    report: ReportOptions = Field(default_factory=ReportOptions)
    """Options of the report (``t2iaudit.report.options.ReportOptions``): when a judge counts
    as trustworthy, how many thumbnails and prompts to show."""
    judge_batch_size: int = Field(16, ge=1)
    """Images decoded and judged together (each judge sees the batch once)."""
    judge_device: str = "auto"
    """Device for judges: ``auto`` (CUDA when available), ``cpu``, ``cuda:0`` ..."""
    model_cache: str | None = None
    """Folder for ``tiny:`` models built on first use (default: ``$T2IAUDIT_CACHE``)."""
    runner: RunnerOptions = Field(default_factory=RunnerOptions)
    """Where the Prefect flow runs shards: threads, or a Dask/Ray cluster (``flows/``; the
    in-process ``t2iaudit audit`` ignores it)."""
    regression: RegressionOptions = Field(default_factory=RegressionOptions)
    """What a scheduled run compares with the previous one, and the optional webhook."""
    debias: LoopOptions | None = None
    """Targets of the closed loop ``t2iaudit debias-audit`` (``t2iaudit.debias.loop_spec``): audit,
    debias the prompts towards them, re-audit with the same seeds. Ignored by ``t2iaudit audit``."""

    def model_ids(self) -> list[str]:
        return [m.id for m in self.models]


def _spec_dir_path(value: str, spec_dir: Path) -> str:
    """Resolve a relative path in a spec against the spec's folder, if it exists there."""
    candidate = spec_dir / value
    return str(candidate.resolve()) if not Path(value).is_absolute() and candidate.exists() else value


def _fail(e: ValidationError, file: Path, prefix: str = "", model: type | None = None) -> InputError:
    err = e.errors()[0]
    return InputError(pydantic_message(err, model), file=file, field=pydantic_field_path(err["loc"], prefix))


def load_spec(path: str | Path) -> AuditSpec:
    """Read, validate and resolve an audit spec; every error names the file and field.

    Relative paths inside the spec (prompt sets, judges, replay folders, local models) are
    resolved against the spec's folder, so a spec runs from any working directory. Model
    options (scheduler names, negative prompts of local pipelines), judges, prompt sets, metric
    options (each family's own) and the label vocabulary (``t2iaudit.coverage``: a requested
    value or reference label a judge can neither output nor map is an error; an attribute no
    judge answers is a warning) are validated here, before any output is written.
    """
    from t2iaudit.generators.registry import GENERATORS
    from t2iaudit.judges.loader import load_judge_config
    from t2iaudit.promptsets import load_prompt_set

    path = Path(path)
    data = read_yaml(path, "audit spec")
    if not isinstance(data, dict):
        raise InputError("an audit spec must be a mapping", file=path)
    models = data.get("models")
    if isinstance(models, list):  # flat YAML entries -> ModelEntry(id, generator, options)
        data = dict(data)
        data["models"] = [
            {k: m[k] for k in ("id", "generator") if k in m}
            | {"options": {k: v for k, v in m.items() if k not in ("id", "generator")}}
            if isinstance(m, dict)
            else m
            for m in models
        ]
    try:
        spec = AuditSpec.model_validate(data)
    except ValidationError as e:
        raise _fail(e, path, model=AuditSpec) from None

    spec_dir = path.resolve().parent
    cache = spec.model_cache
    if cache is not None:
        cache = str((spec_dir / os.path.expanduser(cache)).resolve())
    resolved_models = []
    for i, m in enumerate(spec.models):
        try:
            backend = GENERATORS.get(m.generator)
        except UnknownNameError as e:
            raise InputError(str(e), file=path, field=f"models[{i}].generator") from None
        options = backend.resolve_paths(dict(m.options), spec_dir)
        try:
            config = backend.config_model.model_validate(options)
        except ValidationError as e:
            raise _fail(e, path, f"models[{i}]", backend.config_model) from None
        if backend.check is not None:
            try:
                backend.check(config, Path(cache) if cache else None)
            except InputError as e:
                if e.file is not None:  # the backend's own input file at fault (e.g. a replay mapping row)
                    raise
                raise InputError(e.message, file=path, field=f"models[{i}].{e.field}") from None
        resolved_models.append(m.model_copy(update={"options": options}))
    ids = spec.model_ids()
    for i, model_id in enumerate(ids):
        if model_id in ids[:i]:
            message = (
                f"model id {model_id!r} is used twice (first by models[{ids.index(model_id)}]); ids must be unique"
            )
            raise InputError(message, file=path, field=f"models[{i}].id")

    prompts = []
    for i, sel in enumerate(spec.prompts):
        try:
            ps = load_prompt_set(_spec_dir_path(sel.set, spec_dir))
        except InputError as e:
            if e.file is None:
                raise InputError(e.message, file=path, field=f"prompts[{i}].set") from None
            raise
        if sel.templates:
            unknown = set(sel.templates) - {t.id for t in ps.templates}
            if unknown:
                raise InputError(
                    f"unknown template(s) {sorted(unknown)} in prompt set {ps.id!r}",
                    file=path,
                    field=f"prompts[{i}].templates",
                )
        prompts.append(sel.model_copy(update={"set": _spec_dir_path(sel.set, spec_dir)}))

    judges = []
    configs = []
    for i, name in enumerate(spec.judges):
        judge_path = _spec_dir_path(name, spec_dir)
        try:
            configs.append(load_judge_config(judge_path))
        except InputError as e:
            if e.file is None:
                raise InputError(e.message, file=path, field=f"judges[{i}]") from None
            raise
        judges.append(judge_path)
    primary = _primary_judges(spec, configs, path)

    from t2iaudit.calibration import calibration_images, load_calibration

    calibration = {}
    for name, csv_path in spec.calibration.items():
        judge = _spec_dir_path(name, spec_dir)
        if judge not in judges:
            raise InputError(f"judge {name!r} is not in this spec's judges", file=path, field=f"calibration.{name}")
        calibration[judge] = _spec_dir_path(csv_path, spec_dir)
        calibration_images(load_calibration(calibration[judge]))  # errors name the CSV, row and column

    from t2iaudit.metrics.compute import MetricsOptions

    try:
        MetricsOptions.model_validate(spec.metrics)
    except ValidationError as e:
        raise _fail(e, path, "metrics", MetricsOptions) from None

    resolved = spec.model_copy(
        update={
            "models": resolved_models,
            "prompts": prompts,
            "judges": judges,
            "calibration": calibration,
            "model_cache": cache,
            "primary_judges": primary,
        }
    )
    from t2iaudit.coverage import spec_coverage

    spec_coverage(resolved, path, warn=True)  # refuses values no judge can give; warns on the rest
    if spec.references:
        from t2iaudit.reference_tables import spec_tables

        resolved = resolved.model_copy(update={"references": [_spec_dir_path(r, spec_dir) for r in spec.references]})
        spec_tables(resolved)  # errors name the table, row and column
    if resolved.debias is not None:
        from t2iaudit.debias.loop_spec import check_loop_options

        resolved = resolved.model_copy(update={"debias": check_loop_options(resolved, path)})
    return resolved


def _primary_judges(spec: AuditSpec, configs: list[Any], path: Path) -> dict[str, str]:
    """``primary_judges`` with each judge named by its id, checked against the spec's judges."""
    out = {}
    for attribute, name in spec.primary_judges.items():
        found = [c for written, c in zip(spec.judges, configs) if name in (written, c.id, c.judge_id())]
        if not found:
            known = ", ".join(c.id for c in configs) or "none"
            raise InputError(
                f"judge {name!r} is not one of this spec's judges ({known})",
                file=path,
                field=f"primary_judges.{attribute}",
            )
        declared = getattr(found[0], "declared_labels", None)
        if callable(declared) and attribute not in declared():  # judges that can list their labels without weights
            raise InputError(
                f"judge {found[0].id!r} does not answer attribute {attribute!r}",
                file=path,
                field=f"primary_judges.{attribute}",
            )
        out[attribute] = found[0].id
    return out
