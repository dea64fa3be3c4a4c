"""Speed change (tempo and pitch together) by resampling, as tape speed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr

from training.augment.base import as_signal


@dataclass(frozen=True)
class SpeedChange:
    """Play ``factor`` times faster (``factor`` uniform in ``factor_range``); length becomes ``n / factor``."""

    factor_range: tuple[float, float] = (0.9, 1.1)

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` played at a random speed (length ``n / factor``)."""
        x = as_signal(y)
        factor = rng.uniform(*self.factor_range)
        out = soxr.resample(x, sample_rate * factor, sample_rate, quality="HQ")
        return np.asarray(out, dtype=np.float32)
