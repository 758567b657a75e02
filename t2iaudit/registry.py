"""One registry type for every extension point: generators, judge kinds, metric families, tiny models.

An entry is an object, or a lazy ``"package.module:attribute"`` reference imported on first use,
so registering costs nothing and ``import t2iaudit`` stays light. Each registry is defined and
filled in one module (``t2iaudit.generators.registry``, ``t2iaudit.judges.registry``,
``t2iaudit.metrics.catalog``, ``t2iaudit.tiny``). Other installed packages add entries through
Python entry points (``[project.entry-points."t2iaudit.generators"]`` in their
``pyproject.toml``: ``name = "their_package.module:KIND"``), loaded the first time the registry
is asked for a name it does not have or for its names; a built-in name is never replaced.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

T = TypeVar("T")
log = logging.getLogger("t2iaudit")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message suggests close names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class Lazy:
    """A ``"package.module:attribute"`` reference, imported when first used."""

    target: str

    def load(self) -> object:
        module, _, attr = self.target.partition(":")
        obj: object = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class Registry(Generic[T]):
    """Maps short names to objects or lazy references, with "did you mean" on unknown names.

    Args:
        kind: What the entries are, for messages ("generator", "judge kind", ...).
        entry_points: Entry-point group other packages register under (None: no plugins).
    """

    def __init__(self, kind: str, entry_points: str | None = None) -> None:
        self.kind = kind
        self.group = entry_points
        self._items: dict[str, T | Lazy] = {}
        self._plugins_loaded = entry_points is None

    def register(self, name: str, item: T) -> T:
        """Register ``item`` under ``name`` (a name can be registered once)."""
        self._add(name, item)
        return item

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:attribute"``, imported when ``name`` is first looked up."""
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: lazy target {target!r} is not 'module:attribute'")
        self._add(name, Lazy(target))

    def _add(self, name: str, item: T | Lazy) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=cast(str, self.group)):
            if ep.name in self._items:
                log.warning(f"{self.kind} {ep.name!r} from entry point {ep.value!r} ignored: the name is taken")
                continue
            self._items[ep.name] = Lazy(ep.value)

    def get(self, name: str) -> T:
        """The entry under ``name`` (imported if lazy), or UnknownNameError with a suggestion."""
        if name not in self._items:
            self._load_plugins()
        try:
            item = self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(self._items))
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {known})") from None
        if isinstance(item, Lazy):
            loaded = cast(T, item.load())
            self._items[name] = loaded
            return loaded
        return item

    def names(self) -> list[str]:
        """Every registered name, plugins included, sorted."""
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
