"""t2iaudit: audit text-to-image models for social bias (prompts -> images -> judges -> metrics -> report).

The stages live in ``t2iaudit.stages``; the CLI (``t2iaudit.cli``) only calls them. Importing the
package loads no model library.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("t2iaudit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
