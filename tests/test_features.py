"""The featurizer against librosa (the oracle) on real corpus clips, and its windowing."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
from reference_windows import frame_windows, window_starts

from ser_engine.config import FeatureConfig
from ser_engine.dsp.audio import load_audio
from ser_engine.dsp.features import (
    Featurizer,
    fit_to_length,
    hann_window,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)
from ser_engine.errors import ParameterError

CFG = FeatureConfig().with_stats(mean=np.linspace(-8, -4, 64), std=np.linspace(2, 3, 64))


def librosa_log_mel(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=False, power=2.0, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
        htk=False, norm="slaney",
    )
    return np.log(mel + cfg.log_offset).T


CLIPS = [
    "ravdess/Actor_01/03-01-01-01-01-01-01.flac",
    "ravdess/Actor_12/03-01-05-02-02-01-12.flac",
    "ravdess/Actor_23/03-01-08-02-01-02-23.flac",
    "savee/DC_a01.flac",
    "savee/KL_su15.flac",
    "crema-d/1001_DFA_ANG_XX.ogg",
    "crema-d/1091_WSI_SAD_XX.ogg",
    "tess/OAF_angry/OAF_back_angry.ogg",
]


@pytest.mark.corpus
@pytest.mark.parametrize("rel", CLIPS)
def test_log_mel_matches_librosa_on_corpus_clips(corpus_dir: Path, rel: str) -> None:
    path = corpus_dir / rel
    if not path.is_file():  # a listed clip must exist: the corpus layout is part of the contract
        pytest.fail(f"{path} missing from the corpus")
    y = load_audio(path).samples
    ours = Featurizer(CFG).log_mel(y)
    ref = librosa_log_mel(y, CFG)
    assert ours.shape == ref.shape == (1 + (len(y) - 512) // 160, 64)
    # log domain: compare where there is energy, tolerate float32 rounding in near-silent bins
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=0)


@pytest.mark.corpus
def test_window_features_equal_librosa_normalised(corpus_dir: Path) -> None:
    y = load_audio(corpus_dir / CLIPS[1]).samples
    windows, _ = frame_windows(y=y, config=CFG)
    feats = Featurizer(CFG)(windows)
    ref = np.stack([librosa_log_mel(w, CFG) for w in windows])
    ref = (ref - np.array(CFG.mean)) / np.array(CFG.std)
    assert feats.shape == (len(windows), CFG.n_frames, 64)
    assert feats.dtype == np.float32
    np.testing.assert_allclose(feats, ref, atol=2e-3)


def test_mel_pieces_match_librosa() -> None:
    f = np.array([0, 50, 500, 999, 1000, 4000, 8000.0])
    np.testing.assert_allclose(hz_to_mel(f), librosa.hz_to_mel(f), rtol=1e-10)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-9, atol=1e-9)
    ours = mel_filterbank(sample_rate=16000, n_fft=512, n_mels=64, fmin=50, fmax=8000)
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=8000)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    win = hann_window(win_length=400, n_fft=512)
    ref_win = librosa.util.pad_center(librosa.filters.get_window("hann", 400, fftbins=True), size=512)
    np.testing.assert_allclose(win, ref_win, atol=1e-7)


def test_frames_of_a_window_are_the_frames_of_the_longer_signal() -> None:
    y = np.random.default_rng(0).normal(0, 0.1, 80000).astype(np.float32)
    fz = Featurizer(CFG)
    full = fz.log_mel(y)
    for start in (0, 160, 8000, 32000):
        part = fz.log_mel(y[start : start + 48000])
        # Same frames, same numbers: only the float rounding of the FFT and
        # matrix product may differ with the batch size (BLAS blocking differs
        # between CPUs); a one-frame misalignment would differ by whole units.
        np.testing.assert_allclose(part, full[start // 160 : start // 160 + 297], rtol=0, atol=1e-5)


def test_windowing_rules() -> None:
    """The engine's windows of a clip: 0, hop, 2*hop... and a last one ending at the end, on the 20 ms grid."""
    from ser_engine.dsp.core import iter_window_features

    cfg = CFG.with_timing(window_s=3.0, hop_s=0.5)

    def starts(n: int) -> list[int]:
        y = np.random.default_rng(n).normal(0, 0.1, n).astype(np.float32)
        return [round(w.start_s * 16000) for w in iter_window_features([y], config=cfg, featurizer=Featurizer(cfg))]

    assert starts(1000) == [0]  # a short clip: one centre-padded window
    assert starts(48000) == [0]
    assert starts(60000) == [0, 8000, 11840]  # the last one ends within 20 ms of the end
    assert starts(56100) == [0, 8000]  # less than 20 ms left after the last regular window
    assert starts(64000) == [0, 8000, 16000]
    assert window_starts(n_samples=60000, window=48000, hop=8000, align=320).tolist() == starts(60000)
    short = np.ones(1000, np.float32)
    padded = fit_to_length(y=short, length=48000)
    assert padded.shape == (48000,)
    assert padded[23500:24500].all()
    assert padded[:23500].sum() == 0


def test_featurizer_rejects_bad_input() -> None:
    fz = Featurizer(CFG)
    with pytest.raises(ParameterError):
        fz.log_mel(np.zeros(100, np.float32))
    with pytest.raises(ParameterError):
        fz.log_mel(np.full(1000, np.nan, np.float32))
    with pytest.raises(ParameterError):
        Featurizer(FeatureConfig()).normalize(np.zeros((3, 64)))


def test_training_batches_and_the_engine_normalise_alike() -> None:
    """Training's Keras batches (float16 cache) and the engine's model input are the same normalisation."""
    from ser_engine.dsp.features import inverse_std, normalize_frames

    frames = np.random.default_rng(5).normal(-6, 3, (4, 297, 64)).astype(np.float16)
    ours = normalize_frames(frames, mean=CFG.mean, inv_std=inverse_std(CFG.std))
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, Featurizer(CFG).normalize(frames.astype(np.float32)))
    np.testing.assert_allclose(ours, (frames.astype(np.float64) - np.array(CFG.mean)) / np.array(CFG.std), atol=1e-5)
