"""The seeds' feature sets through the one Featurizer, against librosa (the oracle) on real corpus clips."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
from reference_windows import frame_windows

from ser_engine.config import FEATURE_SETS, FeatureConfig
from ser_engine.dsp.audio import load_audio
from ser_engine.dsp.features import Featurizer, pool_frames
from ser_engine.errors import ParameterError

CLIPS = [
    "ravdess/Actor_01/03-01-05-01-01-01-01.flac",  # RAVDESS, FLAC
    "crema-d/1001_DFA_HAP_XX.ogg",  # CREMA-D, Ogg
    "tess/OAF_angry/OAF_back_angry.ogg",  # TESS, Ogg, older speaker
]
CONFIGS = {
    "mfcc40": FeatureConfig(features="mfcc"),
    "mfcc_zcr_rms": FeatureConfig(features="mfcc_zcr_rms"),
    "mfcc20_zcr_rms_128mels": FeatureConfig(features="mfcc_zcr_rms", n_mfcc=20, n_mels=128, fmin=0.0),
    "mfcc_chroma_mel": FeatureConfig(features="mfcc_chroma_mel"),
    "mfcc13_chroma_mel_128mels": FeatureConfig(features="mfcc_chroma_mel", n_mfcc=13, n_mels=128, win_length=512),
}


def _clip(corpus_dir: Path, rel: str) -> np.ndarray:
    path = corpus_dir / rel
    if not path.is_file():  # a listed clip must exist: the corpus layout is part of the contract
        pytest.fail(f"{path} missing from the corpus")
    return load_audio(path).samples


def _stft_kwargs(cfg: FeatureConfig) -> dict:
    return {"n_fft": cfg.n_fft, "hop_length": cfg.hop_length, "win_length": cfg.win_length, "window": "hann",
            "center": False}


def librosa_parts(y: np.ndarray, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """Each part of each feature set by librosa, shape (n_frames, width) per part."""
    sr = cfg.sample_rate
    mel = librosa.feature.melspectrogram(y=y, sr=sr, power=2.0, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
                                         htk=False, norm="slaney", **_stft_kwargs(cfg))
    return {
        "log_mel": np.log(mel + cfg.log_offset).T,
        # librosa's DCT (type 2, orthonormal) of the mel spectrum in dB, as our featurizer defines it
        "mfcc": librosa.feature.mfcc(S=10 * np.log10(mel + cfg.log_offset), n_mfcc=cfg.n_mfcc).T,
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=cfg.n_fft, hop_length=cfg.hop_length,
                                                  center=False).T,
        "rms": librosa.feature.rms(y=y, frame_length=cfg.n_fft, hop_length=cfg.hop_length, center=False).T,
        "chroma": librosa.feature.chroma_stft(y=y, sr=sr, n_chroma=cfg.n_chroma, tuning=0.0,
                                              **_stft_kwargs(cfg)).T,
    }


def librosa_frames(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Concatenate librosa's parts in the documented order: (n_frames, cfg.n_features)."""
    p = librosa_parts(y, cfg)
    order = {"logmel": ["log_mel"], "mfcc": ["mfcc"], "mfcc_zcr_rms": ["mfcc", "zcr", "rms"],
             "mfcc_chroma_mel": ["mfcc", "chroma", "log_mel"]}[cfg.features]
    return np.concatenate([p[name] for name in order], axis=1)


@pytest.mark.corpus
@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("rel", CLIPS)
def test_feature_sets_match_librosa_on_corpus_clips(corpus_dir: Path, rel: str, name: str) -> None:
    cfg = CONFIGS[name]
    y = _clip(corpus_dir, rel)
    ours = Featurizer(cfg).frames(y)
    ref = librosa_frames(y, cfg)
    n_frames = 1 + (len(y) - cfg.n_fft) // cfg.hop_length
    assert ours.shape == ref.shape == (n_frames, cfg.n_features)
    assert ours.dtype == np.float32
    n = cfg.n_mfcc
    # MFCCs are in dB, up to several hundred: float32 rounding of the DCT of 64-128 bands
    scale = np.abs(ref[:, :n]).max()
    np.testing.assert_allclose(ours[:, :n], ref[:, :n], rtol=0, atol=1e-5 * scale)
    rest, ref_rest = ours[:, n:], ref[:, n:]
    if cfg.features == "mfcc_zcr_rms":
        np.testing.assert_array_equal(rest[:, 0], ref_rest[:, 0].astype(np.float32))  # counts over n_fft samples
        np.testing.assert_allclose(rest[:, 1], ref_rest[:, 1], rtol=1e-4, atol=1e-7)
        assert 0 < rest[:, 0].mean() < 0.5  # speech: some crossings, far from white noise
    elif cfg.features == "mfcc_chroma_mel":
        c = cfg.n_chroma
        np.testing.assert_allclose(rest[:, :c], ref_rest[:, :c], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(rest[:, c:], ref_rest[:, c:], rtol=0, atol=2e-3)  # as the log-mel test
        np.testing.assert_array_equal(rest[:, c:], Featurizer(cfg).log_mel(y))  # the same STFT, the same numbers


@pytest.mark.corpus
@pytest.mark.parametrize("rel", CLIPS)
def test_mfcc_equals_librosas_own_pipeline_where_the_two_db_definitions_agree(corpus_dir: Path, rel: str) -> None:
    """With log_offset = librosa's amin, librosa's MFCC of ``power_to_db`` (no top_db) gives our MFCCs.

    librosa takes ``10 log10(max(1e-10, S))``, we take ``10 log10(S + 1e-10)`` (a value must not depend
    on other frames, so no top_db either): equal on every frame whose mel bands all hold real energy.
    """
    cfg = FeatureConfig(features="mfcc", log_offset=1e-10, fmin=0.0)
    y = _clip(corpus_dir, rel)
    ours = Featurizer(cfg).frames(y)
    mel_power = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_mels=cfg.n_mels, fmin=0.0, fmax=cfg.fmax,
                                               **_stft_kwargs(cfg))
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel_power, amin=1e-10, top_db=None), n_mfcc=cfg.n_mfcc).T
    mel = np.exp(Featurizer(cfg).log_mel(y)) - cfg.log_offset
    # where every band exceeds 1e-7 the two definitions differ by < 0.0043 dB a band, < 0.035 dB a coefficient
    loud = mel.min(axis=1) > 1e-7
    assert loud.mean() > 0.2
    np.testing.assert_allclose(ours[loud], ref[loud], rtol=0, atol=0.05)
    assert np.abs(ref[loud]).max() > 100


