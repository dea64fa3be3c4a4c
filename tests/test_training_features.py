"""Window bookkeeping and caching of training features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser_engine.config import FeatureConfig
from ser_engine.features import Featurizer, frame_windows
from training.corpora import load_corpus
from training.features import WindowSet, featurize_clips, fit_stats, gate_policy, load_clip_audio


def _ws(speech: list[bool], clip_index: list[int], n_clips: int) -> WindowSet:
    n = len(speech)
    lm = np.arange(n, dtype=np.float16)[:, None, None] * np.ones((n, 3, 2), np.float16)
    return WindowSet(
        log_mel=lm, clip_index=np.array(clip_index, np.int32), speech=np.array(speech), clips=[object()] * n_clips
    )


def test_usable_keeps_speech_windows_or_all_windows_of_silent_clips() -> None:
    ws = _ws([True, False, False, False, True], [0, 0, 1, 1, 2], 3)
    np.testing.assert_array_equal(ws.usable(), [True, False, True, True, True])


def test_subset_and_concat_keep_clip_indices_consistent() -> None:
    ws = _ws([True, True, True, True], [0, 1, 1, 2], 3)
    sub = ws.subset_clips(np.array([False, True, True]))
    np.testing.assert_array_equal(sub.clip_index, [0, 0, 1])
    np.testing.assert_array_equal(sub.log_mel[:, 0, 0], [1, 2, 3])
    both = ws.concat(sub)
    assert len(both.clips) == 5
    np.testing.assert_array_equal(both.clip_index, [0, 1, 1, 2, 3, 3, 4])


def test_fit_stats_is_per_band_over_usable_frames() -> None:
    ws = _ws([True, False, True], [0, 0, 1], 2)
    mean, std = fit_stats(ws)
    assert mean.shape == (2,) and std.shape == (2,)
    np.testing.assert_allclose(mean, [1.0, 1.0])  # windows 0 and 2 (values 0 and 2)
    np.testing.assert_allclose(std, [1.0, 1.0])


@pytest.mark.corpus
def test_real_clips_match_the_engine_featurizer_and_cache(corpus_dir: Path, tmp_path: Path) -> None:
    clips, _ = load_corpus(root=corpus_dir, corpus="savee")
    some = clips[:5]
    cfg = FeatureConfig()
    ws = featurize_clips(clips=some, config=cfg, cache_dir=tmp_path, workers=1, progress=False)
    for i, c in enumerate(some):
        y = load_clip_audio(c.path, sample_rate=cfg.sample_rate)
        windows, _ = frame_windows(y=y, config=cfg)
        ref = Featurizer(cfg).log_mel(windows)
        np.testing.assert_allclose(ws.log_mel[ws.clip_index == i].astype(np.float32), ref, atol=0.02)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    # statistics do not change the cache key; another clip list does
    featurize_clips(
        clips=some, config=cfg.with_stats(mean=[0] * 64, std=[1] * 64), cache_dir=tmp_path, workers=1, progress=False
    )
    assert len(list(tmp_path.glob("*.npz"))) == 1
    featurize_clips(clips=some[:2], config=cfg, cache_dir=tmp_path, workers=1, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert gate_policy().startswith("ser_engine.gate")
