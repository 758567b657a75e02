"""Generators: one file per backend, all registered in ``t2iaudit.generators.registry``."""
