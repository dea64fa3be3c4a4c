"""``ser listen`` (live predictions from an input device) and ``ser devices`` (the input devices)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser_engine.cli.analyze import emotion_text
from ser_engine.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    apply_min_confidence,
    err,
    load_model,
    load_profile,
    say,
    window_hop,
)
from ser_engine.errors import OutputError, SerError
from ser_engine.logs import get_logger

if TYPE_CHECKING:
    from ser_engine.live.stream import Prediction

__all__ = ["cmd_devices", "cmd_listen", "listen_line"]

logger = get_logger(__name__)


def listen_line(p: Prediction, *, fmt: str, affect: Sequence[str] = ()) -> str:
    """One ``ser listen`` line for a prediction (without the newline).

    Parameters
    ----------
    p : Prediction
    fmt : {"table", "jsonl"}
        ``table``: time, speech/silence, emotion (or ``uncertain (sad?)`` with the model's guess), confidence, then the
        affect scores (``arousal=0.82 valence=0.40``, a model with affect only) and the
        probabilities; ``jsonl``: :func:`ser_engine.files.export.prediction_dict`.
    affect : sequence of str
        The model's affect dimensions; empty for none.

    Returns
    -------
    str
    """
    if fmt == "jsonl":
        from ser_engine.files.export import prediction_dict

        return json.dumps(prediction_dict(p, affect=affect), ensure_ascii=False)
    if not p.speech:
        return f"{p.end_s:9.2f}s  silence  {'-':<10} {'':4}  level {p.level_dbfs:.0f} dBFS"
    probs = " ".join(f"{k}={v:.2f}" for k, v in p.probabilities.items())
    lab = emotion_text(p.label, uncertain=p.uncertain)  # "uncertain (sad?)", as ser analyze prints it
    # a model's affect scores first, two spaces before the emotions' probabilities
    scores = " ".join(f"{k}={p.affect[k]:.2f}" for k in affect if k in p.affect)
    if scores:
        probs = f"{scores}  {probs}"
    return f"{p.end_s:9.2f}s  speech   {lab:<10} {p.confidence:.2f}  {probs}"


def cmd_listen(args: argparse.Namespace) -> int:
    """Run ``ser listen``: one line per hop until --duration, Ctrl+C or SIGTERM/SIGHUP.

    Ctrl+C exits 130; SIGTERM/SIGHUP exit 128 + the signal; either way the recording is
    closed properly first and said to be saved. The signals are caught from the very
    start (before the model loads and the device opens), also when the process inherited
    SIGINT as ignored (a background job of a script), so a signal at any point of the
    start-up stops the command promptly; a second Ctrl+C stops at once. With
    ``--record``, an existing WAV or CSV is refused unless ``--overwrite`` is given, and
    a recording that cannot be written (disk full...) ends the command: the message
    names the file and the reason and says what was kept; exit 1. A bug on the
    session's worker thread is raised here (its cause), for
    :func:`ser_engine.cli.main.main` to report as an internal error.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``ser listen`` options.

    Returns
    -------
    int
        The exit status.
    """
    done = threading.Event()
    signalled: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:  # main thread, between two bytecodes
        del frame  # a signal handler's signature
        if signum == signal.SIGINT and signalled:  # a second Ctrl+C: stop at once
            raise KeyboardInterrupt
        signalled.append(signum)
        done.set()

    previous: dict[int, Any] = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None:
            with contextlib.suppress(ValueError):  # not the main thread (cmd_listen called from a thread)
                previous[signum] = signal.signal(signum, on_signal)
    try:
        return _listen(args, done, signalled)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _listen(args: argparse.Namespace, done: threading.Event, signalled: list[int]) -> int:
    """Run ``ser listen`` with the signals setting ``done`` (and listed in ``signalled``)."""
    from ser_engine.errors import ParameterError
    from ser_engine.live.session import LiveSession, RecordingError
    from ser_engine.live.stream import StreamSettings

    if args.overwrite and not args.record:
        raise UsageError("argument --overwrite: only with --record")
    record = _record_paths(args)
    model = apply_min_confidence(args, load_model(args.model))
    profile = None
    if args.profile:
        model, profile = load_profile(args.profile, model)
    window_s, hop_s = window_hop(args, model)
    try:
        settings = StreamSettings(
            window_s=window_s,
            hop_s=hop_s,
            smoothing=args.smoothing,
            gate_sensitivity=args.sensitivity,
        )
    except ParameterError as exc:
        err(str(exc))
        return EXIT_USAGE
    out = sys.stdout
    lock = threading.Lock()
    errors: list[SerError] = []

    affect = model.affect_names

    def on_prediction(p: Prediction) -> None:
        line = listen_line(p, fmt=args.format, affect=affect)
        with lock:
            try:
                out.write(line + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):  # the reader went away: stop, not an error
                done.set()
            except OSError as exc:  # a full disk behind stdout: say so and stop (exit 1)
                errors.append(OutputError(f"cannot write the output to stdout: {exc.strerror or exc}"))
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

    def on_input_silence(message: str | None) -> None:  # worker thread; the session goes on
        err(f"warning: {message}" if message is not None else "the input delivers sound again")

    device = args.device if args.device is not None and args.device.strip() else None  # '': the default
    session = LiveSession(model, device=device, settings=settings, on_prediction=on_prediction,
                          on_error=on_error, on_recording_error=on_recording_error,
                          on_input_silence=on_input_silence)
    interrupted = False
    recorded = False
    try:
        if not done.is_set():  # (a signal during the model's loading: the device is never opened)
            logger.debug("opening the input device %s", "(default)" if device is None else repr(device))
            session.start()
            logger.debug("input device open, worker running")
        if args.format == "table" and not done.is_set():
            inp = session.input
            dev = inp.device.name if inp is not None and inp.device is not None else "?"
            rate = inp.device_rate if inp is not None else 0
            err(f"listening on {dev!r} at {rate} Hz; window {settings.window_s:g} s, hop {settings.hop_s:g} s"
                + (f"; voice profile {profile.name!r}" if profile is not None else "")
                + (f"; minimum confidence {model.min_confidence:g}" if model.min_confidence is not None else "")
                + ("" if args.duration else "; Ctrl+C to stop"))
        if record is not None and not done.is_set():
            session.start_recording(*record, overwrite=args.overwrite)
            recorded = True
            logger.debug("recording to %s", record[0])
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
    except KeyboardInterrupt:  # a second Ctrl+C
        interrupted = True
    finally:
        session.stop()  # closes the recording (a failure to do so arrives in errors)
    stats = session.stats()
    if stats.overflows or stats.lost_samples:
        err(f"warning: {stats.overflows} input overflows, {stats.lost_samples} samples lost")
    from ser_engine.live.session import LiveInternalError

    internal = [e for e in errors if isinstance(e, LiveInternalError)]
    for e in errors:
        if e not in internal:
            err(str(e))
    if internal:  # a bug: main() prints the one line and logs the traceback
        raise internal[0].__cause__ or internal[0]
    if errors:
        return EXIT_FAILED
    saved = f"; the recording is saved: {record[0]}" if record is not None and recorded else ""
    if interrupted or (signalled and signalled[0] == signal.SIGINT):
        err(f"interrupted{saved}")
        return EXIT_INTERRUPTED
    if signalled:
        err(f"stopped by signal {signalled[0]}{saved}")
        return 128 + signalled[0]
    return EXIT_OK


def _record_paths(args: argparse.Namespace) -> tuple[str, str] | None:
    """``--record WAV``'s files (WAV and WAV.csv), refused when one exists and ``--overwrite`` is not given.

    Checked before the device opens, so nothing is started for a refused name; the
    recorder creates the files exclusively too, so a file appearing in between is not
    replaced either.

    Raises
    ------
    RecordingExistsError
        A file exists (the message says how to replace it).
    """
    from ser_engine.live.session import RecordingExistsError

    if not args.record:
        return None
    wav, csv = args.record, args.record + ".csv"
    if not args.overwrite:
        for path in (wav, csv):
            if os.path.lexists(path):
                exc = RecordingExistsError(Path(path))
                exc.args = (f"{path}: already exists; not replaced (choose another name, or pass --overwrite "
                            "to replace it)",)
                raise exc
    return wav, csv


def cmd_devices(args: argparse.Namespace) -> int:
    """Run ``ser devices``: list the input devices, the default marked ``*``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``ser devices`` options.

    Returns
    -------
    int
        The exit status.
    """
    from ser_engine.live.inputs import list_input_devices

    devices = list_input_devices()
    if args.format == "json":
        say(json.dumps([d.to_dict() for d in devices], indent=2))
        return EXIT_OK
    if not devices:
        err("no audio input devices found")
        return EXIT_FAILED
    say(f"{'':2}{'index':>5}  {'rate':>8}  {'ch':>3}  name")
    for d in devices:
        mark = "* " if d.is_default else "  "
        api = f"  ({d.hostapi})" if d.hostapi else ""
        say(f"{mark}{d.index:>5}  {d.default_samplerate:>7.0f}  {d.max_input_channels:>3}  {d.name}{api}")
    return EXIT_OK
