"""Logging for the engine, the CLI and the desktop app.

Every module logs to a child of the ``ser`` logger (``ser.analysis``,
``ser.model``, ...; :func:`get_logger`). Importing the engine configures
nothing: without :func:`configure_logging` the records go to Python's
last-resort handler (warnings and errors on stderr), as for any library.

The programs call :func:`configure_logging` once at start-up:

- ``ser`` (the CLI): ``configure_logging(verbose=args.verbose,
  log_file=default_log_path())`` before running a command, so that stderr
  shows warnings (everything with ``--verbose``) and the log file holds every
  record with its full traceback. When a command fails with an unexpected
  exception, the CLI prints one line and logs the exception with
  ``logger.exception(..., extra=FILE_ONLY)``: the traceback goes to the file only.
- the desktop app: ``configure_logging(verbose=False, log_file=default_log_path())``;
  an unexpected exception is shown to the user as a message and logged with
  its traceback to the same file.

The log file lives in the XDG state folder (``$XDG_STATE_HOME/ser/ser.log``,
by default ``~/.local/state/ser/ser.log``), created private: the folder 0700,
the file 0600. It holds file names and error messages, never audio.
Nothing is logged from audio callbacks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

__all__ = ["FILE_ONLY", "ROOT", "configure_logging", "default_log_path", "get_logger"]

#: Name of the logger every engine, CLI and app logger descends from.
ROOT = "ser"

#: ``extra=`` of a record whose news the program gives the user in its own words (the CLI's
#: one line, a session's ``on_error``): it goes to the log file, not to the stderr of
#: :func:`configure_logging`. Example: ``logger.exception("live analysis stopped", extra=FILE_ONLY)``.
FILE_ONLY: dict[str, object] = {"ser_file_only": True}

_FORMAT_FILE = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
_FORMAT_STDERR = "ser: %(levelname)s: %(message)s"
_MAX_LOG_BYTES = 1 << 20  # a longer log is started afresh (one previous copy kept as ser.log.1)
_installed: list[logging.Handler] = []  # the handlers configure_logging added, replaced by the next call


class _OneLine(logging.Formatter):
    """Format records without their traceback (stderr shows one line; the file has the rest)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


class _LogFile(logging.FileHandler):
    """The log file; a write that fails (disk full...) is said once on stderr, and the file is then left alone.

    Logging never makes the program fail, and a full disk does not print Python's
    "--- Logging error ---" traceback for every later record.
    """

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        """Say once on stderr that the log file cannot be written; later records skip it."""
        del record  # logging's signature: the record is lost either way
        if self.failed:
            return
        self.failed = True
        exc = sys.exc_info()[1]
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        with contextlib.suppress(OSError, ValueError):  # stderr closed: nowhere left to say it
            sys.stderr.write(f"ser: cannot write the log file {self.baseFilename}: {reason}; going on without it\n")
            sys.stderr.flush()


def _not_file_only(record: logging.LogRecord) -> bool:
    """Tell whether a record may go to stderr (it is not marked :data:`FILE_ONLY`)."""
    return not getattr(record, "ser_file_only", False)


def get_logger(name: str) -> logging.Logger:
    """Return the logger of one module, a child of ``ser``.

    Parameters
    ----------
    name : str
        A module name (``"ser_engine.files.analysis"`` gives ``ser.analysis``) or a
        short name (``"app"`` gives ``ser.app``).

    Returns
    -------
    logging.Logger
    """
    short = name.rsplit(".", 1)[-1] if "." in name else name
    return logging.getLogger(f"{ROOT}.{short}")


def default_log_path() -> Path:
    """Return where the log file goes: ``$XDG_STATE_HOME/ser/ser.log``.

    ``$XDG_STATE_HOME`` is used when it is set to an absolute path (the XDG
    rule), otherwise ``~/.local/state``. Nothing is created here.

    Returns
    -------
    Path
    """
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "ser" / "ser.log"


def _create_private(path: Path) -> None:
    """Create ``path`` (if missing) with mode 0600, in a folder created 0700; move a long log aside."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if path.stat().st_size > _MAX_LOG_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps no wider mode
    finally:
        os.close(fd)


def configure_logging(*, verbose: bool, log_file: Path | None, stream: TextIO | None = None) -> logging.Logger:
    """Send the ``ser`` loggers to stderr and, optionally, to a private log file.

    Call once when a program starts (the CLI with its ``--verbose`` flag and
    :func:`default_log_path`; the app with ``verbose=False`` and the same path).
    Calling it again replaces the handlers it installed before. Other loggers
    (libraries') are not touched, and ``ser`` records still propagate to the
    root logger (a host's or pytest's handlers see them too).

    Parameters
    ----------
    verbose : bool
        False: stderr shows WARNING and above. True: stderr shows DEBUG and
        above. Stderr lines never carry a traceback, and records marked
        :data:`FILE_ONLY` do not go there.
    log_file : Path or None
        When given, every record at DEBUG and above (INFO and above unless
        ``verbose``) is appended to this file with its full traceback. Its
        folder is created 0700 and the file 0600; a file over 1 MB is moved
        to ``<name>.1`` first. A write that fails later (disk full) is said
        once on stderr; the program goes on without the file.
    stream : text stream, optional
        Where the console lines go (default: ``sys.stderr`` as it is now).

    Returns
    -------
    logging.Logger
        The ``ser`` logger.

    Raises
    ------
    OSError
        The log file or its folder cannot be created.
    """
    root = logging.getLogger(ROOT)
    while _installed:
        old = _installed.pop()
        root.removeHandler(old)
        old.close()
    console: logging.Handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(_OneLine(_FORMAT_STDERR))
    console.addFilter(_not_file_only)
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        _create_private(log_file)
        file_handler = _LogFile(log_file, mode="a", encoding="utf-8", errors="backslashreplace")
        file_handler.setLevel(logging.DEBUG if verbose else logging.INFO)
        file_handler.setFormatter(logging.Formatter(_FORMAT_FILE))
        handlers.append(file_handler)
    for h in handlers:
        root.addHandler(h)
        _installed.append(h)
    root.setLevel(min(h.level for h in handlers))
    return root

