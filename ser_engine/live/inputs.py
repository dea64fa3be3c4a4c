"""Audio inputs for a live session: a sound-card input and an array-fed one (no Qt).

Both feed a :class:`~ser_engine.live.ringbuffer.RingBuffer` at their own rate and have
the same interface (:class:`AudioInput`), so :class:`~ser_engine.live.session.LiveSession`
runs the same worker on either:

* :class:`LiveInput`: a PortAudio input stream (through sounddevice). Its callback
  runs on the audio thread and only copies the block into the preallocated ring
  and counts input overflows: no allocation, no logging, no locks, no model call.
* :class:`ArrayInput`: samples from an array, written into the ring by a feeder
  thread in blocks, paced at real time or faster. The app's self-test, demos and
  tests use it to drive the real live worker without a sound card.

Nothing here touches a device on import; there is no global state.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ser_engine.errors import DeviceError, ParameterError
from ser_engine.live.ringbuffer import RingBuffer

__all__ = ["BLOCK_S", "DIGITAL_SILENCE_S", "PREFERRED_RATE", "ArrayInput", "AudioInput", "DigitalSilenceWatch",
           "InputDevice", "LiveInput", "import_sounddevice", "list_input_devices", "rescan_devices", "resolve_device"]

PREFERRED_RATE = 16000
BLOCK_S = 0.01
"""Seconds of audio per callback of a sound card's input (:class:`LiveInput`).

