"""The one window-inference core: windows, gate levels and features equal the full computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import synth_speechlike
from reference_windows import frame_windows
from tiny_model import build_tiny_model

from ser_engine.config import FEATURE_SETS, FeatureConfig
from ser_engine.dsp.core import FrameCache, VoiceTrack, iter_window_features
from ser_engine.dsp.features import Featurizer
from ser_engine.dsp.gate import GateParams, frame_levels_db, judge, window_is_speech
from ser_engine.inference.model import EmotionModel
from ser_engine.live.ringbuffer import RingBuffer
from ser_engine.live.stream import Streamer, StreamSettings

SR = 16000
CFG = FeatureConfig()
FZ = Featurizer(CFG)
#: every feature set, each with its own featurizer: the cache must hold for all of them
SETS = {name: FeatureConfig(features=name, n_mfcc=20) for name in FEATURE_SETS}
FZS = {name: Featurizer(cfg) for name, cfg in SETS.items()}


def float32_noise(features: str) -> float:
    """Absolute tolerance for one frame computed in blocks of another size.

    BLAS sums a float32 product in an order that depends on how many frames one call holds, so
    the same frame computed in a longer or shorter block differs in its last bits. Log-mel values
    are tens at most; MFCCs are in dB, reach hundreds and sum 64 such values, so their last bits
    are about 1e-4.
    """
    return 1e-5 if features == "logmel" else 5e-4


def blocks_of(y: np.ndarray, block: int) -> list[np.ndarray]:
    return [y[i : i + block] for i in range(0, len(y), block)]


@pytest.mark.parametrize("features", FEATURE_SETS)
@pytest.mark.parametrize("n", [1, 800, 47999, 48000, 48001, 55999, 56000, 100_000, 123_457])
@pytest.mark.parametrize("block", [1000, 7777, 200_000])
def test_file_windows_equal_the_full_computation(n: int, block: int, features: str) -> None:
    """Every window's place, gate decision, voiced frames and features equal those computed on the window alone."""
    cfg, fz = SETS[features], FZS[features]
    y = synth_speechlike(seconds=n / SR, seed=n % 7) if n >= SR // 10 else np.random.default_rng(n).normal(
        0, 0.1, n).astype(np.float32)
    windows, starts = frame_windows(y=y, config=cfg)
    got = list(iter_window_features(blocks_of(y, block), config=cfg, featurizer=fz))
    assert [g.start_s for g in got] == pytest.approx((starts / SR).tolist())
    assert [g.end_s for g in got] == pytest.approx(((starts + min(n, 48000)) / SR).tolist())
    for g, win, start in zip(got, windows, starts, strict=True):
        real = y[start : start + 48000]  # a short clip is gated on its real samples
        levels = frame_levels_db(real, sample_rate=SR)
        speech, threshold = judge(levels, params=GateParams(0.5))
        assert g.speech == speech == window_is_speech(real, sample_rate=SR)
        if speech:
            assert g.features is not None
            assert g.voiced is not None
            assert g.features.shape == (cfg.n_frames, cfg.n_features)
            np.testing.assert_allclose(g.features, fz.frames(win), rtol=1e-5, atol=float32_noise(features))
            np.testing.assert_array_equal(g.voiced, levels > threshold)
        else:
            assert g.features is None
            assert g.voiced is None


@pytest.mark.parametrize("features", FEATURE_SETS)
@pytest.mark.parametrize("hop_s", [0.5, 0.05, 0.125, 0.33])
def test_odd_hops_still_equal_the_full_computation(hop_s: float, features: str) -> None:
    cfg, fz = SETS[features].with_timing(hop_s=hop_s), FZS[features]
    y = synth_speechlike(seconds=6.3, seed=2)
    windows, _ = frame_windows(y=y, config=cfg)
    got = list(iter_window_features(blocks_of(y, 5000), config=cfg, featurizer=fz))
    assert len(got) == len(windows)
    assert all(g.speech for g in got)
    for g, win in zip(got, windows, strict=True):
        assert g.features is not None
        np.testing.assert_allclose(g.features, fz.frames(win), rtol=1e-5, atol=float32_noise(features))


