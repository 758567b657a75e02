"""The run directory: append-only JSONL records, content-addressed images, crash-safe resume.

Layout (DESIGN.md, "The run directory")::

    <run>/manifest.json  prompts.jsonl  images.jsonl  judgements.jsonl  metrics.jsonl
    <run>/images/ab/<sha256>.png  summary.md  report.html

Appends are whole lines written and fsynced once per batch (``t2iaudit.fileio``: a failed write
is cut back, an unwritable folder is an ``OutputError``). A process killed mid-write can leave a
torn last line; it is detected and cut off before the next append, and ignored by readers.
Images are written to a temporary name and renamed into place before their record is appended,
so a record never points at a half-written file; what a killed writer leaves (temporary files,
an image whose record was never appended) is removed by ``RunStore.sweep`` when a run ends.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from t2iaudit import fileio
from t2iaudit.types import ImageRecord, Judgement, MetricValue, Prompt

if TYPE_CHECKING:
    from PIL import Image

MANIFEST = "manifest.json"
PROMPTS = "prompts.jsonl"
IMAGES = "images.jsonl"
JUDGEMENTS = "judgements.jsonl"
METRICS = "metrics.jsonl"
SUMMARY = "summary.md"
R = TypeVar("R", bound=BaseModel)
LEGACY_FIELDS = {"ImageRecord": ("seconds",), "Judgement": ("seconds",)}
"""Fields records of format version 1 carried that version 2 keeps in ``timings.jsonl``."""


def _dumps(record: BaseModel | dict[str, Any]) -> str:
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return json.dumps(data, ensure_ascii=False, sort_keys=True, allow_nan=False)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the complete lines of a JSONL file; a torn last line (no newline) is skipped.

    A malformed line that *is* newline-terminated is real corruption and raises an InputError
    naming the file and line.
    """
    for _, record in read_jsonl_lines(path):
        yield record


