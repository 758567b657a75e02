"""Generators: one file per backend. Backends are registered in ``t2iaudit.generators.backends``."""
