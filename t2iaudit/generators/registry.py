"""The generator registry: every backend, by name (``generator:`` in a spec's model entry).

Entries are lazy (``module:KIND``), so a backend's module is imported only when a spec uses it.
Other packages add backends under the entry-point group ``t2iaudit.generators``, each pointing
at a ``GeneratorKind`` (see ``t2iaudit.registry``).
"""

from __future__ import annotations

from t2iaudit.generators.base import GeneratorKind
from t2iaudit.registry import Registry

GENERATORS: Registry[GeneratorKind] = Registry("generator", entry_points="t2iaudit.generators")
GENERATORS.register_lazy("diffusers", "t2iaudit.generators.diffusers:KIND")
GENERATORS.register_lazy("replay", "t2iaudit.generators.replay:KIND")
GENERATORS.register_lazy("openai-images", "t2iaudit.generators.openai_images:KIND")
