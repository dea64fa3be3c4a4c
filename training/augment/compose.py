"""Chaining transforms with probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from training.augment.bandlimit import BandLimit
from training.augment.base import Transform, as_signal
from training.augment.gain import Gain
from training.augment.noise import AddNoise
from training.augment.pitch import PitchShift
from training.augment.reverb import Reverb
from training.augment.shift import TimeShift
from training.augment.speed import SpeedChange
from training.augment.stretch import TimeStretch


@dataclass(frozen=True)
class OneOf:
    """Apply exactly one of ``transforms``, drawn uniformly."""

    transforms: Sequence[Transform]

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` through one of the transforms, drawn with ``rng``."""
        t = self.transforms[int(rng.integers(len(self.transforms)))]
        return t(y, sample_rate=sample_rate, rng=rng)


@dataclass(frozen=True)
class Compose:
    """Apply each ``(transform, probability)`` in order; the output is clipped to [-1, 1] and finite."""

    steps: Sequence[tuple[Transform, float]] = field(default_factory=tuple)

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` through each step that ``rng`` draws, clipped to [-1, 1]."""
        x = as_signal(y)
        for transform, p in self.steps:
            if rng.random() < p:
                x = transform(x, sample_rate=sample_rate, rng=rng)
        return np.clip(np.nan_to_num(x), -1.0, 1.0).astype(np.float32)

    def describe(self) -> str:
        """Describe the chain in one line (each transform's repr and probability)."""
        return "; ".join(f"{t!r} p={p}" for t, p in self.steps)


def default_chain() -> Compose:
    """Build the augmentation chain of the shipped model.

    One of speed change / pitch shift / time stretch (p 0.7), reverberation
    (p 0.3), band-limiting (p 0.3), time shift (p 0.5), gain (always), noise at
    5-35 dB SNR (p 0.8).
    """
    return Compose(
        steps=(
            (OneOf((SpeedChange(), PitchShift(), TimeStretch())), 0.7),
            (Reverb(), 0.3),
            (BandLimit(), 0.3),
            (TimeShift(), 0.5),
            (Gain(), 1.0),
            (AddNoise(), 0.8),
        )
    )
