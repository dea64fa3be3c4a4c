"""The ``ser`` command line: the parser, the shared option checks and the dispatch.

The sub-commands are listed once, in :data:`ser_engine.cli.commands.SUBCOMMANDS`;
each is implemented in its own module, imported only when it runs:
``analyze`` in :mod:`ser_engine.cli.analyze`; ``listen`` and ``devices`` in
:mod:`ser_engine.cli.listen`; ``calibrate`` and ``info`` in :mod:`ser_engine.cli.model`.

Exit status (also in ``ser --help``): 0 when everything succeeded; 1 when any
file failed (every other file is still reported) or on a model/device error; 2
for bad usage; 70 for an internal error (a bug); 130 when interrupted; ``ser
listen`` and ``ser analyze`` end cleanly on SIGTERM/SIGHUP with 128 + the signal number (143, 129).
Errors go to stderr as ``ser: <file>: <reason>``; the CLI never prints a
traceback for bad input. A bug prints one line, ``ser: internal error: <message>
(details in <log file>)``, and its traceback goes to the log file
(:func:`ser_engine.cli.common.start_logging`); ``--verbose`` shows debug
messages on stderr.

Start-up is kept light: TensorFlow is never imported, librosa and numba are
not used, and heavy modules are imported only by the sub-command that needs
them.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ser_engine import version
from ser_engine.cli.commands import SUBCOMMANDS
from ser_engine.cli.common import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    err,
    start_logging,
)
from ser_engine.errors import OutputError, SerError
from ser_engine.logs import FILE_ONLY, get_logger
from ser_engine.timing import MAX_HOP_S, MAX_WINDOW_S, MIN_HOP_S, MIN_WINDOW_S

__all__ = ["build_parser", "command", "main", "min_confidence_help"]

logger = get_logger(__name__)

_EPILOG = f"""\
exit status:
  {EXIT_OK:<3} everything succeeded
  {EXIT_FAILED:<3} a file, the model or the device failed (the message names it)
  {EXIT_USAGE:<3} bad usage
  {EXIT_INTERNAL:<3} internal error: a bug of ser (one line here; the traceback is in the log file)
  {EXIT_INTERRUPTED:<3} interrupted (Ctrl-C)
  143 `ser listen`/`ser analyze` stopped by SIGTERM (129: SIGHUP); a recording or CSV/JSON is closed properly

