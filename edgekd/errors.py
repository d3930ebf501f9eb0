"""User-facing errors.

Anything the user can fix (a missing file, a corrupt archive, a model of the wrong
kind, a wrong input shape) is raised as :class:`EdgekdError`. The CLI prints it as one
line and exits with code 2 instead of showing a traceback.
"""

from __future__ import annotations

import importlib


class EdgekdError(Exception):
    """A problem with the user's input or environment, with a hint on what to do."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} — {hint}")


def require(module: str, extra: str, package: str | None = None):
    """Import an optional dependency or explain which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EdgekdError(
            f"{package or module} is not installed ({exc})",
            f'install it with: pip install "edgekd[{extra}]"',
        ) from None
