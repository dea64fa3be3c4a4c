"""Room-like reverberation with a synthetic exponentially decaying impulse response."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import fftconvolve

from training.augment.base import as_signal, rms


@dataclass(frozen=True)
class Reverb:
    """Convolve with noise decaying to -60 dB after ``rt60`` s (uniform in ``rt60_s``), mixed ``wet`` (uniform).

    The output keeps the input length and RMS.
    """

    rt60_s: tuple[float, float] = (0.15, 0.7)
    wet: tuple[float, float] = (0.2, 0.6)

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` with random room-like reverberation, same length."""
        x = as_signal(y)
        rt60 = rng.uniform(*self.rt60_s)
        n = max(2, int(rt60 * sample_rate))
        t = np.arange(n) / sample_rate
        ir = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
        ir /= np.sqrt(np.sum(ir**2)) + 1e-12
        wet = fftconvolve(x.astype(np.float64), ir)[: x.size]
        mix = rng.uniform(*self.wet)
        out = (1 - mix) * x + mix * wet
        scale = rms(x) / (float(np.sqrt(np.mean(out**2))) + 1e-12)
        return np.asarray(out * scale, dtype=np.float32)