@pytest.mark.parametrize("features", FEATURE_SETS)
def test_live_hop_by_hop_and_file_analysis_give_the_same_numbers(tmp_path: Path, features: str) -> None:
    """The Streamer's window features equal the featurizer's and the file path's for the same window.

    The Streamer reads a ring with odd block sizes; the model's feature set travels in its model.json.
    """
    tiny_model = EmotionModel.load(build_tiny_model(tmp_path / "m", config=SETS[features]))
    cfg = tiny_model.feature_config
    assert cfg.features == features
    y = synth_speechlike(seconds=8.0, seed=9)
    streamer = Streamer(tiny_model, settings=StreamSettings(window_s=3.0, hop_s=0.5))
    ring = RingBuffer(10 * SR)
    reader = ring.reader()
    live: dict[float, np.ndarray] = {}
    for chunk in blocks_of(y, 1234):
        ring.write(chunk)
        for pred in streamer.push(reader):
            lm = streamer.window_features()
            if pred.end_s - pred.start_s == pytest.approx(3.0):
                assert lm is not None
                live[round(pred.start_s, 3)] = lm
    fz = tiny_model.featurizer
    file = {round(w.start_s, 3): w.features for w in iter_window_features(blocks_of(y, 30 * SR), config=cfg,
                                                                         featurizer=fz)}
    assert sorted(live) == [0.5 * i for i in range(11)]  # windows starting at 0, 0.5, ..., 5.0 s
    for start, lm in live.items():
        assert lm.shape == (cfg.n_frames, cfg.n_features)
        full = fz.frames(y[round(start * SR) : round(start * SR) + 48000])
        np.testing.assert_allclose(lm, full, rtol=1e-5, atol=float32_noise(features))
        f = file[start]
        assert f is not None
        np.testing.assert_allclose(lm, f, rtol=1e-5, atol=float32_noise(features))


@pytest.mark.parametrize("features", FEATURE_SETS)
def test_frame_cache_holds_about_one_window(features: str) -> None:
    cfg, fz = SETS[features], FZS[features]
    cache = FrameCache(config=cfg, featurizer=fz)
    y = synth_speechlike(seconds=60.0, seed=1)
    start = 0
    for chunk in blocks_of(y, 8000):
        cache.feed(chunk)
        while start + 48000 <= cache.total:
            np.testing.assert_allclose(cache.frames(start), fz.frames(y[start : start + 48000]), rtol=1e-5,
                                       atol=float32_noise(features))
            np.testing.assert_array_equal(cache.levels(start, start + 48000),
                                          frame_levels_db(y[start : start + 48000], sample_rate=SR))
            start += 8000
        cache.release(start)
        assert cache._samples.shape[0] <= 48000
        assert cache._frames.shape[0] <= CFG.n_frames + 50
        assert cache._levels.shape[0] <= 150 + 25
    assert start == (60 - 3) * SR + 8000


def test_voice_track_bridges_short_pauses_only() -> None:
    track = VoiceTrack(sample_rate=SR)  # 20 ms frames
    voiced = np.zeros(300, bool)
    voiced[50:100] = True  # 1.0-2.0 s
    voiced[110:150] = True  # a 0.2 s pause: bridged
    voiced[200:250] = True  # a 1 s pause: a new span
    track.add(start_s=0.0, voiced=voiced)
    track.add(start_s=4.0, voiced=np.ones(10, bool))  # 4.0-4.2 s
    track.add(start_s=0.0, voiced=None)
    np.testing.assert_allclose(track.spans(duration_s=10.0), [(1.0, 3.0), (4.0, 5.0)])
    assert track.speech_s(duration_s=4.5) == pytest.approx(2.0 + 0.5)
    assert VoiceTrack(sample_rate=SR).spans(duration_s=3.0) == []
