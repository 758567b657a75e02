"""Load prompt sets (``prompts/*.yaml``), expand them into `Prompt` records, resolve references.

A prompt set is data only; unknown keys are errors::

    id: occupations                 # [a-z0-9-]; a shipped set's id is its file name
    version: "1"                    # change it when templates or slots change
    source: BIGbench (Luo et al. 2024, arXiv:2407.15240), ...   # provenance, with citation
    description: ...                # optional
    expected_people: 1              # default for the templates (0: objects, 2: two people)
    templates:
      - id: photo                   # [a-z0-9-], unique within the set
        text: "a photo of one {occupation}"             # {slot} placeholders
        reference: "bigbench/occupation/{occupation}"   # optional reference key
        requested: {gender: "{gender}"}                 # optional: attributes the text states
        expected_people: 1          # optional override
        meta: {word_list: ...}      # optional, copied into every prompt's meta
    slots:
      occupation:
        - Dancer                    # a plain string: text and label are the same
        - {text: "an older", label: older, meta: {weight: 2}}

A slot value's ``text`` goes into the prompt text; its ``label`` (default: the text) goes into
``Prompt.slots``, ``requested``, ``reference`` and the prompt id, so articles and phrasing stay
out of labels. Its ``meta`` joins the template's in ``Prompt.meta`` (a key set twice is an error).
A template expands to the cartesian product of the slots its text uses: slots in order of first
use, values in file order, the last slot varying fastest. Prompt ids are
``<set>/<template>/<label slugs joined by "-">`` (``<set>/<template>`` without slots). Every
declared slot must be used by some template.

Reference tables are JSON files in ``prompts/references/`` with provenance (``source``,
``license``, ``commit``, ``notes``), ``labels`` and ``distributions``: ``{key: {attribute:
{label: probability}}}``. A key's first segment names its table (``bigbench/occupation/Dancer``).
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import functools
import itertools
import json
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, NamedTuple, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from t2iaudit.errors import InputError, pydantic_field_path
from t2iaudit.resources import builtin_dir
from t2iaudit.types import Prompt
from t2iaudit.yamlfile import read_yaml

ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_SLOT_NAME = re.compile(r"[a-z_][a-z0-9_]*")
MetaValue = str | bool | int | float | None
Distributions = dict[str, dict[str, dict[str, float]]]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlotValue(_Data):
    """One value of a slot: a plain string in YAML, or a mapping with a label and meta."""

    text: str = Field(min_length=1)
    """Inserted into the prompt text, e.g. ``an older``."""
    label: str | None = None
    """Short name for ``Prompt.slots``, ``requested``, ``reference`` and the id (default: text)."""
    meta: dict[str, MetaValue] = Field(default_factory=dict)
    """Copied into the meta of every prompt that uses this value."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        plain = isinstance(data, str | int | float) and not isinstance(data, bool)
        return {"text": str(data)} if plain else data  # `- 1990` is a plain value too

    @property
    def key(self) -> str:
        """The label, or the text when there is no label."""
        return self.text if self.label is None else self.label


class Template(_Data):
    """One prompt template of a set."""

    id: str = Field(pattern=ID_PATTERN)
    """Unique within the set; the middle part of its prompt ids."""
    text: str = Field(min_length=1)
    """Prompt text with ``{slot}`` placeholders."""
    requested: dict[str, str] = Field(default_factory=dict)
    """Attribute -> label the prompt states; may use ``{slot}`` (filled with the slot's label)."""
    expected_people: int | None = Field(default=None, ge=0)
    """Overrides the set's ``expected_people``."""
    reference: str | None = None
    """Reference key template, e.g. ``bigbench/occupation/{occupation}``."""
    meta: dict[str, MetaValue] = Field(default_factory=dict)


class PromptSet(_Data):
    """A versioned, sourced set of prompt templates and the slot values that fill them."""

    id: str = Field(pattern=ID_PATTERN)
    """The first part of its prompt ids; a shipped set's file is ``prompts/<id>.yaml``."""
    version: str = Field(min_length=1)
    """Changes whenever templates or slots change (recorded in every `Prompt`)."""
    source: str = Field(min_length=1)
    """Where the prompts come from, with a citation."""
    description: str = ""
    expected_people: int = Field(default=1, ge=0)
    templates: list[Template] = Field(min_length=1)
    slots: dict[str, Annotated[list[SlotValue], Field(min_length=1)]] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # `version: 1` in YAML is an int; versions are compared as text.
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class PromptSetInfo(NamedTuple):
    """One row of `list_prompt_sets`."""

    id: str
    version: str
    n_prompts: int
    source: str


