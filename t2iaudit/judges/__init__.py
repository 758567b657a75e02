"""Judges: one file per kind, all registered in ``t2iaudit.judges.registry``."""
