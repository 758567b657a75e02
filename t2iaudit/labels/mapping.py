"""Label maps of ``import-labels``: raw annotation values -> declared labels, abstentions, or an error.

How a raw value of one attribute becomes a label (first rule that applies):

1. an exact entry of the label map (``--map gender:F=female``, case-insensitive);
2. a common abstention word or an empty cell (``t2iaudit.vocabulary.ABSTENTIONS``: unknown,
   unclear, n/a, none, no person, can't tell, ...) -> ``unknown``, counted per raw value;
3. a prefix entry (``--map gender:f*=female``, the longest prefix wins);
4. a declared label spelled the same, ignoring case: for attributes of the vocabulary
   (``gender``, ``age``, ``race``, ``race_fairface``, ``skin_tone``, ``person_count``, ...) the
   canonical labels, else the ``--labels`` given or the map's targets;
5. for a free-form custom attribute (no map, no ``--labels``) the raw value itself.

Anything else is *unmapped*: the import stops and lists the values with the ``--map`` options
that would fix them. A map entry whose label is ``unknown`` marks that raw value as an
abstention.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from t2iaudit.errors import InputError
from t2iaudit.types import UNKNOWN
from t2iaudit.vocabulary import canonical_labels, is_abstention, match_canonical

LabelMap = dict[str, list[tuple[str, str]]]
"""Attribute -> [(raw pattern, label)]; a pattern ending in ``*`` is a prefix wildcard."""


def parse_map_options(options: list[str]) -> LabelMap:
    """``["gender:f*=female", ...]`` -> label map (``--map attribute:raw=label``)."""
    out: LabelMap = {}
    for opt in options:
        attribute, sep, rest = opt.partition(":")
        raw, eq, label = rest.partition("=")
        if not sep or not eq or not attribute.strip() or not label.strip():
            raise InputError(f"{opt!r} is not of the form attribute:raw=label", field="--map")
        out.setdefault(attribute.strip(), []).append((raw.strip(), label.strip()))
    return out


def parse_labels_options(options: list[str]) -> dict[str, list[str]]:
    """``["hair=short,long"]`` -> ``{"hair": ["short", "long"]}`` (``--labels ATTR=L1,L2``)."""
    out: dict[str, list[str]] = {}
    for opt in options:
        attribute, eq, rest = opt.partition("=")
        labels = [x.strip() for x in rest.split(",") if x.strip()]
        if not eq or not attribute.strip() or len(labels) < 2:
            raise InputError(f"{opt!r} is not of the form ATTR=LABEL1,LABEL2[,...]", field="--labels")
        if len(set(labels)) != len(labels) or UNKNOWN in labels:
            raise InputError(f"{opt!r}: labels must be distinct and not {UNKNOWN!r}", field="--labels")
        out[attribute.strip()] = labels
    return out


def load_label_map(path: str | Path) -> LabelMap:
    """A YAML label map: ``{attribute: {raw: label, ...}, ...}``."""
    from t2iaudit.yamlfile import read_yaml

    path = Path(path)
    data = read_yaml(path, "label map")
    if not isinstance(data, dict):
        raise InputError("expected a mapping attribute -> {raw value: label}", file=path)
    out: LabelMap = {}
    for attribute, entries in data.items():
        if not isinstance(entries, dict):
            raise InputError("expected a mapping raw value -> label", file=path, field=str(attribute))
        for raw, label in entries.items():
            if not isinstance(label, (str, int, float, bool)) or not str(label).strip():
                raise InputError("label must be a non-empty string", file=path, field=f"{attribute}.{raw}")
            out.setdefault(str(attribute), []).append((str(raw).strip(), str(label).strip()))
    return out


def merge_maps(*maps: LabelMap) -> LabelMap:
    """Entries of earlier maps take precedence over later ones (``--map`` over ``--label-map``)."""
    out: LabelMap = {}
    for m in maps:
        for attribute, entries in m.items():
            out.setdefault(attribute, []).extend(entries)
    return out


@dataclass
class Mapper:
    """Turns one attribute's raw values into labels (see the module docstring).

    Raises:
        InputError: A map entry or ``--labels`` outside the attribute's canonical vocabulary.
    """

    attribute: str
    entries: list[tuple[str, str]] = field(default_factory=list)
    given: list[str] | None = None
    """Labels from ``--labels`` (custom attributes only)."""
    declared: list[str] | None = field(init=False)
    """The declared labels; None for a free-form attribute (declared = observed values)."""
    exact: dict[str, str] = field(init=False)
    prefixes: list[tuple[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.exact, self.prefixes = {}, []
        if canonical_labels(self.attribute) is not None:  # --map gender:F=Female means female
            self.entries = [
                (raw, label if label == UNKNOWN else match_canonical(self.attribute, label) or label)
                for raw, label in self.entries
            ]
        for raw, label in self.entries:
            if raw.endswith("*"):
                self.prefixes.append((raw[:-1].casefold(), label))
            else:
                self.exact.setdefault(raw.casefold(), label)
        self.prefixes.sort(key=lambda p: -len(p[0]))  # stable: earlier entry wins a tie
        targets = [t for t in dict.fromkeys(label for _, label in self.entries) if t != UNKNOWN]
        canonical = canonical_labels(self.attribute)
        if canonical is not None:
            if self.given is not None:
                raise InputError(
                    f"{self.attribute!r} has a canonical vocabulary {list(canonical)}; "
                    "--labels is for custom attributes",
                    field="--labels",
                )
            bad = [t for t in targets if t not in canonical]
            if bad:
                raise InputError(
                    f"{self.attribute!r} takes its canonical labels {list(canonical)} (or unknown), not {bad[0]!r}; "
                    "import another scheme under its own column name (see docs/labels.md)",
                    field="--map",
                )
            self.declared = list(canonical)
        elif self.given is not None:
            bad = [t for t in targets if t not in self.given]
            if bad:
                raise InputError(f"--map target {bad[0]!r} is not among --labels {self.given}", field="--map")
            self.declared = list(self.given)
        else:
            self.declared = targets or None

    def __call__(self, raw: str) -> tuple[str | None, bool]:
        """``(label, abstained)``: the label (``unknown`` for an abstention), None when unmapped."""
        key = raw.strip().casefold()
        if key in self.exact:
            label = self.exact[key]
            return label, label == UNKNOWN
        if is_abstention(raw, self.attribute):
            return UNKNOWN, True
        for prefix, label in self.prefixes:
            if key.startswith(prefix):
                return label, label == UNKNOWN
        if canonical_labels(self.attribute) is not None:
            return match_canonical(self.attribute, raw), False
        if self.declared is None:
            return raw.strip(), False
        return next((x for x in self.declared if x.casefold() == key), None), False


def unmapped_error(
    file: Path, unmapped: dict[str, dict[str, tuple[int, str]]], mappers: dict[str, Mapper]
) -> InputError:
    """One error listing every unmapped value and the ``--map`` options that would fix it."""
    parts, options = [], []
    for attribute, values in unmapped.items():
        choices = "|".join([*(mappers[attribute].declared or []), UNKNOWN])
        shown = [f"{raw!r} ({n} row{'s' * (n > 1)}, first at {where})" for raw, (n, where) in list(values.items())[:10]]
        more = f" and {len(values) - 10} more" if len(values) > 10 else ""
        parts.append(f"{attribute}: {', '.join(shown)}{more}")
        options += [f"--map '{attribute}:{raw}=<{choices}>'" for raw in list(values)[:10]]
    return InputError(
        f"values that are no label: {'; '.join(parts)}. Map each to a label or to unknown: {' '.join(options)}",
        file=file,
        field=f"column {next(iter(unmapped))}",
    )


def observed_labels(values: Iterable[str]) -> list[str]:
    """The declared set of a free-form attribute: its distinct values, sorted."""
    return sorted(set(values) - {UNKNOWN})
