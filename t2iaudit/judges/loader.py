"""Load judge definitions from YAML and build judges from them."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from t2iaudit.errors import InputError, pydantic_field_path, pydantic_message
from t2iaudit.judges.base import Judge, JudgeConfig, JudgeContext
from t2iaudit.judges.registry import JUDGE_KINDS
from t2iaudit.registry import UnknownNameError
from t2iaudit.resources import builtin_dir
from t2iaudit.yamlfile import read_yaml


def judge_yaml_path(name_or_path: str | Path) -> Path:
    """A shipped judge id (``face-age-gender``) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputError(f"judge definition file {str(name_or_path)!r} not found")
        return path
    shipped = builtin_dir("judges") / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    known = ", ".join(shipped_judges())
    raise InputError(f"unknown judge {str(name_or_path)!r} (shipped: {known})")


def shipped_judges() -> list[str]:
    return sorted(p.stem for p in builtin_dir("judges").glob("*.yaml"))


def parse_judge_config(data: object, file: str | Path) -> JudgeConfig:
    """Validate a judge mapping with its kind's config model; errors name file and field."""
    if not isinstance(data, dict):
        raise InputError("a judge definition must be a mapping", file=file)
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise InputError("missing or invalid judge kind", file=file, field="kind")
    try:
        config_model = JUDGE_KINDS.get(kind).config_model
    except UnknownNameError as e:
        raise InputError(str(e), file=file, field="kind") from None
    try:
        return config_model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise InputError(
            pydantic_message(err, config_model), file=file, field=pydantic_field_path(err["loc"])
        ) from None


def load_judge_config(name_or_path: str | Path) -> JudgeConfig:
    """Read and validate one judge YAML (a shipped id or a path)."""
    path = judge_yaml_path(name_or_path)
    return parse_judge_config(read_yaml(path, "judge definition"), path)


def build_judge(config: JudgeConfig, context: JudgeContext) -> Judge:
    """Instantiate the judge a config describes (loads its model).

    Raises:
        InputError: Its weights cannot be loaded, or are a pickle holding more than tensors
            (refused: ``t2iaudit.models.loading``).
    """
    from t2iaudit.models import loading

    model = getattr(config, "model", None)
    with loading(f"judge {config.id!r}" + (f" (model {model})" if model else "")):
        return JUDGE_KINDS.get(config.kind).build(config, context)
