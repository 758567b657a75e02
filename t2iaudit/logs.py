"""Keep library progress bars out of our output (we draw our own per stage)."""

from __future__ import annotations

import functools


@functools.cache
def silence_library_progress() -> None:
    """Turn off diffusers' and transformers' per-call progress bars and info logs."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    tlog.disable_progress_bar()
    tlog.set_verbosity_error()
