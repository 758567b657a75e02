"""Build a run directory from a CSV or JSONL file of labels (human annotations, another tool).

The result is an ordinary run directory (prompts, images, judgements, manifest), so every
metric, comparison and report works on imported labels. Format:

- required columns ``image_id``, ``model_id``, ``prompt_id`` (any order; a UTF-8 BOM is fine);
- attribute columns, one per attribute, holding the labels. Attribute columns are told apart
  from metadata explicitly: the ``attributes`` given (``--attribute gender``), or, when none
  are given, every column the label map or ``--labels`` names plus every column in
  ``KNOWN_ATTRIBUTES`` (``gender``, ``race``, ``age``, ``skin_tone``, ... and their
  ``.left``/``.right`` forms);
- optional columns with a fixed meaning (``RESERVED``): ``replicate``, ``seed``, ``prompt_text``
  (or ``prompt``/``text``), ``set_id``, ``template_id``, ``expected_people``, ``reference``,
  ``image_path`` (or ``path``: relative to the file's folder, never leading out of it),
  ``requested_<attr>`` and ``slot_<name>``;
- every other column is prompt metadata (``Prompt.meta``: metrics can group on it; e.g.
  ``fixed_<attr>`` marks context-fixed attributes for H6). It must have one value per prompt.

Raw label values become labels as ``t2iaudit.labels.mapping`` describes: attributes of the
vocabulary (``gender``, ``age``, ``race``, ``race_fairface``, ``skin_tone``, ``person_count``,
...) take their canonical labels (matched ignoring case); common abstention words ("unclear",
"n/a", "no person", "can't tell", ...) and empty cells become ``unknown`` and are counted
(``ImportSummary.abstentions``, ``empty``); a custom attribute takes ``--labels``, the map's
targets, or (free-form) the values observed. A value that is none of these stops the import,
listing the values and the ``--map`` options that fix them. The judge id is
``import:<judge name>`` (``--judge``; default the file name), so files labelled by the same
annotators get one judge id and ``compare`` pairs them. Nothing is written until the whole
file has been validated, and the run directory is written under a temporary name and renamed
into place.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2iaudit.errors import InputError
from t2iaudit.labels.files import Row, read_rows
from t2iaudit.labels.mapping import (  # noqa: F401 - the label-map API, re-exported
    LabelMap,
    Mapper,
    load_label_map,
    merge_maps,
    observed_labels,
    parse_labels_options,
    parse_map_options,
    unmapped_error,
)
from t2iaudit.types import UNKNOWN, ImageRecord, Judgement, Prompt
from t2iaudit.vocabulary import resolve_attributes

REQUIRED = ("image_id", "model_id", "prompt_id")
KNOWN_ATTRIBUTES = (
    "gender",
    "race",
    "race_fairface",
    "ethnicity",
    "age",
    "skin_tone",
    "person",
    "person_count",
    "face_count",
    "emotion",
    "religion",
    "disability",
    "body_type",
)
TEXT_COLUMNS = ("prompt_text", "prompt", "text")
PATH_COLUMNS = ("image_path", "path")
RESERVED = (
    *REQUIRED,
    "replicate",
    "seed",
    *TEXT_COLUMNS,
    "set_id",
    "template_id",
    "expected_people",
    "reference",
    *PATH_COLUMNS,
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_JUDGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


@dataclass
class ImportSummary:
    """What an import did: counts, declared labels and the values that fell to ``unknown``."""

    out: str
    judge_id: str
    images: int
    prompts: int
    models: list[str]
    attributes: dict[str, list[str]]
    """Declared labels per attribute."""
    label_counts: dict[str, dict[str, int]]
    abstentions: dict[str, dict[str, int]]
    """Per attribute: raw abstention value ("unclear", "n/a", a ``--map ...=unknown`` value) ->
    how many cells had it (imported as ``unknown``)."""
    empty: dict[str, int]
    """Per attribute: empty cells (imported as ``unknown``)."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def _meta_value(value: Any, from_csv: bool) -> str | float | int | bool | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not from_csv:
        return value
    text = str(value).strip()
    for cast in (int, float):
        try:
            number = cast(text)
        except ValueError:
            continue
        if str(number) == text:  # "2" -> 2, "0.5" -> 0.5, but "007" and "1e3" stay text
            return number
    return text


