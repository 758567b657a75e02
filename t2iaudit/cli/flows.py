"""Commands that need the Prefect flows (the ``flows`` extra): ``schedule``.

``flows`` is imported inside the command, so ``t2iaudit --help`` and every other command run
without Prefect installed.
"""

from __future__ import annotations

from pathlib import Path

import typer

from t2iaudit.cli.app import fail, handles_input_errors


def schedule(
    spec: Path = typer.Argument(..., help="Audit spec YAML to run on the schedule."),
    cron: str = typer.Option(..., "--cron", help="Cron expression, e.g. '0 3 * * 1' (Mondays 03:00)."),
    name: str | None = typer.Option(None, "--name", help="Deployment name (default: <spec id>-scheduled)."),
    outputs: Path = typer.Option(
        Path("outputs"), "--outputs", help="Where runs go: <outputs>/<spec id>/<start time>/."
    ),
    timezone: str | None = typer.Option(
        None, "--timezone", help="IANA time zone of the cron expression (default UTC)."
    ),
) -> None:
    """Serve the audit flow on a cron schedule until interrupted (Ctrl-C).

    Each run gets its own run directory, is skipped when nothing changed since the last finished
    run, and is otherwise compared with it (regression artifact, optional webhook). Runs use the
    Prefect API at $PREFECT_API_URL, or Prefect's embedded server (SQLite) when it is unset;
    trigger one now with `prefect deployment run 'audit/<name>'`. See docs/flows.md.
    """
    try:
        from flows.schedule import serve_spec
    except ImportError as e:
        raise fail(f"scheduling needs the flows extra: pip install 't2iaudit[flows]' ({e})") from None
    serve_spec(spec, cron, name, outputs, timezone)


def register(app: typer.Typer) -> None:
    """Add ``schedule`` to ``app``."""
    app.command("schedule")(handles_input_errors(schedule))
