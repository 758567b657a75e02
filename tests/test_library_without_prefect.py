"""The library never imports Prefect: only ``flows/`` and the CLI's ``schedule`` command do."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import importlib, pkgutil, sys
import t2iaudit
names = sorted(m.name for m in pkgutil.walk_packages(t2iaudit.__path__, "t2iaudit."))
names = [n for n in names if n != "t2iaudit.cli" and not n.startswith("t2iaudit.cli.")]
for name in names:
    importlib.import_module(name)
print(len(names), sorted(m for m in sys.modules if m == "prefect" or m.startswith("prefect.")))
"""


def test_every_library_module_imports_without_prefect():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    count, loaded = done.stdout.strip().split(" ", 1)
    assert int(count) > 100  # every module of the package, not an empty walk
    assert loaded == "[]"


def test_the_cli_imports_flows_only_inside_its_commands():
    probe = "import sys, t2iaudit.cli; print(any(m == 'prefect' or m.startswith(('prefect.', 'flows')) for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "False"
