"""Frame descriptors of the seed projects: MFCC, zero-crossing rate, RMS energy, chroma.

Plain NumPy, computed on the same frames as the log-mel featurizer (not centred:
frame ``i`` covers samples ``[i*hop_length, i*hop_length + n_fft)``), so every descriptor
of a frame depends on that frame only and the streaming core can reuse frames between
overlapping windows. The tests compare each function with librosa (``center=False``) on
corpus clips. Two deliberate differences from librosa's defaults, both because a value
must not depend on the rest of the signal (live and file analysis must agree):

* MFCC is the orthonormal DCT-II of ``10 log10(mel power + offset)`` with no ``top_db``
  clipping (librosa clips 80 dB below the loudest frame of the whole signal);
* chroma uses ``tuning=0`` (librosa estimates the tuning from the whole signal).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError

__all__ = [
    "chroma",
    "chroma_filterbank",
    "dct_matrix",
    "frames_of",
    "mfcc",
    "rms",
    "zero_crossing_rate",
]

FloatArray = npt.NDArray[np.float32]

#: 10 / ln(10): natural-log mel values to decibels.
DB_PER_NEPER = 10.0 / math.log(10.0)


def frames_of(y: npt.ArrayLike, *, frame_length: int, hop_length: int) -> FloatArray:
    """Non-centred frames of a signal, as a read-only view where possible.

    Parameters
    ----------
    y : array_like, shape (n,) or (batch, n)
        Signal with ``n >= frame_length``.
    frame_length, hop_length : int
        Frame size and step in samples.

    Returns
    -------
    ndarray, shape (n_frames, frame_length) or (batch, n_frames, frame_length), float32
        ``n_frames = 1 + (n - frame_length) // hop_length``.
    """
    x = np.asarray(y, dtype=np.float32)
    if frame_length < 1 or hop_length < 1:
        raise ParameterError("frame_length and hop_length must be positive")
    if x.ndim not in (1, 2) or x.shape[-1] < frame_length:
        raise ParameterError(f"need shape (n,) or (batch, n) with n >= {frame_length}, got {x.shape}")
    view: FloatArray = np.lib.stride_tricks.sliding_window_view(x, frame_length, axis=-1)[..., ::hop_length, :]
    return view


def zero_crossing_rate(frames: npt.ArrayLike, *, threshold: float = 1e-10) -> FloatArray:
    """Fraction of sample pairs whose sign changes, per frame (librosa's definition).

    Samples with ``|x| <= threshold`` count as zero, and zero counts as positive.

    Parameters
    ----------
    frames : array_like, shape (..., frame_length)

    Returns
    -------
    ndarray, shape (...), float32
    """
    f = np.asarray(frames, dtype=np.float32)
    clipped = np.where(np.abs(f) <= threshold, np.float32(0.0), f)
    negative = np.signbit(clipped)
    changes = np.count_nonzero(negative[..., 1:] != negative[..., :-1], axis=-1)
    out: FloatArray = (changes / f.shape[-1]).astype(np.float32)
    return out


def rms(frames: npt.ArrayLike) -> FloatArray:
    """Root-mean-square amplitude per frame (no window, as librosa's ``rms`` on a signal).

    Parameters
    ----------
    frames : array_like, shape (..., frame_length)

    Returns
    -------
    ndarray, shape (...), float32
    """
    f = np.asarray(frames, dtype=np.float64)
    out: FloatArray = np.sqrt(np.mean(f * f, axis=-1)).astype(np.float32)
    return out


def dct_matrix(*, n_in: int, n_out: int) -> npt.NDArray[np.float64]:
    """Build the orthonormal DCT-II as a matrix (``scipy.fft.dct(x, type=2, norm='ortho')[:n_out]``).

    Returns
    -------
    ndarray, shape (n_in, n_out)
        ``x @ dct_matrix(...)`` transforms the last axis of ``x``.
    """
    if not 1 <= n_out <= n_in:
        raise ParameterError(f"need 1 <= n_out <= n_in, got n_out={n_out}, n_in={n_in}")
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[:, 0] /= math.sqrt(2.0)
    return basis


def mfcc(log_mel: npt.ArrayLike, *, n_mfcc: int, dct: npt.NDArray[np.float64] | None = None) -> FloatArray:
    """Mel-frequency cepstral coefficients from natural-log mel power frames.

    Parameters
    ----------
    log_mel : array_like, shape (..., n_mels)
        ``log(mel_power + offset)``, as :meth:`ser_engine.dsp.features.Featurizer.log_mel` returns.
    n_mfcc : int
        Coefficients kept (``<= n_mels``).
    dct : ndarray, shape (n_mels, n_mfcc), optional
        A precomputed :func:`dct_matrix`.

    Returns
    -------
    ndarray, shape (..., n_mfcc), float32
        The DCT-II (orthonormal) of the mel spectrum in decibels.
    """
    lm = np.asarray(log_mel, dtype=np.float64)
    basis = dct if dct is not None else dct_matrix(n_in=lm.shape[-1], n_out=n_mfcc)
    if basis.shape != (lm.shape[-1], n_mfcc):
        raise ParameterError(f"dct matrix has shape {basis.shape}, need {(lm.shape[-1], n_mfcc)}")
    out: FloatArray = ((lm * DB_PER_NEPER) @ basis).astype(np.float32)
    return out


def chroma_filterbank(*, sample_rate: int, n_fft: int, n_chroma: int = 12) -> FloatArray:
    """Chroma filter bank of librosa (``librosa.filters.chroma`` with ``tuning=0``).

    Gaussian bumps around each pitch class, columns L2-normalised, weighted by a Gaussian
    over octaves centred on octave 5 (2 octaves wide), rows starting at C.

    Returns
    -------
    ndarray, shape (n_chroma, 1 + n_fft // 2), float32
    """
    if n_chroma < 1 or n_fft < 2 or sample_rate <= 0:
        raise ParameterError("need n_chroma >= 1, n_fft >= 2 and a positive sample_rate")
    frequencies = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    a440_over_16 = 440.0 / 16
    frqbins = n_chroma * np.log2(frequencies / a440_over_16)
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1.0]))
    d = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype=np.float64)).T
    half = np.round(float(n_chroma) / 2)
    d = np.remainder(d + half + 10 * n_chroma, n_chroma) - half
    wts = np.exp(-0.5 * (2 * d / binwidthbins[None, :]) ** 2)
    norms = np.sqrt(np.sum(wts * wts, axis=0))
    norms[norms < np.finfo(np.float64).tiny] = 1.0
    wts = wts / norms
    wts *= np.exp(-0.5 * ((frqbins / n_chroma - 5.0) / 2.0) ** 2)[None, :]
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(wts[:, : 1 + n_fft // 2], dtype=np.float32)


def chroma(power: npt.ArrayLike, *, filterbank: npt.ArrayLike) -> FloatArray:
    """Chroma per frame, each frame scaled so that its largest pitch class is 1.

    Parameters
    ----------
    power : array_like, shape (..., n_freqs)
        Power spectrum frames (``|rfft|**2``).
    filterbank : array_like, shape (n_chroma, n_freqs)
        :func:`chroma_filterbank`.

    Returns
    -------
    ndarray, shape (..., n_chroma), float32
        Frames with no energy stay all zero.
    """
    fb = np.asarray(filterbank, dtype=np.float32)
    p = np.asarray(power, dtype=np.float32)
    if p.shape[-1] != fb.shape[1]:
        raise ParameterError(f"power has {p.shape[-1]} frequency bins, the filter bank {fb.shape[1]}")
    raw = p @ fb.T
    peak = np.max(np.abs(raw), axis=-1, keepdims=True)
    peak[peak < np.finfo(np.float32).tiny] = 1.0
    out: FloatArray = (raw / peak).astype(np.float32)
    return out