def load_prompt_set(name_or_path: str | Path) -> PromptSet:
    """Load and check a prompt set: a shipped id (``occupations``) or a path to a YAML file.

    Raises:
        InputError: Unknown set, bad YAML, unknown keys, undeclared or unused slots, colliding
            prompt ids; the error names the file and the field (``templates[2].text``).
    """
    path = _prompt_set_path(name_or_path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:  # a set is read by the spec check, the plan and the stages: parse it once
        while len(_LOADED) >= 32:  # an edited file has a new key; drop the oldest
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = _load(path)
    return _LOADED[key]


_LOADED: dict[tuple[str, int, int], PromptSet] = {}
"""Prompt sets loaded by this process, by (resolved path, modification time, size); they are frozen."""


def _load(path: Path) -> PromptSet:
    data = read_yaml(path, "prompt set")
    if not isinstance(data, dict):
        _fail("a prompt set must be a mapping (id, version, source, ...)", path)
    try:
        prompt_set = PromptSet.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        unknown = err["type"] == "extra_forbidden"
        msg = f"unknown key {err['loc'][-1]!r}" if unknown else err["msg"]
        raise InputError(msg, file=path, field=pydantic_field_path(err["loc"])) from None
    _expand_all(prompt_set, path)  # run every check now, not mid-audit
    return prompt_set


def expand_prompt_set(
    prompt_set: PromptSet, *, select: str | Sequence[str] | None = None, limit: int | None = None
) -> list[Prompt]:
    """Expand every template of a set into prompts, in a deterministic order.

    Args:
        prompt_set: The set, from `load_prompt_set`.
        select: ``fnmatch`` patterns over prompt ids (``occupations/photo/*nurse*``); keep the
            prompts that match any. A pattern that matches nothing is an error (a likely typo).
        limit: Keep the first ``limit`` prompts (after ``select``).
    """
    prompts = _expand_all(prompt_set, None)
    if select is not None:
        patterns = [select] if isinstance(select, str) else list(select)
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(p.prompt_id, pattern) for p in prompts):
                _fail(f"{pattern!r} matches no prompt id of set {prompt_set.id!r}", None, "select")
        prompts = [p for p in prompts if any(fnmatch.fnmatchcase(p.prompt_id, x) for x in patterns)]
    if limit is not None:
        if limit < 0:
            _fail(f"must be >= 0, got {limit}", None, "limit")
        prompts = prompts[:limit]
    return prompts


def expand_selections(selections: Sequence[Any]) -> list[Prompt]:
    """The prompts of a spec's selections (``set``, ``templates``, ``limit``), in order, ids unique."""
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for sel in selections:
        chosen = [
            p
            for p in expand_prompt_set(load_prompt_set(sel.set))
            if not sel.templates or p.template_id in sel.templates
        ]
        for p in chosen[: sel.limit]:
            if p.prompt_id not in seen:
                seen.add(p.prompt_id)
                prompts.append(p)
    return prompts


def list_prompt_sets() -> list[PromptSetInfo]:
    """The shipped prompt sets, by file name: id, version, number of prompts, source."""
    infos = []
    for path in sorted(builtin_dir("prompts").glob("*.yaml")):
        ps = load_prompt_set(path)
        infos.append(PromptSetInfo(ps.id, ps.version, len(expand_prompt_set(ps)), ps.source))
    return infos


def load_references(name: str | Path = "bigbench") -> Distributions:
    """Reference distributions ``{key: {attribute: {label: probability}}}`` of one table.

    Args:
        name: A shipped table (``bigbench`` is ``prompts/references/bigbench.json``) or a path
            to a JSON file of the same form.
    """
    return copy.deepcopy(_distributions(str(name)))


def reference_file(name: str | Path) -> dict[str, Any]:
    """The whole JSON of a reference file: provenance, ``labels``, ``distributions``, ``pairs``."""
    return copy.deepcopy(_reference_data(str(name)))


def resolve_reference(
    key: str, references: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
) -> dict[str, dict[str, float]]:
    """The distributions ``{attribute: {label: probability}}`` for a prompt's ``reference`` key.

    Args:
        key: E.g. ``bigbench/occupation/Dancer``; its first segment names the shipped table.
        references: Look the key up here instead (a user-given table).
    """
    table = _distributions(key.split("/", 1)[0]) if references is None else references
    if key not in table:
        close = difflib.get_close_matches(key, list(table), n=1)
        _fail(f"no reference distribution {key!r}{_hint(close)}", None, "reference")
    return {attribute: dict(dist) for attribute, dist in table[key].items()}


def _fail(message: str, file: Path | None, field: str | None = None) -> NoReturn:
    raise InputError(message, file=file, field=field)


def _hint(close: list[str]) -> str:
    return f"; did you mean {close[0]!r}?" if close else ""


def _prompt_set_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            _fail(f"prompt set file {str(name_or_path)!r} not found", None)
        return path
    shipped = builtin_dir("prompts") / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in builtin_dir("prompts").glob("*.yaml"))
    close = _hint(difflib.get_close_matches(str(name_or_path), known, n=1))
    _fail(f"unknown prompt set {str(name_or_path)!r}{close} (shipped: {', '.join(known)})", None)


