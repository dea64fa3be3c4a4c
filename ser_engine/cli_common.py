"""What the ``ser`` sub-commands share: exit statuses, the usage error, messages, model and profile loading.

Its own module so that :mod:`ser_engine.cli` run as ``python -m ser_engine.cli``
(a ``__main__`` module) and the sub-command modules agree on one
:class:`UsageError` class.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ser_engine.model import EmotionModel
    from ser_engine.profile import VoiceProfile

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "MIN_HOP_S", "UsageError", "err",
           "load_model", "load_profile", "window_hop"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


MIN_HOP_S = 0.05


class UsageError(Exception):
    """A bad combination of options found after parsing: ``ser: error: ...``, exit 2."""


def window_hop(args: argparse.Namespace, model: EmotionModel) -> tuple[float, float]:
    """(window_s, hop_s) from ``--window``/``--hop`` or the model's defaults; the hop may not exceed the window."""
    cfg = model.feature_config
    window = args.window if args.window is not None else cfg.window_s
    hop = args.hop if args.hop is not None else min(cfg.hop_s, window)
    if hop > window:
        raise UsageError(f"argument --hop: must be between {MIN_HOP_S:g} seconds and the window "
                          f"({window:g} s), got '{hop:g}'")
    return window, hop


def err(message: str) -> None:
    """Print ``ser: <message>`` on stderr."""
    print(f"ser: {message}", file=sys.stderr, flush=True)


def load_profile(text: str, model: EmotionModel) -> tuple[EmotionModel, VoiceProfile]:
    """``--profile`` (a path or a stored profile's name) applied to ``model``."""
    from ser_engine.profile import ProfileStore, VoiceProfile

    path = ProfileStore().find(text)
    profile = VoiceProfile.load(path)
    return model.with_profile(profile), profile


def load_model(model_dir: str | None) -> EmotionModel:
    """``--model DIR`` (None: the bundled model), with a hint when the bundled one is missing."""
    from ser_engine.errors import ModelError
    from ser_engine.model import EmotionModel

    try:
        return EmotionModel.load(model_dir)
    except ModelError as exc:
        if model_dir is None and "not found" in str(exc):
            raise ModelError(f"{exc} (pass --model DIR or set SER_MODEL_DIR)") from exc
        raise
