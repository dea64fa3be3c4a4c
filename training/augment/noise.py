"""Additive noise at a random signal-to-noise ratio (white, pink or brown)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.augment.base import as_signal


def _coloured(n: int, *, exponent: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Noise with power spectrum ~ 1/f**exponent, unit RMS."""
    white = rng.standard_normal(n)
    if exponent == 0:
        noise = white
    else:
        spec = np.fft.rfft(white)
        f = np.arange(spec.shape[0], dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (exponent / 2)
        noise = np.fft.irfft(spec, n=n)
    return np.asarray(noise / (np.sqrt(np.mean(noise**2)) + 1e-12), dtype=np.float64)


@dataclass(frozen=True)
class AddNoise:
    """Add noise at an SNR drawn uniformly in ``snr_db`` (dB).

    The signal power is measured over its loudest half (so leading silence or
    zero padding does not lower the reference), and the noise covers the whole
    signal, padding included: live audio is never digital zero.
    Colour is drawn among white (0), pink (1) and brown (2).
    """

    snr_db: tuple[float, float] = (5.0, 35.0)

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return ``y`` plus white, pink or brown noise at a random SNR."""
        x = as_signal(y)
        frame = max(1, sample_rate // 50)
        n_frames = max(1, x.size // frame)
        energies = np.sort(np.mean(np.square(x[: n_frames * frame].reshape(n_frames, -1), dtype=np.float64), axis=1))
        p_sig = float(np.mean(energies[n_frames // 2 :])) if n_frames > 1 else float(np.mean(x.astype(np.float64) ** 2))
        if p_sig <= 1e-12:
            p_sig = 1e-6
        snr = rng.uniform(*self.snr_db)
        exponent = float(rng.choice([0.0, 1.0, 2.0]))
        noise = _coloured(x.size, exponent=exponent, rng=rng) * np.sqrt(p_sig / 10 ** (snr / 10))
        return np.asarray(x + noise, dtype=np.float32)
