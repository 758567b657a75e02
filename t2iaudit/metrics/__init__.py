"""Metrics: pure functions over the judgement table (see ../shared/METRICS.md for definitions).

Import the pieces from their modules (``t2iaudit.metrics.compute``, ``.stats``, ...); this
package module stays empty so ``import t2iaudit`` does not pull in pandas or scipy.
"""
