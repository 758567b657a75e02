"""Serve the audit flow on a cron schedule: ``t2iaudit schedule SPEC --cron EXPR [--name N]``.

``flow.serve`` registers a deployment of the ``audit`` flow with the API (the embedded SQLite
one by default, or the server ``PREFECT_API_URL`` names) and runs its scheduled and triggered
runs in subprocesses of this process, one at a time (``limit=1``: one audit per GPU machine).
Each run is a scheduled run: its own directory under ``outputs``, skipped when nothing
changed, compared with the previous one. The deployment's entrypoint is the module
``flows.audit``, so runs find it wherever t2iaudit is installed.
"""

from __future__ import annotations

from pathlib import Path

from t2iaudit.errors import InputError


def deployment_name(spec_id: str, name: str | None) -> str:
    return name or f"{spec_id}-scheduled"


def check_cron(cron: str, timezone: str | None = None) -> None:
    """Raises InputError naming ``--cron`` (or ``--timezone``) when Prefect would refuse it."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron, timezone=timezone)
    except (ValidationError, ValueError) as e:
        field = "--timezone" if timezone and "timezone" in str(e).lower() else "--cron"
        raise InputError(f"not a valid schedule: {cron!r} ({str(e).splitlines()[-1].strip()})", field=field) from None


def serve_spec(
    spec: str | Path, cron: str, name: str | None = None, outputs: str | Path = "outputs", timezone: str | None = None
) -> None:
    """Serve scheduled audits of ``spec`` until interrupted (validates spec and cron first)."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.audit import audit
    from t2iaudit.spec import load_spec

    spec_path = Path(spec).resolve()
    loaded = load_spec(spec_path)
    check_cron(cron, timezone)
    audit.serve(
        name=deployment_name(loaded.id, name),
        schedules=[Cron(cron, timezone=timezone)],
        parameters={"spec": str(spec_path), "outputs": str(Path(outputs).resolve())},
        description=f"Scheduled audit {loaded.id} ({spec_path})",
        tags=["t2iaudit", loaded.id],
        limit=1,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
