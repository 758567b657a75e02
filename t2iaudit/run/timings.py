"""``timings.jsonl``: how long each committed shard took, kept out of the records.

Records (images, judgements) say what was made; timings say how fast, which differs between
runs of the same spec. The committing writer appends one line per shard; ``t2iaudit plan``
reads them to estimate how long an audit will take.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

TIMINGS = "timings.jsonl"


class Timing(BaseModel):
    """One shard of one stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    """``generate`` or ``judge``."""
    unit: str
    """Model id or judge id."""
    key: str
    """What throughput is comparable across runs: a model's config hash, a judge's id."""
    shard: str
    items: int
    """Images made or judged."""
    seconds: float
    """Wall time of the shard's work (model loading excluded when the model was already loaded)."""
    ended: str


def throughput(paths: Iterable[Path]) -> dict[tuple[str, str], float]:
    """Items per second per (stage, key) over the timings files given (missing files skipped)."""
    from t2iaudit.run.store import read_jsonl

    items: dict[tuple[str, str], float] = {}
    seconds: dict[tuple[str, str], float] = {}
    for path in paths:
        for d in read_jsonl(path):
            key = (str(d.get("stage")), str(d.get("key")))
            items[key] = items.get(key, 0.0) + float(d.get("items") or 0)
            seconds[key] = seconds.get(key, 0.0) + float(d.get("seconds") or 0.0)
    return {k: items[k] / seconds[k] for k in items if seconds.get(k, 0.0) > 0}
