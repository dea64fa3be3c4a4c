"""Exception types of the engine.

Every error the engine raises on purpose derives from :class:`SerError`, so a
caller (CLI, GUI, batch) can catch one type, show ``str(exc)`` to the user and
carry on.
"""

from __future__ import annotations

__all__ = ["AudioError", "DeviceError", "ModelError", "ParameterError", "ProfileError", "SerError"]


class SerError(Exception):
    """Base class of every error the engine raises on purpose."""


class ParameterError(SerError, ValueError):
    """A parameter or array given to an engine function is invalid."""


class AudioError(SerError):
    """An audio file or stream cannot be read or decoded.

    The message names the file (when there is one) and the cause.
    """


class ModelError(SerError):
    """A model file or its metadata is missing, corrupt or inconsistent."""


class DeviceError(SerError):
    """An audio input device cannot be opened or was lost."""


class ProfileError(SerError):
    """A voice profile cannot be made, read or applied.

    The message names the file (or the model) and the reason.
    """
