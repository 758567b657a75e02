"""The ``t2iaudit`` command line: thin shells over the library, one module per command group.

Heavy libraries (torch, diffusers, transformers, prefect, fastapi) are imported inside the
commands, so ``t2iaudit --help`` stays fast.
"""

from t2iaudit.cli import compare, debias, flows, labels, listing, report, run
from t2iaudit.cli.app import app

for _group in (run, listing, compare, labels, report, debias, flows):
    _group.register(app)

__all__ = ["app"]


def main() -> None:  # pragma: no cover - console entry point
    app()
