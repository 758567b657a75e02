"""Writing a run directory from records made elsewhere (imported labels), all or nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from t2iaudit.fileio import output_errors, umask
from t2iaudit.run.manifest import RunManifest
from t2iaudit.run.store import RunStore
from t2iaudit.types import ImageRecord, Judgement, Prompt


def write_imported_run(
    out: Path,
    manifest: RunManifest,
    prompts: list[Prompt],
    images: list[ImageRecord],
    judgements: list[Judgement],
    tables: list[Any],
) -> None:
    """Write the run directory ``out`` under a temporary name and rename it into place, so a
    failure leaves no half-written run (an empty existing directory is replaced)."""
    with output_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp.chmod(0o777 & ~umask())  # mkdtemp makes it private; a run directory is an ordinary folder
        store = RunStore(tmp)
        store.write_prompts(prompts)
        store.append_images(images)
        store.append_judgements(judgements)
        if tables:
            from t2iaudit.run.references import store_tables

            manifest = manifest.model_copy(update={"reference_tables": store_tables(tmp, tables)})
        store.write_manifest(manifest)
        with output_errors(out):
            os.replace(tmp, out)  # an empty existing directory is replaced too
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
