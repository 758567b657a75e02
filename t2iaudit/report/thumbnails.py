"""Compressed JPEG thumbnails as data URLs, made once per image and reused across sections."""

from __future__ import annotations

import base64
import io
from pathlib import Path


class Thumbnails:
    """Image file -> JPEG thumbnail data URL (longest side ``px``, never enlarged), cached.

    Args:
        px: Longest side of a thumbnail.
        quality: JPEG quality.
    """

    def __init__(self, px: int = 96, quality: int = 70) -> None:
        self.px = px
        self.quality = quality
        self._cache: dict[Path, str | None] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def url(self, path: Path) -> str | None:
        """The thumbnail of ``path``; None when the file cannot be decoded (said in the report)."""
        if path not in self._cache:
            self._cache[path] = self._make(path)
        return self._cache[path]

    def _make(self, path: Path) -> str | None:
        from PIL import Image

        try:
            with Image.open(path) as src:
                src.draft("RGB", (self.px, self.px))  # JPEG sources decode at a reduced size
                im = src.convert("RGB")
                im.thumbnail((self.px, self.px), Image.Resampling.BILINEAR, reducing_gap=2.0)
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=self.quality, optimize=False)
        except (OSError, ValueError):
            return None
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
