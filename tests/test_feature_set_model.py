"""A model on the seeds' features runs in ``ser analyze`` unchanged: the feature set travels in model.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from reference_windows import frame_windows
from tiny_model import build_tiny_model

from ser_engine.config import FeatureConfig
from ser_engine.dsp.audio import load_audio
from ser_engine.dsp.features import Featurizer
from ser_engine.dsp.gate import window_is_speech
from ser_engine.errors import ModelError
from ser_engine.files.analysis import analyze_file
from ser_engine.inference.model import EmotionModel
from ser_engine.inference.model_meta import ModelMetadata

CLIP = "ravdess/Actor_12/03-01-05-02-02-01-12.flac"  # 3.8 s: three windows
FIT_CLIPS = ["ravdess/Actor_01/03-01-01-01-01-01-01.flac", "crema-d/1001_DFA_ANG_XX.ogg"]


@pytest.fixture(scope="module")
def mfcc_model_dir(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build a tiny model whose input is 40 MFCCs + ZCR + RMS, normalised with statistics fitted on other clips."""
    cfg = FeatureConfig(features="mfcc_zcr_rms", n_mfcc=40)
    fz = Featurizer(cfg)
    frames = np.concatenate([fz.frames(load_audio(corpus_dir / rel).samples) for rel in FIT_CLIPS])
    fitted = cfg.with_stats(mean=frames.mean(axis=0), std=frames.std(axis=0))
    return build_tiny_model(tmp_path_factory.mktemp("mfcc_zcr_rms"), config=fitted, seed=3)


def direct(model: EmotionModel, y: np.ndarray) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Each window's probabilities (None for silence) and their mean, without the engine's core."""
    cfg = model.feature_config
    fz = Featurizer(cfg)
    windows, starts = frame_windows(y=y, config=cfg)
    out: list[np.ndarray | None] = []
    for win, start in zip(windows, starts, strict=True):
        real = y[start : start + cfg.window_samples]
        speech = window_is_speech(real, sample_rate=16000)
        out.append(model.predict(fz.frames(win)[None]).probabilities[0] if speech else None)
    return out, np.mean([p for p in out if p is not None], axis=0)


def test_model_json_carries_the_feature_set(mfcc_model_dir: Path) -> None:
    data = json.loads((mfcc_model_dir / "model.json").read_text())
    assert data["feature_config"]["features"] == "mfcc_zcr_rms"
    assert data["input_shape"] == [None, None, 42]
    assert len(data["feature_config"]["mean"]) == 42
    model = EmotionModel.load(mfcc_model_dir)
    assert model.featurizer.config.n_features == 42
    assert model.feature_config.std is not None
    assert min(model.feature_config.std) > 0


@pytest.mark.corpus
def test_analyze_file_equals_the_direct_computation(mfcc_model_dir: Path, corpus_dir: Path) -> None:
    model = EmotionModel.load(mfcc_model_dir)
    y = load_audio(corpus_dir / CLIP).samples
    per_window, mean = direct(model, y)
    result = analyze_file(corpus_dir / CLIP, model)
    assert result.ok
    assert len(result.segments) == len(per_window) == 3
    for seg, probs in zip(result.segments, per_window, strict=True):
        assert seg.speech == (probs is not None)
        if probs is not None:
            np.testing.assert_allclose([seg.probabilities[lab] for lab in model.labels], probs, atol=1e-5)
    assert result.probabilities is not None
    np.testing.assert_allclose([result.probabilities[lab] for lab in model.labels], mean, atol=1e-5)
    assert result.label == model.labels[int(np.argmax(mean))]


@pytest.mark.corpus
def test_ser_analyze_cli_runs_an_mfcc_zcr_rms_model(mfcc_model_dir: Path, corpus_dir: Path) -> None:
    """The real CLI, in a subprocess, on a real clip: the same numbers as the direct computation."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SER_MODEL_DIR", None)
    p = subprocess.run(
        [sys.executable, "-m", "ser_engine.cli", "analyze", "--model", str(mfcc_model_dir), "--format", "json",
         "--segments", str(corpus_dir / CLIP)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    rows = json.loads(p.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["ok"] is True
    model = EmotionModel.load(mfcc_model_dir)
    per_window, mean = direct(model, load_audio(corpus_dir / CLIP).samples)
    assert row["label"] == model.labels[int(np.argmax(mean))]
    np.testing.assert_allclose([row["probabilities"][lab] for lab in model.labels], mean, atol=1e-4)
    assert len(row["segments"]) == len(per_window) == 3
    for seg, probs in zip(row["segments"], per_window, strict=True):
        assert seg["speech"] == (probs is not None)
        if probs is not None:
            assert seg["label"] == model.labels[int(np.argmax(probs))]


def test_a_model_json_whose_width_disagrees_with_its_feature_set_is_refused(mfcc_model_dir: Path) -> None:
    data = json.loads((mfcc_model_dir / "model.json").read_text())
    data["feature_config"]["n_mfcc"] = 20  # 22 values per frame, the graph takes 42
    with pytest.raises(ModelError, match="n_features=22"):
        ModelMetadata.from_dict(data)


@pytest.mark.corpus
def test_shipped_model_is_unchanged_by_feature_sets(shipped_model_dir: Path, corpus_dir: Path) -> None:
    """The shipped model.json (written before feature sets) loads as log-mel and re-serialises byte for byte."""
    text = (shipped_model_dir / "model.json").read_text(encoding="utf-8")
    meta = ModelMetadata.load(shipped_model_dir / "model.json")
    assert "features" not in json.loads(text)["feature_config"]
    assert meta.feature_config.features == "logmel"
    assert meta.feature_config.n_features == meta.feature_config.n_mels
    assert json.dumps(meta.to_dict(), indent=2) + "\n" == text
    model = EmotionModel.load(shipped_model_dir)
    fz = model.featurizer
    windows, _ = frame_windows(y=load_audio(corpus_dir / CLIP).samples, config=model.feature_config)
    # the log-mel path, bit for bit: frames() is log_mel(), __call__ is normalize(log_mel())
    np.testing.assert_array_equal(fz.frames(windows), fz.log_mel(windows))
    np.testing.assert_array_equal(fz(windows), fz.normalize(fz.log_mel(windows)))
