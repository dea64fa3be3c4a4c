"""Window bookkeeping and caching of training features."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_engine.config import FeatureConfig
from ser_engine.dsp.audio import iter_audio_blocks
from ser_engine.dsp.features import Featurizer
from ser_engine.files.analysis import iter_window_features
from training.corpora import load_corpus
from training.features import WindowSet, featurize_clips, fit_stats, gate_policy, load_clip_audio


def _ws(speech: list[bool], clip_index: list[int], n_clips: int) -> WindowSet:
    n = len(speech)
    lm = np.arange(n, dtype=np.float16)[:, None, None] * np.ones((n, 3, 2), np.float16)
    return WindowSet(
        features=lm, clip_index=np.array(clip_index, np.int32), speech=np.array(speech), clips=[object()] * n_clips
    )


def test_usable_keeps_speech_windows_or_all_windows_of_silent_clips() -> None:
    ws = _ws([True, False, False, False, True], [0, 0, 1, 1, 2], 3)
    np.testing.assert_array_equal(ws.usable(), [True, False, True, True, True])


def test_subset_and_concat_keep_clip_indices_consistent() -> None:
    ws = _ws([True, True, True, True], [0, 1, 1, 2], 3)
    sub = ws.subset_clips(np.array([False, True, True]))
    np.testing.assert_array_equal(sub.clip_index, [0, 0, 1])
    np.testing.assert_array_equal(sub.features[:, 0, 0], [1, 2, 3])
    both = ws.concat(sub)
    assert len(both.clips) == 5
    np.testing.assert_array_equal(both.clip_index, [0, 1, 1, 2, 3, 3, 4])


def test_fit_stats_is_per_band_over_usable_frames() -> None:
    ws = _ws([True, False, True], [0, 0, 1], 2)
    mean, std = fit_stats(ws)
    assert mean.shape == (2,)
    assert std.shape == (2,)
    np.testing.assert_allclose(mean, [1.0, 1.0])  # windows 0 and 2 (values 0 and 2)
    np.testing.assert_allclose(std, [1.0, 1.0])


@pytest.mark.corpus
def test_real_clips_match_the_engine_path_and_cache(corpus_dir: Path, tmp_path: Path) -> None:
    clips, _ = load_corpus(root=corpus_dir, corpus="savee")
    some = clips[:5]
    cfg = FeatureConfig()
    ws = featurize_clips(clips=some, config=cfg, cache_dir=tmp_path, workers=1, progress=False)
    fz = Featurizer(cfg)
    for i, c in enumerate(some):
        ref = [w for w in iter_window_features(iter_audio_blocks(c.path), config=cfg, featurizer=fz) if w.speech]
        mine = ws.features[ws.clip_index == i].astype(np.float32)
        assert mine.shape[0] == len(ref) > 0
        np.testing.assert_allclose(mine, np.stack([w.features for w in ref]), atol=0.02)  # float16 cache
    assert len(list(tmp_path.glob("*.npz"))) == 1
    # statistics do not change the cache key; another clip list does
    again = featurize_clips(
        clips=some, config=cfg.with_stats(mean=[0] * 64, std=[1] * 64), cache_dir=tmp_path, workers=1, progress=False
    )
    np.testing.assert_array_equal(again.start_s, ws.start_s)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    featurize_clips(clips=some[:2], config=cfg, cache_dir=tmp_path, workers=1, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    # the provenance names the function that really cuts the windows (a moved module makes this fail)
    import importlib

    module, _, func = gate_policy().split("(")[0].rpartition(".")
    assert getattr(importlib.import_module(module), func) is iter_window_features


@pytest.mark.corpus
def test_seed_feature_sets_are_featurized_at_their_width_in_float32(corpus_dir: Path, tmp_path: Path) -> None:
    """A seeds' set (40 MFCC + ZCR + RMS) goes through the same engine path, kept at full precision."""
    clips, _ = load_corpus(root=corpus_dir, corpus="savee")
    some = clips[:3]
    cfg = FeatureConfig(features="mfcc_zcr_rms", n_mfcc=40)
    ws = featurize_clips(clips=some, config=cfg, cache_dir=tmp_path, workers=1, progress=False)
    assert ws.features.dtype == np.float32
    assert ws.features.shape[1:] == (cfg.n_frames, 42)
    fz = Featurizer(cfg)
    ref = [w for w in iter_window_features(iter_audio_blocks(some[0].path), config=cfg, featurizer=fz) if w.speech]
    # The same frames, computed from blocks of other sizes: equal to float32 rounding (MFCCs in dB reach hundreds).
    np.testing.assert_allclose(ws.features[ws.clip_index == 0], np.stack([w.features for w in ref]), rtol=1e-5,
                               atol=5e-4)
    # a different feature set is a different cache entry, never the log-mel one
    logmel = featurize_clips(clips=some, config=FeatureConfig(), cache_dir=tmp_path, workers=1, progress=False)
    assert logmel.features.shape[-1] == 64
    assert len(list(tmp_path.glob("*.npz"))) == 2


def _analyze_segments(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    from ser_engine.cli.main import main

    capsys.readouterr()
    assert main(["analyze", str(path), "--segments", "--format", "json", "--progress", "never"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out if isinstance(out, list) else out["files"]
    return list(rows[0]["segments"])


@pytest.mark.corpus
@pytest.mark.slow
def test_training_windows_are_exactly_the_speech_windows_ser_analyze_reports(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training and `ser analyze --segments` see the same windows.

    Real clips, a clip framed by seconds of silence, a quiet clip and a short one.
    """
    sr = 16000
    base = load_corpus(root=corpus_dir, corpus="ravdess")[0]
    src = {c.label: c for c in base}
    y = load_clip_audio(src["angry"].path, sample_rate=sr)
    variants = {
        "framed.flac": np.concatenate([np.zeros(4 * sr, np.float32), y, np.zeros(5 * sr, np.float32)]),
        "quiet.flac": (y * 10 ** (-35 / 20)).astype(np.float32),  # 35 dB down: the gate must judge the real level
        "short.flac": y[: int(1.6 * sr)],
    }
    paths = [Path(src["neutral"].path), Path(src["sad"].path)]
    for name, samples in variants.items():
        sf.write(str(tmp_path / name), samples, sr, subtype="PCM_24")
        paths.append(tmp_path / name)
    clips = [replace(src["neutral"], path=str(p)) for p in paths]
    ws = featurize_clips(clips=clips, config=FeatureConfig(), cache_dir=tmp_path / "cache", workers=1, progress=False)
    assert ws.start_s is not None
    n_silent_windows = 0
    for i, p in enumerate(paths):
        segs = _analyze_segments(p, capsys)
        speech = [s for s in segs if s["speech"]]
        n_silent_windows += len(segs) - len(speech)
        starts = ws.start_s[ws.clip_index == i]
        assert len(starts) == len(speech), p.name
        np.testing.assert_allclose(starts, [float(s["start_s"]) for s in speech], atol=1e-4)  # type: ignore[arg-type]
    assert n_silent_windows >= 12  # the framed clip's silence is not trained on
    assert ws.windows_per_clip()[2] < len(_analyze_segments(paths[2], capsys))
