"""``t2iaudit compare``: two groups (models, runs, prompt variants) compared within cells."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from t2iaudit.cli.app import handles_input_errors


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(app: typer.Typer) -> None:
    """Add the ``compare`` command to ``app``."""

    @app.command("compare")
    @handles_input_errors
    def compare_command(
        run_dirs: list[Path] = typer.Argument(..., help="Run directories (several: a 'run' column)."),
        between: str | None = typer.Option(
            None, "--between", help="COL=A,B: the two groups compared (with --report: default runs or models)."
        ),
        attribute: str | None = typer.Option(
            None, "--attribute", help="Attribute compared, e.g. gender (with --report: default all protected)."
        ),
        by: str = typer.Option("", "--by", help="Comma-separated columns defining the cells."),
        drop: str = typer.Option("", "--drop", help="Comma-separated labels left out of the test."),
        include_unknown: bool = typer.Option(
            False, "--include-unknown", help="Test unknown as a category (default: its own unknown-rate row)."
        ),
        fmt: str = typer.Option("jsonl", "--format", help="jsonl | table"),
        report: Path | None = typer.Option(
            None, "--report", help="Write a self-contained HTML comparison (side by side, images) to this file."
        ),
    ) -> None:
        """Compare two groups per cell: counts, proportions, difference with its interval,
        Pearson chi-square, Fisher's exact p when an expected count is below 5, Holm across cells.
        The label test uses valid labels only; the unknown rates are compared in their own row
        (label "(unknown rate)"). See docs/labels.md.

        With --report, writes an HTML report instead: two or more runs side by side (each
        against the first), or the models of one run, sorted by effect size, with the images
        of the prompts that differ most.
        """
        from t2iaudit.errors import InputError
        from t2iaudit.metrics.compare import Between, compare, load_runs, records

        if fmt not in ("jsonl", "table"):
            raise InputError(f"unknown format {fmt!r} (choose jsonl or table)", field="--format")
        if report is not None:
            from t2iaudit.report.compare_report import write_compare_report

            path = write_compare_report(
                run_dirs,
                report,
                between=between,
                attributes=[attribute] if attribute else [],
                by=_split(by),
                drop=_split(drop),
            )
            typer.echo(f"report: {path}")
            return
        if between is None or attribute is None:
            missing = "--between" if between is None else "--attribute"
            raise InputError(f"missing option {missing} (needed unless --report is given)", field=missing)
        groups = Between.parse(between)
        table = load_runs(run_dirs)
        result = compare(table, groups, attribute, by=_split(by), drop=_split(drop), include_unknown=include_unknown)
        if fmt == "jsonl":
            for row in records(result):
                typer.echo(json.dumps(row, ensure_ascii=False, allow_nan=False))
            return
        _print_table(result)


def _print_table(result) -> None:
    """A compact human table: one row per cell and label."""
    from rich.console import Console
    from rich.table import Table

    from t2iaudit.metrics.compare import RESULT_COLUMNS

    keys = [c for c in result.columns if c not in RESULT_COLUMNS]
    first = result.iloc[0] if len(result) else None
    side_a = f"{first['between']}={first['a']}" if first is not None else "a"
    side_b = f"{first['between']}={first['b']}" if first is not None else "b"
    table = Table(*keys, "label", side_a, side_b, "diff [95% CI]", "chi2", "dof", "p", "fisher_p", "p_holm")
    for _, r in result.iterrows():
        diff = "dropped" if r["dropped"] else f"{_fmt(r['diff'])} [{_fmt(r['diff_low'])}, {_fmt(r['diff_high'])}]"
        table.add_row(
            *(_fmt(r[k]) for k in keys),
            str(r["label"]),
            f"{r['count_a']}/{r['n_a']}",
            f"{r['count_b']}/{r['n_b']}",
            diff,
            _fmt(r["chi2"]),
            _fmt(r["dof"]),
            _fmt(r["p_value"]),
            _fmt(r["fisher_p"]),
            _fmt(r["p_holm"]),
        )
    console = Console()
    console.width = max(console.width, 140)
    console.print(table)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    if hasattr(value, "item"):  # numpy scalar
        return _fmt(value.item())
    return str(value)
