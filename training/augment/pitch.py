"""Pitch shift in semitones, duration kept (librosa phase vocoder + resampling)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.augment.base import as_signal


@dataclass(frozen=True)
class PitchShift:
    """Shift pitch by ``s`` semitones, ``s`` uniform in ``semitones``; length unchanged."""

    semitones: tuple[float, float] = (-2.5, 2.5)

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` shifted in pitch by a random number of semitones, same length."""
        import librosa

        x = as_signal(y)
        steps = rng.uniform(*self.semitones)
        out = librosa.effects.pitch_shift(x, sr=sample_rate, n_steps=steps, res_type="soxr_hq")
        return np.nan_to_num(np.asarray(out, dtype=np.float32))
