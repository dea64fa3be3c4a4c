"""Time shift: move the utterance by up to ``max_shift_s``, filling with zeros."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.augment.base import as_signal


@dataclass(frozen=True)
class TimeShift:
    """Shift by a uniform number of samples in ``[-max_shift_s, max_shift_s]``; length unchanged."""

    max_shift_s: float = 0.5

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` moved by a random number of samples, zero-filled, same length."""
        x = as_signal(y)
        k = int(rng.integers(-int(self.max_shift_s * sample_rate), int(self.max_shift_s * sample_rate) + 1))
        k = max(-x.size + 1, min(x.size - 1, k))
        out = np.zeros_like(x)
        if k >= 0:
            out[k:] = x[: x.size - k]
        else:
            out[:k] = x[-k:]
        return out
