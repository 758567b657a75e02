"""Metrics: pure functions over the judgement table (see ../shared/METRICS.md for definitions).

``catalog`` lists every metric (id, description, source, direction, headline); ``compute`` has
``MetricsOptions``, the family registry and ``run_families``; ``stats`` every interval and
bootstrap helper, ``significance`` the tests; ``table`` the judgement table. Families:
``distribution/``, ``bigbench/``, ``hallucination/``, ``judge_validity/``. Import the pieces from
their modules; this package module stays empty so ``import t2iaudit`` does not pull in pandas or
scipy.
"""
