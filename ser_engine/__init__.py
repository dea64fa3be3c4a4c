"""ser_engine: speech emotion recognition runtime (no Qt, no TensorFlow).

Importing the package has no side effects: no model is loaded, no device is
opened, nothing is logged.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