def _choose_attributes(columns: list[str], attributes: list[str] | None, label_map: LabelMap, file: Path) -> list[str]:
    unknown_mapped = [a for a in label_map if a not in columns]
    if unknown_mapped:
        raise InputError(
            f"the label map names attribute {unknown_mapped[0]!r} but the file has no such column "
            f"(columns: {', '.join(columns)})",
            file=file,
        )
    if attributes:
        missing = [a for a in attributes if a not in columns]
        if missing:
            raise InputError(
                f"no column for attribute {missing[0]!r} (columns: {', '.join(columns)})",
                file=file,
                field=f"column {missing[0]}",
            )
        return list(dict.fromkeys(attributes))
    known = set(KNOWN_ATTRIBUTES)
    chosen = [c for c in columns if c in label_map or c in known or c.split(".", 1)[0] in known]
    if not chosen:
        raise InputError(
            "no attribute column: name them with --attribute NAME (known without it: "
            f"{', '.join(KNOWN_ATTRIBUTES)}); columns are {', '.join(columns)}",
            file=file,
        )
    return chosen


def _int(row: Row, column: str, file: Path, default: int | None) -> int | None:
    text = _text(row.values.get(column))
    if not text:
        return default
    try:
        number = float(text)
        if number.is_integer():
            return int(number)
    except ValueError:
        pass
    raise InputError(f"{text!r} is not an integer", file=file, field=f"{row.where}, column {column}")


