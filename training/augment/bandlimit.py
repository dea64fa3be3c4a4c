"""Band-limiting: a random band-pass like a cheap microphone or a phone line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, sosfilt

from training.augment.base import as_signal


@dataclass(frozen=True)
class BandLimit:
    """Butterworth band-pass, low cut uniform in ``low_hz``, high cut uniform in ``high_hz``; length unchanged."""

    low_hz: tuple[float, float] = (60.0, 400.0)
    high_hz: tuple[float, float] = (3000.0, 7500.0)
    order: int = 4

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` band-passed between a random low and high cut, same length."""
        x = as_signal(y)
        low = rng.uniform(*self.low_hz)
        high = min(rng.uniform(*self.high_hz), 0.45 * sample_rate)
        sos = butter(self.order, [low, high], btype="bandpass", fs=sample_rate, output="sos")
        return np.asarray(sosfilt(sos, x), dtype=np.float32)
