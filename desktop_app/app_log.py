"""The app's log: named in the messages about bugs; uncaught exceptions sent to it.

:func:`desktop_app.main.main` starts the log at start-up with
:func:`ser_engine.cli.common.start_logging`, as the CLI does
(``$XDG_STATE_HOME/ser/ser.log``, by default ``~/.local/state/ser/ser.log``).
A bug in a worker (file analysis, the live session) is shown in the window in
one line naming the file that holds its traceback; an exception escaping a Qt
slot or a thread is logged with its traceback. Nothing here runs on import.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from types import TracebackType

from ser_engine.logs import ROOT, get_logger

__all__ = ["bug_message", "details_hint", "install_excepthooks", "log_file"]

logger = get_logger("app")


def log_file() -> Path | None:
    """Return the file the ``ser`` loggers write to now (None: no log file)."""
    for handler in logging.getLogger(ROOT).handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


def details_hint() -> str:
    """Return where a bug's details are, for a message in the window: ``"details in <log file>"``."""
    path = log_file()
    return f"details in {path}" if path is not None else "details on stderr"


def bug_message(exc: BaseException) -> str:
    """Return the one line the window shows for a bug (log its traceback first, with ``logger.exception``).

    Parameters
    ----------
    exc : BaseException
        The unexpected exception.

    Returns
    -------
    str
        ``"internal error: <type>: <message> (details in <log file>)"``.
    """
    return f"internal error: {type(exc).__name__}: {exc} ({details_hint()})"


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """Log an exception nobody caught, with its traceback; Ctrl-C keeps Python's own handling."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logger.error("unexpected error: %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    """Log an exception that ended a thread, with its traceback."""
    if args.exc_value is None:  # SystemExit without a value: nothing to report
        return
    logger.error("unexpected error in thread %s: %s: %s", args.thread.name if args.thread else "?",
                 args.exc_type.__name__, args.exc_value, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def install_excepthooks() -> None:
    """Send exceptions that escape a Qt slot or a thread to the log (one line on stderr, the traceback in the file).

    PySide reports an exception raised in a slot through :data:`sys.excepthook` and goes
    on; the window stays usable either way, and the traceback is kept in the log.
    """
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
