"""Qt side of a live session: the engine's worker-thread callbacks become queued Qt signals.

The engine's :class:`ser_engine.live.session.LiveSession` owns the sounddevice stream (whose
callback only writes into a ring buffer) and a worker thread running the
streamer and ONNX Runtime. It calls ``on_prediction``/``on_error`` from that
worker thread; :class:`LiveController` re-emits them as Qt signals with a
queued connection, so widgets are only ever touched on the GUI thread, and
the GUI thread never waits on audio or inference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy.typing as npt
from PySide6.QtCore import QObject, Qt, Signal, Slot

from desktop_app.app_log import details_hint
from ser_engine.inference.model import EmotionModel
from ser_engine.live.ringbuffer import RingBuffer
from ser_engine.live.session import LiveInternalError, LiveSession, LiveStats, RecordingError
from ser_engine.live.stream import Prediction, StreamSettings

__all__ = ["MAX_NAME_TRIES", "LiveController", "LiveSessionLike", "SessionFactory", "array_session_factory",
           "engine_session_factory"]

MAX_NAME_TRIES = 1000  # suffixes tried for a new recording's name before giving up


class LiveSessionLike(Protocol):
    """What the app needs from :class:`ser_engine.live.session.LiveSession`."""

    audio: RingBuffer

    def start(self) -> None:
        """Open the input and start the worker (raises the engine's error when it cannot)."""

    def stop(self) -> None:
        """Stop the worker and the input, closing any recording."""

    def stats(self) -> LiveStats:
        """Return the session's health figures."""

    def update_settings(self, settings: StreamSettings) -> None:
        """Apply new settings at the next hop."""

    def start_recording(self, wav_path: Path | str, csv_path: Path | str) -> None:
        """Record the 16 kHz audio and the predictions (raises RecordingError when it cannot)."""

    def stop_recording(self) -> Any:
        """Close the recording (raises RecordingError when its last data cannot be written)."""


SessionFactory = Callable[..., LiveSessionLike]


def engine_session_factory(
    model: EmotionModel,
    *,
    device: int | str | None,
    settings: StreamSettings,
    on_prediction: Callable[[Prediction], None],
    on_error: Callable[[BaseException], None],
) -> LiveSessionLike:
    """Build the engine's real microphone session (sounddevice input)."""
    return LiveSession(model, device=device, settings=settings, on_prediction=on_prediction, on_error=on_error)


def array_session_factory(samples: npt.ArrayLike, sample_rate: int, *, speed: float = 1.0) -> SessionFactory:
    """Return a factory of the engine's :class:`~ser_engine.live.session.LiveSession` fed from ``samples``.

    The session is the real one (its worker thread, resampler, streamer, model and
    recorder); only its input is an :class:`~ser_engine.live.inputs.ArrayInput`, which
    feeds ``samples`` (mono or ``(n, channels)``, at ``sample_rate``) at ``speed``
    times real time. The session ends by itself after the last sample
    (``session.finished``). Used by the self-test, demos and tests.
    """
    from ser_engine.live.inputs import ArrayInput

    def make(model: EmotionModel, *, device: int | str | None, settings: StreamSettings,
             on_prediction: Callable[[Prediction], None],
             on_error: Callable[[BaseException], None]) -> LiveSessionLike:
        del device  # a SessionFactory's signature: the array is the input
        return LiveSession(model, settings=settings, on_prediction=on_prediction, on_error=on_error,
                           input_factory=lambda: ArrayInput(samples, sample_rate, speed=speed))

    return make


class LiveController(QObject):
    """Owns at most one live session and turns its callbacks into GUI-thread signals.

    Signals
    -------
    prediction(Prediction)
        One per hop, delivered on the GUI thread.
    failed(str)
        The session stopped because of an error (device lost...; a bug:
        :attr:`last_error_internal` is then True and the message names the log file).
    running_changed(bool)
    recording_changed(str)
        The WAV path while recording, "" when a recording stops.
    recording_saved(str)
        A recording was closed complete: its WAV path (the CSV is beside it). Sent
        whichever way it stopped: the Record button, Stop, or a restart.
    recording_failed(str)
        A recording stopped because its files could not be written (disk full...):
        the engine's message (file, reason, what was kept). Listening goes on.
    input_silence(str)
        The input, after real audio, delivers exact digital silence (its source was removed
        or muted): the engine's message; "" when sound comes back. Listening goes on.
    """

    prediction = Signal(object)
    failed = Signal(str)
    running_changed = Signal(bool)
    recording_changed = Signal(str)
    recording_saved = Signal(str)
    recording_failed = Signal(str)
    input_silence = Signal(str)
    # internal: emitted from the worker thread, delivered queued on the GUI thread
    _prediction_from_worker = Signal(object)
    _error_from_worker = Signal(object)
    _recording_error_from_worker = Signal(object)
    _silence_from_worker = Signal(object)

    def __init__(self, model: EmotionModel, *, factory: SessionFactory | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.factory: SessionFactory = factory or engine_session_factory
        self.needs_device = factory is None  # the real microphone session needs an input device
        self.session: LiveSessionLike | None = None
        self.recording_path: Path | None = None
        self.last_error: str | None = None
        self.last_error_internal = False  # the last error was a bug (its traceback is in the log)
        self.last_recording_error: str | None = None
        self._generation = 0
        self._prediction_from_worker.connect(self._deliver_prediction, Qt.ConnectionType.QueuedConnection)
        self._error_from_worker.connect(self._deliver_error, Qt.ConnectionType.QueuedConnection)
        self._recording_error_from_worker.connect(self._deliver_recording_error, Qt.ConnectionType.QueuedConnection)
        self._silence_from_worker.connect(self._deliver_silence, Qt.ConnectionType.QueuedConnection)

    @property
    def running(self) -> bool:
        """Whether a session is running."""
        return self.session is not None

    # ------------------------------------------------------------------ control (GUI thread)
    def start(self, *, device: int | str | None, settings: StreamSettings) -> None:
        """Open the device and start the worker. Raises the engine's error if it cannot open."""
        if self.session is not None:
            self.stop()
        self._generation += 1
        gen = self._generation

        def on_prediction(p: Prediction) -> None:  # worker thread: emit only
            self._prediction_from_worker.emit((gen, p))

        def on_error(exc: BaseException) -> None:  # worker thread: emit only
            self._error_from_worker.emit((gen, exc))

        def on_recording_error(exc: BaseException) -> None:  # worker (or stopping) thread: emit only
            self._recording_error_from_worker.emit((gen, exc))

        session = self.factory(self.model, device=device, settings=settings,
                               on_prediction=on_prediction, on_error=on_error)
        if hasattr(session, "on_recording_error"):  # the engine's session reports failed recordings
            session.on_recording_error = on_recording_error
        if hasattr(session, "on_input_silence"):  # ... and an input turned to digital silence

            def on_input_silence(message: str | None) -> None:  # worker thread: emit only
                self._silence_from_worker.emit((gen, message or ""))

            session.on_input_silence = on_input_silence
        session.start()
        self.session = session
        self.last_error = None
        self.last_error_internal = False
        self.running_changed.emit(True)

    def stop(self) -> None:
        """Stop the session (keeps any recording made so far)."""
        session = self.session
        if session is None:
            return
        self._generation += 1  # late callbacks from the old session are ignored
        if self.recording_path is not None:
            self.stop_recording()
        self.session = None
        try:
            session.stop()
        finally:
            self.running_changed.emit(False)

    def update_settings(self, settings: StreamSettings) -> None:
        """Apply new settings to the running session (from its next hop)."""
        if self.session is not None:
            self.session.update_settings(settings)

    def stats(self) -> LiveStats | None:
        """Return the running session's health figures (None when not listening)."""
        return None if self.session is None else self.session.stats()

    def start_recording(self, wav_path: Path, csv_path: Path) -> None:
        """Record to ``wav_path`` and ``csv_path`` (created 0600; a missing folder 0700)."""
        from ser_engine.live.recorder import make_private_folder

        if self.session is None:
            raise RuntimeError("start the microphone before recording")
        make_private_folder(wav_path.parent)
        self.session.start_recording(wav_path, csv_path)
        self.recording_path = wav_path
        self.last_recording_error = None
        self.recording_changed.emit(str(wav_path))

    def start_new_recording(self, folder: Path, stem: str) -> Path:
        """Record to ``stem.wav``/``stem.csv`` in ``folder``, or ``stem-2``, ``stem-3``... when taken.

        Two recordings started in the same second get the same stem: the engine creates
        the files exclusively and refuses names that exist, so the next free suffix is
        taken instead and no earlier recording is ever replaced.

        Returns
        -------
        Path
            The WAV being recorded.

        Raises
        ------
        RecordingError
            The files cannot be created (also after :data:`MAX_NAME_TRIES` taken names).
        OSError
            The folder cannot be made.
        """
        from ser_engine.live.recorder import RecordingExistsError, make_private_folder

        make_private_folder(folder)
        last: RecordingExistsError | None = None
        for n in range(1, MAX_NAME_TRIES + 1):
            name = stem if n == 1 else f"{stem}-{n}"
            wav, csv = folder / f"{name}.wav", folder / f"{name}.csv"
            try:
                self.start_recording(wav, csv)
            except RecordingExistsError as exc:
                last = exc
                continue
            return wav
        assert last is not None
        raise last

    def stop_recording(self) -> Path | None:
        """Stop recording; returns the WAV path when the recording was saved complete.

        None when nothing was recording or the recording failed: the failure (already
        reported by the engine, or raised while closing) reaches :attr:`recording_failed`.
        """
        path, self.recording_path = self.recording_path, None
        saved: Path | None = None
        if self.session is not None and path is not None:
            try:
                result = self.session.stop_recording()
            except RecordingError as exc:  # the files keep what was written
                self._report_recording_error(str(exc) or type(exc).__name__)
            else:
                failed = getattr(self.session, "recording_error", None) is not None
                saved = path if result is not None and not failed else None
        if path is not None:
            self.recording_changed.emit("")
        if saved is not None:
            self.recording_saved.emit(str(saved))
        return saved

    # ------------------------------------------------------------------ delivery (GUI thread)
    @Slot(object)
    def _deliver_prediction(self, item: tuple[int, Prediction]) -> None:
        gen, pred = item
        if gen == self._generation:
            self.prediction.emit(pred)

    def _report_recording_error(self, message: str) -> None:
        self.last_recording_error = message
        self.recording_failed.emit(message)

    @Slot(object)
    def _deliver_recording_error(self, item: tuple[int, BaseException]) -> None:
        gen, exc = item
        recorded = None
        if gen == self._generation:  # (a late report of an older session's recording is still shown)
            recorded, self.recording_path = self.recording_path, None
        self._report_recording_error(str(exc) or type(exc).__name__)
        if recorded is not None:
            self.recording_changed.emit("")

    @Slot(object)
    def _deliver_silence(self, item: tuple[int, str]) -> None:
        gen, message = item
        if gen == self._generation:
            self.input_silence.emit(message)

    @Slot(object)
    def _deliver_error(self, item: tuple[int, BaseException]) -> None:
        gen, exc = item
        if gen != self._generation:
            return
        message = str(exc) or type(exc).__name__
        internal = isinstance(exc, LiveInternalError)
        if internal:  # the engine logged the traceback
            message += f" ({details_hint()})"
        self.last_error = message
        self.last_error_internal = internal
        session = self.session
        self.session = None
        self._generation += 1
        recorded = self.recording_path
        self.recording_path = None
        if session is not None:
            with contextlib.suppress(Exception):  # the session is gone either way
                session.stop()  # the engine has ended the stream; this joins its worker
        if recorded is not None:
            message += f"\nThe recording so far is kept: {recorded}"
            self.recording_changed.emit("")
        self.running_changed.emit(False)
        self.failed.emit(message)