@pytest.mark.corpus
@pytest.mark.parametrize("features", FEATURE_SETS)
def test_normalised_windows_equal_librosa(corpus_dir: Path, features: str) -> None:
    """``Featurizer(config)(windows)`` is the librosa frames of each window, normalised by mean/std."""
    base = FeatureConfig(features=features, n_mfcc=20)
    y = _clip(corpus_dir, CLIPS[0])
    rng = np.random.default_rng(0)
    cfg = base.with_stats(mean=rng.normal(0, 5, base.n_features), std=rng.uniform(1, 30, base.n_features))
    windows, _ = frame_windows(y=y, config=cfg)
    feats = Featurizer(cfg)(windows)
    ref = np.stack([librosa_frames(w, cfg) for w in windows])
    ref = (ref - np.array(cfg.mean)) / np.array(cfg.std)
    assert feats.shape == (len(windows), cfg.n_frames, cfg.n_features)
    assert feats.dtype == np.float32
    np.testing.assert_allclose(feats, ref, atol=2e-3)


@pytest.mark.parametrize("features", FEATURE_SETS)
def test_batches_and_windows_give_the_frames_of_the_longer_signal(features: str) -> None:
    cfg = FeatureConfig(features=features)
    fz = Featurizer(cfg)
    y = np.random.default_rng(1).normal(0, 0.1, 64000).astype(np.float32)
    full = fz.frames(y)
    starts = (0, 160, 8000, 16000)
    batch = fz.frames(np.stack([y[s : s + 48000] for s in starts]))
    assert batch.shape == (4, cfg.n_frames, cfg.n_features)
    for part, s in zip(batch, starts, strict=True):
        np.testing.assert_allclose(part, full[s // 160 : s // 160 + cfg.n_frames], rtol=1e-6, atol=1e-4)


def test_logmel_set_is_exactly_the_log_mel_path() -> None:
    """The default set does no extra work: frames() is log_mel(), bit for bit."""
    fz = Featurizer(FeatureConfig())
    y = np.random.default_rng(2).normal(0, 0.1, 20000).astype(np.float32)
    np.testing.assert_array_equal(fz.frames(y), fz.log_mel(y))


@pytest.mark.parametrize("features", FEATURE_SETS)
def test_silence_gives_finite_features(features: str) -> None:
    cfg = FeatureConfig(features=features)
    f = Featurizer(cfg).frames(np.zeros(4000, np.float32))
    assert np.isfinite(f).all()
    if features == "mfcc_zcr_rms":
        assert np.all(f[:, -2:] == 0)  # no crossings, no energy
    if features == "mfcc_chroma_mel":
        assert np.all(f[:, cfg.n_mfcc : cfg.n_mfcc + 12] == 0)  # no pitch class


def test_normalize_checks_the_feature_width() -> None:
    cfg = FeatureConfig(features="mfcc_zcr_rms", n_mfcc=20).with_stats(mean=np.zeros(22), std=np.full(22, 2.0))
    fz = Featurizer(cfg)
    x = np.ones((5, 22), np.float32)
    np.testing.assert_array_equal(fz.normalize(x), np.full((5, 22), 0.5, np.float32))
    with pytest.raises(ParameterError, match="n_features=22"):
        fz.normalize(np.ones((5, 64), np.float32))


def test_pool_frames_is_the_mean_over_every_frame() -> None:
    rng = np.random.default_rng(3)
    windows = rng.normal(0, 1, (4, 297, 42)).astype(np.float32)
    pooled = pool_frames(windows)
    assert pooled.shape == (42,)
    assert pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, windows.reshape(-1, 42).astype(np.float64).mean(axis=0), atol=1e-6)
    np.testing.assert_array_equal(pool_frames(windows[0]), pool_frames(windows[:1]))
    assert pool_frames(np.full((3, 5), 7.0, np.float16)).tolist() == [7.0] * 5  # the float16 training cache
    for bad in (np.zeros(5), np.zeros((0, 5)), np.full((2, 3), np.nan)):
        with pytest.raises(ParameterError):
            pool_frames(bad)
