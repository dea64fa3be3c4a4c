"""Exponential moving average of probability vectors."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError

__all__ = ["EmaSmoother"]


class EmaSmoother:
    """``s <- alpha * p + (1 - alpha) * s``; the first update returns ``p``.

    Parameters
    ----------
    alpha : float
        Weight of the newest observation, ``0 < alpha <= 1`` (1 = no smoothing).
    """

    def __init__(self, *, alpha: float) -> None:
        if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and math.isfinite(alpha)):
            raise ParameterError(f"alpha must be a number in (0, 1], got {alpha!r}")
        if not 0 < alpha <= 1:
            raise ParameterError(f"alpha must be in (0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self._state: npt.NDArray[np.float64] | None = None

    @property
    def state(self) -> npt.NDArray[np.float32] | None:
        """The current smoothed vector (None after :meth:`reset`)."""
        return None if self._state is None else self._state.astype(np.float32)

    def update(self, probs: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Fold in a new probability vector and return the smoothed one.

        Parameters
        ----------
        probs : array_like, shape (n_labels,)

        Returns
        -------
        ndarray, shape (n_labels,), float32
        """
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 1 or p.size == 0:
            raise ParameterError(f"probabilities must be a non-empty 1-D vector, got shape {p.shape}")
        if not np.isfinite(p).all():
            raise ParameterError("probabilities contain NaN or infinite values")
        if self._state is None or self._state.shape != p.shape:
            self._state = p.copy()
        else:
            self._state = self.alpha * p + (1.0 - self.alpha) * self._state
        return self._state.astype(np.float32)

    def reset(self) -> None:
        """Forget the history."""
        self._state = None