log file: $XDG_STATE_HOME/ser/ser.log (default ~/.local/state/ser/ser.log)"""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # options whose help is worked out only when the help is shown (it reads the model's metadata,
        # which every other start-up must not pay for)
        self.help_later: list[tuple[argparse.Action, Callable[[], str]]] = []

    def error(self, message: str) -> Any:  # usage errors: one line, exit 2, no traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"ser: error: {message}\n")

    def format_help(self) -> str:
        for action, text in self.help_later:
            action.help = text()
        return super().format_help()


def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    v = _number(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def _window(text: str) -> float:
    """Parse ``--window`` of analyze and listen: seconds in [MIN_WINDOW_S, MAX_WINDOW_S]."""
    v = _number(text)
    if not MIN_WINDOW_S <= v <= MAX_WINDOW_S:
        raise argparse.ArgumentTypeError(f"must be between {MIN_WINDOW_S:g} and {MAX_WINDOW_S:g} seconds, got {text!r}")
    return v


def _hop(text: str) -> float:
    """Parse ``--hop`` of analyze and listen: seconds in [MIN_HOP_S, MAX_HOP_S] (at most the window, checked later)."""
    v = _number(text)
    if not MIN_HOP_S <= v <= MAX_HOP_S:
        raise argparse.ArgumentTypeError(f"must be between {MIN_HOP_S:g} and {MAX_HOP_S:g} seconds, got {text!r}")
    return v


def _unit_float(text: str) -> float:
    """Parse ``--sensitivity`` of analyze, listen and calibrate: a number in [0, 1]."""
    v = _number(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return v


def _smoothing(text: str) -> float:
    v = _number(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and less than 1, got {text!r}")
    return v


def _min_confidence(text: str) -> float:
    """Parse ``--min-confidence`` of analyze and listen: a fraction in [0, 1)."""
    if text.strip().endswith("%"):
        raise argparse.ArgumentTypeError(f"give a fraction, not a percentage (0.45 for 45 %), got {text!r}")
    v = _number(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and less than 1 (a fraction: 0.45 for 45 %), "
                                         f"got {text!r}")
    return v


_MIN_CONFIDENCE_HELP = ("show a prediction whose top probability is below P as 'uncertain' (with its guess); "
                        "P is a fraction in [0, 1), 0: never uncertain (default: the model's own threshold")


def min_confidence_help() -> str:
    """Return the help of ``--min-confidence``: the default model's threshold and, when measured, what it gives.

    It reads the default model's ``model.json`` (``$SER_MODEL_DIR`` or the bundled model),
    so it is called only when the help is shown; a model that cannot be read leaves the
    plain text. Percent signs are doubled for argparse.
    """
    from ser_engine.inference.model import META_FILE, ModelMetadata, default_model_dir

    try:
        meta = ModelMetadata.load(default_model_dir() / META_FILE)
    except (SerError, OSError):
        return _MIN_CONFIDENCE_HELP + "; see `ser info`)"
    which = "$SER_MODEL_DIR's model" if os.environ.get("SER_MODEL_DIR") else "the bundled model"
    text = f"{_MIN_CONFIDENCE_HELP}, {meta.uncertainty_threshold:g} for {which}"
    at = meta.tradeoff_at()
    if at is not None:
        text += f", which on validation {at.describe()}"
    text += "; `ser info` shows a model's threshold" + (" and what other values give" if at is not None else "")
    return (text + ")").replace("%", "%%")


def _workers(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _cluster(text: str) -> Any:
    """Parse ``--cluster`` into a :class:`ser_engine.files.cluster.ClusterAddress` (or say how to get Dask)."""
    try:
        from ser_engine.files.cluster import ClusterAddress
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("dask", "distributed"):
            raise
        raise argparse.ArgumentTypeError(
            f"needs Dask ({exc.name} is not installed): pip install 'ser[cluster]'") from None
    from ser_engine.errors import ParameterError

    try:
        return ClusterAddress.parse(text)
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """Build the ``ser`` argument parser (sub-commands from :data:`~ser_engine.cli.commands.SUBCOMMANDS`).

    ``--verbose``/``-v`` is accepted before or after the sub-command.

    Returns
    -------
    argparse.ArgumentParser
    """
    verbose_help = "also show debug messages (on stderr and in the log file)"
    p = _Parser(prog="ser", description="Speech emotion recognition: files, folders and live input.",
                epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"ser {version()}")
    p.add_argument("--verbose", "-v", action="store_true", help=verbose_help)
    after = _Parser(add_help=False)  # the same flag after the sub-command; SUPPRESS keeps a global -v
    after.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parsers = {name: sub.add_parser(name, help=text, parents=[after]) for name, text in SUBCOMMANDS.items()}

    model_help = "model directory holding model.onnx and model.json (default: the bundled model or $SER_MODEL_DIR)"
    profile_help = ("voice profile made by `ser calibrate` or the app: a path, or the name of a profile in "
                    "the user's profile folder")
    window_help = f"analysis window in seconds, {MIN_WINDOW_S:g}-{MAX_WINDOW_S:g} (default: the model's)"
    hop_help = (f"seconds between windows, {MIN_HOP_S:g}-{MAX_HOP_S:g} and at most the window "
                "(default: the model's)")
    sensitivity_help = "speech gate sensitivity 0..1 (default: %(default)s)"

    def min_confidence_option(parser: argparse.ArgumentParser) -> None:
        action = parser.add_argument("--min-confidence", type=_min_confidence, default=None, metavar="P",
                                     help=_MIN_CONFIDENCE_HELP + ")")
        assert isinstance(parser, _Parser)
        parser.help_later.append((action, min_confidence_help))

    a = parsers["analyze"]
    a.add_argument("paths", nargs="+", metavar="PATH", help="audio files and/or folders")
    a.add_argument("--model", metavar="DIR", help=model_help)
    a.add_argument("--window", type=_window, metavar="S", help=window_help)
    a.add_argument("--hop", type=_hop, metavar="S", help=hop_help)
    a.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    a.add_argument("--segments", action="store_true",
                   help="also report every analysed window. CSV: one table; each file's row (the columns of the "
                        "plain CSV, in the same places) is followed by its windows' rows; the last columns "
                        "kind (file or segment), start_s, end_s, speech tell them apart")
    where = a.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_workers, default=None, metavar="N",
                       help="files analysed in parallel (default: the number of CPU cores)")
    where.add_argument("--cluster", type=_cluster, default=None, metavar="ADDRESS",
                       help="analyse on a Dask cluster: a scheduler's address (tcp://host:8786; every worker must "
                            "see the files under the same paths) or local:N (N worker processes on this machine); "
                            "needs the cluster extra: pip install 'ser[cluster]'")
    a.add_argument("--sensitivity", type=_unit_float, default=0.5, metavar="X", help=sensitivity_help)
    a.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bar on stderr (auto: when stderr is a terminal and there are several files)")
    a.add_argument("--profile", metavar="PROFILE", help=profile_help)
    min_confidence_option(a)

    listen = parsers["listen"]
    listen.add_argument("--device", metavar="D",
                        help="input device index or name (see `ser devices`; empty: the default device)")
    listen.add_argument("--duration", type=_positive_float, metavar="S", help="stop after S seconds (default: Ctrl+C)")
    listen.add_argument("--format", choices=("table", "jsonl"), default="table", help="output format")
    listen.add_argument("--model", metavar="DIR", help=model_help)
    listen.add_argument("--window", type=_window, metavar="S", default=None, help=window_help)
    listen.add_argument("--hop", type=_hop, metavar="S", default=None, help=hop_help)
    listen.add_argument("--smoothing", type=_smoothing, default=0.5, metavar="X",
                        help="EMA smoothing in [0, 1) (default: %(default)s)")
    listen.add_argument("--sensitivity", type=_unit_float, default=0.5, metavar="X", help=sensitivity_help)
    listen.add_argument("--record", metavar="WAV", help="also record the 16 kHz audio (and WAV.csv predictions); "
                        "an existing WAV or WAV.csv is refused unless --overwrite is given")
    listen.add_argument("--overwrite", action="store_true", help="with --record: replace WAV and WAV.csv if they exist")
    listen.add_argument("--profile", metavar="PROFILE", help=profile_help)
    min_confidence_option(listen)

    c = parsers["calibrate"]
    c.description = ("Make a voice profile from at least 8 s (better 15 s or more) of one person's "
                     "neutral speech, recorded with the microphone and in the room they will use. "
                     "Use it with `ser analyze --profile` and `ser listen --profile`.")
    c.add_argument("files", nargs="+", metavar="FILE", help="audio files of the person speaking neutrally")
    c.add_argument("--output", "-o", required=True, metavar="PROFILE.json", help="profile file to write")
    c.add_argument("--name", metavar="NAME", help="the profile's name (default: the output file's name)")
    c.add_argument("--model", metavar="DIR", help=model_help)
    c.add_argument("--sensitivity", type=_unit_float, default=0.5, metavar="X", help=sensitivity_help)

    d = parsers["devices"]
    d.add_argument("--format", choices=("table", "json"), default="table")

    i = parsers["info"]
    i.add_argument("--model", metavar="DIR", help=model_help)
    i.add_argument("--format", choices=("table", "json"), default="table",
                   help="table: a readable summary (default); json: model.json's full metadata")
    i.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")
    return p


Command = Callable[[argparse.Namespace], int]


# Each sub-command's module is imported only when it runs, by a plain import statement (not
# importlib with a computed name) so that PyInstaller's analysis puts every one in the bundle.
def _analyze() -> Command:
    from ser_engine.cli.analyze import cmd_analyze

    return cmd_analyze


def _listen() -> Command:
    from ser_engine.cli.listen import cmd_listen

    return cmd_listen


def _devices() -> Command:
    from ser_engine.cli.listen import cmd_devices

    return cmd_devices


def _calibrate() -> Command:
    from ser_engine.cli.model import cmd_calibrate

    return cmd_calibrate


def _info() -> Command:
    from ser_engine.cli.model import cmd_info

    return cmd_info


_IMPLEMENTATION: dict[str, Callable[[], Command]] = {
    "analyze": _analyze, "listen": _listen, "devices": _devices, "calibrate": _calibrate, "info": _info}
assert set(_IMPLEMENTATION) == set(SUBCOMMANDS)


def command(name: str) -> Command:
    """Return the function running sub-command ``name`` (its module is imported now).

    Parameters
    ----------
    name : str
        A key of :data:`~ser_engine.cli.commands.SUBCOMMANDS`.

    Returns
    -------
    callable
        ``f(args) -> exit status``.
    """
    return _IMPLEMENTATION[name]()


def _flush_stdout(*, failed: bool) -> None:
    """Flush ``sys.stdout``; a failure other than a closed pipe is an :class:`OutputError` saying so.

    After a failure stdout is pointed at the null device, so that Python's own flush at exit
    cannot fail again (it would print a traceback-like warning and exit 120). When the
    command already ``failed`` (and said why, e.g. ``ser listen`` on a full stdout), the
    failure is not said twice.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        _discard_stdout()
        if not failed:
            raise OutputError(f"cannot write the output to stdout: {exc.strerror or exc}") from exc


