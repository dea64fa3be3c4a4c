"""EmotionModel: loading, validation of model.json against the graph, inference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_model import TINY_LABELS, build_tiny_model

from ser_engine.config import FeatureConfig
from ser_engine.errors import ModelError, ParameterError
from ser_engine.model import EmotionModel, ModelMetadata, softmax


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def edit_json(d: Path, **changes: object) -> None:
    meta = json.loads((d / "model.json").read_text())
    meta.update(changes)
    (d / "model.json").write_text(json.dumps(meta))


def test_loads_and_predicts(tiny_model: EmotionModel) -> None:
    assert tiny_model.labels == TINY_LABELS
    assert tiny_model.feature_config.is_fitted
    x = np.random.default_rng(0).normal(0, 1, (3, 297, 64)).astype(np.float32)
    p = tiny_model.predict_features(x)
    assert p.shape == (3, len(TINY_LABELS)) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert tiny_model.predict_features(x[0]).shape == (1, len(TINY_LABELS))
    w = np.random.default_rng(1).normal(0, 0.1, (5, 48000)).astype(np.float32)
    batched = tiny_model.predict_windows(w, batch_size=2)
    np.testing.assert_allclose(batched, tiny_model.predict_features(tiny_model.featurizer(w)), atol=1e-5)


def test_temperature_scales_logits(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = copy_model(tiny_model_dir, tmp_path / "t")
    edit_json(d, temperature=2.0)
    hot = EmotionModel.load(d)
    x = np.random.default_rng(0).normal(0, 1, (2, 100, 64)).astype(np.float32)
    np.testing.assert_allclose(hot.predict_features(x), softmax(hot.logits(x) / 2.0), atol=1e-6)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing dir", "model directory not found"),
        ("missing onnx", "model file not found"),
        ("empty onnx", "model file is empty"),
        ("corrupt onnx", "not a loadable ONNX model"),
        ("missing json", "model metadata not found"),
        ("invalid json", "not valid JSON"),
        ("too many labels", "does not match the 8 labels"),
        ("unknown label", "unknown labels"),
        ("wrong mel count", "mel bands"),
        ("wrong input name", "graph input is 'features'"),
        ("fixed frames disagree", "disagrees with model.json input_shape"),
        ("no stats", "no normalisation statistics"),
    ],
)
def test_bad_models_give_clear_errors(tiny_model_dir: Path, tmp_path: Path, case: str, message: str) -> None:
    d = copy_model(tiny_model_dir, tmp_path / "m")
    if case == "missing dir":
        d = tmp_path / "nowhere"
    elif case == "missing onnx":
        (d / "model.onnx").unlink()
    elif case == "empty onnx":
        (d / "model.onnx").write_bytes(b"")
    elif case == "corrupt onnx":
        (d / "model.onnx").write_bytes(np.random.default_rng(0).bytes(3000))
    elif case == "missing json":
        (d / "model.json").unlink()
    elif case == "invalid json":
        (d / "model.json").write_text("{ not json")
    elif case == "too many labels":
        edit_json(d, labels=[*TINY_LABELS, "calm"])
    elif case == "unknown label":
        edit_json(d, labels=["joy", *TINY_LABELS[1:]])
    elif case == "wrong mel count":
        edit_json(d, input_shape=[None, None, 40])
    elif case == "wrong input name":
        edit_json(d, input_name="mfcc")
    elif case == "fixed frames disagree":
        d = build_tiny_model(tmp_path / "fixed", fixed_frames=True)
        cfg = FeatureConfig(window_s=2.0).with_stats(mean=np.zeros(64), std=np.ones(64))
        edit_json(d, input_shape=[None, cfg.n_frames, 64], feature_config=cfg.to_dict())
    elif case == "no stats":
        cfg = FeatureConfig().to_dict()
        edit_json(d, feature_config=cfg)
    with pytest.raises(ModelError) as info:
        EmotionModel.load(d)
    assert message in str(info.value)
    assert str(tmp_path) in str(info.value)  # names the file or folder


def test_fixed_frame_model_checks_input(tmp_path: Path) -> None:
    m = EmotionModel.load(build_tiny_model(tmp_path / "f", fixed_frames=True))
    with pytest.raises(ParameterError, match="exactly 297"):
        m.predict_features(np.zeros((1, 200, 64), np.float32))
    with pytest.raises(ParameterError, match="mel bands"):
        m.predict_features(np.zeros((1, 297, 40), np.float32))
    with pytest.raises(ParameterError, match="NaN"):
        m.predict_features(np.full((1, 297, 64), np.nan, np.float32))


def test_metadata_round_trip(tiny_model: EmotionModel, tmp_path: Path) -> None:
    tiny_model.metadata.save(tmp_path / "m.json")
    assert ModelMetadata.load(tmp_path / "m.json") == tiny_model.metadata


@pytest.mark.corpus
def test_shipped_model_is_consistent(shipped_model: EmotionModel) -> None:
    meta = shipped_model.metadata
    assert set(meta.labels) >= {"angry", "happy", "neutral", "sad"}
    assert meta.feature_config.is_fitted
    p = shipped_model.predict_windows(np.zeros((1, meta.feature_config.window_samples), np.float32))
    assert p.shape == (1, len(meta.labels)) and abs(float(p.sum()) - 1) < 1e-4
