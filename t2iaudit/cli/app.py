"""The ``t2iaudit`` app and what every command group shares: errors, progress bars, options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from t2iaudit.errors import InputError, OutputError

app = typer.Typer(
    name="t2iaudit",
    help="Audit text-to-image models for social bias: prompts -> images -> judges -> metrics -> report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


EXIT_INPUT = 2
"""Exit status for bad input (``InputError``)."""
EXIT_OUTPUT = 74
"""Exit status when output cannot be written (``OutputError``: disk full, read-only; ``EX_IOERR``)."""


def handles_input_errors(fn: F) -> F:
    """Bad input -> one clear line on stderr and exit status 2; output that cannot be written
    (disk full, read-only folder) -> one line and exit status 74. No traceback either way."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OutputError as e:
            raise fail(str(e), EXIT_OUTPUT) from None
        except InputError as e:
            raise fail(str(e), EXIT_INPUT) from None

    return wrapper  # type: ignore[return-value]


class RichProgress:
    """A rich progress bar on stderr; silent when stderr is not a terminal or under --quiet."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def start(self, stage: str, total: int) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.finish()
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(stage, total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def progress_bar(quiet: bool) -> RichProgress:
    return RichProgress(enabled=not quiet and sys.stderr.isatty())


QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars.")

RUN_DIR = typer.Argument(..., help="An existing run directory (made by `t2iaudit audit`).")
