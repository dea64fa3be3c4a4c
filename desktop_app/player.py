"""Playback of a decoded file through sounddevice, with a position the GUI polls for the playhead.

The output callback only copies samples out of a preallocated array and
advances an integer position; it imports nothing and builds no buffers (the
exception that ends the stream is looked up in :meth:`Player.play`). The GUI
reads :attr:`Player.position_s` from its repaint timer.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Player"]


class Player:
    """Play mono float32 audio from any point; at most one stream at a time."""

    def __init__(self) -> None:
        self._samples: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._rate = 16000
        self._pos = 0
        self._stream: Any = None
        self._done = threading.Event()
        self._done.set()
        self._callback_stop: type[Exception] = Exception  # sounddevice.CallbackStop, set by play()
        self._audio_error: type[Exception] = OSError  # sounddevice.PortAudioError, set by play()

    def load(self, samples: npt.NDArray[np.float32], rate: int) -> None:
        """Stop playing and hold ``samples`` (shape ``(n,)``, at ``rate`` Hz) for :meth:`play`."""
        self.stop()
        self._samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        self._rate = int(rate)
        self._pos = 0

    @property
    def duration_s(self) -> float:
        """Seconds of audio held."""
        return float(self._samples.shape[0] / self._rate)

    @property
    def position_s(self) -> float:
        """The playhead, in seconds."""
        return self._pos / self._rate

    @property
    def playing(self) -> bool:
        """Whether a stream is playing."""
        return self._stream is not None and not self._done.is_set()

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:  # audio thread: copy only
        del time, status  # PortAudio's callback signature (nothing to do with them here)
        start = self._pos
        chunk = self._samples[start : start + frames]
        n = chunk.shape[0]
        outdata[:n, 0] = chunk
        if n < frames:
            outdata[n:, 0] = 0.0
            self._pos = start + n
            raise self._callback_stop
        self._pos = start + n

    def play(self, start_s: float = 0.0) -> None:
        """Start playing at ``start_s`` seconds. Raises ``RuntimeError`` naming the problem."""
        try:
            from ser_engine.live.inputs import import_sounddevice

            sd = import_sounddevice()  # (PortAudio initialised without leaving libjack's files behind)
        except OSError as exc:  # the PortAudio library is missing
            raise RuntimeError(f"audio output is unavailable: {exc}") from exc

        self.stop()
        if self._samples.shape[0] == 0:
            raise RuntimeError("nothing to play")
        self._callback_stop = sd.CallbackStop
        self._audio_error = sd.PortAudioError
        self._pos = int(min(max(0.0, start_s), self.duration_s) * self._rate)
        self._done.clear()
        try:
            stream = sd.OutputStream(samplerate=self._rate, channels=1, dtype="float32",
                                     callback=self._callback, finished_callback=self._done.set)
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:  # no output device, or it refuses the rate
            self._done.set()
            raise RuntimeError(f"cannot open the audio output: {exc}") from exc
        self._stream = stream

    def stop(self) -> None:
        """Stop playing (safe to call twice; a device already gone is not an error)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(self._audio_error):
                stream.stop()
                stream.close()
        self._done.set()
