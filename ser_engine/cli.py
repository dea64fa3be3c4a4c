"""The ``ser`` command line.

``ser analyze PATH...``   dominant emotion of files and folders (recursive)
``ser listen``            live predictions from an input device, one line per hop
``ser calibrate FILE...`` a voice profile from recordings of one person's neutral speech
``ser devices``           input devices and their default rates
``ser info``              the model's metadata

Exit status: 0 when everything succeeded; 1 when any file failed (every
other file is still reported) or on a model/device error; 2 for bad usage;
130 when interrupted; ``ser listen`` ends cleanly on SIGTERM/SIGHUP with 128 +
the signal number (143, 129). Errors go to stderr as ``ser: <file>: <reason>``; the
CLI never prints a traceback for bad input.

Start-up is kept light: TensorFlow is never imported, librosa and numba are
not used, and heavy modules are imported only by the sub-command that needs
them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ser_engine import __version__
from ser_engine.errors import SerError

if TYPE_CHECKING:
    from ser_engine.analysis import FileResult
    from ser_engine.model import EmotionModel
    from ser_engine.profile import VoiceProfile

__all__ = ["build_parser", "csv_header", "csv_rows", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # usage errors: one line, exit 2, no traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"ser: error: {message}\n")


MIN_WINDOW_S = 0.1
MAX_WINDOW_S = 30.0
MIN_HOP_S = 0.05


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
    """``--window`` of analyze and listen: seconds in [MIN_WINDOW_S, MAX_WINDOW_S]."""
    v = _number(text)
    if not MIN_WINDOW_S <= v <= MAX_WINDOW_S:
        raise argparse.ArgumentTypeError(f"must be between {MIN_WINDOW_S:g} and {MAX_WINDOW_S:g} seconds, got {text!r}")
    return v


def _hop(text: str) -> float:
    """``--hop`` of analyze and listen: seconds from MIN_HOP_S (at most the window, checked later)."""
    v = _number(text)
    if not MIN_HOP_S <= v <= MAX_WINDOW_S:
        raise argparse.ArgumentTypeError(f"must be between {MIN_HOP_S:g} seconds and the window, got {text!r}")
    return v


def _unit_float(text: str) -> float:
    """``--sensitivity`` of analyze, listen and calibrate: a number in [0, 1]."""
    v = _number(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return v


def _smoothing(text: str) -> float:
    v = _number(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and less than 1, got {text!r}")
    return v


class _UsageError(Exception):
    """A bad combination of options found after parsing: ``ser: error: ...``, exit 2."""


def _window_hop(args: argparse.Namespace, model: EmotionModel) -> tuple[float, float]:
    """(window_s, hop_s) from ``--window``/``--hop`` or the model's defaults; the hop may not exceed the window."""
    cfg = model.feature_config
    window = args.window if args.window is not None else cfg.window_s
    hop = args.hop if args.hop is not None else min(cfg.hop_s, window)
    if hop > window:
        raise _UsageError(f"argument --hop: must be between {MIN_HOP_S:g} seconds and the window "
                          f"({window:g} s), got '{hop:g}'")
    return window, hop


