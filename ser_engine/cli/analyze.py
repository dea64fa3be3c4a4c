"""``ser analyze``: the dominant emotion of files and folders, as a table, CSV or JSON.

CSV and JSON are written by :class:`ser_engine.files.export.ResultWriter`, the exporter the
app uses too. Results go to stdout as they come (in order); messages and the progress
bar go to stderr. The first Ctrl-C stops the batch at the next window of every file in
flight and closes the output properly (exit 130); a second one stops at once. SIGTERM
and SIGHUP stop it the same way (exit 143, 129): CSV and JSON are always complete.
Output that cannot be written (a full disk behind stdout) is an
:class:`~ser_engine.errors.OutputError` saying so, exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import signal
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ser_engine.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    apply_min_confidence,
    err,
    load_model,
    load_profile,
    window_hop,
)

if TYPE_CHECKING:
    from ser_engine.files.analysis import FileResult

__all__ = ["cmd_analyze", "emotion_text"]


class _Progress:
    r"""A one-line progress bar on stderr (plain text, redrawn with \r)."""

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
        err(text)


def _printable(text: str) -> str:
    r"""Return ``text`` on one line: control and other unprintable characters as escapes (``\n``, ``\x1b``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fit(text: str, width: int) -> str:
    """Pad ``text`` to ``width`` columns, or keep its end behind "…" when it is wider."""
    w = _width(text)
    if w > width:
        kept: list[str] = []
        room = width - 1  # the ellipsis takes one column
        for c in reversed(text):
            room -= _width(c)
            if room < 0:
                break
            kept.append(c)
        text = "…" + "".join(reversed(kept))
        w = _width(text)
    return text + " " * (width - w)


def emotion_text(label: str | None, *, uncertain: bool) -> str:
    """Return the table's emotion cell: the label, "uncertain (neutral?)" with the model's guess, "-" for none."""
    if label is None:
        return "-"
    return f"uncertain ({label}?)" if uncertain else label


class _TableWriter:
    """``ser analyze``'s default output: one aligned line per file (and per window with ``--segments``).

    An uncertain result (its top probability below the model's threshold or ``--min-confidence``)
    shows as "uncertain (neutral?)": the model's guess, with its probability in the ``conf``
    column, for files and windows alike. With ``--segments`` a second header line names the
    columns of the indented window rows (window, audio: speech or silence, emotion, conf).
    For a model with affect dimensions (``affect``), a column each (``arousal``, ``valence``: the
    score as 0.82, blank without speech) comes after ``conf`` and after each window's probability.
    """

    def __init__(self, out: TextIO, *, segments: bool, paths: Sequence[str], affect: Sequence[str] = (),
                 labels: Sequence[str] = ()) -> None:
        self.out = out
        self.segments = segments
        self.affect = tuple(affect)
        self.count = 0
        self._path_width = max(12, min(60, max((_width(_printable(p)) for p in paths), default=12)))
        # wide enough for the longest "uncertain (label?)" of the model's labels
        self._emotion_width = max([10] + [len(emotion_text(lab, uncertain=True)) for lab in labels])

    def _affect_cells(self, scores: dict[str, float] | None) -> str:
        """Return the affect cells (each right-aligned under its name, two spaces before); '' without affect."""
        return "".join(f"  {'' if scores is None or k not in scores else f'{scores[k]:.2f}':>{max(4, len(k))}}"
                       for k in self.affect)

    def begin(self) -> None:
        w, e = self._path_width, self._emotion_width
        heads = "".join(f"  {k:>{max(4, len(k))}}" for k in self.affect)
        self.out.write(f"{'file':<{w}}  {'duration':>8}  {'speech':>7}  {'emotion':<{e}} {'conf':>5}{heads}  top\n")
        if self.segments:  # the indented window rows under each file
            self.out.write(f"    {'window (s)':<17} {'audio':<8} {'emotion':<{e}} {'conf':>5}{heads}".rstrip()
                           + "\n")

    def write(self, r: FileResult) -> None:
        name = _printable(str(r.to_dict()["path"]))  # valid Unicode (non-UTF-8 bytes as \\xNN), one line
        w, e = self._path_width, self._emotion_width
        self.count += 1
        name = _fit(name, w)  # padded to w columns (a CJK character takes two)
        if not r.ok:
            self.out.write(f"{name}  {'':>8}  {'':>7}  {'FAILED':<{e}} {'':>5}"
                           f"{self._affect_cells(None)}  see stderr\n")
            return
        if r.label is None:
            emotion, conf, top = "no speech", "", ""
        else:
            emotion, conf = emotion_text(r.label, uncertain=r.uncertain), f"{r.confidence:.2f}"
            best = sorted(r.probabilities.items(), key=lambda kv: -kv[1])[:3]
            top = " ".join(f"{k}={v:.2f}" for k, v in best)
        self.out.write(f"{name}  {r.duration_s:>7.2f}s  {r.speech_s:>6.2f}s  {emotion:<{e}} {conf:>5}"
                       f"{self._affect_cells(r.affect)}  {top}\n")
        if r.warning:
            self.out.write(f"    partial: {r.warning}\n")
        if self.segments:
            for s in r.segments:
                lab = emotion_text(s.label, uncertain=s.uncertain)
                p = f"{s.probabilities.get(s.label, 0.0):.2f}" if s.label else ""
                sp = "speech" if s.speech else "silence"
                line = f"    {s.start_s:8.2f}-{s.end_s:<8.2f} {sp:<8} {lab:<{e}} {p:>5}{self._affect_cells(s.affect)}"
                self.out.write(line.rstrip() + "\n")

    def end(self) -> None:
        pass


class _ResultsFile(io.FileIO):
    """Unbuffered binary output to a descriptor it does not close; a failed write is an :class:`OutputError`.

    A full disk or an I/O error behind stdout is then reported as what it is ("cannot write
    the results to stdout: No space left on device"), also when it strikes again while the
    output is being closed. A closed pipe stays a ``BrokenPipeError`` (not an error of ours).
    """

    def __init__(self, fd: int) -> None:
        super().__init__(fd, "wb", closefd=False)

    def write(self, data: Any) -> int:
        from ser_engine.errors import OutputError

        try:
            return super().write(data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write the results to stdout: {exc.strerror or exc}") from exc


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
        raw = _ResultsFile(self._saved)  # its descriptor is closed in __exit__
        self.out = io.TextIOWrapper(raw, encoding=encoding, errors="backslashreplace", newline="\n",
                                    write_through=True)
        return self.out

    def __exit__(self, *exc: object) -> None:
        if self._saved < 0:
            return
        with contextlib.suppress(OSError):  # a closed pipe: nothing is held back (write_through)
            self.out.close()
        os.dup2(self._saved, 1)
        os.close(self._saved)
        self._saved = -1


def _cap_workers(n: int | None) -> int | None:
    """Limit ``--workers`` to what the machine can use, with a note on stderr (None: the default)."""
    from ser_engine.files.analysis import MAX_WORKERS

    if n is not None and n > MAX_WORKERS:
        err(f"--workers {n} is more than this machine can use; using {MAX_WORKERS} "
             f"(at most 4 per CPU core and 32 in all)")
        return MAX_WORKERS
    return n


@contextlib.contextmanager
def _where(args: argparse.Namespace, workers: int | None) -> Iterator[Callable[..., Iterator[FileResult]]]:
    """Yield what analyses the files: threads here (``--workers``) or a Dask cluster (``--cluster``).

    Entered inside :class:`_StdoutGuard`, so the processes of ``--cluster local:N`` inherit
    its diverted stdout; a scheduler that cannot be reached fails before any output.
    """
    from ser_engine.files.analysis import analyze_paths

    cluster = getattr(args, "cluster", None)
    if cluster is None:
        yield functools.partial(analyze_paths, workers=workers, expand=False)
        return
    from ser_engine.files.cluster import analyze_on_cluster, connect

    with connect(cluster) as client:
        yield functools.partial(analyze_on_cluster, client=client)


def cmd_analyze(args: argparse.Namespace) -> int:
    """Run ``ser analyze PATH...``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``ser analyze`` options.

    Returns
    -------
    int
        The exit status.
    """
    cancel = threading.Event()
    signalled: list[int] = []

    # Ctrl-C, SIGTERM, SIGHUP: the first one stops the batch at the next window of every
    # file in flight (well under a second) and the results so far are closed properly
    # (also when it comes while the model loads); a second one stops at once.
    def on_signal(signum: int, frame: Any) -> None:
        del frame  # a signal handler's signature
        if cancel.is_set():
            raise KeyboardInterrupt
        signalled.append(signum)
        cancel.set()
        note = b"Ctrl-C again to stop at once" if signum == signal.SIGINT else b"signal %d" % signum
        with contextlib.suppress(OSError):  # os.write: safe inside a signal handler
            os.write(2, b"\nser: stopping (" + note + b")\n")

    old_handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is not None:
                old_handlers[signum] = signal.signal(signum, on_signal)
    try:
        status = _analyze(args, cancel)
    finally:
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)
    if status == EXIT_INTERRUPTED and signalled and signalled[0] != signal.SIGINT:
        return 128 + signalled[0]  # stopped by SIGTERM/SIGHUP: 143/129, like `ser listen`
    return status


def _analyze(args: argparse.Namespace, cancel: threading.Event) -> int:
    """Run ``ser analyze`` with SIGINT setting ``cancel``."""
    from ser_engine.dsp.audio import display_path, find_audio_files
    from ser_engine.files.analysis import FileResult
    from ser_engine.files.export import ResultWriter, finite_result

    model = apply_min_confidence(args, load_model(args.model))
    if args.profile:
        model, _ = load_profile(args.profile, model)
    window_s, hop_s = window_hop(args, model)
    workers = _cap_workers(args.workers)
    files, problems = find_audio_files(args.paths)
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    progress = _Progress(len(files) + len(problems), show)
    failed = 0
    with _StdoutGuard(args.format) as out, _where(args, workers) as analyze:
        writer: ResultWriter | _TableWriter
        if args.format == "table":
            shown = [display_path(f) for f in files] + [display_path(p) for p, _ in problems]
            writer = _TableWriter(out, segments=args.segments, paths=shown, affect=model.affect_names,
                                  labels=model.labels if model.metadata.uncertainty_threshold > 0 else ())
        else:
            writer = ResultWriter(out, fmt=args.format, labels=model.labels, segments=args.segments,
                                  affect=model.affect_names)
        writer.begin()
        out.flush()
        try:
            for p, msg in problems:
                writer.write(FileResult(path=p, ok=False, error=msg))
                out.flush()
                progress.message(msg)
                progress.update(False)
                failed += 1
            for res in analyze(files, model, window_s=window_s, hop_s=hop_s, gate_sensitivity=args.sensitivity,
                               cancel=cancel):
                if cancel.is_set() and not res.ok:  # stopped by Ctrl-C, not a failure of the file
                    break
                res = finite_result(res, affect=model.affect_names)  # NaN is a failure in every format
                writer.write(res)
                out.flush()
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
            out.flush()
    if cancel.is_set():
        err(f"interrupted: {writer.count} of {len(files) + len(problems)} results written (the output is complete)")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK
