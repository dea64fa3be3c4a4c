"""Where the analysis windows of a whole in-memory clip lie: the tests' statement of the windowing rule.

The engine cuts windows from a stream of blocks (:func:`ser_engine.dsp.core.iter_window_features`);
these two functions say, independently and for a whole clip at once, where those windows must
be and what samples they hold, so tests can compare the engine with them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.dsp.features import fit_to_length, frame_grid
from ser_engine.errors import ParameterError

FloatArray = npt.NDArray[np.float32]


def window_starts(*, n_samples: int, window: int, hop: int, align: int = 1) -> npt.NDArray[np.int64]:
    """Start samples of the analysis windows over a clip of ``n_samples``.

    Windows start at ``0, hop, 2*hop, ...`` while they fit; when the last one
    stops short of the end, one more window is added, ending at the end or
    less than ``align`` samples before it (its start is a multiple of
    ``align``; :func:`frame_grid` gives 20 ms: the frames it needs are then
    those of the clip). A clip no longer than one window gives the single
    start 0 (the clip is then centre-padded by :func:`fit_to_length`).

    Returns
    -------
    ndarray, shape (n_windows,), int64
    """
    if window <= 0 or hop <= 0 or align <= 0:
        raise ParameterError("window, hop and align must be positive")
    if n_samples <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_samples - window + 1, hop, dtype=np.int64)
    tail = (n_samples - window) // align * align
    if tail > starts[-1]:
        starts = np.append(starts, np.int64(tail))
    return starts


def frame_windows(*, y: npt.ArrayLike, config: FeatureConfig) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Cut a clip into the analysis windows the model sees.

    Parameters
    ----------
    y : array_like, shape (n,)
        Mono signal at ``config.sample_rate``.
    config : FeatureConfig

    Returns
    -------
    windows : ndarray, shape (n_windows, config.window_samples), float32
    starts : ndarray, shape (n_windows,), int64
        Start sample of each window in ``y`` (0 for a padded short clip).
    """
    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(f"expected a 1-D signal, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ParameterError("cannot analyse an empty signal")
    w = config.window_samples
    starts = window_starts(n_samples=x.shape[0], window=w, hop=config.hop_samples, align=frame_grid(config))
    if x.shape[0] <= w:
        return fit_to_length(y=x, length=w)[None, :], starts
    view = np.lib.stride_tricks.sliding_window_view(x, w)
    return np.ascontiguousarray(view[starts]), starts
