"""The one window-inference core: frames, gate levels and windows over a sample stream.

Every path from audio to the model goes through here: the live
:class:`~ser_engine.live.stream.Streamer` (blocks from the 16 kHz ring, one window
per hop), file analysis (:func:`iter_window_features` over decoded blocks,
many windows per model call), voice profiles and training (the same
:func:`iter_window_features`). What comes out are the windows' un-normalised
feature frames; the model normalises and classifies them
(:meth:`ser_engine.inference.model.EmotionModel.predict`), a batch at a time where the
caller flushes its windows.

Samples arrive incrementally. A :class:`FrameCache` computes every feature
frame (of the config's feature set: log-mel, or the seeds' MFCC sets) and
every speech-gate frame level once, when its last sample arrives, all the
frames a block completes in one call, and a window is assembled from the
cached frames. This equals the full computation
on the window (:meth:`~ser_engine.dsp.features.Featurizer.frames` and
:func:`~ser_engine.dsp.gate.frame_levels_db` on the window's samples) because
neither kind of frame is centred and every feature of a frame depends on that
frame's samples only: feature frame ``k`` of a stream covers
samples ``[k*hop_length, k*hop_length + n_fft)`` and gate frame ``j`` covers
``[j*g, (j+1)*g)`` (``g`` = 20 ms), so a window starting at a multiple of
``hop_length`` (of ``g``) holds exactly the stream's frames from there on.
A window that does not start on the grid (an odd hop) and a short clip
centre-padded to the window length are computed from their samples, which
the cache keeps for that purpose (about one window).

Windows of a file (:func:`iter_window_features`) start at ``0, hop, 2*hop,
...`` while they fit, plus one ending at the end (less than 20 ms before it,
so that it starts on the frame grid (:func:`~ser_engine.dsp.features.frame_grid`)
and costs no new frames) when the last stops short of it; a clip no longer
than one window is gated on its real samples and featurised centre-padded.

Voiced time (:class:`VoiceTrack`): in every window the gate judges speech, the
gate frames above the window's threshold are voiced; pauses shorter than
:data:`BRIDGE_S` between voiced frames count as speech. This gives where the
voice is to within a gate frame, not the union of whole windows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.dsp.features import Featurizer, fit_to_length, frame_grid
from ser_engine.dsp.gate import GateParams, frame_length, frame_levels_db, judge
from ser_engine.errors import ParameterError

__all__ = ["BRIDGE_S", "FrameCache", "VoiceTrack", "WindowFeatures", "iter_window_features"]

FloatArray = npt.NDArray[np.float32]
LevelArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Pauses shorter than this between voiced gate frames count as speech (gaps between syllables).
BRIDGE_S = 0.3


class FrameCache:
    """Samples, feature frames and gate levels of one stream, each frame computed once.

    Positions are samples since the stream's first sample. Call :meth:`feed`
    with each new block and :meth:`release` with the earliest start of any
    window still to come, which bounds memory to about one window.

    Parameters
    ----------
    config : FeatureConfig
        Window length and frame parameters.
    featurizer : Featurizer
        Built from a config with the same frame parameters.
    features : bool
        Cache feature frames (worth it when windows start on the ``hop_length`` grid).
    levels : bool
        Cache gate levels (worth it when windows start on the gate-frame grid).
    """

    def __init__(
        self, *, config: FeatureConfig, featurizer: Featurizer, features: bool = True, levels: bool = True
    ) -> None:
        self.config = config
        self.featurizer = featurizer
        self.sample_rate = config.sample_rate
        self.window = config.window_samples
        self.gate_frame = frame_length(config.sample_rate)
        self._hl = config.hop_length
        self._n_fft = config.n_fft
        self._use_frames = features
        self._use_levels = levels
        self._samples: FloatArray = np.zeros(0, dtype=np.float32)
        self._base = 0  # stream position of _samples[0]
        self.total = 0  # samples fed so far
        self._frames: FloatArray = np.zeros((0, config.n_features), dtype=np.float32)
        self._frame0 = 0  # frame index of _frames[0]
        self._levels: LevelArray = np.zeros(0, dtype=np.float64)
        self._lev0 = 0

    # ------------------------------------------------------------------ input
    def feed(self, block: npt.ArrayLike) -> None:
        """Append samples and compute the frames they complete.

        Parameters
        ----------
        block : array_like, shape (m,)
            Finite mono samples at ``config.sample_rate``.
        """
        b = np.asarray(block, dtype=np.float32).reshape(-1)
        if b.shape[0] == 0:
            return
        self._samples = np.concatenate([self._samples, b]) if self._samples.shape[0] else b.copy()
        self.total += b.shape[0]
        if self._use_frames:
            nxt = self._frame0 + self._frames.shape[0]
            end = (self.total - self._n_fft) // self._hl + 1 if self.total >= self._n_fft else 0
            if end > nxt:
                a = nxt * self._hl - self._base
                seg = self._samples[a : a + (end - 1 - nxt) * self._hl + self._n_fft]
                new = self.featurizer.frames(seg)
                self._frames = np.concatenate([self._frames, new]) if self._frames.shape[0] else new
        if self._use_levels:
            g = self.gate_frame
            nxt = self._lev0 + self._levels.shape[0]
            end = self.total // g
            if end > nxt:
                a = nxt * g - self._base
                new_l = frame_levels_db(self._samples[a : a + (end - nxt) * g], sample_rate=self.sample_rate)
                self._levels = np.concatenate([self._levels, new_l]) if self._levels.shape[0] else new_l

    def release(self, before: int) -> None:
        """Forget what no window starting at ``before`` or later needs.

        Samples still needed to complete the next frames are kept.
        """
        if self._use_frames:
            k = min(-(-before // self._hl), self._frame0 + self._frames.shape[0])
            if k > self._frame0:
                self._frames = self._frames[k - self._frame0 :]
                self._frame0 = k
        if self._use_levels:
            j = min(-(-before // self.gate_frame), self._lev0 + self._levels.shape[0])
            if j > self._lev0:
                self._levels = self._levels[j - self._lev0 :]
                self._lev0 = j
        keep = before
        if self._use_frames:
            keep = min(keep, (self._frame0 + self._frames.shape[0]) * self._hl)
        if self._use_levels:
            keep = min(keep, (self._lev0 + self._levels.shape[0]) * self.gate_frame)
        keep = min(keep, self.total)
        if keep > self._base:
            self._samples = self._samples[keep - self._base :]
            self._base = keep

    # ------------------------------------------------------------------ windows
    def samples(self, start: int, stop: int) -> FloatArray:
        """Return the samples ``[start, stop)`` (a view; they must still be held).

        Returns
        -------
        ndarray, shape (stop - start,), float32
        """
        if start < self._base or stop > self.total or start > stop:
            raise ParameterError(f"samples {start}..{stop} are not held (have {self._base}..{self.total})")
        return self._samples[start - self._base : stop - self._base]

    def levels(self, start: int, stop: int) -> LevelArray:
        """Gate frame levels of the window ``[start, stop)``, equal to ``frame_levels_db`` on its samples.

        Returns
        -------
        ndarray, shape (max(1, (stop - start) // gate_frame),), float64
        """
        g = self.gate_frame
        n = (stop - start) // g
        if self._use_levels and n > 0 and start % g == 0:
            j = start // g - self._lev0
            if j >= 0 and j + n <= self._levels.shape[0]:
                return self._levels[j : j + n]
        return frame_levels_db(self.samples(start, stop), sample_rate=self.sample_rate)

    def frames(self, start: int) -> FloatArray:
        """Un-normalised feature frames of the full window starting at ``start``.

        Returns
        -------
        ndarray, shape (config.n_frames, config.n_features), float32
            Equal to ``featurizer.frames`` on the window's samples.
        """
        n = self.config.n_frames
        if self._use_frames and start % self._hl == 0:
            k = start // self._hl - self._frame0
            if k >= 0 and k + n <= self._frames.shape[0]:
                return self._frames[k : k + n]
        return self.featurizer.frames(self.samples(start, start + self.window))


@dataclass(frozen=True)
class WindowFeatures:
    """One analysis window of a stream: where it lies, whether it is speech, its features.

    Attributes
    ----------
    start_s, end_s : float
        Seconds from the stream's start (a padded short clip is placed at ``0 .. length``).
    speech : bool
        The speech gate's decision (:func:`ser_engine.dsp.gate.window_is_speech` on the real samples).
    features : ndarray, shape (n_frames, n_features), float32, or None
        Un-normalised feature frames (:meth:`~ser_engine.dsp.features.Featurizer.frames`) of the
        window for speech windows; None for silence.
    voiced : ndarray, shape (n_gate_frames,), bool, or None
        For speech windows, which 20 ms gate frames of the window's real samples (from
        ``start_s``) exceed the gate's threshold; None for silence.
    """

    start_s: float
    end_s: float
    speech: bool
    features: FloatArray | None
    voiced: BoolArray | None = None


def _gate(levels: LevelArray, params: GateParams) -> tuple[bool, BoolArray | None]:
    speech, threshold = judge(levels, params=params)
    return speech, (levels > threshold) if speech else None


def iter_window_features(
    blocks: Iterable[npt.NDArray[np.float32]],
    *,
    config: FeatureConfig,
    featurizer: Featurizer,
    gate_sensitivity: float = 0.5,
) -> Iterator[WindowFeatures]:
    """Window, gate and featurise a block stream: the one path from audio to model input.

    File analysis (:func:`ser_engine.files.analysis.analyze_file`), voice profiles and
    training all call this, so a clip's training windows are exactly the speech
    windows ``ser analyze`` reports. Windows are placed as the module docstring
    says; only each block's new frames are computed.

    Parameters
    ----------
    blocks : iterable of ndarray, shape (m,), float32
        Mono audio at ``config.sample_rate`` (e.g. :func:`~ser_engine.dsp.audio.iter_audio_blocks`).
    config : FeatureConfig
        Window and hop come from it.
    featurizer : Featurizer
        Built from a config with the same frame parameters.
    gate_sensitivity : float
        Speech gate sensitivity in [0, 1].

    Yields
    ------
    WindowFeatures
    """
    params = GateParams(gate_sensitivity)
    sr = config.sample_rate
    w, h = config.window_samples, config.hop_samples
    g = frame_length(sr)
    grid = frame_grid(config)
    cache = FrameCache(config=config, featurizer=featurizer, features=h % config.hop_length == 0, levels=h % g == 0)

    def one(start: int) -> WindowFeatures:
        speech, voiced = _gate(cache.levels(start, start + w), params)
        frames = cache.frames(start) if speech else None
        return WindowFeatures(start / sr, (start + w) / sr, speech, None if frames is None else frames.copy(), voiced)

    next_start = 0
    for block in blocks:
        cache.feed(block)
        while next_start + w <= cache.total:
            yield one(next_start)
            next_start += h
        cache.release(min(next_start, (cache.total - w) // grid * grid))
    total = cache.total
    if total == 0:
        return
    if total < w:  # shorter than one window: gated on its real samples, featurised centre-padded, as in training
        speech, voiced = _gate(cache.levels(0, total), params)
        frames = featurizer.frames(fit_to_length(y=cache.samples(0, total), length=w)) if speech else None
        yield WindowFeatures(0.0, total / sr, speech, frames, voiced)
    elif (tail := (total - w) // grid * grid) > next_start - h:  # the last regular window stops short of the end
        yield one(tail)


class VoiceTrack:
    """Where the voice is in a stream, on the gate-frame grid (20 ms).

    Parameters
    ----------
    sample_rate : int
    bridge_s : float
        Pauses shorter than this between voiced frames count as speech.
    """

    def __init__(self, *, sample_rate: int, bridge_s: float = BRIDGE_S) -> None:
        if not (math.isfinite(bridge_s) and bridge_s >= 0):
            raise ParameterError(f"bridge_s must be a non-negative number, got {bridge_s!r}")
        self.sample_rate = sample_rate
        self.frame_s = frame_length(sample_rate) / sample_rate
        self.bridge_s = bridge_s
        self._voiced: BoolArray = np.zeros(0, dtype=bool)

    def add(self, *, start_s: float, voiced: BoolArray | None) -> None:
        """Mark the voiced gate frames of a window starting at ``start_s`` (no-op for None)."""
        if voiced is None or not voiced.any():
            return
        j0 = round(start_s / self.frame_s)
        need = j0 + voiced.shape[0]
        if need > self._voiced.shape[0]:
            self._voiced = np.concatenate([self._voiced, np.zeros(max(need - self._voiced.shape[0], 4096), bool)])
        self._voiced[j0:need] |= voiced

    def spans(self, *, duration_s: float) -> list[tuple[float, float]]:
        """Voiced spans in seconds, pauses shorter than ``bridge_s`` bridged, clipped to ``duration_s``.

        Returns
        -------
        list of (start_s, end_s)
        """
        idx = np.flatnonzero(self._voiced)
        if idx.size == 0:
            return []
        max_gap = round(self.bridge_s / self.frame_s)
        breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
        firsts = np.concatenate([[idx[0]], idx[breaks + 1]])
        lasts = np.concatenate([idx[breaks], [idx[-1]]])
        out: list[tuple[float, float]] = []
        for a, b in zip(firsts, lasts, strict=True):
            s, e = float(a) * self.frame_s, min(float(b + 1) * self.frame_s, duration_s)
            if e > s:
                out.append((s, e))
        return out

    def speech_s(self, *, duration_s: float) -> float:
        """Total voiced seconds (:meth:`spans` summed)."""
        return float(sum(e - s for s, e in self.spans(duration_s=duration_s)))
