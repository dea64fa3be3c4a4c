"""Live microphone input and the streaming session (no Qt).

Threads
-------
* **Audio thread** (PortAudio, through sounddevice): :class:`LiveInput`'s
  callback copies the block into a preallocated :class:`RingBuffer` at the
  device rate and counts status flags. Nothing else: no allocation of
  buffers, no logging, no locks, no model call.
* **Worker thread** (:class:`LiveSession`): every few milliseconds it reads
  the new device-rate samples, resamples them to 16 kHz (soxr stream) into
  the session's 16 kHz ring (:attr:`LiveSession.audio`, which the GUI reads
  for waveforms), appends them to the recording if one is running, runs the
  :class:`~ser_engine.stream.Streamer` and calls ``on_prediction`` and
  ``on_error`` (from the worker thread: a GUI wraps them in queued signals).

Device loss (unplugged microphone, sound server gone) shows up as PortAudio
finishing the stream, the stream becoming inactive, or no audio arriving for
``stall_timeout`` seconds. The session then stops cleanly, closes the
recording (everything recorded so far is kept) and calls ``on_error`` with a
:class:`~ser_engine.errors.DeviceError`.

Recordings survive faults. The WAV is written straight to its file (no user-space
buffer) and its RIFF/data sizes are rewritten, and the CSV flushed, every
:data:`SYNC_SECONDS` of audio, so a killed process leaves files that any WAV
reader opens, short of at most that interval. A write that fails (disk full,
quota, I/O error) stops the recording only: the files keep what was written
(the WAV truncated to whole samples with a correct header), the session keeps
listening and predicting, and ``on_recording_error`` receives a
:class:`RecordingError` that names the file, the reason and what was kept.
Recordings are private: files are created 0600 and missing folders 0700 (a
stricter umask still applies).

Nothing here touches a device on import; there is no global state.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import stat
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from ser_engine.audio import StreamResampler
from ser_engine.errors import AudioError, DeviceError, ParameterError, SerError
from ser_engine.model import EmotionModel
from ser_engine.ringbuffer import RingBuffer
from ser_engine.stream import Prediction, Streamer, StreamSettings

__all__ = ["InputDevice", "LiveInput", "LiveSession", "LiveStats", "RecordingError", "list_input_devices",
           "make_private_folder"]

PREFERRED_RATE = 16000
SYNC_SECONDS = 1.0  # WAV header rewritten and CSV flushed at least this often (seconds of audio)


class RecordingError(AudioError):
    """A recording stopped because its files could not be written (disk full, I/O error...).

    The message names the file, the reason and what was kept. The live session
    itself goes on.

    Attributes
    ----------
    wav_path, csv_path : Path or None
        The recording's files (kept, holding what was written).
    seconds : float
        Audio kept in the WAV, in seconds.
    """

    def __init__(self, message: str, *, wav_path: Path | None = None, csv_path: Path | None = None,
                 seconds: float = 0.0) -> None:
        super().__init__(message)
        self.wav_path = wav_path
        self.csv_path = csv_path
        self.seconds = seconds


def _os_reason(exc: BaseException) -> str:
    """"disk full (No space left on device)" for ENOSPC/EDQUOT, else the OS's words."""
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return f"disk full ({text})"
        if exc.errno == errno.EFBIG:
            return f"file too large ({text})"
        return text
    return str(exc) or type(exc).__name__


def make_private_folder(folder: str | Path) -> Path:
    """Create ``folder`` and any missing parents with mode 0700 (umask still applies).

    Folders that already exist are left as they are.

    Raises
    ------
    OSError
        A folder cannot be created (or the path is not a folder).
    """
    folder = Path(folder)
    missing: list[Path] = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o700)
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    return folder


