"""Time stretch, pitch kept (librosa phase vocoder)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.augment.base import as_signal


@dataclass(frozen=True)
class TimeStretch:
    """Stretch by ``rate`` uniform in ``rate_range`` (``> 1`` faster); length becomes about ``n / rate``."""

    rate_range: tuple[float, float] = (0.85, 1.15)

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` stretched in time by a random rate, pitch kept (length about ``n / rate``)."""
        del sample_rate  # the phase vocoder works in frames, whatever the rate
        import librosa

        x = as_signal(y)
        if x.size < 2048:
            return x
        rate = rng.uniform(*self.rate_range)
        out = librosa.effects.time_stretch(x, rate=rate)
        return np.nan_to_num(np.asarray(out, dtype=np.float32))
