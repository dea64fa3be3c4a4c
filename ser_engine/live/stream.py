"""Sliding-window streaming inference over a ring buffer.

Every hop (default 0.5 s) the :class:`Streamer` takes the newest hop of audio
from a :class:`~ser_engine.live.ringbuffer.RingReader` and hands it to the one
window-inference core (:class:`ser_engine.dsp.core.FrameCache`), which computes
the feature frames (of the model's feature set) and speech-gate frame levels the new samples complete. The
newest window (default 3 s) is assembled from those frames; the
:class:`~ser_engine.dsp.gate.SpeechGate` decides on its levels whether it holds
speech, and only then the model runs (:meth:`~ser_engine.inference.model.EmotionModel.predict`,
the path file analysis takes), its probabilities (and affect scores, for a
model that has them) smoothed by an :class:`~ser_engine.dsp.smoothing.EmaSmoother`. On silence it says so
(``speech=False``, ``label=None``) instead of inventing an emotion. Frames are
kept even on silence, so speech onsets cost no more than other steps; the
features equal :class:`~ser_engine.dsp.features.Featurizer` on the full window
(tested), as in file analysis.

Until a full window has arrived, the samples so far are centre-padded to the
window length, exactly as a short clip is in file analysis and training.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.config import DEFAULT_HOP_S, DEFAULT_WINDOW_S
from ser_engine.dsp.core import FrameCache
from ser_engine.dsp.features import fit_to_length
from ser_engine.dsp.gate import SpeechGate, frame_length, level_dbfs
from ser_engine.dsp.smoothing import EmaSmoother
from ser_engine.errors import ParameterError
from ser_engine.inference.model import EmotionModel
from ser_engine.live.ringbuffer import RingReader
from ser_engine.timing import check_timing, config_for

__all__ = ["Prediction", "StreamSettings", "Streamer"]

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class StreamSettings:
    """Live analysis settings (validated on construction).

    Parameters
    ----------
    window_s : float
        Seconds of audio the model sees per prediction, within the limits of
        :mod:`ser_engine.timing` (those of ``ser listen --window`` and the app).
    hop_s : float
        Seconds between predictions (``<= window_s``; :mod:`ser_engine.timing`'s limits).
    smoothing : float
        EMA smoothing in ``[0, 1)``: 0 shows each window's probabilities, 0.5
        (default) averages over roughly the last 3 hops. The EMA weight of
        the newest window is ``1 - smoothing``.
    gate_sensitivity : float
        Speech gate sensitivity in ``[0, 1]`` (see :mod:`ser_engine.dsp.gate`).
    """

    window_s: float = DEFAULT_WINDOW_S
    hop_s: float = DEFAULT_HOP_S
    smoothing: float = 0.5
    gate_sensitivity: float = 0.5

    def __post_init__(self) -> None:
        for name in ("window_s", "hop_s", "smoothing", "gate_sensitivity"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ParameterError(f"StreamSettings.{name} must be a finite number, got {v!r}")
        check_timing(window_s=self.window_s, hop_s=self.hop_s)
        if not 0 <= self.smoothing < 1:
            raise ParameterError(f"smoothing must be in [0, 1), got {self.smoothing}")
        if not 0 <= self.gate_sensitivity <= 1:
            raise ParameterError(f"gate_sensitivity must be in [0, 1], got {self.gate_sensitivity}")

    def replace(self, **changes: Any) -> StreamSettings:
        """Return a validated copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Prediction:
    """One streaming step.

    Attributes
    ----------
    start_s, end_s : float
        The analysed window in stream time (seconds since the stream began).
    speech : bool
        The gate's decision; the model ran only when True.
    label : str or None
        Most probable (smoothed) emotion; None on silence.
    confidence : float
        Smoothed probability of ``label``; 0.0 on silence.
    probabilities : dict
        Smoothed probability per label (model label order); empty on silence.
    raw_probabilities : dict
        This window's unsmoothed probabilities; empty on silence.
    level_dbfs : float
        RMS level of the newest hop.
    compute_ms : float
        Gate + features + inference time of this step.
    uncertain : bool
        ``confidence`` is below the model's ``uncertainty_threshold`` (``label``
        still holds the arg-max); False on silence.
    affect : dict
        Smoothed score per affect dimension (:attr:`~ser_engine.inference.model.EmotionModel.affect_names`),
        with the same smoothing as ``probabilities``; empty on silence and for a
        model without an affect output.
    """

    start_s: float
    end_s: float
    speech: bool
    label: str | None
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)
    raw_probabilities: dict[str, float] = field(default_factory=dict)
    level_dbfs: float = -120.0
    compute_ms: float = 0.0
    uncertain: bool = False
    affect: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (used by ``ser listen --format jsonl`` and recordings)."""
        return {
            "start_s": round(self.start_s, 4),
            "end_s": round(self.end_s, 4),
            "speech": self.speech,
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "uncertain": self.uncertain,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "level_dbfs": round(self.level_dbfs, 2),
            "compute_ms": round(self.compute_ms, 3),
        }


class Streamer:
    """Gate, featurize, infer and smooth a stream, one hop at a time.

    Parameters
    ----------
    model : EmotionModel
    settings : StreamSettings
    """

    def __init__(self, model: EmotionModel, *, settings: StreamSettings | None = None) -> None:
        self.model = model
        self._settings = settings or StreamSettings()
        self._configure()

    # ------------------------------------------------------------------ configuration
    def _configure(self) -> None:
        s = self._settings
        cfg = config_for(self.model, window_s=s.window_s, hop_s=s.hop_s)
        self.config = cfg
        self.sample_rate = cfg.sample_rate
        self.window = cfg.window_samples
        self.hop = cfg.hop_samples
        self.featurizer = self.model.featurizer
        # frame reuse needs every window to start on the frame grid (window and hop multiples of hop_length)
        self.incremental = self.hop % cfg.hop_length == 0 and self.window % cfg.hop_length == 0
        g = frame_length(cfg.sample_rate)
        self._cached_levels = self.hop % g == 0 and self.window % g == 0
        self._gate = SpeechGate(sample_rate=cfg.sample_rate, sensitivity=s.gate_sensitivity)
        self._new_smoothers(s.smoothing)
        self._new_cache()
        self._end: int | None = None
        self._frames: FloatArray | None = None
        self.discontinuities = 0

    def _new_cache(self) -> None:
        self._cache = FrameCache(
            config=self.config, featurizer=self.featurizer, features=self.incremental, levels=self._cached_levels
        )

    def _new_smoothers(self, smoothing: float) -> None:
        # the affect scores are smoothed exactly as the probabilities, so both describe the same moment
        self._smoother = EmaSmoother(alpha=1.0 - smoothing)
        self._affect_smoother = EmaSmoother(alpha=1.0 - smoothing)

    @property
    def settings(self) -> StreamSettings:
        """Current settings (change them with :meth:`update_settings`)."""
        return self._settings

    def update_settings(self, settings: StreamSettings) -> None:
        """Apply new settings; a new window or hop restarts the window."""
        old = self._settings
        self._settings = settings
        if (settings.window_s, settings.hop_s) != (old.window_s, old.hop_s):
            self._configure()
            return
        self._gate.sensitivity = settings.gate_sensitivity
        self._new_smoothers(settings.smoothing)

    def reset(self) -> None:
        """Forget the window, the frames, the noise floor and the smoothing."""
        self._new_cache()
        self._frames = None
        self._end = None
        self._gate.reset()
        self._smoother.reset()
        self._affect_smoother.reset()

    @property
    def noise_floor_db(self) -> float | None:
        """The speech gate's noise floor in dBFS (None before the first window)."""
        return self._gate.noise_floor_db

    # ------------------------------------------------------------------ streaming
    def push(self, reader: RingReader, *, max_steps: int | None = None) -> list[Prediction]:
        """Consume every full hop available from ``reader`` (or ``max_steps``).

        A gap in the stream (the reader lost samples) restarts the window.

        Returns
        -------
        list of Prediction, one per hop consumed
        """
        out: list[Prediction] = []
        while max_steps is None or len(out) < max_steps:
            block = reader.read(self.hop)
            if block is None:
                break
            end = reader.position
            out.append(self.push_block(block, end_sample=end))
        return out

    def push_block(self, block: npt.ArrayLike, *, end_sample: int) -> Prediction:
        """Append exactly one hop of samples ending at stream sample ``end_sample``.

        Parameters
        ----------
        block : array_like, shape (hop,)
        end_sample : int
            Stream position just after the block.
        """
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if x.shape[0] != self.hop:
            raise ParameterError(f"push_block needs exactly hop={self.hop} samples, got {x.shape[0]}")
        if not np.isfinite(x).all():
            raise ParameterError("audio block contains NaN or infinite samples")
        start = end_sample - self.hop
        if self._end is not None and start != self._end:
            self.discontinuities += 1
            self.reset()
        t0 = time.perf_counter()
        w, cache = self.window, self._cache
        cache.feed(x)
        self._end = end_sample
        filled = min(w, cache.total)
        start = cache.total - filled
        speech = self._gate.update_levels(cache.levels(start, cache.total))
        full = filled == w
        frames: FloatArray | None = None
        if full and (speech or self.incremental):  # cached frames cost nothing; others only for speech
            frames = self._frames = cache.frames(start)
        elif not full and speech:  # before a full window: the samples so far, centre-padded like a short clip
            frames = self.featurizer.frames(fit_to_length(y=cache.samples(start, cache.total), length=w))
        cache.release(max(0, cache.total + self.hop - w))  # the next window's start
        return self._finish(
            frames=frames,
            speech=speech,
            start_sample=end_sample - filled,
            end_sample=end_sample,
            level=level_dbfs(x),
            t0=t0,
        )

    def _finish(
        self,
        *,
        frames: FloatArray | None,
        speech: bool,
        start_sample: int,
        end_sample: int,
        level: float,
        t0: float,
    ) -> Prediction:
        sr = self.sample_rate
        if not speech:
            self._smoother.reset()
            self._affect_smoother.reset()
            return Prediction(
                start_s=start_sample / sr,
                end_s=end_sample / sr,
                speech=False,
                label=None,
                confidence=0.0,
                level_dbfs=level,
                compute_ms=(time.perf_counter() - t0) * 1000.0,
            )
        if frames is None:  # pragma: no cover - push_block gives a speech window its frames
            raise AssertionError("a speech window without features")
        out = self.model.predict(frames[None])
        raw = out.probabilities[0]
        smooth = self._smoother.update(raw)
        affect: dict[str, float] = {}
        if out.affect is not None:
            scores = self._affect_smoother.update(out.affect[0])
            affect = {name: float(v) for name, v in zip(self.model.affect_names, scores, strict=True)}
        labels = self.model.labels
        best = int(np.argmax(smooth))
        return Prediction(
            start_s=start_sample / sr,
            end_s=end_sample / sr,
            speech=True,
            label=labels[best],
            confidence=float(smooth[best]),
            probabilities={lab: float(p) for lab, p in zip(labels, smooth, strict=True)},
            raw_probabilities={lab: float(p) for lab, p in zip(labels, raw, strict=True)},
            level_dbfs=level,
            compute_ms=(time.perf_counter() - t0) * 1000.0,
            uncertain=self.model.is_uncertain(float(smooth[best])),
            affect=affect,
        )

    def window_features(self) -> FloatArray | None:
        """Return the un-normalised feature frames of the last full window, shape (n_frames, n_features).

        For tests and views; None before a full window (or a non-incremental
        streamer's silent windows, whose frames are never computed).
        """
        return None if self._frames is None else self._frames.copy()
