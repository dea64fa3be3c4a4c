"""A live session fed from an array instead of a microphone (self-test, demos, tests).

It has the interface of :class:`ser_engine.live.LiveSession` that the app uses
and is built from the same engine parts (ring buffer, stream resampler,
:class:`~ser_engine.stream.Streamer`), so the self-test exercises the app's
live path end to end without a sound card.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.audio import StreamResampler
from ser_engine.model import EmotionModel
from ser_engine.ringbuffer import RingBuffer
from ser_engine.stream import Prediction, Streamer, StreamSettings

__all__ = ["ReplaySession", "replay_factory"]


class ReplaySession:
    """Plays ``samples`` (at ``sample_rate``, mono or (n, channels)) through the live pipeline.

    Parameters
    ----------
    samples : ndarray, shape (n,) or (n, channels)
    sample_rate : int
        Rate of ``samples`` (the "device rate"); resampled to the model's rate.
    speed : float
        1.0 paces blocks in real time; larger values feed faster.
    block_s : float
        Seconds per block, like a sound-card callback period.
    """

    def __init__(self, model: EmotionModel, *, samples: npt.ArrayLike, sample_rate: int,
                 settings: StreamSettings, on_prediction: Callable[[Prediction], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None, speed: float = 1.0,
                 block_s: float = 0.02) -> None:
        x = np.asarray(samples, dtype=np.float32)
        self._samples = x.mean(axis=1) if x.ndim == 2 else x.reshape(-1)
        self.device_rate = int(sample_rate)
        self._rate = model.feature_config.sample_rate
        self._streamer = Streamer(model, settings=settings)
        self._on_prediction = on_prediction
        self._on_error = on_error
        self._speed = speed
        self._block = max(1, round(block_s * sample_rate))
        self.audio = RingBuffer(self._rate * 30)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._compute_ms: float | None = None
        self.predictions = 0
        self.finished = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ser-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            res = StreamResampler(self.device_rate, self._rate) if self.device_rate != self._rate else None
            reader = self.audio.reader()
            t0 = time.monotonic()
            n = self._samples.shape[0]
            for i in range(0, n, self._block):
                if self._stop.is_set():
                    return
                block = self._samples[i : i + self._block]
                if res is not None:
                    block = res.process(block, last=i + self._block >= n)
                self.audio.write(block)
                for pred in self._streamer.push(reader):
                    self._compute_ms = pred.compute_ms
                    self.predictions += 1
                    if self._on_prediction is not None:
                        self._on_prediction(pred)
                due = t0 + (i + self._block) / self.device_rate / self._speed
                delay = due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
        except Exception as exc:
            if self._on_error is not None:
                self._on_error(exc)
        finally:
            self.finished.set()

    def stats(self) -> dict[str, Any]:
        return {"overflows": 0, "lost_samples": 0, "last_compute_ms": self._compute_ms, "delay_ms": None,
                "device_rate": self.device_rate}

    def update_settings(self, settings: StreamSettings) -> None:
        self._streamer.update_settings(settings)

    def start_recording(self, wav_path: Path | str, csv_path: Path | str) -> None:
        raise NotImplementedError("a replayed session does not record")

    def stop_recording(self) -> None:
        return None


def replay_factory(samples: npt.ArrayLike, sample_rate: int, *, speed: float = 1.0) -> Callable[..., ReplaySession]:
    """A session factory for :class:`~desktop_app.live_controller.LiveController` that replays ``samples``."""

    def make(model: EmotionModel, *, device: Any, settings: StreamSettings,
             on_prediction: Callable[[Prediction], None], on_error: Callable[[BaseException], None]) -> ReplaySession:
        return ReplaySession(model, samples=samples, sample_rate=sample_rate, settings=settings,
                             on_prediction=on_prediction, on_error=on_error, speed=speed)

    return make
