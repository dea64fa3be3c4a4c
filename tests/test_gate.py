"""Speech gate: silence and steady noise are not speech; corpus speech is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import synth_speechlike
from reference_windows import frame_windows

from ser_engine.config import FeatureConfig
from ser_engine.dsp.audio import load_audio
from ser_engine.dsp.gate import SpeechGate, frame_levels_db, level_dbfs, window_is_speech
from ser_engine.errors import ParameterError

SR = 16000
N = 3 * SR


def noises(rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(N) / SR
    out: dict[str, np.ndarray] = {"digital silence": np.zeros(N)}
    for db in (-80, -60, -40, -20, -10):
        a = 10 ** (db / 20)
        out[f"white {db} dBFS"] = rng.normal(0, a, N)
        brown = np.cumsum(rng.normal(0, 1, N))
        brown -= np.convolve(brown, np.ones(1600) / 1600, "same")
        out[f"brown {db} dBFS"] = brown / brown.std() * a
        out[f"hum+hiss {db} dBFS"] = a * np.sin(2 * np.pi * 50 * t) + rng.normal(0, a / 10, N)
        out[f"fan {db} dBFS"] = rng.normal(0, a, N) * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t))
    return {k: v.astype(np.float32) for k, v in out.items()}


def test_level_dbfs() -> None:
    t = np.arange(SR) / SR
    assert level_dbfs(np.sin(2 * np.pi * 440 * t)) == pytest.approx(-3.01, abs=0.05)
    assert level_dbfs(np.zeros(100)) == -120.0
    assert level_dbfs(np.zeros(0)) == -120.0
    with pytest.raises(ParameterError):
        level_dbfs(np.array([np.nan, 0.0]))


def test_band_levels_ignore_hum() -> None:
    t = np.arange(SR) / SR
    hum = frame_levels_db(0.5 * np.sin(2 * np.pi * 50 * t), sample_rate=SR)
    tone = frame_levels_db(0.5 * np.sin(2 * np.pi * 1000 * t), sample_rate=SR)
    assert tone.mean() == pytest.approx(level_dbfs(0.5 * np.sin(2 * np.pi * 1000 * t)), abs=0.5)
    assert hum.max() < tone.mean() - 40


def test_noise_and_silence_are_not_speech(rng: np.random.Generator) -> None:
    for name, x in noises(rng).items():
        assert not window_is_speech(x, sample_rate=SR), name


def test_synthetic_speechlike_is_speech() -> None:
    for level in (0.01, 0.1, 0.8):
        assert window_is_speech(synth_speechlike(seconds=3, level=level), sample_rate=SR)


def test_speech_over_steady_noise(rng: np.random.Generator) -> None:
    noise = rng.normal(0, 0.01, N).astype(np.float32)
    assert window_is_speech(noise + synth_speechlike(seconds=3, level=0.3), sample_rate=SR)


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("corpus", "pattern"),
    [("ravdess", "ravdess/Actor_0[1-3]/*.flac"), ("crema-d", "crema-d/100[1-2]_*.ogg"),
     ("tess", "tess/*/*_b*.ogg"), ("savee", "savee/*_[a-z]0[1-3].flac")],
)
def test_corpus_speech_windows_pass(corpus_dir: Path, corpus: str, pattern: str) -> None:
    files = sorted(corpus_dir.glob(pattern))[:40]
    assert len(files) >= 10, pattern
    cfg = FeatureConfig()
    decisions = []
    for f in files:
        y = load_audio(f).samples
        windows, _ = frame_windows(y=y, config=cfg)
        clip_windows = [y] if len(y) <= cfg.window_samples else list(windows)
        decisions += [window_is_speech(w, sample_rate=SR) for w in clip_windows]
    assert np.mean(decisions) >= 0.97, f"{corpus}: {np.mean(decisions):.2%} of speech windows passed"


@pytest.mark.corpus
def test_corpus_clip_then_silence_with_live_gate(corpus_dir: Path) -> None:
    clip = load_audio(sorted((corpus_dir / "ravdess" / "Actor_02").glob("*.flac"))[5]).samples
    gate = SpeechGate(sample_rate=SR)
    quiet = np.random.default_rng(3).normal(0, 1e-4, N).astype(np.float32)
    assert not gate.update(quiet)
    assert gate.noise_floor_db is not None
    assert gate.noise_floor_db < -70
    assert gate.update(clip[:N])
    assert not gate.update(quiet)


def test_adaptive_floor_learns_steady_noise_at_once(rng: np.random.Generator) -> None:
    gate = SpeechGate(sample_rate=SR)
    assert not gate.update(rng.normal(0, 1e-4, N).astype(np.float32))
    loud = rng.normal(0, 0.05, N).astype(np.float32)  # a fan switches on: steady, not speech
    assert not gate.update(loud)
    assert gate.noise_floor_db == pytest.approx(frame_levels_db(loud, sample_rate=SR).mean(), abs=2)
    speech = loud + synth_speechlike(seconds=3, level=0.5)
    assert gate.update(speech)
    gate.reset()
    assert gate.noise_floor_db is None


def test_floor_rises_slowly_during_continuous_speech() -> None:
    gate = SpeechGate(sample_rate=SR, rise_db=1.0)
    gate.update(np.random.default_rng(0).normal(0, 1e-3, N).astype(np.float32))
    floor0 = gate.noise_floor_db
    assert floor0 is not None
    for i in range(5):
        assert gate.update(synth_speechlike(seconds=3, seed=i, level=0.5))
    assert gate.noise_floor_db is not None
    assert gate.noise_floor_db <= floor0 + 5.0 + 1e-9


def test_sensitivity_orders_decisions(rng: np.random.Generator) -> None:
    # faint speech over noise: the lenient gate passes it, the strict one not
    x = rng.normal(0, 0.01, N).astype(np.float32) + synth_speechlike(seconds=3, level=0.05)
    assert window_is_speech(x, sample_rate=SR, sensitivity=1.0)
    assert not window_is_speech(x, sample_rate=SR, sensitivity=0.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_sensitivity(bad: float) -> None:
    with pytest.raises(ParameterError):
        window_is_speech(np.zeros(100, np.float32), sample_rate=SR, sensitivity=bad)
    with pytest.raises(ParameterError):
        SpeechGate(sample_rate=SR, sensitivity=bad)


def test_tiny_windows() -> None:
    assert not window_is_speech(np.zeros(0, np.float32), sample_rate=SR)
    assert frame_levels_db(np.ones(10, np.float32), sample_rate=SR).shape == (1,)


def test_percentiles_equal_numpy() -> None:
    from ser_engine.dsp.gate import _p10_p90

    rng = np.random.default_rng(5)
    for n in [1, 2, 3, 10, 149, 150, 151, 1000]:
        for levels in (rng.normal(-50, 20, n), np.round(rng.normal(-50, 20, n)), np.full(n, -120.0)):
            assert _p10_p90(levels) == tuple(np.percentile(levels, [10, 90]))
