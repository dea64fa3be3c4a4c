"""``ser listen`` (live predictions from an input device) and ``ser devices`` (the input devices)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from typing import Any

from ser_engine.cli_common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    err,
    load_model,
    load_profile,
    window_hop,
)
from ser_engine.errors import SerError

__all__ = ["cmd_devices", "cmd_listen"]


def cmd_listen(args: argparse.Namespace) -> int:
    """Run ``ser listen``: one line per hop until --duration, Ctrl+C or SIGTERM/SIGHUP.

    Ctrl+C exits 130; SIGTERM/SIGHUP exit 128 + the signal, the recording closed
    properly first. With ``--record``, a recording that cannot be written (disk
    full...) ends the command: the message names the file and the reason and says
    what was kept; exit 1. A bug on the session's worker thread is raised here (its
    cause), for :func:`ser_engine.cli.main` to report as an internal error.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``ser listen`` options.

    Returns
    -------
    int
        The exit status.
    """
    from ser_engine.errors import ParameterError
    from ser_engine.live import LiveSession, RecordingError
    from ser_engine.stream import Prediction, StreamSettings

    model = load_model(args.model)
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
        del frame  # a signal handler's signature
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
        err(f"listening on {dev!r} at {rate} Hz; window {settings.window_s:g} s, hop {settings.hop_s:g} s"
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
        err(f"warning: {stats.overflows} input overflows, {stats.lost_samples} samples lost")
    from ser_engine.live import LiveInternalError

    internal = [e for e in errors if isinstance(e, LiveInternalError)]
    for e in errors:
        if e not in internal:
            err(str(e))
    if internal:  # a bug: main() prints the one line and logs the traceback
        raise internal[0].__cause__ or internal[0]
    if errors:
        return EXIT_FAILED
    if interrupted:
        err("interrupted")
        return EXIT_INTERRUPTED
    if signalled:
        if args.record:
            err(f"stopped by signal {signalled[0]}; the recording is saved: {args.record}")
        return 128 + signalled[0]
    return EXIT_OK


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
    from ser_engine.inputs import list_input_devices

    devices = list_input_devices()
    if args.format == "json":
        print(json.dumps([d.to_dict() for d in devices], indent=2))
        return EXIT_OK
    if not devices:
        err("no audio input devices found")
        return EXIT_FAILED
    print(f"{'':2}{'index':>5}  {'rate':>8}  {'ch':>3}  name")
    for d in devices:
        mark = "* " if d.is_default else "  "
        api = f"  ({d.hostapi})" if d.hostapi else ""
        print(f"{mark}{d.index:>5}  {d.default_samplerate:>7.0f}  {d.max_input_channels:>3}  {d.name}{api}")
    return EXIT_OK
