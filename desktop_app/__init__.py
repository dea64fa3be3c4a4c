"""ser desktop app: live microphone emotion monitor and file analysis (PySide6 + pyqtgraph).

Importing this package has no side effects; :func:`desktop_app.main.main` starts the app.
The app's version is the engine's (:func:`ser_engine.version`, from ``pyproject.toml``).
"""

from __future__ import annotations
