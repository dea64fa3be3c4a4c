"""The live session: an audio input -> 16 kHz ring -> Streamer -> callbacks, on a worker thread (no Qt).

Threads
-------
* **Input** (:mod:`ser_engine.live.inputs`): a sound card's PortAudio callback
  (:class:`~ser_engine.live.inputs.LiveInput`) or an array feeder
  (:class:`~ser_engine.live.inputs.ArrayInput`) copies blocks into a ring buffer at
  the input's rate. Nothing else happens there.
* **Worker thread** (:class:`LiveSession`): every :data:`POLL_S` it reads
  the new input samples, resamples them to 16 kHz (soxr stream) into
  the session's 16 kHz ring (:attr:`LiveSession.audio`, which the GUI reads
  for waveforms), appends them to the recording if one is running
  (:mod:`ser_engine.live.recorder`), runs the :class:`~ser_engine.live.stream.Streamer`
  and calls ``on_prediction`` and ``on_error`` (from the worker thread: a GUI
  wraps them in queued signals). It polls because the input's callback may not
  signal anything (no locks on the audio thread); a poll that finds no new samples
  costs a few microseconds. While it runs, NumPy's BLAS is limited to one thread
  (threadpoolctl; the limit is the process's, as in file analysis): the features
  of one hop are a small matrix product, and a second BLAS thread would wake for
  it twice a second and then busy-wait for more work (OpenBLAS spins for a while
  after each call), which costs more CPU than the rest of the worker but the model.

Device loss (unplugged microphone, sound server gone) shows up as PortAudio
finishing the stream, the stream becoming inactive, or no audio arriving for
``stall_timeout`` seconds. The session then stops cleanly, closes the
recording (everything recorded so far is kept) and calls ``on_error`` with a
:class:`~ser_engine.errors.DeviceError`. An input with an end (an array) ends
the session without an error once its last sample is analysed;
:attr:`LiveSession.finished` is set whenever the worker ends.

A recording that cannot be written (disk full...) stops the recording only: the
session keeps listening and ``on_recording_error`` receives a
:class:`~ser_engine.live.recorder.RecordingError`.

A bug on the worker thread (any exception that is not a
:class:`~ser_engine.errors.SerError`) ends the session the same way, with a
:class:`LiveInternalError` (the bug is its ``__cause__``) and the traceback in
the log (:mod:`ser_engine.logs`).

Nothing here touches a device on import; there is no global state.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from ser_engine.dsp.audio import StreamResampler
from ser_engine.errors import DeviceError, SerError
from ser_engine.inference.model import EmotionModel
from ser_engine.live.inputs import (
    AudioInput,
    DigitalSilenceWatch,
    InputDevice,
    LiveInput,
    list_input_devices,
    resolve_device,
)
from ser_engine.live.recorder import SYNC_SECONDS, Recorder, RecordingError, RecordingExistsError, make_private_folder
from ser_engine.live.ringbuffer import RingBuffer
from ser_engine.live.stream import Prediction, Streamer, StreamSettings
from ser_engine.logs import FILE_ONLY, get_logger
from ser_engine.timing import config_for

__all__ = [
    "POLL_S",
    "SYNC_SECONDS",
    "InputDevice",
    "LiveInput",
    "LiveInternalError",
    "LiveSession",
    "LiveStats",
    "RecordingError",
    "RecordingExistsError",
    "list_input_devices",
    "make_private_folder",
    "resolve_device",
    "settings_for",
]

logger = get_logger(__name__)

POLL_S = 0.01
"""Seconds between two looks of the worker at the input's ring (it adds up to this to every delay)."""


class LiveInternalError(SerError):
    """A bug stopped the live session: the original exception is ``__cause__``, its traceback in the log."""


def settings_for(model: EmotionModel) -> StreamSettings:
    """Stream settings with the window and hop the model was trained with (its FeatureConfig).

    Parameters
    ----------
    model : EmotionModel

    Returns
    -------
    StreamSettings
        ``window_s`` and ``hop_s`` of :func:`ser_engine.timing.config_for` without
        options (the defaults of ``ser analyze`` and ``ser listen`` too); smoothing and
        gate sensitivity at their defaults.
    """
    cfg = config_for(model)
    return StreamSettings(window_s=cfg.window_s, hop_s=cfg.hop_s)


