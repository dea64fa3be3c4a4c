"""The one featurizer: per-frame features (log-mel, or the seeds' MFCC sets), normalised per value.

Training imports this module (never a copy of it) and the live streamer and
file analysis call it, so the model sees exactly the same features in both.
It is plain NumPy (no librosa or numba at run time); the tests use librosa as
the oracle.

Conventions
-----------
* Audio is mono float32 at ``config.sample_rate``, nominally in [-1, 1].
* Frames are not centred: frame ``i`` covers samples
  ``[i*hop_length, i*hop_length + n_fft)``. A window of ``N`` samples gives
  ``1 + (N - n_fft) // hop_length`` frames. Because frames are not centred,
  the frames of a window starting at a multiple of ``hop_length`` are the same
  frames a longer signal has at that position, which lets the streamer reuse
  frames between overlapping windows.
* Features have shape ``(n_frames, n_features)`` for one window and
  ``(batch, n_frames, n_features)`` for several; dtype float32.
  ``n_features = config.n_features`` depends on the feature set
  (:data:`~ser_engine.config.FEATURE_SETS`). Every set comes from one STFT per
  frame: power spectrum, mel power, ``log(mel + log_offset)`` (the log-mel
  part); MFCC from that log-mel (:func:`~ser_engine.dsp.descriptors.mfcc`, a
  precomputed DCT matrix); zero-crossing rate and RMS from the same
  ``n_fft``-sample frames, unwindowed; chroma from the power spectrum. Parts
  are concatenated in the order mfcc, zcr, rms (``mfcc_zcr_rms``) and mfcc,
  chroma, log-mel (``mfcc_chroma_mel``). The ``logmel`` set does no extra work.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig, frames_for
from ser_engine.dsp.descriptors import DB_PER_NEPER, chroma_filterbank, dct_matrix, rms, zero_crossing_rate
from ser_engine.dsp.gate import frame_length
from ser_engine.errors import ParameterError

__all__ = [
    "Featurizer",
    "fit_to_length",
    "frame_grid",
    "hann_window",
    "hz_to_mel",
    "inverse_std",
    "mel_filterbank",
    "mel_to_hz",
    "normalize_frames",
    "pool_frames",
]

FloatArray = npt.NDArray[np.float32]
_CHUNK_FRAMES = 64


def hz_to_mel(frequencies: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Slaney mel scale (librosa's default, ``htk=False``).

    Parameters
    ----------
    frequencies : array_like, any shape
        Frequencies in Hz.

    Returns
    -------
    ndarray, same shape, float64
    """
    f = np.asarray(frequencies, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, mels)