A fixed block: left to PortAudio (``blocksize=0``), the callback came a little more often with
blocks of varying size, and PortAudio's thread and the PulseAudio client's thread (ALSA's
``pulse`` plugin) used about twice the CPU, for a few milliseconds less delay on average.
"""
DIGITAL_SILENCE_S = 3.0
"""Seconds of exact zeros, after real audio, that make an input digitally silent (:class:`DigitalSilenceWatch`)."""


class AudioInput(Protocol):
    """What :class:`~ser_engine.live.session.LiveSession` needs from an input.

    Attributes
    ----------
    ring : RingBuffer or None
        Samples at :attr:`device_rate` (None before :meth:`start`).
    device : InputDevice or None
        What the input is (for messages).
    device_rate : int
        Rate of the samples in :attr:`ring`, in Hz.
    overflows : int
        Blocks the input dropped (PortAudio's input overflow flag).
    last_callback : float
        ``time.monotonic()`` when the last block arrived.
    """

    ring: RingBuffer | None
    device: InputDevice | None
    device_rate: int
    overflows: int
    last_callback: float

    def start(self) -> None:
        """Open the input; raises :class:`DeviceError` when it cannot."""

    def stop(self) -> None:
        """Close the input (safe to call twice)."""

    def check(self) -> DeviceError | None:
        """Return the error that ended the input by itself (device lost), or None."""

    @property
    def latency_s(self) -> float:
        """Input latency in seconds (0 when unknown)."""

    @property
    def exhausted(self) -> bool:
        """True once an input with an end has delivered its last sample."""


class DigitalSilenceWatch:
    """Notices when an input that delivered sound turns to exact zeros, and when sound comes back.

    A real microphone always carries some noise, so a run of samples that are exactly 0.0
    after real audio means the audio no longer comes from it: the source was removed and
    the sound server moved the stream to a null source (PulseAudio does so without ending
    the stream), it was muted, or it is a virtual source with nothing playing. The stream
    goes on, so device-loss detection never fires; this says so instead. Nothing is said
    before the first non-zero sample (an input that starts silent is not news).

    Parameters
    ----------
    sample_rate : int
        Rate of the blocks given to :meth:`feed`, in Hz.
    after_s : float
        Seconds of zeros that count as digital silence.
    """

    def __init__(self, *, sample_rate: int, after_s: float = DIGITAL_SILENCE_S) -> None:
        if not (after_s > 0 and sample_rate > 0):
            raise ParameterError("sample_rate and after_s must be positive")
        self.sample_rate = int(sample_rate)
        self.limit = max(1, round(after_s * sample_rate))
        self.heard = False  # a non-zero sample has arrived
        self.silent = False  # in a run of zeros longer than the limit, reported
        self.samples = 0  # samples fed so far
        self.zeros = 0  # length of the current run of zeros

    @property
    def since_s(self) -> float:
        """Stream time (seconds from the first sample fed) at which the current run of zeros began."""
        return (self.samples - self.zeros) / self.sample_rate

    def feed(self, block: npt.NDArray[np.float32]) -> bool | None:
        """Take the next block, shape ``(n,)`` or ``(n, 1)``.

        Returns
        -------
        bool or None
            True when the input has just turned digitally silent, False when sound has just
            come back after that, None when nothing changed.
        """
        n = block.shape[0]
        if n == 0:
            return None
        self.samples += n
        nonzero = np.flatnonzero(block)
        if nonzero.size == 0:
            self.zeros += n
            if self.heard and not self.silent and self.zeros >= self.limit:
                self.silent = True
                return True
            return None
        self.heard = True
        self.zeros = block.size - 1 - int(nonzero[-1])  # the zeros after the last sound
        if self.silent:
            self.silent = False
            return False
        return None


def _sd() -> Any:
    try:
        return import_sounddevice()
    except OSError as exc:  # PortAudio library missing
        raise DeviceError(f"audio input is unavailable: {exc}") from exc


def import_sounddevice() -> Any:
    """Import ``sounddevice`` (which initialises PortAudio) without leaving libjack's debris behind.

    The one place the project imports it (the app's player too).

    Raises
    ------
    OSError
        The PortAudio library is missing.
    """
    module = sys.modules.get("sounddevice")
    if module is not None:
        return module
    with _jack_probe_cleanup():
        import sounddevice
    return sounddevice


#: Where libjack (jack2) keeps its files: fixed at build time, no setting moves it.
JACK_SHM_DIR = Path("/dev/shm")


@contextlib.contextmanager
def _jack_probe_cleanup() -> Iterator[None]:
    """Remove the JACK metadata folder that PortAudio's probe for a JACK server leaves when there is none.

    Debian's and Ubuntu's PortAudio are built with a JACK host API. Initialising PortAudio
    (``import sounddevice``, a device re-scan) calls ``jack_client_open``, and libjack
    (jack2) opens its metadata database -- the folder ``/dev/shm/jack_db-<uid>`` with
    Berkeley DB files -- before it even looks for a server; without one the client fails
    to open and libjack closes the database again, but the folder stays until reboot.
    Neither PortAudio nor libjack has a setting to skip the probe or move the folder
    (``/dev/shm`` is compiled into libjack), so the folder is removed afterwards when this
    probe alone made it: it did not exist before, and no JACK server of any user runs
    (a server keeps its sockets and shared memory in ``/dev/shm/jack_*``). A folder that
    existed before, or anything unexpected in it, is left as it is.
    """
    getuid = getattr(os, "getuid", None)
    folder = JACK_SHM_DIR / f"jack_db-{getuid()}" if getuid is not None and JACK_SHM_DIR.is_dir() else None
    existed = folder is None or os.path.lexists(folder)
    try:
        yield
    finally:
        if folder is not None and not existed and not _jack_server_running():
            _remove_jack_db(folder)


def _jack_server_running() -> bool:
    """Tell whether ``/dev/shm`` shows signs of a JACK server (anything ``jack*`` but metadata folders)."""
    try:
        names = os.listdir(JACK_SHM_DIR)
    except OSError:
        return True  # cannot tell: touch nothing
    return any(n.startswith("jack") and not n.startswith("jack_db-") for n in names)


def _remove_jack_db(folder: Path) -> None:
    """Remove libjack's metadata folder if it holds only its database files (``__db.*``, ``metadata.db``)."""
    try:
        with os.scandir(folder) as it:
            entries = [(e.name, e.is_file(follow_symlinks=False)) for e in it]
    except OSError:
        return
    if not all(is_file and (name == "metadata.db" or name.startswith("__db.")) for name, is_file in entries):
        return
    names = [name for name, _ in entries]
    with contextlib.suppress(OSError):
        for n in names:
            os.unlink(folder / n)
        os.rmdir(folder)


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
        """Return the device as a JSON-ready dict (``ser devices --format json``)."""
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
        except (sd.PortAudioError, ValueError):  # no default input at all
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
        self.callbacks = 0
        self.last_callback = 0.0  # time.monotonic() of the last callback
        self._stream: Any = None
        self._finished = threading.Event()
        self._stopping = False
        self.error: DeviceError | None = None

    # The audio thread runs this: copy and count, nothing else.
    def _callback(self, indata: npt.NDArray[np.float32], frames: int, time_info: Any, status: Any) -> None:
        del frames, time_info  # PortAudio's callback signature (indata holds the frames)
        if status and status.input_overflow:
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
            except (sd.PortAudioError, ValueError):  # 16 kHz not accepted: the device's own rate
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
                blocksize=max(1, round(BLOCK_S * self.device_rate)),
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
        return float(s.latency) if s is not None else 0.0

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._stream is not None and not self._stopping

    @property
    def exhausted(self) -> bool:
        """Always False: a device has no end (its loss is reported by :meth:`check`)."""
        return False

    def check(self) -> DeviceError | None:
        """Return (and remember) a DeviceError when the stream ended by itself."""
        if self.error is not None or self._stream is None or self._stopping:
            return self.error
        ended = self._finished.is_set()
        if not ended:
            try:
                ended = not self._stream.active
            except _sd().PortAudioError:  # the stream is gone
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


def rescan_devices() -> None:
    """Make PortAudio enumerate the devices again.

    PortAudio lists devices once, when it is initialised, so a microphone plugged
    in (or a sound server restarted) after start-up is not seen. Neither
    sounddevice nor PortAudio has a public call to re-list them (PortAudio's
    hot-plug support is unfinished; sounddevice issue #125 recommends
    terminating and re-initialising the library), so this function is the one
    place in the project that calls sounddevice's private ``_terminate`` and
    ``_initialize``. Terminating PortAudio closes every open stream: call it
    only when no input or output stream is open.

    Raises
    ------
    DeviceError
        PortAudio is missing, the installed sounddevice no longer has those
        functions, or re-initialising failed.
    """
    sd = _sd()
    terminate, initialize = getattr(sd, "_terminate", None), getattr(sd, "_initialize", None)
    if not (callable(terminate) and callable(initialize)):
        raise DeviceError(f"this sounddevice ({getattr(sd, '__version__', '?')}) cannot re-list devices; "
                          "restart the app to see new devices")
    try:
        terminate()
        with _jack_probe_cleanup():  # re-initialising probes for a JACK server again
            initialize()
    except Exception as exc:  # sounddevice.PortAudioError and friends, raised from C
        raise DeviceError(f"cannot re-list audio devices: {exc}") from exc


class ArrayInput:
    """An input with :class:`LiveInput`'s interface, fed from an array instead of a device.

    A feeder thread writes ``samples`` into :attr:`ring` in blocks of ``block_s``
    seconds, paced at ``speed`` times real time, as a sound card's callback would;
    :attr:`exhausted` turns True after the last block.

    Parameters
    ----------
    samples : array_like, shape (n,) or (n, channels)
        Audio in [-1, 1] at ``sample_rate``; channels are averaged to mono.
    sample_rate : int
        Rate of ``samples`` in Hz (the "device rate", 8-192 kHz).
    speed : float
        1.0 feeds in real time, larger values faster (finite, > 0).
    block_s : float
        Seconds per block, like a sound card's callback period.
    ring_seconds : float
        Capacity of :attr:`ring` in seconds.
    name : str
        The name :attr:`device` carries in messages.

    Raises
    ------
    ParameterError
        Bad samples, rate, speed, block or ring length.
    """

    def __init__(self, samples: npt.ArrayLike, sample_rate: int, *, speed: float = 1.0, block_s: float = 0.02,
                 ring_seconds: float = 30.0, name: str = "array") -> None:
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim not in (1, 2) or x.shape[0] == 0:
            raise ParameterError(f"samples must have shape (n,) or (n, channels) with n > 0, got {x.shape}")
        channels = 1 if x.ndim == 1 else x.shape[1]
        self._samples = np.ascontiguousarray(x.mean(axis=1) if x.ndim == 2 else x, dtype=np.float32)
        if not np.all(np.isfinite(self._samples)):
            raise ParameterError("samples must be finite")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
                or not 8000 <= sample_rate <= 192000:
            raise ParameterError(f"sample_rate must be an integer in 8-192 kHz, got {sample_rate!r}")
        for label, v in (("speed", speed), ("block_s", block_s), ("ring_seconds", ring_seconds)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"{label} must be a finite positive number, got {v!r}")
        self.device_rate = int(sample_rate)
        self.speed = float(speed)
        self.block = max(1, round(block_s * self.device_rate))
        self.ring_seconds = float(ring_seconds)
        self.device: InputDevice | None = InputDevice(index=-1, name=name, default_samplerate=float(sample_rate),
                                                      max_input_channels=channels, is_default=False,
                                                      hostapi="array")
        self.ring: RingBuffer | None = None
        self.overflows = 0
        self.callbacks = 0
        self.last_callback = 0.0
        self.error: DeviceError | None = None
        self._stop = threading.Event()
        self._exhausted = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def duration_s(self) -> float:
        """Seconds of audio in the array."""
        return float(self._samples.shape[0] / self.device_rate)

    def start(self) -> None:
        """Start feeding the ring from the beginning of the array."""
        self.stop()
        self.ring = RingBuffer(max(self.block, int(self.ring_seconds * self.device_rate)))
        self._stop.clear()
        self._exhausted.clear()
        self.callbacks = 0
        self.last_callback = time.monotonic()
        self._thread = threading.Thread(target=self._feed, name="ser-array-input", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        ring, x, step = self.ring, self._samples, self.block
        assert ring is not None
        t0 = time.monotonic()
        n = x.shape[0]
        for i in range(0, n, step):
            if self._stop.is_set():
                return
            ring.write(x[i : i + step])
            self.callbacks += 1
            self.last_callback = time.monotonic()
            due = t0 + min(n, i + step) / self.device_rate / self.speed
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
        self._exhausted.set()

    @property
    def exhausted(self) -> bool:
        """True once the last sample is in the ring."""
        return self._exhausted.is_set()

    @property
    def latency_s(self) -> float:
        """No device buffering: 0."""
        return 0.0

    @property
    def running(self) -> bool:
        """True while the feeder runs."""
        return self._thread is not None and self._thread.is_alive()

    def check(self) -> DeviceError | None:
        """None: an array is never lost (:attr:`exhausted` says when it ended)."""
        return self.error

    def stop(self) -> None:
        """Stop feeding (safe to call twice)."""
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(5.0)