def import_labels(
    file: str | Path,
    out: str | Path,
    *,
    label_map: LabelMap | None = None,
    attributes: list[str] | None = None,
    judge: str | None = None,
    labels: dict[str, list[str]] | None = None,
    references: list[Path] | None = None,
) -> ImportSummary:
    """Validate ``file`` completely, then write the run directory ``out`` (see module docstring).

    Args:
        file: CSV, TSV or JSONL of labels.
        out: The run directory to create.
        label_map: Raw value -> label entries per attribute (``--map``, ``--label-map``).
        attributes: Attribute columns (default: mapped and known attribute columns).
        judge: Judge name (``--judge``): the judge id is ``import:<judge>``; default the file name.
        labels: Declared labels of custom attributes (``--labels ATTR=L1,L2``).
        references: Reference tables (``--reference``), validated against the imported prompts
            and label sets (``t2iaudit.reference_tables``).

    Raises:
        InputError: Bad file (naming the file, row and column), values that are no label, or an
            ``out`` that already holds a run; nothing is written then.
    """
    file, out = Path(file), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("already exists and is not empty; choose a new run directory", file=out)
    label_map, labels = label_map or {}, labels or {}
    columns, rows, from_csv = read_rows(file, REQUIRED)
    if stray := [a for a in labels if a not in columns]:
        raise InputError(f"--labels names {stray[0]!r} but the file has no such column", file=file, field="--labels")
    attrs = _choose_attributes(columns, attributes, {**dict.fromkeys(labels, []), **label_map}, file)
    mappers = {a: Mapper(a, label_map.get(a, []), labels.get(a)) for a in attrs}
    judge_id = f"import:{_judge_name(judge) if judge is not None else file.name}"
    text_col = next((c for c in TEXT_COLUMNS if c in columns), None)
    path_col = next((c for c in PATH_COLUMNS if c in columns), None)
    meta_cols = [
        c for c in columns if c not in RESERVED and c not in attrs and not c.startswith(("requested_", "slot_"))
    ]

    seen: dict[str, str] = {}
    replicas: Counter[tuple[str, str]] = Counter()
    prompts: dict[str, tuple[str, dict[str, Any]]] = {}
    images: list[ImageRecord] = []
    judgements: list[Judgement] = []
    abstained: dict[str, Counter[str]] = {a: Counter() for a in attrs}
    unmapped: dict[str, dict[str, tuple[int, str]]] = {}
    empty: Counter[str] = Counter()
    for row in rows:
        ids = {c: _text(row.values.get(c)) for c in REQUIRED}
        for c, v in ids.items():
            if not v:
                raise InputError("empty value", file=file, field=f"{row.where}, column {c}")
        if ids["image_id"] in seen:
            raise InputError(
                f"duplicate image id {ids['image_id']!r} (first at {seen[ids['image_id']]})",
                file=file,
                field=f"{row.where}, column image_id",
            )
        seen[ids["image_id"]] = row.where
        model, prompt_id = ids["model_id"], ids["prompt_id"]
        replicate = _int(row, "replicate", file, None)
        if replicate is None:
            replicate = replicas[(model, prompt_id)]
        replicas[(model, prompt_id)] += 1
        fields: dict[str, Any] = {
            "text": _text(row.values.get(text_col)) or prompt_id if text_col else prompt_id,
            "set_id": _text(row.values.get("set_id")) or "import",
            "template_id": _text(row.values.get("template_id")) or "import",
            "expected_people": _int(row, "expected_people", file, 1),
            "reference": _text(row.values.get("reference")) or None,
            "requested": {},
            "slots": {},
            "meta": {c: _meta_value(row.values.get(c), from_csv) for c in meta_cols},
        }
        for c in columns:
            value = _text(row.values.get(c))
            if c.startswith("requested_") and value:
                attribute = c.removeprefix("requested_")
                fields["requested"][attribute] = _requested(mappers.get(attribute), attribute, value, file, row, c)
            elif c.startswith("slot_") and value:
                fields["slots"][c.removeprefix("slot_")] = value
        _check_prompt(prompts, prompt_id, fields, row, file)
        images.append(
            ImageRecord(
                image_id=ids["image_id"],
                model_id=model,
                prompt_id=prompt_id,
                replicate=replicate,
                seed=_int(row, "seed", file, None),
                params={"imported_from": file.name},
                path=_image_path(row, path_col, file) if path_col else "",
                sha256="",
                width=0,
                height=0,
            )
        )
        for a in attrs:
            raw_value = row.values.get(a)
            raw = _text(raw_value)
            if not raw:
                label: str | None = UNKNOWN
                empty[a] += 1
            else:
                label, abstention = mappers[a](raw)
                if abstention:
                    abstained[a][raw] += 1
                if label is None:
                    n, where = unmapped.setdefault(a, {}).get(raw, (0, row.where))
                    unmapped[a][raw] = (n + 1, where)
                    continue
            judgements.append(
                Judgement(image_id=ids["image_id"], judge_id=judge_id, attribute=a, label=label, raw=raw_value)
            )
    if unmapped:
        raise unmapped_error(file, unmapped, mappers)
    label_sets = {
        a: mappers[a].declared or observed_labels(j.label for j in judgements if j.attribute == a) for a in attrs
    }
    summary = ImportSummary(
        out=str(out),
        judge_id=judge_id,
        images=len(images),
        prompts=len(prompts),
        models=sorted({im.model_id for im in images}),
        attributes=label_sets,
        label_counts={a: dict(Counter(j.label for j in judgements if j.attribute == a)) for a in attrs},
        abstentions={a: dict(c.most_common()) for a, c in abstained.items() if c},
        empty={a: empty[a] for a in attrs},
    )
    prompt_records = [Prompt(prompt_id=pid, **f) for pid, (_, f) in prompts.items()]
    from t2iaudit.reference_tables import attribute_label_sets, read_reference_table

    sets = attribute_label_sets({judge_id: label_sets})
    tables = [read_reference_table(r, list(prompts), sets) for r in references or []]
    _write_run(out, file, prompt_records, images, judgements, summary, label_map, judge, tables)
    return summary


def _image_path(row: Row, column: str, file: Path) -> str:
    """The row's image path as written: relative to the label file's folder and inside it
    (``t2iaudit.paths``); empty when the cell is."""
    from t2iaudit.paths import inside

    value = _text(row.values.get(column))
    if value:
        inside(file.resolve().parent, value, file=file, field=f"{row.where}, column {column}")
    return value