def _create_private(path: Path) -> int:
    """Open ``path`` for writing (created or truncated), readable by the owner only; returns the fd."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)  # a new file gets 0600 minus the umask
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077 and hasattr(os, "fchmod"):  # an existing file we overwrite becomes private too
            with contextlib.suppress(OSError):
                os.fchmod(fd, mode & 0o700)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sd() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # PortAudio library missing
        raise DeviceError(f"audio input is unavailable: {exc}") from exc
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    """An audio input device as PortAudio reports it."""

    index: int
    name: str
    default_samplerate: float
    max_input_channels: int
    is_default: bool
    hostapi: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "default_samplerate": self.default_samplerate,
            "max_input_channels": self.max_input_channels,
            "is_default": self.is_default,
            "hostapi": self.hostapi,
        }


def list_input_devices() -> list[InputDevice]:
    """Input devices (those with at least one input channel).

    Raises
    ------
    DeviceError
        PortAudio is missing or cannot enumerate devices.
    """
    sd = _sd()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except Exception as exc:  # sounddevice.PortAudioError and friends
        raise DeviceError(f"cannot list audio devices: {exc}") from exc
    if default_in is None or default_in < 0:
        try:
            default_in = int(sd.query_devices(kind="input")["index"])
        except Exception:  # no default input at all
            default_in = -1
    out = []
    for i, d in enumerate(devices):
        if int(d.get("max_input_channels", 0)) < 1:
            continue
        api = hostapis[d["hostapi"]]["name"] if 0 <= d.get("hostapi", -1) < len(hostapis) else ""
        out.append(
            InputDevice(
                index=i,
                name=str(d["name"]),
                default_samplerate=float(d["default_samplerate"]),
                max_input_channels=int(d["max_input_channels"]),
                is_default=i == default_in,
                hostapi=str(api),
            )
        )
    return out


def resolve_device(device: int | str | None) -> InputDevice:
    """Find an input device by index, exact name, or unique name substring (None: the default).

    Raises
    ------
    DeviceError
        No such input device, or an ambiguous name.
    """
    devices = list_input_devices()
    if not devices:
        raise DeviceError("no audio input device found")
    if device is None:
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    if isinstance(device, int) or (isinstance(device, str) and device.strip().isdigit()):
        idx = int(device)
        for d in devices:
            if d.index == idx:
                return d
        raise DeviceError(f"no input device with index {idx} (see `ser devices`)")
    name = str(device)
    exact = [d for d in devices if d.name == name]
    if exact:
        return exact[0]
    partial = [d for d in devices if name.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise DeviceError(f"no input device named {name!r} (see `ser devices`)")
    names = ", ".join(repr(d.name) for d in partial)
    raise DeviceError(f"input device name {name!r} is ambiguous: {names}")


class LiveInput:
    """A mono input stream from one device into a ring buffer at the device rate.

    Parameters
    ----------
    device : int, str or None
        Index, name or unique name part; None for the default input.
    ring_seconds : float
        Capacity of :attr:`ring` in seconds.
    samplerate : int, optional
        Force a rate; by default 16 kHz when the device accepts it, else the
        device's default rate.
    """

    def __init__(self, device: int | str | None = None, *, ring_seconds: float = 30.0,
                 samplerate: int | None = None) -> None:
        if not ring_seconds > 0:
            raise ParameterError("ring_seconds must be positive")
        self.device_request = device
        self.ring_seconds = float(ring_seconds)
        self.requested_rate = samplerate
        self.device: InputDevice | None = None
        self.device_rate = 0
        self.ring: RingBuffer | None = None
        self.overflows = 0
        self.status_flags = 0
        self.callbacks = 0
        self.last_callback = 0.0  # time.monotonic() of the last callback
        self._stream: Any = None
        self._finished = threading.Event()
        self._stopping = False
        self.error: DeviceError | None = None

    # The audio thread runs this: copy and count, nothing else.
    def _callback(self, indata: npt.NDArray[np.float32], frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.status_flags += 1
            if status.input_overflow:
                self.overflows += 1
        ring = self.ring
        if ring is not None:
            ring.write(indata)
        self.callbacks += 1
        self.last_callback = time.monotonic()

    def _finished_callback(self) -> None:
        self._finished.set()

    def start(self) -> None:
        """Open and start the stream.

        Raises
        ------
        DeviceError
            The device does not exist or cannot be opened.
        """
        sd = _sd()
        dev = resolve_device(self.device_request)
        rate = self.requested_rate
        if rate is None:
            try:
                sd.check_input_settings(device=dev.index, channels=1, samplerate=PREFERRED_RATE, dtype="float32")
                rate = PREFERRED_RATE
            except Exception:
                rate = round(dev.default_samplerate)
        if not 8000 <= rate <= 192000:
            raise DeviceError(f"input device {dev.name!r} runs at {rate} Hz, outside 8-192 kHz")
        self.device = dev
        self.device_rate = int(rate)
        self.ring = RingBuffer(max(1, int(self.ring_seconds * self.device_rate)))
        self._finished.clear()
        self._stopping = False
        self.error = None
        try:
            self._stream = sd.InputStream(
                device=dev.index,
                channels=1,
                samplerate=self.device_rate,
                dtype="float32",
                callback=self._callback,
                finished_callback=self._finished_callback,
            )
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise DeviceError(f"cannot open input device {dev.name!r} at {self.device_rate} Hz: {exc}") from exc
        self.last_callback = time.monotonic()

    @property
    def latency_s(self) -> float:
        """The input latency PortAudio reports (0 when closed)."""
        s = self._stream
        try:
            return float(s.latency) if s is not None else 0.0
        except Exception:
            return 0.0

    @property
    def running(self) -> bool:
        return self._stream is not None and not self._stopping

    def check(self) -> DeviceError | None:
        """Return (and remember) a DeviceError when the stream ended by itself."""
        if self.error is not None or self._stream is None or self._stopping:
            return self.error
        ended = self._finished.is_set()
        if not ended:
            try:
                ended = not self._stream.active
            except Exception:
                ended = True
        if ended:
            name = self.device.name if self.device else "?"
            self.error = DeviceError(f"input device {name!r} stopped delivering audio (disconnected?)")
        return self.error

    def stop(self) -> None:
        """Stop and close the stream (safe to call twice, and after device loss)."""
        self._stopping = True
        s, self._stream = self._stream, None
        if s is None:
            return
        with contextlib.suppress(Exception):
            s.abort(ignore_errors=True)
        with contextlib.suppress(Exception):
            s.close(ignore_errors=True)


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


class _WavWriter:
    """16-bit mono PCM WAV written straight to a file descriptor.

    Samples go to the file as they come (no user-space buffer); :meth:`sync`
    rewrites the RIFF and data sizes, so the file is a valid WAV of everything
    up to the last sync even if the process is killed.
    """

    HEADER = 44
    MAX_DATA = 0xFFFFFFFF - 36  # what a RIFF size can describe (about 37 h at 16 kHz)

    def __init__(self, path: Path, *, sample_rate: int) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.data_bytes = 0
        self._synced = -1
        self._fd = _create_private(path)
        try:
            self._write_all(self._header(0), data=False)
        except BaseException:
            os.close(self._fd)
            with contextlib.suppress(OSError):  # ours, and empty: leave nothing behind
                path.unlink()
            raise

    def _header(self, n: int) -> bytes:
        sr = self.sample_rate
        return (b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt "
                + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16) + b"data" + struct.pack("<I", n))

    def _write_all(self, buf: bytes, *, data: bool = True) -> None:
        view = memoryview(buf)
        while view:
            n = os.write(self._fd, view)  # may write part and raise on the next call (disk full)
            if data:
                self.data_bytes += n
            view = view[n:]

    def write(self, block: npt.NDArray[np.float32]) -> None:
        """Append float samples in [-1, 1] (clipped), shape ``(n,)``, as 16-bit PCM."""
        pcm = np.rint(np.clip(block, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        if self.data_bytes + len(pcm) > self.MAX_DATA:
            raise OSError(errno.EFBIG, "a WAV file cannot hold more than 4 GiB (about 37 hours)", str(self.path))
        self._write_all(pcm)

    @property
    def samples(self) -> int:
        return self.data_bytes // 2

    def sync(self) -> None:
        """Rewrite the RIFF and data sizes for the whole samples written so far."""
        n = self.data_bytes - self.data_bytes % 2
        if n != self._synced:
            os.pwrite(self._fd, struct.pack("<I", 36 + n), 4)
            os.pwrite(self._fd, struct.pack("<I", n), 40)
            self._synced = n

    def close(self, *, failed: bool = False) -> None:
        """Write the final sizes and close. After a failed write (``failed``) the file is first cut
        back to whole samples, and errors are not raised (the descriptor is closed in any case)."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        try:
            if failed:
                with contextlib.suppress(OSError):
                    self.data_bytes -= self.data_bytes % 2
                    os.ftruncate(fd, self.HEADER + self.data_bytes)
                with contextlib.suppress(OSError):
                    self._fd = fd
                    self.sync()
            else:
                self._fd = fd
                self.sync()
        finally:
            self._fd = -1
            os.close(fd)


