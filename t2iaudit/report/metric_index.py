"""``MetricIndex``: the rows of ``metrics.jsonl`` grouped by metric, with simple selection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

Row = dict[str, Any]
"""One ``metrics.jsonl`` line as read (``metric``, ``attribute``, ``scope``, ``value``, ...)."""


def is_aggregate(row: Row) -> bool:
    """A value pooled over prompts (no ``prompt_id`` or ``image_id`` in its scope)."""
    scope = row.get("scope") or {}
    return "prompt_id" not in scope and "image_id" not in scope


class MetricIndex:
    """Metric values of a run, selectable by metric, attribute, scope and params.

    The report only reads what the metrics stage wrote; a metric that is absent simply
    selects nothing, so every section can ask for metrics that a run may not have.
    """

    def __init__(self, rows: Iterable[Row]) -> None:
        self._by_metric: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            self._by_metric[str(row.get("metric"))].append(row)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_metric.values())

    def names(self) -> list[str]:
        """Metrics present, sorted."""
        return sorted(self._by_metric)

    def has(self, metric: str) -> bool:
        return bool(self._by_metric.get(metric))

    def rows(
        self,
        metric: str,
        attribute: str | None = None,
        *,
        keys: set[str] | None = None,
        params: dict[str, Any] | None = None,
        **scope: str,
    ) -> list[Row]:
        """Rows of ``metric`` matching every filter given.

        Args:
            metric: Metric name.
            attribute: Keep this attribute only.
            keys: Keep rows whose scope has exactly these keys (e.g. ``{"model_id",
                "judge_id"}`` for aggregates, add ``"prompt_id"`` for per-prompt values).
            params: Keep rows whose params have these values.
            **scope: Keep rows whose scope has these values.
        """
        out = []
        for row in self._by_metric.get(metric, ()):
            if attribute is not None and row.get("attribute") != attribute:
                continue
            s = row.get("scope") or {}
            if keys is not None and set(s) != keys:
                continue
            if any(s.get(k) != v for k, v in scope.items()):
                continue
            p = row.get("params") or {}
            if params and any(p.get(k) != v for k, v in params.items()):
                continue
            out.append(row)
        return out

    def one(self, metric: str, attribute: str | None = None, **kwargs: Any) -> Row | None:
        """The first matching row (see ``rows``), or None."""
        found = self.rows(metric, attribute, **kwargs)
        return found[0] if found else None

    def group(self, metric: str, key: Callable[[Row], Hashable | None]) -> dict[Hashable, list[Row]]:
        """Rows of ``metric`` grouped by ``key(row)`` (rows whose key is None are left out).

        One pass over the metric's rows, for sections that look values up per prompt.
        """
        out: dict[Hashable, list[Row]] = defaultdict(list)
        for row in self._by_metric.get(metric, ()):
            k = key(row)
            if k is not None:
                out[k].append(row)
        return dict(out)
