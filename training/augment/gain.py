"""Random gain in dB (microphones and speakers differ in level)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.augment.base import as_signal


@dataclass(frozen=True)
class Gain:
    """Multiply by ``10**(g/20)``, ``g`` uniform in ``gain_db``; the peak is kept below ``max_peak``."""

    gain_db: tuple[float, float] = (-18.0, 6.0)
    max_peak: float = 0.99

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` scaled by a random gain, its peak kept below ``max_peak``."""
        del sample_rate  # a gain does not depend on the rate
        x = as_signal(y)
        g = 10 ** (rng.uniform(*self.gain_db) / 20)
        peak = float(np.max(np.abs(x))) * g
        if peak > self.max_peak:
            g *= self.max_peak / peak
        return (x * g).astype(np.float32)
