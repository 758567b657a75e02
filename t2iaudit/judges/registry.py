"""The judge-kind registry: every kind of judge, by name (``kind:`` in a judge YAML).

Entries are lazy (``module:KIND``): a kind's module (and its model library) is imported only when
a judge of that kind is read. Other packages add kinds under the entry-point group
``t2iaudit.judges``, each pointing at a ``JudgeKind`` (see ``t2iaudit.registry``).
"""

from __future__ import annotations

from t2iaudit.judges.base import JudgeKind
from t2iaudit.registry import Registry

JUDGE_KINDS: Registry[JudgeKind] = Registry("judge kind", entry_points="t2iaudit.judges")
JUDGE_KINDS.register_lazy("face", "t2iaudit.judges.face:KIND")
JUDGE_KINDS.register_lazy("clip", "t2iaudit.judges.clip:KIND")
JUDGE_KINDS.register_lazy("mllm", "t2iaudit.judges.mllm:KIND")
JUDGE_KINDS.register_lazy("caption", "t2iaudit.judges.caption:KIND")
