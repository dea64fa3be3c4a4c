"""The one rule for the analysis window and hop, shared by every entry point.

File analysis, voice profiles, the live streamer, ``ser analyze``/``ser listen``
and the app's settings dialog all accept the same window and hop: the limits
below (which the CLI's help and the dialog's spin boxes show) and, for a model
whose graph takes a fixed number of frames, exactly its own window.
:func:`config_for` applies the rule and gives the :class:`FeatureConfig` the
windows are cut with.

This module imports no model code, so the CLI can read the limits while it
builds its parser without loading ONNX Runtime.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ser_engine.config import FeatureConfig
from ser_engine.errors import ParameterError

if TYPE_CHECKING:
    from ser_engine.inference.model import EmotionModel

__all__ = ["MAX_HOP_S", "MAX_WINDOW_S", "MIN_HOP_S", "MIN_WINDOW_S", "check_timing", "config_for", "fixed_window_s"]

MIN_WINDOW_S = 0.5
"""Shortest analysis window in seconds (shorter windows hold too little of a sentence to judge)."""
MAX_WINDOW_S = 10.0
"""Longest analysis window in seconds (a live window this long lags a change of emotion by seconds)."""
MIN_HOP_S = 0.05
"""Shortest hop in seconds (one model call per hop: shorter hops only cost time)."""
MAX_HOP_S = 5.0
"""Longest hop in seconds; a hop is also never longer than the window (no audio skipped)."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_timing(*, window_s: float, hop_s: float) -> None:
    """Check a window and hop against the limits (any model).

    Parameters
    ----------
    window_s, hop_s : float
        Seconds.

    Raises
    ------
    ParameterError
        Not a finite number, outside :data:`MIN_WINDOW_S`-:data:`MAX_WINDOW_S` or
        :data:`MIN_HOP_S`-:data:`MAX_HOP_S`, or a hop longer than the window. The
        message names the value and the limits.
    """
    for name, value in (("window_s", window_s), ("hop_s", hop_s)):
        if not _is_number(value):
            raise ParameterError(f"{name} must be a finite number, got {value!r}")
    if not MIN_WINDOW_S <= window_s <= MAX_WINDOW_S:
        raise ParameterError(f"window_s must be between {MIN_WINDOW_S:g} and {MAX_WINDOW_S:g} s, got {window_s:g}")
    if not MIN_HOP_S <= hop_s <= MAX_HOP_S:
        raise ParameterError(f"hop_s must be between {MIN_HOP_S:g} and {MAX_HOP_S:g} s, got {hop_s:g}")
    if hop_s > window_s:
        raise ParameterError(f"hop_s must not be longer than the window ({window_s:g} s), got {hop_s:g}")


def fixed_window_s(model: EmotionModel) -> float | None:
    """Return the only window (seconds) the model's graph accepts, or None when its time axis is dynamic."""
    return None if model.metadata.input_shape[1] is None else model.feature_config.window_s


def config_for(model: EmotionModel, *, window_s: float | None = None, hop_s: float | None = None) -> FeatureConfig:
    """Return the model's feature config with the analysis window and hop every entry point uses.

    Parameters
    ----------
    model : EmotionModel
    window_s : float, optional
        Seconds; default the model's own (``feature_config.window_s``).
    hop_s : float, optional
        Seconds; default the model's own, shortened to the window when the window is shorter.

    Returns
    -------
    FeatureConfig
        ``model.feature_config`` with that window and hop.

    Raises
    ------
    ParameterError
        The window or hop is outside the limits (:func:`check_timing`), or the
        model's graph takes a fixed number of frames and the window gives another.
    """
    fc = model.feature_config
    window = fc.window_s if window_s is None else window_s
    hop = (min(fc.hop_s, window) if _is_number(window) else fc.hop_s) if hop_s is None else hop_s
    check_timing(window_s=window, hop_s=hop)
    cfg = fc.with_timing(window_s=window, hop_s=hop)
    fixed = model.metadata.input_shape[1]
    if fixed is not None and cfg.n_frames != fixed:
        raise ParameterError(
            f"this model needs {fc.window_s:g} s windows ({fixed} frames); a {cfg.window_s:g} s window gives "
            f"{cfg.n_frames}"
        )
    return cfg
