"""``python -m t2iaudit.cli``: the same as the ``t2iaudit`` command."""

from t2iaudit.cli import app

app()
