"""t2iaudit: audit text-to-image models for social bias (prompts -> images -> judges -> metrics -> report).

The stages live in ``t2iaudit.stages``; the CLI (``t2iaudit.cli``) only calls them. Importing the
package loads no model library.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    """``__version__``, read from the installed metadata on first use (``importlib.metadata`` is
    slow to import, and most commands never need it)."""
    if name != "__version__":
        raise AttributeError(f"module 't2iaudit' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("t2iaudit")
    except PackageNotFoundError:  # running from a source tree that is not installed
        value = "0+unknown"
    globals()["__version__"] = value
    return value
