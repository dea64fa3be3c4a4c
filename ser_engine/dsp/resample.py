"""Resampling to the engine's rate with soxr (HQ): whole signals and block streams."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError

__all__ = ["MAX_RATE", "MIN_RATE", "StreamResampler", "check_rate", "resample"]

FloatArray = npt.NDArray[np.float32]

MIN_RATE = 8000
MAX_RATE = 192000


def resample(y: npt.ArrayLike, *, orig_sr: int, target_sr: int) -> FloatArray:
    """Resample a whole mono signal with soxr (HQ).

    Parameters
    ----------
    y : array_like, shape (n,)
    orig_sr, target_sr : int
        Rates in Hz.

    Returns
    -------
    ndarray, shape (round(n * target_sr / orig_sr),), float32
    """
    import soxr

    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(f"expected a 1-D signal, got shape {x.shape}")
    check_rate(orig_sr, "orig_sr")
    check_rate(target_sr, "target_sr")
    if orig_sr == target_sr or x.shape[0] == 0:
        return x.copy()
    return np.asarray(soxr.resample(x, orig_sr, target_sr, quality="HQ"), dtype=np.float32)


def check_rate(rate: int, name: str) -> None:
    """Raise :class:`~ser_engine.errors.ParameterError` unless ``rate`` is an integer in 8-192 kHz."""
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise ParameterError(f"{name} must be an integer in {MIN_RATE}-{MAX_RATE} Hz, got {rate!r}")


class StreamResampler:
    """Block-wise mono resampler (soxr ``ResampleStream``, HQ).

    The concatenation of :meth:`process` outputs followed by :meth:`flush`
    equals resampling the concatenated input in one go (up to soxr's
    rounding).

    Parameters
    ----------
    orig_sr, target_sr : int
        Rates in Hz (8-192 kHz).
    """

    def __init__(self, orig_sr: int, target_sr: int) -> None:
        check_rate(orig_sr, "orig_sr")
        check_rate(target_sr, "target_sr")
        self.orig_sr = int(orig_sr)
        self.target_sr = int(target_sr)
        self._stream: Any = None
        if self.orig_sr != self.target_sr:
            import soxr

            self._stream = soxr.ResampleStream(self.orig_sr, self.target_sr, 1, dtype="float32", quality="HQ")

    def process(self, block: npt.ArrayLike, *, last: bool = False) -> FloatArray:
        """Resample the next block.

        Parameters
        ----------
        block : array_like, shape (n,)
        last : bool
            True for the final block (flushes the filter's tail).

        Returns
        -------
        ndarray, shape (m,), float32
        """
        x = np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
        if self._stream is None:
            return x.copy()
        return np.asarray(self._stream.resample_chunk(x, last=last), dtype=np.float32)

    def flush(self) -> FloatArray:
        """Return the samples still held in the filter (call once, at the end)."""
        return self.process(np.zeros(0, dtype=np.float32), last=True)

    def reset(self) -> None:
        """Forget the filter's state (the next block starts a new signal)."""
        if self._stream is not None:
            self._stream.clear()
