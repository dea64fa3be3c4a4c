"""PyInstaller runtime hook: turn ONNX Runtime's telemetry off before anything else runs.

It runs before the entry script and before anything the bundle imports, so ONNX Runtime
never initialises with its telemetry on (see :mod:`ser_engine.privacy`).
``packaging/ser_entry.py`` calls ``disable_telemetry()`` again; this hook makes it
independent of what the entry script imports first.
"""

from ser_engine.privacy import disable_telemetry

disable_telemetry()