def read_jsonl_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of every complete line (see ``read_jsonl``)."""
    if not path.exists():
        return
    lineno = 0
    with path.open("rb") as f:
        while lines := f.readlines(CHUNK_BYTES):
            torn = not lines[-1].endswith(b"\n")  # only the file's last line can lack one
            if torn:
                lines.pop()  # torn tail from a killed writer
            numbered = [(lineno + i, line) for i, line in enumerate(lines, start=1) if line.strip()]
            lineno += len(lines)
            yield from zip((n for n, _ in numbered), _parse(numbered, path))
            if torn:
                return


CHUNK_BYTES = 8 << 20
"""Bytes of whole lines parsed together (one ``json.loads`` per chunk is much faster than one per line)."""


def _parse(numbered: list[tuple[int, bytes]], path: Path) -> list[dict[str, Any]]:
    """The records of complete, non-empty lines: parsed as one JSON array, or line by line to
    name the line at fault (or when a line holds more than one value)."""
    from t2iaudit.errors import InputError

    try:
        records = json.loads(b"[" + b",".join(line for _, line in numbered) + b"]")
    except (json.JSONDecodeError, UnicodeDecodeError):
        records = None
    if records is None or len(records) != len(numbered):
        records = []
        for lineno, line in numbered:
            try:
                records.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                message = f"not valid JSON ({e}); the run directory is damaged"
                raise InputError(message, file=path, field=f"line {lineno}") from None
    for (lineno, _), record in zip(numbered, records):
        if not isinstance(record, dict):
            raise InputError("not a JSON object", file=path, field=f"line {lineno}")
    return records


def _typed(path: Path, model: type[R]) -> list[R]:
    """Every record of a JSONL file as ``model``; a bad record names the file and line."""
    from pydantic import ValidationError

    from t2iaudit.errors import InputError, pydantic_field_path

    out = []
    for lineno, record in read_jsonl_lines(path):
        for legacy in LEGACY_FIELDS.get(model.__name__, ()):  # format 1 (see run.manifest)
            record.pop(legacy, None)
        try:
            out.append(model.model_validate(record))
        except ValidationError as e:
            err = e.errors()[0]
            where = f"line {lineno}, field {pydantic_field_path(err['loc'])}"
            raise InputError(f"not a {model.__name__} record: {err['msg']}", file=path, field=where) from None
    return out


def repair_torn_tail(path: Path) -> int:
    """Cut a torn last line off ``path``; returns the number of bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        # Walk back to the last newline; everything after it is the torn line.
        pos = size - 1
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            block = f.read(pos - start)
            idx = block.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                break
            pos = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def _entries(folder: str, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """``(relative path, entry)`` of everything under ``folder``, not descending into linked folders
    (what ``Path.rglob`` visits, without making a ``Path`` of each file)."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except PermissionError:
        return
    for entry in entries:
        rel = prefix + entry.name
        yield rel, entry
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            yield from _entries(entry.path, rel + "/")


def _leftovers(root: Path, referenced: set[str]) -> tuple[list[str], list[str]]:
    """Relative paths of the temporary files (``.*.tmp``, anywhere) and of the files under
    ``images/`` that are not in ``referenced``, in one walk of the run directory."""
    temporary: list[str] = []
    unreferenced: list[str] = []
    if not root.is_dir():
        return temporary, unreferenced

    def orphan(rel: str, entry: os.DirEntry[str]) -> None:
        if rel not in referenced and entry.is_file():
            unreferenced.append(rel)

    for rel, entry in _entries(str(root), ""):
        name = entry.name
        if len(name) >= 5 and name.startswith(".") and name.endswith(".tmp"):  # the glob ".*.tmp"
            temporary.append(rel)
        if rel.startswith("images/"):
            orphan(rel, entry)
    images = root / "images"
    if images.is_symlink() and images.is_dir():  # the walk above does not enter a linked folder
        for rel, entry in _entries(str(images), "images/"):
            orphan(rel, entry)
    return temporary, unreferenced


def _parts(rel: str) -> list[str]:
    """Sort key of a relative path: by its parts, as ``Path`` objects sort."""
    return rel.split("/")


_LOCKS: dict[Path, int] = {}
"""Run directories this process holds the writer lock of (path -> open lock file descriptor)."""
LOCK = ".lock"


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def acquire_lock(self) -> None:
        """Become the run directory's only writer until this process exits.

        Two processes appending to the same run would record the same images twice, so a second
        one is refused with an InputError. The lock is an advisory ``flock`` on ``.lock``, released
        by the OS when the process ends, also when it is killed.
        """
        import fcntl

        key = self.root.resolve()
        if key in _LOCKS:
            return
        with fileio.output_errors(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o666)  # the umask applies
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            from t2iaudit.errors import InputError

            raise InputError(
                f"in use by another t2iaudit process (pid {holder}); wait for it to finish", file=self.root
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _LOCKS[key] = fd

    # -- generic -----------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.root / name

    def append(self, name: str, records: Iterable[BaseModel | dict[str, Any]]) -> int:
        """Append records as whole lines, flushed and fsynced together; returns how many."""
        lines = [_dumps(r) + "\n" for r in records]
        if not lines:
            return 0
        path = self.path(name)
        with fileio.output_errors(path):
            repair_torn_tail(path)
        fileio.append_lines(path, "".join(lines).encode("utf-8"))
        return len(lines)

    def read(self, name: str) -> list[dict[str, Any]]:
        return list(read_jsonl(self.path(name)))

    def count(self, name: str) -> int:
        """Complete, non-empty lines of a JSONL file (its records, without parsing them)."""
        path = self.path(name)
        if not path.exists():
            return 0
        n = 0
        with path.open("rb") as f:
            for line in f:
                n += line.endswith(b"\n") and bool(line.strip())
        return n

    def write_lines(self, name: str, records: Iterable[BaseModel | dict[str, Any]]) -> None:
        """Replace a whole JSONL file atomically (for derived files such as metrics)."""
        body = "".join(_dumps(r) + "\n" for r in records)
        fileio.write_atomic(self.path(name), body.encode("utf-8"))

    def write_text(self, name: str, text: str) -> None:
        fileio.write_atomic(self.path(name), text.encode("utf-8"))

    # -- records -----------------------------------------------------------------
    def prompts(self) -> list[Prompt]:
        return _typed(self.path(PROMPTS), Prompt)

    def write_prompts(self, prompts: Iterable[Prompt]) -> None:
        """Record the prompts of the run, keeping any already there (prompt ids are stable)."""
        have = {p.prompt_id for p in self.prompts()}
        self.append(PROMPTS, [p for p in prompts if p.prompt_id not in have])

    def images(self) -> list[ImageRecord]:
        return _typed(self.path(IMAGES), ImageRecord)

    def append_images(self, records: Iterable[ImageRecord]) -> int:
        return self.append(IMAGES, records)

    def judgements(self) -> list[Judgement]:
        return _typed(self.path(JUDGEMENTS), Judgement)

    def append_judgements(self, records: Iterable[Judgement]) -> int:
        return self.append(JUDGEMENTS, records)

    def metrics(self) -> list[MetricValue]:
        return _typed(self.path(METRICS), MetricValue)

    def write_metrics(self, values: Iterable[MetricValue]) -> None:
        self.write_lines(METRICS, values)

    # -- manifest ----------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        path = self.path(MANIFEST)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            from t2iaudit.errors import InputError

            raise InputError(f"not valid JSON ({e})", file=path) from None

    def write_manifest(self, manifest: BaseModel | dict[str, Any]) -> None:
        data = manifest.model_dump(mode="json") if isinstance(manifest, BaseModel) else manifest
        body = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        fileio.write_atomic(self.path(MANIFEST), body.encode("utf-8"))

    # -- images ------------------------------------------------------------------
    @staticmethod
    def content_path(data: bytes, suffix: str) -> tuple[str, str]:
        """``(images/<sha[:2]>/<sha><suffix>, sha256)`` of a file's bytes."""
        sha = hashlib.sha256(data).hexdigest()
        return f"images/{sha[:2]}/{sha}{suffix}", sha

    def save_file(self, rel: str, data: bytes) -> None:
        """Write a content-addressed file unless it is there intact (atomic: concurrent shards are safe).

        A file already there whose bytes are not ``data`` (damaged on disk) is replaced.
        """
        target = self.root / rel
        if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
            return
        fileio.write_atomic(target, data)

    def save_image(self, image: Image.Image) -> tuple[str, str]:
        """Store a PNG under ``images/<sha[:2]>/<sha>.png``; returns (relative path, sha256)."""
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return self.save_image_bytes(buf.getvalue(), ".png")

    def save_image_bytes(self, data: bytes, suffix: str) -> tuple[str, str]:
        rel, sha = self.content_path(data, suffix)
        self.save_file(rel, data)
        return rel, sha

    def sweep(self) -> list[str]:
        """Remove what killed writers left: temporary files (``.*.tmp``) and image files no record
        in ``images.jsonl`` points to; returns their paths relative to the run directory.

        A process killed between writing an image and appending its record leaves the image
        behind; the resumed run records the same image again (same seed, same bytes), but a
        generator that is not bit-exact (GPUs) makes a new file and the old one is an orphan.
        Call it only while no shard of this run is running (the audit calls it when it ends).
        """
        referenced = {r.path for r in self.images()}
        temporary, unreferenced = _leftovers(self.root, referenced)
        removed = list(dict.fromkeys(sorted(temporary, key=_parts) + sorted(unreferenced, key=_parts)))
        with fileio.output_errors(self.root):
            for rel in removed:
                (self.root / rel).unlink(missing_ok=True)
        return removed

    def load_image(self, record: ImageRecord) -> Image.Image:
        """Decode a stored image to RGB; a missing or corrupt file raises naming the path."""
        from PIL import Image

        path = self.root / record.path
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except (OSError, ValueError) as e:
            from t2iaudit.errors import InputError

            raise InputError(
                f"cannot decode image {record.image_id} ({e}); delete its line from images.jsonl to regenerate it",
                file=path,
            ) from None