@dataclass(frozen=True)
class LiveStats:
    """Health of a live session.

    Attributes
    ----------
    overflows : int
        Input overflows PortAudio reported (audio the device dropped).
    lost_samples : int
        Samples the worker lost because a ring buffer overran (device rate
        ring, in device samples, plus 16 kHz ring, in 16 kHz samples).
    last_compute_ms : float
        Gate + features + inference time of the last prediction.
    delay_ms : float
        From a sound reaching the input buffer to the prediction covering it
        (last prediction), including PortAudio's reported input latency.
    seconds : float
        Stream time processed (16 kHz samples / 16000).
    device_rate : int
    predictions : int
    recording : bool
    running : bool
    """

    overflows: int
    lost_samples: int
    last_compute_ms: float
    delay_ms: float
    seconds: float
    device_rate: int
    predictions: int
    recording: bool
    running: bool


class LiveSession:
    """Microphone -> 16 kHz ring -> Streamer -> callbacks, on a worker thread.

    Parameters
    ----------
    model : EmotionModel
    device : int, str or None
        Input device (see :func:`resolve_device`).
    settings : StreamSettings
    on_prediction : callable, optional
        ``f(prediction)``, called from the worker thread for every hop.
    on_error : callable, optional
        ``f(error)``, called once from the worker thread when the session
        ends by itself (device loss: :class:`DeviceError`; a bug:
        :class:`LiveInternalError`).
    on_recording_error : callable, optional
        ``f(error)`` with a :class:`RecordingError` when a recording stops
        because its files cannot be written (disk full...). Called from the
        worker thread, or from the thread calling :meth:`stop`; the session
        goes on. Also settable as an attribute before :meth:`start`.
    on_input_silence : callable, optional
        ``f(message)`` from the worker thread when the input, after real audio, delivers
        exact zeros for :data:`~ser_engine.live.inputs.DIGITAL_SILENCE_S` (the source was removed
        and the sound server moved the stream to a null source, or it was muted): the message
        says so and since when; ``f(None)`` when sound comes back. The session goes on.
        Also settable as an attribute before :meth:`start`.
    ring_seconds : float
        Capacity of the 16 kHz ring (:attr:`audio`) and of the device ring.
    stall_timeout : float
        Seconds without audio (once audio has flowed) that count as device loss.
    start_timeout : float
        Seconds to wait for the first audio before giving up.
    input_factory : callable, optional
        Builds the input (an :class:`~ser_engine.live.inputs.AudioInput`): by default a
        :class:`LiveInput` on ``device``; an :class:`~ser_engine.live.inputs.ArrayInput` replays an array.

    Attributes
    ----------
    audio : RingBuffer
        The 16 kHz audio the model hears (the GUI reads waveforms from it).
    finished : threading.Event
        Set when the worker has ended (stopped, device lost, or an array input used up).
    """

    def __init__(
        self,
        model: EmotionModel,
        *,
        device: int | str | None = None,
        settings: StreamSettings | None = None,
        on_prediction: Callable[[Prediction], None] | None = None,
        on_error: Callable[[SerError], None] | None = None,
        ring_seconds: float = 30.0,
        stall_timeout: float = 3.0,
        start_timeout: float = 10.0,
        input_factory: Callable[[], AudioInput] | None = None,
        on_recording_error: Callable[[RecordingError], None] | None = None,
        on_input_silence: Callable[[str | None], None] | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self._settings = settings or settings_for(model)
        self.streamer = Streamer(model, settings=self._settings)  # validates settings for this model
        self.on_prediction = on_prediction
        self.on_error = on_error
        self.on_recording_error = on_recording_error
        self.on_input_silence = on_input_silence
        self.input_silent = False  # the input delivers digital silence now (see on_input_silence)
        self.recording_error: RecordingError | None = None  # why the last recording stopped, if it failed
        self.sample_rate = model.feature_config.sample_rate
        self.ring_seconds = float(ring_seconds)
        self.stall_timeout = float(stall_timeout)
        self.start_timeout = float(start_timeout)
        self._input_factory: Callable[[], AudioInput] = input_factory or (
            lambda: LiveInput(device, ring_seconds=ring_seconds))
        self.audio = RingBuffer(int(ring_seconds * self.sample_rate))
        self.input: AudioInput | None = None
        self.finished = threading.Event()
        self.error: SerError | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._recorder: Recorder | None = None
        self._pending_settings: StreamSettings | None = None
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=512)
        self._last_compute_ms = 0.0
        self._delay_ms = 0.0
        self._predictions = 0
        self._lost16 = 0
        self._lost_in = 0
        self._got_audio = threading.Event()

    # ------------------------------------------------------------------ control
    @property
    def settings(self) -> StreamSettings:
        """The settings in use (the latest :meth:`update_settings` once applied)."""
        return self._settings

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Open the device and start the worker.

        Raises
        ------
        DeviceError
            The device cannot be opened.
        """
        if self.running:
            return
        self._stop.clear()
        self.error = None
        self._got_audio.clear()
        self.finished.clear()
        self.streamer.reset()  # a restarted session does not continue the old window
        inp = self._input_factory()
        inp.start()  # raises DeviceError
        self.input = inp
        self._thread = threading.Thread(target=self._run, name="ser-live-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker and the device; close any recording. Safe to call twice."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        self._thread = None
        if self.input is not None:
            self.input.stop()
        self._end_recording()

    def wait_for_audio(self, timeout: float = 10.0) -> bool:
        """Block until the device has delivered its first samples (True) or ``timeout``."""
        return self._got_audio.wait(timeout)

    def update_settings(self, settings: StreamSettings) -> None:
        """Apply new settings at the next hop (validated now)."""
        config_for(self.model, window_s=settings.window_s, hop_s=settings.hop_s)  # ParameterError when invalid
        with self._lock:
            self._pending_settings = settings
            self._settings = settings

    def start_recording(self, wav_path: str | Path, csv_path: str | Path | None = None, *,
                        overwrite: bool = False) -> None:
        """Record the 16 kHz audio the model hears (WAV, 16-bit) and the predictions (CSV).

        CSV columns: ``start_s, end_s, speech, label, confidence, uncertain (0/1), level_dbfs,
        p_<label>...``, times in seconds from the start of the recording.

        The files are created 0600 (missing folders 0700). The WAV header and the CSV
        are brought up to date every :data:`SYNC_SECONDS` of audio; a write that fails
        stops the recording (see ``on_recording_error``), keeping what was written.
        Existing files are replaced only with ``overwrite``.

        Raises
        ------
        RecordingExistsError
            A file exists and ``overwrite`` is False (it is not touched).
        RecordingError
            A file cannot be created (nothing is left behind).
        """
        rec = Recorder(Path(wav_path), None if csv_path is None else Path(csv_path), sample_rate=self.sample_rate,
                        overwrite=overwrite,
                        labels=self.model.labels, affect=self.model.affect_names,
                        stream_offset=self.audio.write_position)
        with self._lock:
            old, self._recorder = self._recorder, rec
            self.recording_error = None
        if old is not None:
            try:
                old.close()
            except OSError as exc:
                self._notify_recording_error(self._failed(old, exc))

    def stop_recording(self) -> tuple[Path, Path | None] | None:
        """Close the recording; returns its paths (None when not recording, e.g. it already failed).

        Raises
        ------
        RecordingError
            The last data could not be written; the files keep what was.
        """
        with self._lock:
            rec, self._recorder = self._recorder, None
        if rec is None:
            return None
        try:
            return rec.close()
        except OSError as exc:
            raise self._failed(rec, exc) from exc

    def _failed(self, rec: Recorder, exc: BaseException) -> RecordingError:
        rec.abort()
        err = rec.failure(exc)
        self.recording_error = err
        return err

    def _notify_recording_error(self, err: RecordingError) -> None:
        cb = self.on_recording_error
        if cb is not None:
            cb(err)

    def _end_recording(self) -> None:
        """Close any recording at the end of the session, reporting (not raising) a failure."""
        try:
            self.stop_recording()
        except RecordingError as err:
            self._notify_recording_error(err)

    def _write_recording(self, item: npt.NDArray[np.float32] | Prediction) -> None:
        """Append audio or a prediction to the recording; on failure stop the recording and report it."""
        if self._recorder is None:  # not recording (the usual case): no lock to take
            return
        failed: tuple[Recorder, OSError] | None = None
        with self._lock:
            rec = self._recorder
            if rec is None:
                return
            try:
                if isinstance(item, Prediction):
                    rec.write_prediction(item)
                else:
                    rec.write_audio(item)
            except OSError as exc:
                self._recorder = None
                failed = (rec, exc)
        if failed is not None:
            self._notify_recording_error(self._failed(*failed))

    @property
    def recording(self) -> bool:
        """Whether a recording is running."""
        return self._recorder is not None

    def stats(self) -> LiveStats:
        """Return the session's health figures now.

        Returns
        -------
        LiveStats
        """
        inp = self.input
        return LiveStats(
            overflows=inp.overflows if inp else 0,
            lost_samples=self._lost_in + self._lost16,
            last_compute_ms=self._last_compute_ms,
            delay_ms=self._delay_ms,
            seconds=self.audio.write_position / self.sample_rate,
            device_rate=inp.device_rate if inp else 0,
            predictions=self._predictions,
            recording=self.recording,
            running=self.running,
        )

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        inp = self.input
        assert inp is not None
        assert inp.ring is not None
        reader_in = inp.ring.reader(from_start=True)
        reader16 = self.audio.reader()
        resampler = StreamResampler(inp.device_rate, self.sample_rate)
        silence = DigitalSilenceWatch(sample_rate=inp.device_rate)
        stream_start_s = self.audio.write_position / self.sample_rate
        self.input_silent = False
        started = time.monotonic()
        last_data = started
        error: SerError | None = None
        limits: threadpool_limits | None = None
        try:
            limits = threadpool_limits(limits=1)  # see the module's docstring
            while not self._stop.is_set():
                if self._pending_settings is not None:  # (read without the lock: only None is skipped)
                    with self._lock:
                        pending, self._pending_settings = self._pending_settings, None
                    if pending is not None:
                        self.streamer.update_settings(pending)
                ended = inp.exhausted  # read before the ring: all the input's samples are in it
                now = time.monotonic()
                if ended or reader_in.available():  # else nothing new: every step below would do nothing
                    block = reader_in.read_available()
                    self._lost_in = reader_in.lost
                    change = silence.feed(block)
                    if change is not None:
                        self._notify_silence(change, since_s=stream_start_s + silence.since_s, inp=inp)
                    if block.shape[0] or ended:
                        last_data = now
                        if not self._got_audio.is_set():
                            self._got_audio.set()
                        y = resampler.process(block, last=ended)
                        if y.shape[0]:
                            self.audio.write(y)
                            self._arrivals.append((self.audio.write_position, inp.last_callback))
                            self._write_recording(y)
                    for pred in self.streamer.push(reader16):
                        self._emit(pred, inp)
                    self._lost16 = reader16.lost
                if ended:  # an array input used up: every full hop is analysed, end without an error
                    inp.stop()
                    self._end_recording()
                    break
                err = inp.check()
                if err is None:
                    waited = now - last_data
                    limit = self.stall_timeout if self._got_audio.is_set() else self.start_timeout
                    if waited > limit:
                        name = inp.device.name if inp.device else "?"
                        err = DeviceError(f"no audio from input device {name!r} for {waited:.1f} s (device lost?)")
                if err is not None:
                    error = err
                    break
                self._stop.wait(POLL_S)
        except SerError as exc:
            error = exc
        except Exception as exc:
            # A bug (ours or a library's) on the worker thread. Left alone it would end the thread
            # silently: no on_error, `finished` never set, the recording left open, a GUI showing
            # a frozen display. Caught here, it ends the session as device loss does (recording
            # closed with what it holds, `finished` set, on_error called) and its traceback is logged
            # (to the log file: on_error is how the program tells the user).
            logger.exception("live analysis stopped by an internal error", extra=FILE_ONLY)
            error = LiveInternalError(f"live analysis stopped by an internal error: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
        finally:
            if limits is not None:
                limits.restore_original_limits()
            if error is not None:
                self.error = error
                inp.stop()
                self._end_recording()
            self.finished.set()
        if error is not None and self.on_error is not None:
            self.on_error(error)

    def _notify_silence(self, silent: bool, *, since_s: float, inp: AudioInput) -> None:
        """Tell ``on_input_silence`` that the input turned digitally silent (a message) or has sound again (None)."""
        self.input_silent = silent
        name = inp.device.name if inp.device else "?"
        if silent:
            logger.warning("input device %r delivers digital silence since %.1f s", name, since_s, extra=FILE_ONLY)
        else:
            logger.info("input device %r delivers sound again", name)
        cb = self.on_input_silence
        if cb is not None:
            cb(f"no sound from input device {name!r} since {since_s:.1f} s: it delivers exact digital silence "
               "(the microphone was unplugged or muted, or the sound server switched to a silent source); "
               "listening goes on" if silent else None)

    def _arrival_time(self, position: int) -> float | None:
        for pos, t in self._arrivals:
            if pos >= position:
                return t
        return None

    def _emit(self, pred: Prediction, inp: AudioInput) -> None:
        self._predictions += 1
        self._last_compute_ms = pred.compute_ms
        end = round(pred.end_s * self.sample_rate)
        arrived = self._arrival_time(end)
        if arrived is not None:
            self._delay_ms = (time.monotonic() - arrived + inp.latency_s) * 1000.0
        self._write_recording(pred)
        if self.on_prediction is not None:
            self.on_prediction(pred)