def _judge_name(name: str) -> str:
    name = name.strip()
    if not _JUDGE.match(name):
        raise InputError(f"{name!r}: a judge name is letters, digits and . _ - @ (no spaces)", field="--judge")
    return name


def _requested(mapper: Mapper | None, attribute: str, value: str, file: Path, row: Row, column: str) -> str:
    """A prompt's requested value, in the attribute's labels (canonical for vocabulary attributes)."""
    mapper = mapper or Mapper(attribute)
    label, _ = mapper(value)
    if label is None or label == UNKNOWN:
        message = f"requested value {value!r} is not a label of {attribute!r} ({mapper.declared or []})"
        raise InputError(message, file=file, field=f"{row.where}, column {column}")
    return label


def _check_prompt(
    prompts: dict[str, tuple[str, dict[str, Any]]], prompt_id: str, fields: dict[str, Any], row: Row, file: Path
) -> None:
    if prompt_id not in prompts:
        prompts[prompt_id] = (row.where, fields)
        return
    first_where, first = prompts[prompt_id]
    flat = {
        **{k: v for k, v in fields.items() if k not in ("requested", "slots", "meta")},
        **{f"requested_{k}": v for k, v in fields["requested"].items()},
        **{f"slot_{k}": v for k, v in fields["slots"].items()},
        **fields["meta"],
    }
    known = {
        **{k: v for k, v in first.items() if k not in ("requested", "slots", "meta")},
        **{f"requested_{k}": v for k, v in first["requested"].items()},
        **{f"slot_{k}": v for k, v in first["slots"].items()},
        **first["meta"],
    }
    for key in sorted(set(flat) | set(known)):
        if flat.get(key) != known.get(key):
            column = {"text": "prompt_text"}.get(key, key)
            raise InputError(
                f"prompt {prompt_id!r} has {flat.get(key)!r} here but {known.get(key)!r} at {first_where}; "
                "prompt columns must have one value per prompt",
                file=file,
                field=f"{row.where}, column {column}",
            )


def _spec_id(value: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", value).strip("-._") or "import"
    return clean if _ID.match(clean) else f"m-{clean}"


def _write_run(
    out: Path,
    file: Path,
    prompts: list[Prompt],
    images: list[ImageRecord],
    judgements: list[Judgement],
    summary: ImportSummary,
    label_map: LabelMap,
    judge: str | None,
    tables: list[Any],
) -> None:
    from t2iaudit.run import provenance
    from t2iaudit.run.imported import write_imported_run
    from t2iaudit.run.lifecycle import new_manifest
    from t2iaudit.run.manifest import StageStatus
    from t2iaudit.spec import AuditSpec

    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    try:
        info = resolve_attributes(summary.attributes)
    except ValueError as e:
        raise InputError(str(e), file=file) from None
    spec = AuditSpec(
        id=_spec_id(out.name),
        description=f"labels imported from {file.name}",
        prompts=[{"set": f"import:{file.name}"}],
        models=[{"id": _spec_id(m), "generator": "replay", "options": {}} for m in summary.models],
    )
    ts = provenance.now()
    counts = {"prompts": len(prompts), "images": len(images), "judgements": len(judgements)}
    manifest = new_manifest(
        out.name,
        spec,
        models={m: {"generator": "import", "source": file.name, "spec_id": _spec_id(m)} for m in summary.models},
        judges={
            summary.judge_id: {
                "name": judge or "import",
                "version": "1",
                "kind": "import",
                "revision": digest[:12],
                "source": str(file),
                "sha256": digest,
                "attributes": summary.attributes,
                **info.manifest(),
                "label_map": {a: [list(e) for e in v] for a, v in label_map.items()},
                "abstentions": summary.abstentions,
                "empty": summary.empty,
            }
        },
        stages={"import": StageStatus(status="done", started=ts, ended=ts, new=len(judgements), total=len(judgements))},
        counts=counts,
        status="done",
    )
    write_imported_run(out, manifest, prompts, images, judgements, tables)
