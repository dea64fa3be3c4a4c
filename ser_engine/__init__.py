"""ser_engine: speech emotion recognition runtime (no Qt, no TensorFlow).

Importing the package has no side effects: no model is loaded, no device is
opened, nothing is logged.

The version has one source, the ``version`` field of ``pyproject.toml``, read
from the installed distribution's metadata (the bundle ships that metadata too).
"""

from __future__ import annotations

__all__ = ["__version__", "version"]

DISTRIBUTION = "ser"
UNINSTALLED = "0+unknown"  # a source tree run without `pip install`: no metadata to read


def version() -> str:
    """Return the installed ``ser`` distribution's version (``pyproject.toml``).

    Returns
    -------
    str
        For example ``"0.1.0"``; ``"0+unknown"`` when ``ser`` is not installed.
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNINSTALLED


def __getattr__(name: str) -> str:
    """Return ``ser_engine.__version__``, read when first asked for (importing the package stays cheap)."""
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'ser_engine' has no attribute {name!r}")
