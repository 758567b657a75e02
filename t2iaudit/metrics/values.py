"""``MetricValue`` records the families share: a proportion with its interval."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from t2iaudit.metrics import stats
from t2iaudit.types import MetricValue

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions


def proportion(
    metric: str,
    attribute: str,
    scope: dict[str, str],
    k: int,
    n: int,
    n_unknown: int,
    options: MetricsOptions,
    **params: Any,
) -> MetricValue:
    """A share ``k / n`` with its interval (``options.interval``); None when ``n = 0``.

    ``params`` start with the interval and ``unknown_in_denominator: False``; keyword arguments
    add to them or override them.
    """
    low, high = stats.proportion_interval(k, n, options.interval, options.confidence)
    return MetricValue(
        metric=metric,
        attribute=attribute,
        scope=scope,
        value=k / n if n else None,
        ci_low=float(low) if n else None,
        ci_high=float(high) if n else None,
        n=n,
        n_unknown=n_unknown,
        params={"interval": options.interval, "unknown_in_denominator": False, **params},
    )