def mel_to_hz(mels: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Inverse of :func:`hz_to_mel` (Slaney scale)."""
    m = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filterbank(*, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> FloatArray:
    """Slaney-normalised triangular mel filter bank, as ``librosa.filters.mel``.

    Parameters
    ----------
    sample_rate : int
        Sample rate in Hz.
    n_fft : int
        FFT size.
    n_mels : int
        Number of bands.
    fmin, fmax : float
        Lowest and highest frequency in Hz.

    Returns
    -------
    ndarray, shape (n_mels, n_fft // 2 + 1), float32
    """
    if n_mels <= 0 or n_fft <= 0:
        raise ParameterError("n_mels and n_fft must be positive")
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ParameterError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={fmax}")
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, None]
    return weights.astype(np.float32)


def hann_window(*, win_length: int, n_fft: int) -> FloatArray:
    """Periodic Hann window of ``win_length`` centred in ``n_fft`` zeros.

    Returns
    -------
    ndarray, shape (n_fft,), float32
    """
    if not 0 < win_length <= n_fft:
        raise ParameterError("need 0 < win_length <= n_fft")
    n = np.arange(win_length, dtype=np.float64)
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    out = np.zeros(n_fft, dtype=np.float64)
    start = (n_fft - win_length) // 2
    out[start : start + win_length] = win
    return out.astype(np.float32)


def fit_to_length(*, y: npt.ArrayLike, length: int) -> FloatArray:
    """Centre-pad with zeros (or centre-crop) a signal to ``length`` samples.

    This is how a clip shorter than one analysis window is presented to the
    model, in training and at run time alike.

    Parameters
    ----------
    y : array_like, shape (n,)
    length : int

    Returns
    -------
    ndarray, shape (length,), float32
    """
    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(f"expected a 1-D signal, got shape {x.shape}")
    if length <= 0:
        raise ParameterError("length must be positive")
    n = x.shape[0]
    if n == length:
        return x
    if n > length:
        start = (n - length) // 2
        return x[start : start + length]
    out = np.zeros(length, dtype=np.float32)
    start = (length - n) // 2
    out[start : start + n] = x
    return out


def frame_grid(config: FeatureConfig) -> int:
    """Return the samples between positions where both log-mel frames and 20 ms gate frames start.

    The final window of a clip starts on this grid, so its frames are those
    already computed for the clip (:mod:`ser_engine.dsp.core`).
    """
    return math.lcm(config.hop_length, frame_length(config.sample_rate))


def inverse_std(std: npt.ArrayLike) -> FloatArray:
    """Return ``1 / std`` computed in float64 and rounded to float32, the factor :func:`normalize_frames` takes.

    Parameters
    ----------
    std : array_like, shape (n_features,)
        Positive per-feature standard deviations.

    Returns
    -------
    ndarray, shape (n_features,), float32
    """
    inv: FloatArray = (1.0 / np.asarray(std, dtype=np.float64)).astype(np.float32)
    return inv


def normalize_frames(frames: npt.ArrayLike, *, mean: npt.ArrayLike, inv_std: npt.ArrayLike) -> FloatArray:
    """Normalise feature frames with per-feature statistics: ``(frames - mean) * inv_std`` in float32.

    The one normalisation: :meth:`Featurizer.normalize` (hence every model call of
    the engine) and training's batches for a Keras model use it, so both give the
    same numbers for the same frames.

    Parameters
    ----------
    frames : array_like, shape (..., n_features)
        Un-normalised frames (float16 or float32).
    mean : array_like, shape (n_features,)
        Taken as float32.
    inv_std : array_like, shape (n_features,)
        :func:`inverse_std` of the standard deviations.

    Returns
    -------
    ndarray, same shape as ``frames``, float32
    """
    mu = np.asarray(mean, dtype=np.float32)
    out: FloatArray = (np.asarray(frames, dtype=np.float32) - mu) * np.asarray(inv_std, dtype=np.float32)
    return out


def pool_frames(frames: npt.ArrayLike) -> FloatArray:
    """Clip-level features: the mean of all feature frames (the seeds' tree and k-NN input).

    Parameters
    ----------
    frames : array_like, shape (..., n_frames, n_features)
        Feature frames, e.g. those of a clip's speech windows stacked as
        ``(n_windows, n_frames, n_features)``; every leading axis is averaged.

    Returns
    -------
    ndarray, shape (n_features,), float32
        Accumulated in float64.

    Raises
    ------
    ParameterError
        Fewer than two axes, no frames, or non-finite values.
    """
    x = np.asarray(frames)
    if x.ndim < 2:
        raise ParameterError(f"expected frames of shape (..., n_frames, n_features), got {x.shape}")
    flat = x.reshape(-1, x.shape[-1])
    if flat.shape[0] == 0 or flat.shape[1] == 0:
        raise ParameterError(f"no frames to pool (shape {x.shape})")
    out: FloatArray = flat.mean(axis=0, dtype=np.float64).astype(np.float32)
    if not np.isfinite(out).all():
        raise ParameterError("frames contain NaN or infinite values")
    return out


class Featurizer:
    """Featurizer bound to one :class:`FeatureConfig` (its feature set and parameters).

    The window, the mel basis, the DCT matrix and the chroma filter bank are computed once. Calls allocate only their
    outputs and temporaries; the object holds no per-call state, so one
    instance can serve several threads.

    Parameters
    ----------
    config : FeatureConfig
    """

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._window = hann_window(win_length=config.win_length, n_fft=config.n_fft)
        # (n_freqs, n_mels), transposed once for a plain matmul
        self._mel_t = np.ascontiguousarray(
            mel_filterbank(
                sample_rate=config.sample_rate,
                n_fft=config.n_fft,
                n_mels=config.n_mels,
                fmin=config.fmin,
                fmax=config.fmax,
            ).T
        )
        self._set = config.features
        self._dct: FloatArray | None = None
        self._chroma_t: FloatArray | None = None
        if self._set != "logmel":
            # log(mel) @ dct gives MFCCs of the mel spectrum in dB (descriptors.mfcc)
            dct = dct_matrix(n_in=config.n_mels, n_out=config.n_mfcc) * DB_PER_NEPER
            self._dct = np.ascontiguousarray(dct, dtype=np.float32)
        if self._set == "mfcc_chroma_mel":
            fb = chroma_filterbank(sample_rate=config.sample_rate, n_fft=config.n_fft, n_chroma=config.n_chroma)
            self._chroma_t = np.ascontiguousarray(fb.T)
        self._mean: FloatArray | None = None
        self._inv_std: FloatArray | None = None
        if config.mean is not None and config.std is not None:
            self._mean = np.asarray(config.mean, dtype=np.float32)
            self._inv_std = inverse_std(config.std)

    def n_frames(self, n_samples: int) -> int:
        """Frames produced from ``n_samples`` samples."""
        return frames_for(n_samples, n_fft=self.config.n_fft, hop_length=self.config.hop_length)

    def frames(self, y: npt.ArrayLike) -> FloatArray:
        """Un-normalised feature frames of the config's feature set.

        Parameters
        ----------
        y : array_like, shape (n,) or (batch, n)
            Signal(s) at ``config.sample_rate`` with ``n >= n_fft``.

        Returns
        -------
        ndarray, shape (n_frames, n_features) or (batch, n_frames, n_features), float32
            Parts in the order of :data:`~ser_engine.config.FEATURE_SETS`; for
            ``logmel`` this is :meth:`log_mel`.
        """
        if self._set == "logmel":
            return self.log_mel(y)
        return self._compute(y, full=True)

    def log_mel(self, y: npt.ArrayLike) -> FloatArray:
        """Un-normalised log-mel frames (whatever the feature set).

        Parameters
        ----------
        y : array_like, shape (n,) or (batch, n)
            Signal(s) at ``config.sample_rate`` with ``n >= n_fft``.

        Returns
        -------
        ndarray, shape (n_frames, n_mels) or (batch, n_frames, n_mels), float32
        """
        return self._compute(y, full=False)

    def _compute(self, y: npt.ArrayLike, *, full: bool) -> FloatArray:
        """Log-mel frames (``full=False``) or the feature set's frames, from one STFT per frame."""
        x = np.asarray(y, dtype=np.float32)
        if x.ndim not in (1, 2):
            raise ParameterError(f"expected shape (n,) or (batch, n), got {x.shape}")
        cfg = self.config
        if x.shape[-1] < cfg.n_fft:
            raise ParameterError(f"need at least n_fft={cfg.n_fft} samples, got {x.shape[-1]}")
        if not np.isfinite(x).all():
            raise ParameterError("signal contains NaN or infinite samples")
        frames = np.lib.stride_tricks.sliding_window_view(x, cfg.n_fft, axis=-1)[..., :: cfg.hop_length, :]
        if not full or self._set == "logmel":
            out: FloatArray = np.empty((*frames.shape[:-1], cfg.n_mels), dtype=np.float32)
            # A few frames at a time: the temporaries (windowed frames, spectrum, power) stay in the
            # CPU cache and are not fresh memory on every call, which halves the time of a long block.
            step = _CHUNK_FRAMES
            for idx in np.ndindex(frames.shape[:-2]):
                fr, dst = frames[idx], out[idx]
                for i in range(0, fr.shape[0], step):
                    spec = np.fft.rfft(fr[i : i + step] * self._window, axis=-1)
                    power = spec.real**2
                    power += spec.imag**2
                    np.matmul(power, self._mel_t, out=dst[i : i + step])
            out += np.float32(cfg.log_offset)
            np.log(out, out=out)
            return out
        feats: FloatArray = np.empty((*frames.shape[:-1], cfg.n_features), dtype=np.float32)
        for idx in np.ndindex(frames.shape[:-2]):
            fr, dst = frames[idx], feats[idx]
            for i in range(0, fr.shape[0], _CHUNK_FRAMES):
                self._set_frames(fr[i : i + _CHUNK_FRAMES], dst[i : i + _CHUNK_FRAMES])
        return feats

    def _set_frames(self, fr: FloatArray, dst: FloatArray) -> None:
        """Write the feature set of the frames ``fr`` (m, n_fft) into ``dst`` (m, n_features)."""
        cfg = self.config
        spec = np.fft.rfft(fr * self._window, axis=-1)
        power = spec.real**2
        power += spec.imag**2
        lm = power @ self._mel_t
        lm += np.float32(cfg.log_offset)
        np.log(lm, out=lm)
        assert self._dct is not None  # built for every set but logmel
        n = cfg.n_mfcc
        np.matmul(lm, self._dct, out=dst[:, :n])
        if self._set == "mfcc_zcr_rms":
            dst[:, n] = zero_crossing_rate(fr)
            dst[:, n + 1] = rms(fr)
        elif self._set == "mfcc_chroma_mel":
            assert self._chroma_t is not None
            raw = power @ self._chroma_t
            peak = raw.max(axis=-1, keepdims=True)
            peak[peak < np.finfo(np.float32).tiny] = 1.0
            dst[:, n : n + cfg.n_chroma] = raw / peak
            dst[:, n + cfg.n_chroma :] = lm

    def normalize(self, frames: npt.ArrayLike) -> FloatArray:
        """Apply the per-feature statistics of the config.

        Parameters
        ----------
        frames : array_like, shape (..., n_features)
            Un-normalised frames (:meth:`frames`).

        Returns
        -------
        ndarray, same shape, float32

        Raises
        ------
        ParameterError
            When the config has no statistics yet.
        """
        if self._mean is None or self._inv_std is None:
            raise ParameterError("FeatureConfig has no normalisation statistics (mean/std)")
        f = np.asarray(frames, dtype=np.float32)
        if f.shape[-1] != self.config.n_features:
            raise ParameterError(
                f"last axis must be n_features={self.config.n_features} ({self.config.features}), got {f.shape}"
            )
        return normalize_frames(f, mean=self._mean, inv_std=self._inv_std)

    def __call__(self, y: npt.ArrayLike) -> FloatArray:
        """Normalised features: ``normalize(frames(y))``.

        Parameters
        ----------
        y : array_like, shape (n,) or (batch, n)

        Returns
        -------
        ndarray, shape (n_frames, n_features) or (batch, n_frames, n_features), float32
        """
        return self.normalize(self.frames(y))
