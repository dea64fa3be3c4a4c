"""Exception types of the engine.

Every error the engine raises on purpose derives from :class:`SerError`, so a
caller (CLI, GUI, batch) can catch one type, show ``str(exc)`` to the user and
carry on. Anything else that escapes the engine is a bug and should
propagate with its traceback.

File analysis turns only :class:`AudioError` into a failed file; every other
error, an engine error included, stops the batch.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "ClusterError",
    "DeviceError",
    "ModelError",
    "NonFiniteOutputError",
    "OutputError",
    "ParameterError",
    "ProfileError",
    "SerError",
]


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


class NonFiniteOutputError(ModelError):
    """The model produced NaN or infinity for finite features.

    File analysis reports it as a failure of that file (an :class:`AudioError`
    naming the file): the same model may classify other audio normally.
    """


class OutputError(SerError):
    """The command's output (stdout) cannot be written: disk full, I/O error...

    The message says so and gives the system's reason. (A pipe closed by its
    reader, as in ``ser analyze ... | head``, is not an error.)
    """


class ClusterError(SerError):
    """A Dask cluster (``ser analyze --cluster``) cannot be reached or lost the batch's work.

    The message names the scheduler's address (or the file) and the reason.
    """


class DeviceError(SerError):
    """An audio input device cannot be opened or was lost."""


class ProfileError(SerError):
    """A voice profile cannot be made, read or applied.

    The message names the file (or the model) and the reason.
    """
