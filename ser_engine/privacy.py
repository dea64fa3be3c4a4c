"""Keep everything on the machine: switch off the telemetry of the libraries ``ser`` uses.

ONNX Runtime's official builds (1.32 measured) contain Microsoft's 1DS telemetry: a
few seconds after a session is created they resolve ``mobile.events.data.microsoft.com``,
create a persistent device id and queue events (OS, CPU, executable paths, error texts)
in ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/``. Only the environment variable
``ORT_DISABLE_TELEMETRY=1``, set **before** ONNX Runtime initialises (i.e. before
``import onnxruntime``), stops all of it; ``onnxruntime.disable_telemetry_events()`` does
not (the uploader, the device id and the event database are created anyway).

Every entry point of the project (``ser``, ``ser-app``, ``ser-train``, the bundle and the
Debian launchers) calls :func:`disable_telemetry` first thing. Importing ``ser_engine``
changes nothing (no side effects on import), so **programs that use ser_engine as a library
must call** :func:`disable_telemetry` **themselves, before anything imports onnxruntime**::

    from ser_engine.privacy import disable_telemetry
    disable_telemetry()
    from ser_engine.inference.model import EmotionModel

The other run-time libraries were checked for network access and found to have none:
numpy, soundfile (libsndfile), soxr, sounddevice (PortAudio; talks to the local sound
server through its Unix socket only), PySide6 (the app uses QtCore/QtGui/QtWidgets, not
QtNetwork) and pyqtgraph. ``tests/test_privacy.py`` checks this under ``strace``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["TELEMETRY_ENV", "disable_telemetry"]

#: Environment variables that switch telemetry off, with the value that does it.
TELEMETRY_ENV: dict[str, str] = {"ORT_DISABLE_TELEMETRY": "1"}


def _all_set() -> bool:
    return all(os.environ.get(name) == value for name, value in TELEMETRY_ENV.items())


def disable_telemetry() -> bool:
    """Switch off the telemetry of ONNX Runtime for this process and its children.

    Sets each variable of :data:`TELEMETRY_ENV` in ``os.environ`` unless it is already
    set (an explicit value of the user's is respected, like ``dict.setdefault``; nothing
    is refused). Must run before ``onnxruntime`` is imported: ONNX Runtime reads the
    variable once, when it initialises. Safe to call more than once.

    Returns
    -------
    bool
        True when telemetry is off: every variable holds its disabling value, and it
        did already before this call or onnxruntime has not been imported yet. False
        when the user set another value, or when this call came too late (onnxruntime
        already imported without the variable).
    """
    already = _all_set()
    for name, value in TELEMETRY_ENV.items():
        os.environ.setdefault(name, value)
    return _all_set() and (already or "onnxruntime" not in sys.modules)
