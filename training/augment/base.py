"""The transform protocol."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError


class Transform(Protocol):
    """A waveform transform.

    ``__call__(y, *, sample_rate, rng)`` takes ``y`` of shape ``(n,)`` float32
    and returns a new float32 array of shape ``(m,)`` (``m == n`` unless the
    transform changes duration, e.g. speed change or time stretch), finite.
    """

    def __call__(
        self, y: npt.NDArray[np.float32], *, sample_rate: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """Return a transformed copy of ``y``.

        Parameters
        ----------
        y : ndarray, shape (n,), float32
        sample_rate : int
            Rate of ``y`` in Hz.
        rng : numpy.random.Generator
            The only source of randomness (a seeded generator gives the same copy).

        Returns
        -------
        ndarray, shape (m,), float32
            Finite; ``m == n`` unless the transform changes duration.
        """
        ...


def as_signal(y: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Validate and copy a mono signal to float32."""
    x = np.array(y, dtype=np.float32, copy=True)
    if x.ndim != 1:
        raise ParameterError(f"expected a 1-D signal, got shape {x.shape}")
    if x.size == 0:
        raise ParameterError("cannot augment an empty signal")
    return x


def rms(y: npt.NDArray[np.float32]) -> float:
    """Return the root mean square of ``y`` (never 0: a 1e-12 floor under the mean square)."""
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)) + 1e-12))