class _Recorder:
    """WAV + CSV recording written from the worker thread (see the module docstring on faults)."""

    def __init__(self, wav_path: Path, csv_path: Path | None, *, sample_rate: int, labels: tuple[str, ...],
                 stream_offset: int, sync_seconds: float = SYNC_SECONDS) -> None:
        self.wav_path = wav_path
        self.csv_path = csv_path
        self.sample_rate = sample_rate
        self.labels = labels
        self.offset = stream_offset  # stream sample where the recording starts
        self.rows = 0
        self._sync_every = max(1, round(sync_seconds * sample_rate))
        self._last_sync = 0
        self._csv_file: TextIO | None = None
        self._csv: Any = None
        try:
            make_private_folder(wav_path.parent)
            self._wav = _WavWriter(wav_path, sample_rate=sample_rate)
        except OSError as exc:  # (a file that could not be opened is not touched)
            raise RecordingError(f"{wav_path}: cannot create the recording ({_os_reason(exc)})",
                                 wav_path=None, csv_path=None) from exc
        if csv_path is not None:
            created = False
            try:
                make_private_folder(csv_path.parent)
                fd = _create_private(csv_path)
                created = True
                self._csv_file = os.fdopen(fd, "w", newline="", encoding="utf-8")
                self._csv = csv.writer(self._csv_file)
                self._csv.writerow(["start_s", "end_s", "speech", "label", "confidence", "uncertain", "level_dbfs",
                                    *[f"p_{lab}" for lab in labels]])
                self._csv_file.flush()
            except OSError as exc:
                self._wav.close(failed=True)
                self._discard(wav_path)
                if self._csv_file is not None:
                    with contextlib.suppress(OSError):
                        self._csv_file.close()
                if created:
                    self._discard(csv_path)
                raise RecordingError(f"{csv_path}: cannot create the predictions file ({_os_reason(exc)})") from exc

    @staticmethod
    def _discard(path: Path) -> None:
        """Remove a file this recorder just created and could not start (nothing recorded in it)."""
        with contextlib.suppress(OSError):
            path.unlink()

    @property
    def samples(self) -> int:
        return self._wav.samples

    @property
    def seconds(self) -> float:
        return self._wav.samples / self.sample_rate

    @staticmethod
    @contextlib.contextmanager
    def _naming(path: Path | None) -> Iterator[None]:
        """Let an OSError raised inside name ``path`` (the file that failed)."""
        try:
            yield
        except OSError as exc:
            if not exc.filename and path is not None:
                exc.filename = str(path)
            raise

    def write_audio(self, block: npt.NDArray[np.float32]) -> None:
        """Append 16 kHz samples, shape ``(n,)``; syncs the files every ``sync_seconds`` of audio."""
        if block.shape[0]:
            with self._naming(self.wav_path):
                self._wav.write(block)
            if self._wav.samples - self._last_sync >= self._sync_every:
                self.sync()

    def sync(self) -> None:
        """Make the files complete up to now (WAV sizes rewritten, CSV flushed)."""
        self._last_sync = self._wav.samples
        with self._naming(self.wav_path):
            self._wav.sync()
        if self._csv_file is not None:
            with self._naming(self.csv_path):
                self._csv_file.flush()

    def write_prediction(self, p: Prediction) -> None:
        if self._csv is None:
            return
        off = self.offset / self.sample_rate
        start, end = p.start_s - off, p.end_s - off
        if end <= 0:
            return
        with self._naming(self.csv_path):
            self._write_row(start, end, p)
        self.rows += 1

    def _write_row(self, start: float, end: float, p: Prediction) -> None:
        self._csv.writerow([
            f"{max(0.0, start):.3f}", f"{end:.3f}", int(p.speech), p.label or "",
            f"{p.confidence:.4f}" if p.speech else "", int(p.uncertain) if p.speech else "",
            f"{p.level_dbfs:.1f}",
            *[f"{p.probabilities[lab]:.4f}" if p.speech else "" for lab in self.labels],
        ])

    def close(self) -> tuple[Path, Path | None]:
        """Close both files (sizes written, CSV flushed).

        Raises
        ------
        OSError
            The last data could not be written; both files are closed anyway.
        """
        try:
            with self._naming(self.wav_path):
                self._wav.close()
        finally:
            if self._csv_file is not None:
                f, self._csv_file = self._csv_file, None
                with self._naming(self.csv_path):
                    f.close()
        return self.wav_path, self.csv_path

    def abort(self) -> None:
        """Close after a failed write, keeping what was written; never raises."""
        self._wav.close(failed=True)
        if self._csv_file is not None:
            f, self._csv_file = self._csv_file, None
            with contextlib.suppress(OSError, ValueError):
                f.flush()
            with contextlib.suppress(OSError, ValueError):
                f.close()
            if not f.closed:  # the buffer could not be written: drop it, close the descriptor
                with contextlib.suppress(OSError):
                    os.close(f.fileno())

    def failure(self, exc: BaseException) -> RecordingError:
        """The error to report when writing failed with ``exc`` (call after :meth:`abort`)."""
        where = getattr(exc, "filename", None) or self.wav_path
        kept = f"{self.seconds:.1f} s of audio kept in {self.wav_path}"
        if self.csv_path is not None:
            kept += f", {self.rows} predictions in {self.csv_path}"
        return RecordingError(f"{where}: recording stopped: {_os_reason(exc)}; {kept}",
                              wav_path=self.wav_path, csv_path=self.csv_path, seconds=self.seconds)


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
        ends by itself (device loss: :class:`DeviceError`).
    on_recording_error : callable, optional
        ``f(error)`` with a :class:`RecordingError` when a recording stops
        because its files cannot be written (disk full...). Called from the
        worker thread, or from the thread calling :meth:`stop`; the session
        goes on. Also settable as an attribute before :meth:`start`.
    ring_seconds : float
        Capacity of the 16 kHz ring (:attr:`audio`) and of the device ring.
    stall_timeout : float
        Seconds without audio (once audio has flowed) that count as device loss.
    start_timeout : float
        Seconds to wait for the first audio before giving up.
    input_factory : callable, optional
        Builds the :class:`LiveInput` (tests may inject one).
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
        input_factory: Callable[[], LiveInput] | None = None,
        on_recording_error: Callable[[RecordingError], None] | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self._settings = settings or StreamSettings()
        self.streamer = Streamer(model, settings=self._settings)  # validates settings for this model
        self.on_prediction = on_prediction
        self.on_error = on_error
        self.on_recording_error = on_recording_error
        self.recording_error: RecordingError | None = None  # why the last recording stopped, if it failed
        self.sample_rate = model.feature_config.sample_rate
        self.ring_seconds = float(ring_seconds)
        self.stall_timeout = float(stall_timeout)
        self.start_timeout = float(start_timeout)
        self._input_factory = input_factory or (lambda: LiveInput(device, ring_seconds=ring_seconds))
        self.audio = RingBuffer(int(ring_seconds * self.sample_rate))
        self.input: LiveInput | None = None
        self.error: SerError | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._recorder: _Recorder | None = None
        self._pending_settings: StreamSettings | None = None
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=512)
        self._last_compute_ms = 0.0
        self._delay_ms = 0.0
        self._predictions = 0
        self._lost16 = 0
        self._lost_in = 0
        self._got_audio = threading.Event()
        self.last_prediction: Prediction | None = None

    # ------------------------------------------------------------------ control
    @property
    def settings(self) -> StreamSettings:
        return self._settings

    @property
    def running(self) -> bool:
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
        Streamer(self.model, settings=settings)  # raises ParameterError when invalid for this model
        with self._lock:
            self._pending_settings = settings
            self._settings = settings

    def start_recording(self, wav_path: str | Path, csv_path: str | Path | None = None) -> None:
        """Record the 16 kHz audio the model hears (WAV, 16-bit) and the predictions (CSV).

        CSV columns: ``start_s, end_s, speech, label, confidence, uncertain (0/1), level_dbfs,
        p_<label>...``, times in seconds from the start of the recording.

        The files are created 0600 (missing folders 0700). The WAV header and the CSV
        are brought up to date every :data:`SYNC_SECONDS` of audio; a write that fails
        stops the recording (see ``on_recording_error``), keeping what was written.

        Raises
        ------
        RecordingError
            A file cannot be created (nothing is left behind).
        """
        rec = _Recorder(Path(wav_path), None if csv_path is None else Path(csv_path), sample_rate=self.sample_rate,
                        labels=self.model.labels, stream_offset=self.audio.write_position)
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

    def _failed(self, rec: _Recorder, exc: BaseException) -> RecordingError:
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
        failed: tuple[_Recorder, OSError] | None = None
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
        return self._recorder is not None

    def stats(self) -> LiveStats:
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
        assert inp is not None and inp.ring is not None
        reader_in = inp.ring.reader(from_start=True)
        reader16 = self.audio.reader()
        resampler = StreamResampler(inp.device_rate, self.sample_rate)
        started = time.monotonic()
        last_data = started
        error: SerError | None = None
        try:
            while not self._stop.is_set():
                with self._lock:
                    pending, self._pending_settings = self._pending_settings, None
                if pending is not None:
                    self.streamer.update_settings(pending)
                block = reader_in.read_available()
                self._lost_in = reader_in.lost
                now = time.monotonic()
                if block.shape[0]:
                    last_data = now
                    self._got_audio.set()
                    y = resampler.process(block)
                    if y.shape[0]:
                        self.audio.write(y)
                        self._arrivals.append((self.audio.write_position, inp.last_callback))
                        self._write_recording(y)
                for pred in self.streamer.push(reader16):
                    self._emit(pred, inp)
                self._lost16 = reader16.lost
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
                self._stop.wait(0.01)
        except SerError as exc:
            error = exc
        except Exception as exc:  # keep the recording and report instead of dying silently
            error = SerError(f"live analysis failed: {type(exc).__name__}: {exc}")
        finally:
            if error is not None:
                self.error = error
                inp.stop()
                self._end_recording()
        if error is not None and self.on_error is not None:
            self.on_error(error)

    def _arrival_time(self, position: int) -> float | None:
        for pos, t in self._arrivals:
            if pos >= position:
                return t
        return None

    def _emit(self, pred: Prediction, inp: LiveInput) -> None:
        self._predictions += 1
        self._last_compute_ms = pred.compute_ms
        end = round(pred.end_s * self.sample_rate)
        arrived = self._arrival_time(end)
        if arrived is not None:
            self._delay_ms = (time.monotonic() - arrived + inp.latency_s) * 1000.0
        self.last_prediction = pred
        self._write_recording(pred)
        if self.on_prediction is not None:
            self.on_prediction(pred)
