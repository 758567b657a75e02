"""Debiased prompts: plan attributes by exact quotas, rewrite prompts by insertion, check and calibrate them.

The pieces live in their own modules (``planner``, ``rules``, ``rewriter``, ``checks``,
``profiles``, ``engine``); ``t2iaudit.service`` and the ``debias`` / ``serve`` commands are thin
shells over :class:`t2iaudit.debias.engine.DebiasEngine`. See docs/debias.md.
"""
