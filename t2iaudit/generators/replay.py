"""Generator backend for images made elsewhere (closed models): a folder plus a CSV.

The CSV maps image files to prompts. Columns: ``file`` (path relative to ``folder``), and
``prompt_id`` or ``prompt`` (the exact prompt text); optional ``replicate`` (default: order of
appearance within the prompt). Files are stored byte for byte (content-addressed).

Everything is checked when the spec loads, before anything is written: the folder and the CSV
exist, every ``file`` stays inside ``folder`` (no absolute path, ``..`` or symbolic link out of
it: ``t2iaudit.paths``) and is an image file PIL recognises (its header is read, not its
pixels; a file damaged past its header is reported when it is read, naming the file).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.errors import InputError
from t2iaudit.generators.base import GeneratedImage, GenerationRequest, GeneratorKind
from t2iaudit.paths import inside
from t2iaudit.types import Prompt


class ReplayConfig(BaseModel):
    """Options of a ``generator: replay`` model entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folder: str
    """Folder holding the image files."""
    mapping: str
    """CSV file mapping image files to prompts (see module docstring)."""
    batch_size: int = Field(16, ge=1)


class ReplayGenerator:
    """Reads the images listed in the mapping CSV instead of generating them."""

    seeded = False

    def __init__(self, config: ReplayConfig) -> None:
        self.config = config
        self.batch_size = config.batch_size
        self.folder = Path(config.folder)
        self.mapping = Path(config.mapping)
        self.params: dict[str, Any] = {"replay": True}
        check_replay(config)
        self._files = self._read_mapping()

    def _read_mapping(self) -> dict[tuple[str, str, int], tuple[str, int]]:
        """``(column, key, replicate) -> (file, CSV row)``; column is ``prompt_id`` or ``prompt``."""
        path = self.mapping
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
        except FileNotFoundError:
            raise InputError("replay mapping CSV not found", file=path) from None
        except UnicodeDecodeError as e:
            raise InputError(f"not UTF-8 text (byte {e.start})", file=path) from None
        except csv.Error as e:
            raise InputError(f"malformed CSV ({e})", file=path) from None
        if not rows:
            raise InputError("replay mapping CSV has no rows", file=path)
        if "file" not in rows[0] or not ({"prompt_id", "prompt"} & set(rows[0])):
            raise InputError("needs columns 'file' and 'prompt_id' (or 'prompt')", file=path, field="header")
        files: dict[tuple[str, str, int], tuple[str, int]] = {}
        seen: dict[tuple[str, str], int] = {}
        for i, row in enumerate(rows, start=2):
            where = f"row {i}, column file"
            image = inside(self.folder, row["file"] or "", file=path, field=where)
            if not image.is_file():
                raise InputError(f"image file {row['file']!r} not found in {self.folder}", file=path, field=where)
            _check_image(image, path, where)
            column = "prompt_id" if row.get("prompt_id") else "prompt"
            key = (column, row.get(column) or "")
            rep_text = (row.get("replicate") or "").strip()
            if rep_text and not rep_text.isdigit():
                message = f"replicate {rep_text!r} is not a whole number >= 0"
                raise InputError(message, file=path, field=f"row {i}, column replicate")
            rep = int(rep_text) if rep_text else seen.get(key, 0)
            seen[key] = max(seen.get(key, 0), rep + 1)
            if (*key, rep) in files:
                raise InputError(f"second image for {key[1]!r} replicate {rep}", file=path, field=f"row {i}")
            files[(*key, rep)] = (row["file"], i)
        return files

    def plan(self, prompts: list[Prompt], replicates: int) -> list[tuple[Prompt, int]]:
        """The (prompt, replicate) pairs of the mapping; every row must match a prompt of the audit."""
        by = {"prompt_id": {p.prompt_id: p for p in prompts}, "prompt": {p.text: p for p in prompts}}
        plan = []
        for (column, key, rep), (_, row) in self._files.items():
            prompt = by[column].get(key)
            if prompt is None:
                raise InputError(
                    f"{key!r} matches no prompt of the audit", file=self.mapping, field=f"row {row}, column {column}"
                )
            plan.append((prompt, rep))
        if len(set((p.prompt_id, r) for p, r in plan)) != len(plan):
            raise InputError("a prompt is mapped twice (by id and by text) for one replicate", file=self.mapping)
        return plan

    def _file(self, prompt: Prompt, replicate: int) -> Path:
        hit = (
            self._files.get(("prompt_id", prompt.prompt_id, replicate))
            or self._files[("prompt", prompt.text, replicate)]
        )
        return self.folder / hit[0]

    def generate(self, requests: list[GenerationRequest]) -> list[GeneratedImage]:
        out = []
        for r in requests:
            path = self._file(r.prompt, r.replicate)
            out.append(
                GeneratedImage(data=path.read_bytes(), suffix=path.suffix.lower(), params={"source_file": str(path)})
            )
        return out

    def describe(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "mapping": str(self.mapping), "revision": "replay"}

    def close(self) -> None:
        pass


def _check_image(image: Path, mapping: Path, where: str) -> None:
    """An image file PIL recognises (the header only: cheap enough for every file of a folder)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            im.size  # noqa: B018 - parsing the header is the check
    except (UnidentifiedImageError, OSError, ValueError) as e:
        reason = "not an image file" if isinstance(e, UnidentifiedImageError) else f"unreadable image ({e})"
        raise InputError(f"{image.name}: {reason}", file=mapping, field=where) from None


def check_replay(config: ReplayConfig, model_cache: Path | None = None) -> None:
    """The folder and the mapping CSV exist (``load_spec`` names the spec's field otherwise)."""
    if not Path(config.folder).is_dir():
        raise InputError(f"replay folder {config.folder!r} not found", field="folder")
    if not Path(config.mapping).is_file():
        raise InputError(f"replay mapping CSV {config.mapping!r} not found", field="mapping")


def check_replay_inputs(config: ReplayConfig, model_cache: Path | None = None) -> None:
    """Everything ``load_spec`` can check before anything is written: folder, mapping, files."""
    ReplayGenerator(config)


def plan_replay(config: ReplayConfig, prompts: list[Prompt], replicates: int) -> list[tuple[Prompt, int]]:
    """Validate the folder and mapping against the audit's prompts; the images to read."""
    return ReplayGenerator(config).plan(prompts, replicates)


def build_replay(config: ReplayConfig, model_id: str, model_cache: Path | None) -> ReplayGenerator:
    return ReplayGenerator(config)


KIND = GeneratorKind(ReplayConfig, build_replay, ("folder", "mapping"), plan_replay, check_replay_inputs, runs_on="cpu")
"""The ``replay`` backend (registered in ``t2iaudit.generators.registry``)."""
