"""Generator backend for images made elsewhere (closed models): a folder plus a CSV.

The CSV maps image files to prompts. Columns: ``file`` (path relative to ``folder``), and
``prompt_id`` or ``prompt`` (the exact prompt text); optional ``replicate`` (default: order of
appearance within the prompt). Files are stored byte for byte (content-addressed).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.errors import InputError
from t2iaudit.generators.base import GeneratedImage, GenerationRequest
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
    """Reads images listed in the mapping CSV instead of generating them."""

    def __init__(self, config: ReplayConfig) -> None:
        self.config = config
        self.batch_size = config.batch_size
        self.folder = Path(config.folder)
        self.params: dict[str, Any] = {"replay": True}
        if not self.folder.is_dir():
            raise InputError("replay folder not found", file=self.folder, field="folder")
        self._rows = self._read_mapping(Path(config.mapping))

    def _read_mapping(self, path: Path) -> list[dict[str, str]]:
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
        except FileNotFoundError:
            raise InputError("replay mapping CSV not found", file=path) from None
        except UnicodeDecodeError as e:
            raise InputError(f"not UTF-8 text ({e})", file=path) from None
        if not rows:
            raise InputError("replay mapping CSV has no rows", file=path)
        cols = set(rows[0])
        if "file" not in cols or not ({"prompt_id", "prompt"} & cols):
            raise InputError("needs columns 'file' and 'prompt_id' (or 'prompt')", file=path, field="header")
        for i, row in enumerate(rows, start=2):
            if not (self.folder / row["file"]).is_file():
                raise InputError(
                    f"image file {row['file']!r} not found in {self.folder}", file=path, field=f"row {i}, column file"
                )
        self._mapping_path = path
        return rows

    def plan(self, prompts: list[Prompt], replicates: int) -> list[tuple[Prompt, int]]:
        by_id = {p.prompt_id: p for p in prompts}
        by_text = {p.text: p for p in prompts}
        seen: dict[str, int] = {}
        self._files: dict[tuple[str, int], str] = {}
        plan = []
        for i, row in enumerate(self._rows, start=2):
            key = row.get("prompt_id") or ""
            prompt = by_id.get(key) if key else by_text.get(row.get("prompt", ""))
            if prompt is None:
                col = "prompt_id" if key else "prompt"
                raise InputError(
                    f"{row.get(col)!r} matches no prompt of the audit",
                    file=self._mapping_path,
                    field=f"row {i}, column {col}",
                )
            rep_text = row.get("replicate") or ""
            rep = int(rep_text) if rep_text.strip() else seen.get(prompt.prompt_id, 0)
            seen[prompt.prompt_id] = max(seen.get(prompt.prompt_id, 0), rep + 1)
            if (prompt.prompt_id, rep) in self._files:
                raise InputError(
                    f"duplicate image for prompt {prompt.prompt_id!r} replicate {rep}",
                    file=self._mapping_path,
                    field=f"row {i}",
                )
            self._files[(prompt.prompt_id, rep)] = row["file"]
            plan.append((prompt, rep))
        return plan

    def generate(self, requests: list[GenerationRequest]) -> list[GeneratedImage]:
        out = []
        for r in requests:
            path = self.folder / self._files[(r.prompt.prompt_id, r.replicate)]
            out.append(
                GeneratedImage(data=path.read_bytes(), suffix=path.suffix.lower(), params={"source_file": str(path)})
            )
        return out

    def describe(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "mapping": self.config.mapping, "revision": "replay"}

    def close(self) -> None:
        pass


def check_replay(config: ReplayConfig, prompts: list[Prompt], replicates: int) -> None:
    """Validate the folder and every mapping row against the audit's prompts."""
    ReplayGenerator(config).plan(prompts, replicates)


def build_replay(config: ReplayConfig, model_id: str, model_cache: Path | None) -> ReplayGenerator:
    return ReplayGenerator(config)
