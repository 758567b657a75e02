"""Registers the generator backends (heavy imports stay inside each factory)."""

from __future__ import annotations

from t2iaudit.generators.base import GENERATOR_REGISTRY, GeneratorKind
from t2iaudit.generators.diffusers import DiffusersConfig, build_diffusers, check_diffusers
from t2iaudit.generators.replay import ReplayConfig, build_replay, plan_replay

GENERATORS = GENERATOR_REGISTRY
GENERATORS.register("diffusers", GeneratorKind(DiffusersConfig, build_diffusers, ("model",), check=check_diffusers))
GENERATORS.register("replay", GeneratorKind(ReplayConfig, build_replay, ("folder", "mapping"), plan_replay))
