"""ser desktop app: live microphone emotion monitor and file analysis (PySide6 + pyqtgraph).

Importing this package has no side effects; :func:`desktop_app.main.main` starts the app.
"""

from __future__ import annotations

__all__ = ["app_version"]


def app_version() -> str:
    """The installed distribution's version, or the source tree's when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ser")
    except PackageNotFoundError:  # running from a source checkout
        return "0.1.0+source"