def _discard_stdout() -> None:
    """Point file descriptor 1 at the null device (what is still buffered goes nowhere)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ser`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (see the module's docstring).
    """
    from ser_engine.privacy import disable_telemetry

    disable_telemetry()  # before anything imports onnxruntime: nothing leaves the machine
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    log_path: Path | None = None
    try:
        # inside the try: a Ctrl-C this early is "interrupted" too, never a traceback
        log_path = start_logging(verbose=args.verbose)
        # the command's module is imported before its first log line: a Ctrl-C during an import can
        # be swallowed by a library's own exception handling, and from that line on the command
        # catches the signals itself (``ser listen``)
        run = command(args.command)
        logger.debug("ser %s: %s", version(), args.command)
        status = run(args)
        _flush_stdout(failed=status != EXIT_OK)  # here, not at exit: a full stdout is said, never exit 120
        return status
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. `ser analyze ... | head`): not an error of ours
        _discard_stdout()
        return EXIT_OK
    except UsageError as exc:
        err(f"error: {exc}")
        return EXIT_USAGE
    except SerError as exc:
        err(str(exc))
        if isinstance(exc, OutputError):
            _discard_stdout()  # what is still buffered cannot be written either: not again at exit
        return EXIT_FAILED
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        err(f"{where}{exc.strerror or exc}")
        return EXIT_FAILED
    except ImportError as exc:
        err(f"a required package is missing or broken: {exc} (reinstall ser)")
        logger.exception("import failed", extra=FILE_ONLY)
        return EXIT_FAILED
    except MemoryError:
        err("out of memory")
        return EXIT_FAILED
    except Exception as exc:
        # The top of the program: anything else is a bug of ser. One line on stderr, the
        # traceback in the log file (on stderr only when there is no log to hold it).
        details = f"details in {log_path}" if log_path is not None else "no log file; traceback follows"
        err(f"internal error: {type(exc).__name__}: {exc} ({details})")
        logger.exception("internal error in `ser %s`", args.command, extra=FILE_ONLY)
        if log_path is None:
            traceback.print_exc(file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
