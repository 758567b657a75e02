"""Judges: one file per kind. Kinds are registered in ``t2iaudit.judges.kinds``."""
