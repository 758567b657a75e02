"""Users' own per-prompt reference tables: a CSV of ``prompt_id, attribute, label, share``.

A reference table says, for the prompts it lists, what distribution of an attribute the audit
should be compared with (labour statistics for occupations, disease epidemiology for medical
prompts, the training data's distribution for an amplification analysis). For each (prompt,
attribute) the shares are normalised over the labels listed (``scale`` records the total it was
divided by); labels of the attribute's label set that are not listed get share 0. A total not
within 1% of 1 or of 100 is normalised too, with a warning. For the (prompt, attribute) pairs
it lists, a table takes precedence over the prompt set's own reference; later tables over
earlier ones.

Errors name the file, the row (the header is row 1) and the column, and are raised before
anything is written: an unknown prompt id, an attribute without a label set, a label outside
the attribute's label set, a share that is not a number or is negative, a repeated label, a
(prompt, attribute) whose shares sum to zero.

A run keeps a copy of each table (``references/<sha256[:12]>.csv``) and the manifest records its
sha256, source path, normalisation and warnings (``RunManifest.reference_tables``), so the run
directory alone recomputes the same metrics.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2iaudit.errors import InputError
from t2iaudit.labels.files import read_rows

COLUMNS = ("prompt_id", "attribute", "label", "share")
FOLDER = "references"
"""Folder of a run directory holding the copies of its reference tables."""
log = logging.getLogger("t2iaudit")


@dataclass(frozen=True)
class ReferenceTable:
    """A validated, normalised reference table."""

    file: str
    sha256: str
    distributions: dict[str, dict[str, dict[str, float]]]
    """prompt id -> attribute -> label -> share (sums to 1 over the attribute's label set)."""
    normalisation: list[dict[str, Any]] = field(default_factory=list)
    """Per (prompt, attribute): the listed total and the scale it was divided by."""
    warnings: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Prefix of the reference keys this table's distributions get (``ref-<sha256[:12]>``)."""
        return f"ref-{self.sha256[:12]}"

    def manifest_entry(self, stored: str) -> dict[str, Any]:
        return {
            "source": self.file,
            "sha256": self.sha256,
            "path": stored,
            "prompts": len(self.distributions),
            "normalisation": self.normalisation,
            "warnings": self.warnings,
        }


def _number(text: Any, file: Path, where: str) -> float:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        raise InputError(f"share {text!r} is not a number", file=file, field=f"{where}, column share") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InputError(f"share {text!r} is not a finite number", file=file, field=f"{where}, column share")
    if value < 0:
        raise InputError(f"share {value:g} is negative", file=file, field=f"{where}, column share")
    return value


def _hint(value: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def read_reference_table(
    path: str | Path, prompt_ids: Collection[str], label_sets: Mapping[str, Sequence[str]]
) -> ReferenceTable:
    """Read and validate a reference table against the audit's prompts and label sets.

    Args:
        path: The CSV (or TSV, JSONL) file.
        prompt_ids: Prompt ids of the audit or run; every row must name one of them.
        label_sets: Attribute -> its declared labels (canonical vocabularies and users' own
            schemes); every row's attribute and label must be declared here.

    Raises:
        InputError: Naming file, row and column (see the module docstring).
    """
    path = Path(path)
    _, rows, _ = read_rows(path, COLUMNS)
    known_prompts = set(prompt_ids)
    listed: dict[tuple[str, str], dict[str, float]] = {}
    first_row: dict[tuple[str, str], str] = {}
    for row in rows:
        values = {c: str(row.values.get(c) or "").strip() for c in COLUMNS}
        for column in COLUMNS:
            if not values[column]:
                raise InputError("empty value", file=path, field=f"{row.where}, column {column}")
        prompt, attribute, label = values["prompt_id"], values["attribute"], values["label"]
        if prompt not in known_prompts:
            raise InputError(
                f"unknown prompt id {prompt!r}{_hint(prompt, known_prompts)}",
                file=path,
                field=f"{row.where}, column prompt_id",
            )
        if attribute not in label_sets:
            raise InputError(
                f"attribute {attribute!r} has no label set here (known: {', '.join(sorted(label_sets))})"
                f"{_hint(attribute, label_sets)}",
                file=path,
                field=f"{row.where}, column attribute",
            )
        declared = list(label_sets[attribute])
        if label not in declared:
            raise InputError(
                f"label {label!r} is not in the label set of {attribute!r} ({', '.join(declared)}){_hint(label, declared)}",
                file=path,
                field=f"{row.where}, column label",
            )
        share = _number(values["share"], path, row.where)
        cell = listed.setdefault((prompt, attribute), {})
        first_row.setdefault((prompt, attribute), row.where)
        if label in cell:
            raise InputError(
                f"label {label!r} of prompt {prompt!r}, attribute {attribute!r} is listed twice",
                file=path,
                field=f"{row.where}, column label",
            )
        cell[label] = share
    distributions: dict[str, dict[str, dict[str, float]]] = {}
    normalisation: list[dict[str, Any]] = []
    warnings: list[str] = []
    for (prompt, attribute), shares in listed.items():
        total = sum(shares.values())
        if total <= 0:
            raise InputError(
                f"the shares of prompt {prompt!r}, attribute {attribute!r} sum to 0",
                file=path,
                field=f"{first_row[prompt, attribute]}, column share",
            )
        scale = "fraction" if abs(total - 1.0) <= 0.01 else "percent" if abs(total - 100.0) <= 1.0 else "other"
        if scale == "other":
            warning = (
                f"{path}: shares of prompt {prompt!r}, attribute {attribute!r} sum to {total:g}, "
                "not 1 or 100 (within 1%); normalised to 1"
            )
            warnings.append(warning)
            log.warning(warning)
        normalisation.append({"prompt_id": prompt, "attribute": attribute, "total": total, "scale": scale})
        distributions.setdefault(prompt, {})[attribute] = {
            label: shares.get(label, 0.0) / total for label in label_sets[attribute]
        }
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ReferenceTable(str(path), digest, distributions, normalisation, warnings)


def apply_tables(
    tables: Sequence[ReferenceTable],
    prompt_refs: Mapping[str, str | None],
    references: dict[str, dict[str, dict[str, float]]],
) -> dict[str, str]:
    """Give every prompt a table lists a reference key whose distributions merge the prompt set's
    own reference with the tables' (later tables win, per attribute).

    Args:
        tables: Reference tables in order of precedence (last wins).
        prompt_refs: Prompt id -> its current reference key (or None).
        references: The reference distributions by key; new keys are added to it.

    Returns:
        Prompt id -> its new reference key, for the prompts the tables list.
    """
    out: dict[str, str] = {}
    for table in tables:
        for prompt, attrs in table.distributions.items():
            current = out.get(prompt) or prompt_refs.get(prompt)
            merged = {a: dict(d) for a, d in (references.get(current or "") or {}).items()}
            merged.update({a: dict(d) for a, d in attrs.items()})
            key = f"{table.key}/{prompt}"
            references[key] = merged
            out[prompt] = key
    return out


def attribute_label_sets(judge_label_sets: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, list[str]]:
    """Attribute -> the labels a reference of it may use.

    Protected attributes of the vocabulary (gender, age, skin tone, both race schemes) always
    have their canonical labels, so one table serves many audits; any other attribute a judge
    declares (a user's own scheme) has the labels the judges declare for it, in order.
    """
    from t2iaudit.vocabulary import VOCABULARIES, canonical_labels

    out = {a: list(v.labels) for a, v in VOCABULARIES.items() if v.role == "protected" and v.labels}
    for attrs in judge_label_sets.values():
        for attr, labels in attrs.items():
            canonical = canonical_labels(attr)
            if canonical is not None:
                out[attr] = list(canonical)
            elif labels and list(labels) != ["value"]:
                known = out.setdefault(attr, [])
                known.extend(x for x in labels if x not in known)
    return out


def spec_tables(spec: Any) -> list[ReferenceTable]:
    """The reference tables of a resolved ``AuditSpec``, validated against its prompts and judges."""
    from t2iaudit.judges.loader import load_judge_config
    from t2iaudit.promptsets import expand_selections

    prompt_ids = [p.prompt_id for p in expand_selections(spec.prompts)]
    declared = {name: load_judge_config(name).declared_labels() for name in spec.judges}
    return [read_reference_table(path, prompt_ids, attribute_label_sets(declared)) for path in spec.references]


def run_tables(
    manifest: Mapping[str, Any], prompt_ids: Collection[str], files: Sequence[str | Path]
) -> list[ReferenceTable]:
    """Validate tables against an existing run (its prompts and its judges' declared labels)."""
    judges = manifest.get("judges") or {}
    declared = {jid: dict(info.get("attributes") or {}) for jid, info in judges.items()}
    return [read_reference_table(path, prompt_ids, attribute_label_sets(declared)) for path in files]
