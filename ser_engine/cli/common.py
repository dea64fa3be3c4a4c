"""What the ``ser`` sub-commands share: exit statuses, the usage error, messages, logging, model and profile loading.

Its own module so that :mod:`ser_engine.cli.main` run as ``python -m ser_engine.cli``
(a ``__main__`` module) and the sub-command modules agree on one
:class:`UsageError` class. :func:`start_logging` is also how the desktop app
starts its log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ser_engine.logs import configure_logging, default_log_path

if TYPE_CHECKING:
    from ser_engine.inference.model import EmotionModel
    from ser_engine.inference.profile import VoiceProfile

__all__ = ["EXIT_FAILED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE",
           "UsageError", "apply_min_confidence", "err", "load_model", "load_profile", "say", "start_logging",
           "window_hop"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE of sysexits.h: a bug of ser, not bad input (the traceback is in the log)
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A bad combination of options found after parsing: ``ser: error: ...``, exit 2."""


def window_hop(args: argparse.Namespace, model: EmotionModel) -> tuple[float, float]:
    """Return (window_s, hop_s) from ``--window``/``--hop`` or the model's defaults.

    The one rule of :func:`ser_engine.timing.config_for` (the parser has already
    checked each value against :mod:`ser_engine.timing`'s limits).

    Raises
    ------
    UsageError
        The hop exceeds the window, or the model does not take that window.
    """
    from ser_engine.errors import ParameterError
    from ser_engine.timing import config_for

    window = args.window if args.window is not None else model.feature_config.window_s
    if args.hop is not None and args.hop > window:
        raise UsageError(f"argument --hop: must not be longer than the window ({window:g} s), got '{args.hop:g}'")
    try:
        cfg = config_for(model, window_s=args.window, hop_s=args.hop)
    except ParameterError as exc:
        raise UsageError(str(exc)) from exc
    return cfg.window_s, cfg.hop_s


def apply_min_confidence(args: argparse.Namespace, model: EmotionModel) -> EmotionModel:
    """Apply ``--min-confidence`` to ``model`` (not given: the model as it is, with its own threshold).

    Raises
    ------
    UsageError
        The value is not in [0, 1) (the parser has already checked it; this names the flag
        should a caller pass a namespace of its own).
    """
    from ser_engine.errors import ParameterError

    value = getattr(args, "min_confidence", None)
    if value is None:
        return model
    try:
        return model.with_min_confidence(value)
    except ParameterError as exc:
        raise UsageError(f"argument --min-confidence: {exc}") from exc


def err(message: str) -> None:
    """Print ``ser: <message>`` on stderr."""
    print(f"ser: {message}", file=sys.stderr, flush=True)


def say(line: str) -> None:
    """Print ``line`` on stdout (a command's output).

    Raises
    ------
    OutputError
        stdout cannot be written (a full disk, an I/O error); the message says so. A pipe
        closed by its reader stays a ``BrokenPipeError`` (not an error of ours).
    """
    from ser_engine.errors import OutputError

    try:
        print(line)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write the output to stdout: {exc.strerror or exc}") from exc


def start_logging(*, verbose: bool, stream: TextIO | None = None) -> Path | None:
    """Send the ``ser`` loggers to stderr and to the log file in the XDG state folder.

    The log never stops the program: when its file cannot be written (a read-only
    home, a full disk...) this says so once on stderr and logs to stderr only.

    Parameters
    ----------
    verbose : bool
        Show debug messages on stderr too (``--verbose``); else warnings and errors only.
    stream : text stream, optional
        Where the stderr lines go (default: ``sys.stderr``).

    Returns
    -------
    Path or None
        The log file (:func:`ser_engine.logs.default_log_path`), or None when it cannot be written.
    """
    path: Path | None = None
    try:
        path = default_log_path()
        configure_logging(verbose=verbose, log_file=path, stream=stream)
    except (OSError, RuntimeError) as exc:  # RuntimeError: Path.home() without a home folder
        configure_logging(verbose=verbose, log_file=None, stream=stream)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" {path}" if path is not None else ""
        print(f"ser: cannot write the log file{where}: {reason}; going on without it",
              file=sys.stderr if stream is None else stream, flush=True)
        path = None
    return path


def load_profile(text: str, model: EmotionModel) -> tuple[EmotionModel, VoiceProfile]:
    """Apply ``--profile`` (a path or a stored profile's name) to ``model``.

    Returns
    -------
    tuple of EmotionModel and VoiceProfile
        The calibrated model and the profile.
    """
    from ser_engine.inference.profile import ProfileStore, VoiceProfile

    path = ProfileStore().find(text)
    profile = VoiceProfile.load(path)
    return model.with_profile(profile), profile


def load_model(model_dir: str | None) -> EmotionModel:
    """Load ``--model DIR`` (None: the bundled model), with a hint when the bundled one is missing.

    Raises
    ------
    ModelError
        The model cannot be loaded (the message names the folder).
    """
    from ser_engine.errors import ModelError
    from ser_engine.inference.model import EmotionModel

    try:
        return EmotionModel.load(model_dir)
    except ModelError as exc:
        if model_dir is None and "not found" in str(exc):
            raise ModelError(f"{exc} (pass --model DIR or set SER_MODEL_DIR)") from exc
        raise