def _placeholders(text: str, file: Path | None, field: str) -> list[str]:
    """Slot names used in ``text``, in order of first use."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as e:
        msg = f"bad placeholder: {e} (write {{{{ or }}}} for a literal brace)"
        raise InputError(msg, file=file, field=field) from None
    names: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is not None and (not _SLOT_NAME.fullmatch(name) or spec or conversion):
            _fail(f"placeholder {{{name}}} must be a plain slot name like {{occupation}}", file, field)
        if name is not None and name not in names:
            names.append(name)
    return names


def _check_template(prompt_set: PromptSet, i: int, file: Path | None) -> list[str]:
    """Check one template against the declared slots; return the slots its text uses."""
    template, where = prompt_set.templates[i], f"templates[{i}]"
    if any(t.id == template.id for t in prompt_set.templates[:i]):
        _fail(f"duplicate template id {template.id!r}", file, f"{where}.id")
    names = _placeholders(template.text, file, f"{where}.text")
    for name in names:
        if name not in prompt_set.slots:
            declared = ", ".join(prompt_set.slots) or "none"
            _fail(f"unknown slot {{{name}}} (declared: {declared})", file, f"{where}.text")
    keyed = [(f"{where}.reference", template.reference)]
    keyed += [(f"{where}.requested.{k}", v) for k, v in template.requested.items()]
    for field, value in keyed:
        for name in _placeholders(value or "", file, field):
            if name not in names:
                _fail(f"slot {{{name}}} is not used in the template's text", file, field)
    owner = dict.fromkeys(template.meta, f"{where}.meta")
    for name in names:
        for j, slot_value in enumerate(prompt_set.slots[name]):
            for key in slot_value.meta:
                first = owner.setdefault(key, f"slots.{name}")
                if first != f"slots.{name}":
                    msg = f"meta key {key!r} is also set by {first} (both used in {where})"
                    _fail(msg, file, f"slots.{name}[{j}].meta.{key}")
    return names


def _expand_all(prompt_set: PromptSet, file: Path | None) -> list[Prompt]:
    made_by: dict[str, int] = {}
    used: set[str] = set()
    prompts: list[Prompt] = []
    for i, template in enumerate(prompt_set.templates):
        names = _check_template(prompt_set, i, file)
        used.update(names)
        people = template.expected_people
        for combo in itertools.product(*(prompt_set.slots[n] for n in names)):
            labels = {n: v.key for n, v in zip(names, combo, strict=True)}
            texts = {n: v.text for n, v in zip(names, combo, strict=True)}
            slugs = [re.sub(r"[^a-z0-9]+", "-", x.lower()).strip("-") for x in labels.values()]
            if not all(slugs):
                _fail(f"a slot label in {labels} has no letter or digit", file, f"templates[{i}]")
            prompt_id = "/".join([prompt_set.id, template.id, *(["-".join(slugs)] if slugs else [])])
            if prompt_id in made_by:
                msg = f"prompt id {prompt_id!r} is also made by templates[{made_by[prompt_id]}]"
                _fail(f"{msg}: give the slot values distinct labels", file, f"templates[{i}]")
            made_by[prompt_id] = i
            meta = dict(template.meta)
            for value in combo:
                meta.update(value.meta)
            prompts.append(
                Prompt(
                    prompt_id=prompt_id,
                    set_id=prompt_set.id,
                    set_version=prompt_set.version,
                    template_id=template.id,
                    text=template.text.format(**texts),
                    slots=labels,
                    requested={k: v.format(**labels) for k, v in template.requested.items()},
                    expected_people=prompt_set.expected_people if people is None else people,
                    reference=template.reference.format(**labels) if template.reference else None,
                    meta=meta,
                )
            )
    for name in prompt_set.slots:  # a used slot's name was checked as a placeholder
        if name not in used:
            _fail(f"slot {name!r} is used by no template", file, f"slots.{name}")
    return prompts


def _distributions(name: str) -> Distributions:
    data = _reference_data(name)
    if not isinstance(data.get("distributions"), dict):
        _fail("no 'distributions' mapping", _reference_path(name), "distributions")
    return data["distributions"]


def _reference_path(name: str) -> Path:
    if name.endswith(".json") or "/" in name or "\\" in name:
        return Path(name)
    return builtin_dir("prompts") / "references" / f"{name}.json"


def _reference_data(name: str) -> dict[str, Any]:
    path = _reference_path(name)
    if not path.is_file():
        known = sorted(p.stem for p in (builtin_dir("prompts") / "references").glob("*.json"))
        _fail(f"unknown reference table {name!r} (shipped: {', '.join(known)})", None)
    if path.parent == builtin_dir("prompts") / "references":
        return _read_shipped_reference(path)
    return _read_reference(path)  # a user's file may change between calls: no cache


def _read_reference(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}"
        raise InputError(f"not valid JSON: {e.msg}", file=path, field=where) from None
    if not isinstance(data, dict):
        _fail("a reference file must be a JSON object", path)
    return data


_read_shipped_reference = functools.cache(_read_reference)