def _workers(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ser", description="Speech emotion recognition: files, folders and live input.")
    p.add_argument("--version", action="version", version=f"ser {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    model_help = "model directory holding model.onnx and model.json (default: the bundled model or $SER_MODEL_DIR)"
    profile_help = ("voice profile made by `ser calibrate` or the app: a path, or the name of a profile in "
                    "the user's profile folder")
    window_help = f"analysis window in seconds, {MIN_WINDOW_S:g}-{MAX_WINDOW_S:g} (default: the model's)"
    hop_help = f"seconds between windows, from {MIN_HOP_S:g} to the window (default: the model's)"
    sensitivity_help = "speech gate sensitivity 0..1 (default: %(default)s)"
    a = sub.add_parser("analyze", help="dominant emotion of audio files and folders (recursive)")
    a.add_argument("paths", nargs="+", metavar="PATH", help="audio files and/or folders")
    a.add_argument("--model", metavar="DIR", help=model_help)
    a.add_argument("--window", type=_window, metavar="S", help=window_help)
    a.add_argument("--hop", type=_hop, metavar="S", help=hop_help)
    a.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    a.add_argument("--segments", action="store_true",
                   help="also report every analysed window. CSV: one table; each file's row (the columns of the "
                        "plain CSV, in the same places) is followed by its windows' rows; the last columns "
                        "kind (file or segment), start_s, end_s, speech tell them apart")
    a.add_argument("--workers", type=_workers, default=min(2, os.cpu_count() or 1), metavar="N",
                   help="files analysed in parallel (default: %(default)s)")
    a.add_argument("--sensitivity", type=_unit_float, default=0.5, metavar="X", help=sensitivity_help)
    a.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bar on stderr (auto: when stderr is a terminal and there are several files)")
    a.add_argument("--profile", metavar="PROFILE", help=profile_help)

    listen = sub.add_parser("listen", help="live predictions from an input device, one line per hop")
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
    listen.add_argument("--record", metavar="WAV", help="also record the 16 kHz audio (and WAV.csv predictions)")
    listen.add_argument("--profile", metavar="PROFILE", help=profile_help)

    c = sub.add_parser("calibrate", help="make a voice profile from recordings of one person's neutral speech",
                       description="Make a voice profile from at least 8 s (better 15 s or more) of one person's "
                                   "neutral speech, recorded with the microphone and in the room they will use. "
                                   "Use it with `ser analyze --profile` and `ser listen --profile`.")
    c.add_argument("files", nargs="+", metavar="FILE", help="audio files of the person speaking neutrally")
    c.add_argument("--output", "-o", required=True, metavar="PROFILE.json", help="profile file to write")
    c.add_argument("--name", metavar="NAME", help="the profile's name (default: the output file's name)")
    c.add_argument("--model", metavar="DIR", help=model_help)
    c.add_argument("--sensitivity", type=_unit_float, default=0.5, metavar="X", help=sensitivity_help)

    d = sub.add_parser("devices", help="list audio input devices")
    d.add_argument("--format", choices=("table", "json"), default="table")

    i = sub.add_parser("info", help="show the model's metadata")
    i.add_argument("--model", metavar="DIR", help=model_help)
    i.add_argument("--format", choices=("table", "json"), default="table",
                   help="table: a readable summary (default); json: model.json's full metadata")
    i.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")
    return p


def _err(message: str) -> None:
    print(f"ser: {message}", file=sys.stderr, flush=True)


def _load_profile(text: str, model: EmotionModel) -> tuple[EmotionModel, VoiceProfile]:
    """``--profile`` (a path or a stored profile's name) applied to ``model``."""
    from ser_engine.profile import ProfileStore, VoiceProfile

    path = ProfileStore().find(text)
    profile = VoiceProfile.load(path)
    return model.with_profile(profile), profile


def _load_model(model_dir: str | None) -> EmotionModel:
    from ser_engine.errors import ModelError
    from ser_engine.model import EmotionModel

    try:
        return EmotionModel.load(model_dir)
    except ModelError as exc:
        if model_dir is None and "not found" in str(exc):
            raise ModelError(f"{exc} (pass --model DIR or set SER_MODEL_DIR)") from exc
        raise


# ----------------------------------------------------------------------------- analyze
class _Progress:
    """A one-line progress bar on stderr (plain text, redrawn with \\r)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled and total > 1
        self.done = 0
        self.failed = 0
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        width = 30
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        fail = f", {self.failed} failed" if self.failed else ""
        sys.stderr.write(f"\r[{bar}] {self.done}/{self.total} files{fail}  {now - self.t0:.1f} s ")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\r" + " " * 79 + "\r")
            sys.stderr.flush()

    def message(self, text: str) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\r" + " " * 79 + "\r")
        _err(text)


def _fmt(v: float | None, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


FILE_COLUMNS = ("path", "ok", "error", "duration_s", "speech_s", "label", "confidence", "uncertain")
SEGMENT_COLUMNS = ("kind", "start_s", "end_s", "speech")  # after "warning", with --segments only


def csv_header(*, labels: Sequence[str], segments: bool) -> list[str]:
    """The header of ``ser analyze --format csv`` (``segments``: with ``--segments``).

    Parameters
    ----------
    labels : sequence of str
        The model's labels, in order (one ``p_<label>`` column each).
    segments : bool
        With ``--segments``: the file columns, then ``kind, start_s, end_s, speech``.

    Returns
    -------
    list of str
        ``path, ok, error, duration_s, speech_s, label, confidence, uncertain, p_<label>..., warning``
        (plus ``kind, start_s, end_s, speech`` with ``segments``); "warning" and the segment columns
        come last so that every earlier column keeps its position.
    """
    head = [*FILE_COLUMNS, *(f"p_{k}" for k in labels), "warning"]
    return head + list(SEGMENT_COLUMNS) if segments else head


def csv_rows(result: FileResult, *, labels: Sequence[str], segments: bool) -> list[list[str | int]]:
    """The rows of one file in ``ser analyze --format csv`` (see :func:`csv_header`).

    Without ``segments``: one row. With ``segments``: the same file row (``kind`` = ``file``,
    empty ``start_s, end_s, speech``), then one row per analysis window (``kind`` = ``segment``:
    ``ok, error, duration_s, speech_s`` empty; ``label``, ``confidence`` (the label's probability)
    and ``uncertain`` empty on silence; ``warning`` the file's). A failed file has its file row only.

    Parameters
    ----------
    result : FileResult
        One file's result (names that are not valid UTF-8 are written with ``\\xNN`` escapes).
    labels : sequence of str
        The model's labels, in order.
    segments : bool
        Also the rows of the windows.

    Returns
    -------
    list of list
        The rows, each as long as :func:`csv_header`.
    """
    r = result
    d = r.to_dict()  # paths and messages as valid Unicode (non-UTF-8 bytes as \\xNN)
    path, warning = d["path"], d["warning"] or ""
    row: list[str | int] = [path, int(r.ok), d["error"] or "", _fmt(r.duration_s), _fmt(r.speech_s),
                            r.label or "", _fmt(r.confidence, 4), int(r.uncertain) if r.ok else "",
                            *[_fmt(r.probabilities.get(k), 4) for k in labels], warning]
    if not segments:
        return [row]
    rows = [[*row, "file", "", "", ""]]
    for s in r.segments:
        conf = _fmt(s.probabilities.get(s.label), 4) if s.speech and s.label else ""
        rows.append([path, "", "", "", "", s.label or "", conf, int(s.uncertain) if s.speech else "",
                     *[_fmt(s.probabilities.get(k), 4) for k in labels], warning,
                     "segment", f"{s.start_s:.3f}", f"{s.end_s:.3f}", int(s.speech)])
    return rows


class _Writer:
    def __init__(self, out: TextIO, fmt: str, labels: Sequence[str], segments: bool) -> None:
        self.out = out
        self.fmt = fmt
        self.labels = list(labels)
        self.segments = segments
        self.count = 0
        self._csv: Any = None
        self._path_width = 40

    def begin(self, paths: Sequence[str]) -> None:
        if self.fmt == "json":
            self.out.write("[")
        elif self.fmt == "csv":
            import csv

            self._csv = csv.writer(self.out, lineterminator="\n")
            self._csv.writerows([csv_header(labels=self.labels, segments=self.segments)])
        else:
            self._path_width = max(12, min(60, max((len(p) for p in paths), default=12)))
            head = f"{'file':<{self._path_width}}  {'duration':>8}  {'speech':>7}  {'emotion':<10} {'conf':>5}  top"
            self.out.write(head + "\n")
        self.out.flush()

    def write(self, r: FileResult) -> None:
        d = r.to_dict()  # paths and messages as valid Unicode (non-UTF-8 bytes as \\xNN)
        if not self.segments:
            d["segments"] = []
        path = d["path"]
        if self.fmt == "json":
            try:
                text = json.dumps(d, ensure_ascii=False, allow_nan=False)
            except ValueError:  # a non-finite number slipped through: never write bare NaN
                import dataclasses

                bad = dataclasses.replace(r, ok=False, error=f"{path}: non-finite values in the result", label=None,
                                          confidence=None, probabilities={}, segments=[])
                text = json.dumps(bad.to_dict(), ensure_ascii=False)
            self.out.write(("," if self.count else "") + "\n  " + text)
        elif self.fmt == "csv":
            self._csv.writerows(csv_rows(r, labels=self.labels, segments=self.segments))
        else:
            self._table_row(r, path)
        self.count += 1
        self.out.flush()

    def _table_row(self, r: FileResult, name: str) -> None:
        w = self._path_width
        if len(name) > w:
            name = "…" + name[-(w - 1) :]
        if not r.ok:
            self.out.write(f"{name:<{w}}  {'':>8}  {'':>7}  {'FAILED':<10} {'':>5}  see stderr\n")
            return
        if r.label is None:
            emotion, conf, top = "no speech", "", ""
        else:
            emotion, conf = ("uncertain" if r.uncertain else r.label), f"{r.confidence:.2f}"
            best = sorted(r.probabilities.items(), key=lambda kv: -kv[1])[:3]
            top = " ".join(f"{k}={v:.2f}" for k, v in best)
        self.out.write(f"{name:<{w}}  {r.duration_s:>7.2f}s  {r.speech_s:>6.2f}s  {emotion:<10} {conf:>5}  {top}\n")
        if r.warning:
            self.out.write(f"    partial: {r.warning}\n")
        if self.segments:
            for s in r.segments:
                lab = "uncertain" if s.uncertain else (s.label or "-")
                p = s.probabilities.get(s.label, 0.0) if s.label else 0.0
                sp = "speech" if s.speech else "silence"
                self.out.write(f"    {s.start_s:8.2f}-{s.end_s:<8.2f} {sp:<8} {lab:<10} {p:.2f}\n")

    def end(self) -> None:
        if self.fmt == "json":
            self.out.write("\n]\n" if self.count else "]\n")
        self.out.flush()


class _StdoutGuard:
    """Where ``ser analyze`` writes its results, kept apart from C libraries' output.

    When ``sys.stdout`` is the process's file descriptor 1, the results go to a
    duplicate of it while fd 1 itself points at stderr for the duration, so a
    line that a C library prints (OpenBLAS's "too many memory regions", ...) can
    never land in the CSV or JSON. CSV and JSON are always UTF-8; the table
    uses stdout's own encoding; characters it cannot encode become backslash
    escapes instead of a ``UnicodeEncodeError``. Anything else (a test's capture
    object) is written to as it is.
    """

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt
        self._saved = -1
        self.out: TextIO = sys.stdout

    def __enter__(self) -> TextIO:
        import contextlib
        import io

        stream = sys.stdout
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = -1
        encoding = "utf-8" if self._fmt in ("csv", "json") else (getattr(stream, "encoding", None) or "utf-8")
        if fd != 1:
            if isinstance(stream, io.TextIOWrapper):
                with contextlib.suppress(ValueError, OSError):
                    stream.reconfigure(errors="backslashreplace")
            self.out = stream
            return stream
        stream.flush()
        self._saved = os.dup(1)
        os.dup2(2, 1)
        raw = open(self._saved, "wb", buffering=0, closefd=False)  # closed in __exit__
        self.out = io.TextIOWrapper(raw, encoding=encoding, errors="backslashreplace", newline="\n",
                                    write_through=True)
        return self.out

    def __exit__(self, *exc: object) -> None:
        import contextlib

        if self._saved < 0:
            return
        with contextlib.suppress(OSError):  # a closed pipe: nothing is held back (write_through)
            self.out.close()
        os.dup2(self._saved, 1)
        os.close(self._saved)
        self._saved = -1


def _cap_workers(n: int) -> int:
    """``--workers`` limited to what the machine can use, with a note on stderr."""
    from ser_engine.analysis import MAX_WORKERS

    if n > MAX_WORKERS:
        _err(f"--workers {n} is more than this machine can use; using {MAX_WORKERS} "
             f"(at most 4 per CPU core and 32 in all)")
        return MAX_WORKERS
    return n


def cmd_analyze(args: argparse.Namespace) -> int:
    import contextlib
    import signal

    cancel = threading.Event()

    # Ctrl-C: the first one stops the batch at the next window of every file in
    # flight (well under a second) and the results so far are closed properly
    # (also when it comes while the model loads); a second one stops at once.
    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        with contextlib.suppress(OSError):  # os.write: safe inside a signal handler
            os.write(2, b"\nser: stopping (Ctrl-C again to stop at once)\n")

    old_handler: Any = None
    if threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        return _analyze(args, cancel)
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)


def _analyze(args: argparse.Namespace, cancel: threading.Event) -> int:
    """``ser analyze`` once SIGINT sets ``cancel``."""
    from ser_engine.analysis import FileResult, analyze_paths
    from ser_engine.audio import display_path, find_audio_files

    model = _load_model(args.model)
    if args.profile:
        model, _ = _load_profile(args.profile, model)
    window_s, hop_s = _window_hop(args, model)
    workers = _cap_workers(args.workers)
    files, problems = find_audio_files(args.paths)
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    progress = _Progress(len(files) + len(problems), show)
    failed = 0
    with _StdoutGuard(args.format) as out:
        writer = _Writer(out, args.format, model.labels, args.segments)
        writer.begin([display_path(f) for f in files] + [display_path(p) for p, _ in problems])
        try:
            for p, msg in problems:
                writer.write(FileResult(path=p, ok=False, error=msg))
                progress.message(msg)
                progress.update(False)
                failed += 1
            for res in analyze_paths(files, model, window_s=window_s, hop_s=hop_s,
                                     gate_sensitivity=args.sensitivity, workers=workers, cancel=cancel,
                                     expand=False):
                if cancel.is_set() and not res.ok:  # stopped by Ctrl-C, not a failure of the file
                    break
                writer.write(res)
                if not res.ok:
                    failed += 1
                    progress.message(str(res.to_dict()["error"]))
                elif res.warning:
                    progress.message(f"warning: {display_path(res.path)}: {res.to_dict()['warning']}")
                progress.update(res.ok)
                if cancel.is_set():
                    break
        except KeyboardInterrupt:
            cancel.set()
            raise
        finally:
            progress.clear()
            writer.end()
    if cancel.is_set():
        _err(f"interrupted: {writer.count} of {len(files) + len(problems)} results written")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK


# ----------------------------------------------------------------------------- listen
def cmd_listen(args: argparse.Namespace) -> int:
    """``ser listen``: one line per hop until --duration, Ctrl+C (exit 130) or SIGTERM/SIGHUP
    (exit 128 + signal: the recording is closed properly first).

    With ``--record``, a recording that cannot be written (disk full...) ends the
    command: the message names the file and the reason and says what was kept; exit 1.
    """
    import contextlib
    import signal

    from ser_engine.errors import ParameterError
    from ser_engine.live import LiveSession, RecordingError
    from ser_engine.stream import Prediction, StreamSettings

    model = _load_model(args.model)
    profile = None
    if args.profile:
        model, profile = _load_profile(args.profile, model)
    window_s, hop_s = _window_hop(args, model)
    try:
        settings = StreamSettings(
            window_s=window_s,
            hop_s=hop_s,
            smoothing=args.smoothing,
            gate_sensitivity=args.sensitivity,
        )
    except ParameterError as exc:
        _err(str(exc))
        return EXIT_USAGE
    out = sys.stdout
    lock = threading.Lock()
    errors: list[SerError] = []
    done = threading.Event()

    def on_prediction(p: Prediction) -> None:
        if args.format == "jsonl":
            line = json.dumps(p.to_dict(), ensure_ascii=False)
        elif p.speech:
            probs = " ".join(f"{k}={v:.2f}" for k, v in p.probabilities.items())
            lab = "uncertain" if p.uncertain else p.label
            line = f"{p.end_s:9.2f}s  speech   {lab:<10} {p.confidence:.2f}  {probs}"
        else:
            line = f"{p.end_s:9.2f}s  silence  {'-':<10} {'':4}  level {p.level_dbfs:.0f} dBFS"
        with lock:
            try:
                out.write(line + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):
                done.set()
        # --duration is stream time: predictions end at hop, 2*hop, ... from the first audio
        if args.duration is not None and p.end_s >= args.duration - 1e-6:
            done.set()

    def on_error(e: SerError) -> None:
        errors.append(e)
        done.set()

    def on_recording_error(e: RecordingError) -> None:
        errors.append(e)
        done.set()

    signalled: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:  # main thread, between two waits
        signalled.append(signum)
        done.set()

    device = args.device if args.device is not None and args.device.strip() else None  # '': the default
    session = LiveSession(model, device=device, settings=settings, on_prediction=on_prediction,
                          on_error=on_error, on_recording_error=on_recording_error)
    previous: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None:
            with contextlib.suppress(ValueError):  # not the main thread (cmd_listen called from a thread)
                previous[signum] = signal.signal(signum, on_signal)
    try:
        return _listen(args, session, settings, profile, done, errors, signalled)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _listen(args: argparse.Namespace, session: Any, settings: Any, profile: Any, done: threading.Event,
            errors: list[SerError], signalled: list[int]) -> int:
    session.start()
    if args.format == "table":
        inp = session.input
        dev = inp.device.name if inp is not None and inp.device is not None else "?"
        rate = inp.device_rate if inp is not None else 0
        _err(f"listening on {dev!r} at {rate} Hz; window {settings.window_s:g} s, hop {settings.hop_s:g} s"
             + (f"; voice profile {profile.name!r}" if profile is not None else "")
             + ("" if args.duration else "; Ctrl+C to stop"))
    interrupted = False
    try:
        if args.record:
            session.start_recording(args.record, args.record + ".csv")
        # --duration counts from the moment audio flows (opening a device can take a second or
        # more), and it ends after the prediction reaching it; the wall-clock deadline is a
        # safety net in case the worker falls behind
        while not done.is_set() and not session.wait_for_audio(0.05):
            pass
        deadline = None if args.duration is None else time.monotonic() + args.duration + max(2.0, settings.hop_s * 4)
        while not done.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            done.wait(0.05)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        session.stop()  # closes the recording (a failure to do so arrives in errors)
    stats = session.stats()
    if stats.overflows or stats.lost_samples:
        _err(f"warning: {stats.overflows} input overflows, {stats.lost_samples} samples lost")
    for e in errors:
        _err(str(e))
    if errors:
        return EXIT_FAILED
    if interrupted:
        _err("interrupted")
        return EXIT_INTERRUPTED
    if signalled:
        if args.record:
            _err(f"stopped by signal {signalled[0]}; the recording is saved: {args.record}")
        return 128 + signalled[0]
    return EXIT_OK


# ----------------------------------------------------------------------------- calibrate
def cmd_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ser_engine.errors import ProfileError
    from ser_engine.profile import profile_from_files

    out = Path(args.output)
    if out.is_dir():
        raise ProfileError(f"{out}: is a folder; --output needs a file name such as {out / 'voice.json'}")
    if not out.parent.is_dir():
        raise ProfileError(f"{out}: the folder {out.parent} does not exist")
    name = args.name if args.name is not None else out.stem
    if not name.strip():
        _err("error: --name must not be empty")
        return EXIT_USAGE
    model = _load_model(args.model)
    profile = profile_from_files(args.files, model=model, name=name, gate_sensitivity=args.sensitivity)
    profile.save(out)

    def top(probs: dict[str, float]) -> str:
        k = max(probs, key=lambda lab: probs[lab])
        return f"{k} {probs[k]:.2f}"

    n = len(args.files)
    print(f"voice profile {profile.name!r} written to {out}")
    print(f"  speech used: {profile.speech_s:.1f} s in {profile.n_windows} windows from {n} file{'s' * (n != 1)}")
    print(f"  on this speech the model said {top(profile.before)} before, {top(profile.after)} after calibration")
    print(f"  use it with: ser analyze --profile {out} ...  /  ser listen --profile {out}")
    return EXIT_OK


# ----------------------------------------------------------------------------- devices / info
def cmd_devices(args: argparse.Namespace) -> int:
    from ser_engine.live import list_input_devices

    devices = list_input_devices()
    if args.format == "json":
        print(json.dumps([d.to_dict() for d in devices], indent=2))
        return EXIT_OK
    if not devices:
        _err("no audio input devices found")
        return EXIT_FAILED
    print(f"{'':2}{'index':>5}  {'rate':>8}  {'ch':>3}  name")
    for d in devices:
        mark = "* " if d.is_default else "  "
        api = f"  ({d.hostapi})" if d.hostapi else ""
        print(f"{mark}{d.index:>5}  {d.default_samplerate:>7.0f}  {d.max_input_channels:>3}  {d.name}{api}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    meta = model.metadata
    if args.format == "json":
        data = meta.to_dict()
        data["path"] = str(model.path)
        data["supports_voice_calibration"] = meta.voice_reference is not None
        data["uncertainty_threshold"] = meta.uncertainty_threshold
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    for k, v in _info_rows(model):
        print(f"{k:<{_INFO_WIDTH}}  {v}")
    return EXIT_OK


_INFO_WIDTH = 21


def _uar(metrics: dict[str, Any], key: str) -> str | None:
    """``metrics[key]["all"]`` as "UAR 0.594 (n=4784)", or None when not recorded."""
    block = metrics.get(key)
    allm = block.get("all") if isinstance(block, dict) else None
    if not isinstance(allm, dict) or not isinstance(allm.get("uar"), (int, float)):
        return None
    n = allm.get("n")
    return f"UAR {allm['uar']:.3f}" + (f" (n={n})" if isinstance(n, int) else "")


def _info_rows(model: EmotionModel) -> list[tuple[str, str]]:
    """The readable summary of ``ser info``: (field, text) rows."""
    meta = model.metadata
    fc = meta.feature_config
    prov, metrics = meta.provenance, meta.metrics
    onnx = model.path
    try:
        size = f"model.onnx {onnx.stat().st_size / 1024:.0f} KB"
    except OSError:
        size = "model.onnx size unknown"
    n = len(meta.labels)
    rows = [
        ("model", f"{meta.name} ({size}) in {model.path.parent}"),
        ("emotions", f"{n}: {', '.join(meta.labels)} (chance UAR {1 / n:.3f})"),
        ("window", f"{fc.window_s:g} s ({fc.n_frames} frames), hop {fc.hop_s:g} s; "
                   f"log-mel {fc.n_mels} bands at {fc.sample_rate / 1000:g} kHz"),
    ]
    corpora = prov.get("corpora")
    rows.append(("trained on", ", ".join(map(str, corpora)) if isinstance(corpora, list) and corpora
                 else "not recorded"))
    held = prov.get("held_out_corpora")
    if isinstance(held, dict) and held:
        parts = [f"{', '.join(map(str, v))} ({str(k).replace('unseen_', '').replace('val', 'validation')})"
                 for k, v in held.items() if isinstance(v, list) and v]
        rows.append(("held-out corpora", "; ".join(parts) or "none"))
    else:
        rows.append(("held-out corpora", "not recorded"))
    test = _uar(metrics, "test_speakers")
    unseen = _uar(metrics, "unseen_corpora")
    rows.append(("test speakers", test + " (speakers of the training corpora never trained on)" if test
                 else "not recorded"))
    rows.append(("unseen corpora", unseen + " (corpora never trained on: nearer to what new voices get)" if unseen
                 else "not recorded"))
    rows.append(("voice calibration",
                 f"supported, strength {meta.voice_strength:g} (reference: "
                 f"{meta.voice_reference_fitted_on or 'not described'}); see `ser calibrate`"
                 if meta.voice_reference is not None else "not supported (model.json has no voice_calibration)"))
    rows.append(("uncertainty threshold",
                 f"{meta.uncertainty_threshold:g} (a top probability below it is shown as 'uncertain')"
                 if meta.uncertainty_threshold else "none (predictions are never marked uncertain)"))
    try:
        import onnxruntime

        ort = str(onnxruntime.__version__)
    except ImportError:  # pragma: no cover - the model could not have loaded
        ort = "not installed"
    libs = prov.get("libraries")
    exported = libs.get("onnxruntime") if isinstance(libs, dict) else None
    rows.append(("ONNX Runtime", ort + (f" (model checked with {exported})" if exported else "")))
    date = prov.get("date")
    if isinstance(date, str) and date:
        rows.append(("trained", date))
    rows.append(("ser", f"{__version__}; `ser info --json` prints the full metadata"))
    return rows


COMMANDS = {"analyze": cmd_analyze, "listen": cmd_listen, "calibrate": cmd_calibrate, "devices": cmd_devices,
            "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    from ser_engine.privacy import disable_telemetry

    disable_telemetry()  # before anything imports onnxruntime: nothing leaves the machine
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. `ser analyze ... | head`): not an error of ours
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_OK
    except _UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except SerError as exc:
        _err(str(exc))
        return EXIT_FAILED
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _err(f"{where}{exc.strerror or exc}")
        return EXIT_FAILED
    except ImportError as exc:
        _err(f"a required package is missing or broken: {exc} (reinstall ser)")
        return EXIT_FAILED
    except MemoryError:
        _err("out of memory")
        return EXIT_FAILED
    except Exception as exc:  # a bug: say so in one line; SER_DEBUG=1 shows the traceback
        if os.environ.get("SER_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (run with SER_DEBUG=1 for details)")
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
