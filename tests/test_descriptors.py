"""The seed projects' frame descriptors against librosa (the oracle) on real corpus clips."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from ser_engine.dsp.descriptors import (
    chroma,
    chroma_filterbank,
    dct_matrix,
    frames_of,
    mfcc,
    rms,
    zero_crossing_rate,
)
from ser_engine.dsp.features import hann_window
from ser_engine.errors import ParameterError

pytestmark = pytest.mark.corpus

SR, N_FFT, WIN, HOP = 16000, 512, 400, 160
CLIPS = [
    "ravdess/Actor_01/03-01-05-01-01-01-01.flac",  # angry, English
    "crema-d/1001_DFA_HAP_XX.ogg",  # happy, English (Ogg)
    "tess/OAF_angry/OAF_back_angry.ogg",  # older speaker (Ogg)
]


def _clip(corpus_dir: Path, rel: str) -> np.ndarray:
    path = corpus_dir / rel
    assert path.is_file(), path
    y, sr = sf.read(path, dtype="float32")
    assert sr == SR
    assert y.ndim == 1
    return y


def _power(y: np.ndarray) -> np.ndarray:
    frames = frames_of(y, frame_length=N_FFT, hop_length=HOP)
    spec = np.fft.rfft(frames * hann_window(win_length=WIN, n_fft=N_FFT), axis=-1)
    return (spec.real**2 + spec.imag**2).astype(np.float32)


@pytest.mark.parametrize("rel", CLIPS)
def test_zero_crossing_rate_matches_librosa(corpus_dir: Path, rel: str) -> None:
    y = _clip(corpus_dir, rel)
    ours = zero_crossing_rate(frames_of(y, frame_length=N_FFT, hop_length=HOP))
    ref = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP, center=False)[0]
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert 0.0 < ours.mean() < 0.5  # speech: some crossings, far from white noise


@pytest.mark.parametrize("rel", CLIPS)
def test_rms_matches_librosa(corpus_dir: Path, rel: str) -> None:
    y = _clip(corpus_dir, rel)
    ours = rms(frames_of(y, frame_length=N_FFT, hop_length=HOP))
    ref = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP, center=False)[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("n_mfcc", [13, 40])
@pytest.mark.parametrize("rel", CLIPS)
def test_mfcc_matches_librosa_without_top_db(corpus_dir: Path, rel: str, n_mfcc: int) -> None:
    y = _clip(corpus_dir, rel)
    n_mels, offset = 128, 1e-10
    mel_fb = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=n_mels, fmin=0.0, fmax=SR / 2)
    log_mel = np.log(_power(y).astype(np.float64) @ mel_fb.T.astype(np.float64) + offset)
    ours = mfcc(log_mel, n_mfcc=n_mfcc)
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, win_length=WIN, center=False,
                                         n_mels=n_mels)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=n_mfcc).T
    assert ours.shape == ref.shape == (log_mel.shape[0], n_mfcc)
    # librosa takes 10 log10(max(1e-10, S)), we take 10 log10(S + 1e-10): equal wherever S >> 1e-10
    np.testing.assert_allclose(ours, ref, rtol=2e-3, atol=2e-2 * np.abs(ref).max())


def test_dct_matrix_is_orthonormal_dct_ii() -> None:
    basis = dct_matrix(n_in=8, n_out=8)
    np.testing.assert_allclose(basis.T @ basis, np.eye(8), atol=1e-12)
    x = np.arange(8.0)
    # DC coefficient of the orthonormal DCT-II: sum / sqrt(N)
    assert (x @ basis)[0] == pytest.approx(x.sum() / np.sqrt(8))
    with pytest.raises(ParameterError):
        dct_matrix(n_in=4, n_out=5)


@pytest.mark.parametrize("n_fft", [512, 2048])
def test_chroma_filterbank_matches_librosa(n_fft: int) -> None:
    ours = chroma_filterbank(sample_rate=SR, n_fft=n_fft)
    ref = librosa.filters.chroma(sr=SR, n_fft=n_fft, tuning=0.0)
    assert ours.shape == ref.shape == (12, 1 + n_fft // 2)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("rel", CLIPS)
def test_chroma_matches_librosa(corpus_dir: Path, rel: str) -> None:
    y = _clip(corpus_dir, rel)
    power = _power(y)
    ours = chroma(power, filterbank=chroma_filterbank(sample_rate=SR, n_fft=N_FFT))
    ref = librosa.feature.chroma_stft(S=power.T, sr=SR, n_fft=N_FFT, tuning=0.0).T
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
    assert np.allclose(ours.max(axis=-1)[power.sum(axis=-1) > 0], 1.0)


def test_silence_gives_zero_descriptors_not_nan() -> None:
    frames = frames_of(np.zeros(4000, np.float32), frame_length=N_FFT, hop_length=HOP)
    assert np.all(zero_crossing_rate(frames) == 0)
    assert np.all(rms(frames) == 0)
    power = np.zeros((frames.shape[0], 1 + N_FFT // 2), np.float32)
    c = chroma(power, filterbank=chroma_filterbank(sample_rate=SR, n_fft=N_FFT))
    assert np.all(c == 0)
    assert np.isfinite(c).all()


def test_a_tone_lands_in_its_pitch_class() -> None:
    """A 440 Hz tone is an A: chroma row 9 (C=0) is the peak of every frame."""
    t = np.arange(SR) / SR
    y = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    c = chroma(_power(y), filterbank=chroma_filterbank(sample_rate=SR, n_fft=N_FFT))
    assert np.all(c.argmax(axis=-1) == 9)
    # its zero-crossing rate is 2 * 440 / 16000 per sample
    assert zero_crossing_rate(frames_of(y, frame_length=N_FFT, hop_length=HOP)).mean() == pytest.approx(0.055, abs=2e-3)


def test_bad_shapes_are_parameter_errors() -> None:
    with pytest.raises(ParameterError):
        frames_of(np.zeros(100, np.float32), frame_length=512, hop_length=160)
    with pytest.raises(ParameterError):
        chroma(np.zeros((3, 100), np.float32), filterbank=chroma_filterbank(sample_rate=SR, n_fft=N_FFT))
