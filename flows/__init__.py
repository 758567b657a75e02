"""Prefect flows over t2iaudit's stages: the audit flow, scheduled runs and regression alerts.

Needs the ``flows`` extra (``pip install 't2iaudit[flows]'``). The library (``t2iaudit``)
never imports Prefect; the flows are thin orchestration over ``t2iaudit.stages``:

- ``flows.audit``: the ``audit`` flow and ``python flows/audit.py SPEC --out DIR``;
- ``flows.stages``: generation and judging shards mapped over a task runner, committed by the
  flow (the one writer of the run directory) as they finish;
- ``flows.runners``, ``flows.gpu``: threads, Dask or Ray; GPU placement and per-machine caps;
- ``flows.history``, ``flows.regression``, ``flows.alerts``, ``flows.artifacts``: scheduled
  runs, what changed since the last one, regression alerts (artifacts and a webhook);
- ``flows.schedule``: ``t2iaudit schedule SPEC --cron EXPR``.

See docs/flows.md.
"""
