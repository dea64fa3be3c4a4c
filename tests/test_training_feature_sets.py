"""A model trained on the seeds' MFCC+ZCR+RMS features, exported, runs in ``ser analyze`` end to end.

A tiny real training run (12 RAVDESS clips of two actors, two epochs, a small 1D CNN) through the
training pipeline's own steps: featurize (the one core), fit the statistics, fit, export with
tf2onnx and its parity check, ``model.json`` carrying the feature set. Then the real ``ser analyze``
and ``ser info`` in subprocesses, and ``analyze_file`` in process, on a clip of a third actor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT

from ser_engine.config import FeatureConfig
from ser_engine.dsp.audio import iter_audio_blocks
from ser_engine.dsp.features import Featurizer
from ser_engine.files.analysis import analyze_file
from ser_engine.inference.model import EmotionModel, softmax
from training.corpora import HARMONISED_LABELS, Clip, load_corpus
from training.features import featurize_clips, fit_stats, speech_window_features
from training.pipeline import _export
from training.train import TrainConfig, configure_tensorflow, fit_model, labels_of

pytestmark = [pytest.mark.training, pytest.mark.corpus, pytest.mark.slow]

CONFIG = FeatureConfig(features="mfcc_zcr_rms", n_mfcc=40)  # 42 values per frame
EMOTIONS = ("01", "03", "04", "05", "06", "07")  # neutral, happy, sad, angry, fearful, disgust
CLIP = "ravdess/Actor_12/03-01-05-02-02-01-12.flac"  # 3.8 s, a speaker seen neither in training nor validation
TEMPERATURE = 1.25


def _clips(corpus_dir: Path, actor: str) -> list[Clip]:
    """Return the six statement-1, repetition-1 clips of ``actor`` (normal intensity), one per emotion."""
    clips, _ = load_corpus(root=corpus_dir, corpus="ravdess")
    wanted = {f"03-01-{e}-01-01-01-{actor}" for e in EMOTIONS}
    out = sorted((c for c in clips if Path(c.path).stem in wanted), key=lambda c: c.path)
    assert len(out) == len(EMOTIONS)
    return out


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SER_MODEL_DIR", None)
    return env


def _ser(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ser_engine.cli", *args],
        capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120,
    )


@pytest.fixture(scope="module")
def trained(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Train two epochs on actor 01 (validation: actor 02) and export to a temporary model folder."""
    configure_tensorflow()
    cache = tmp_path_factory.mktemp("cache")
    sets = {
        part: featurize_clips(
            clips=_clips(corpus_dir, actor), config=CONFIG, cache_dir=cache, workers=2, progress=False
        )
        for part, actor in (("train", "01"), ("val", "02"))
    }
    for w in sets.values():
        assert w.features.shape[1:] == (CONFIG.n_frames, 42)
        assert w.features.dtype == np.float32
        assert (w.windows_per_clip() > 0).all()
    mean, std = fit_stats(sets["train"])
    assert mean.shape == std.shape == (42,)
    config = CONFIG.with_stats(mean=mean, std=std)
    labels = HARMONISED_LABELS
    cfg = TrainConfig(
        arch="cnn1d", arch_params={"filters": (16, 16), "dropout": 0.1}, epochs=2, batch_size=8, freq_masks=0
    )
    model, hist = fit_model(
        cfg=cfg,
        train=sets["train"],
        y_train=labels_of(sets["train"].clips, labels=labels),
        val=sets["val"],
        y_val=labels_of(sets["val"].clips, labels=labels),
        labels=labels,
        mean=mean,
        std=std,
        log=lambda _: None,
        feature_config=config,
    )
    assert model.input_shape == (None, None, 42)
    assert len(hist["loss"]) == 2
    assert np.isfinite(hist["loss"]).all()
    val = sets["val"]
    parity = ((val.features.astype(np.float32) - mean.astype(np.float32)) / std.astype(np.float32)).astype(np.float32)
    folder = tmp_path_factory.mktemp("mfcc_zcr_rms_model")
    logs: list[str] = []
    diff = _export(
        model=model,
        out_dir=folder,
        data_config=config,
        labels=labels,
        temperature=TEMPERATURE,
        parity_windows=parity,
        name="tiny-mfcc-zcr-rms",
        provenance={"command": "tests/test_training_feature_sets.py"},
        metrics={},
        log=logs.append,
    )
    assert diff < 1e-4
    assert any("export parity" in line for line in logs)
    return {"folder": folder, "model": model, "config": config, "labels": labels}


def test_model_json_carries_the_feature_set_and_its_statistics(trained: dict[str, Any]) -> None:
    data = json.loads((trained["folder"] / "model.json").read_text(encoding="utf-8"))
    fc = data["feature_config"]
    assert fc["features"] == "mfcc_zcr_rms"
    assert fc.get("n_mfcc", 40) == 40  # a default value is left out of model.json
    assert FeatureConfig.from_dict(fc).n_features == 42
    assert data["input_shape"] == [None, None, 42]
    assert len(fc["mean"]) == len(fc["std"]) == 42
    np.testing.assert_allclose(fc["mean"], trained["config"].mean)
    assert data["provenance"]["parity_max_abs_prob_diff"] < 1e-4
    model = EmotionModel.load(trained["folder"])
    assert model.feature_config == trained["config"]
    assert model.labels == trained["labels"]


def test_ser_info_names_the_feature_set(trained: dict[str, Any]) -> None:
    p = _ser("info", "--model", str(trained["folder"]), "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["feature_config"]["features"] == "mfcc_zcr_rms"
    assert info["input_shape"] == [None, None, 42]
    assert info["name"] == "tiny-mfcc-zcr-rms"


def test_ser_analyze_runs_the_trained_model_end_to_end(trained: dict[str, Any], corpus_dir: Path) -> None:
    """The real CLI on an unseen speaker's clip; analyze_file and the Keras model give the same numbers."""
    folder, labels = trained["folder"], trained["labels"]
    p = _ser("analyze", "--model", str(folder), "--format", "json", "--segments", str(corpus_dir / CLIP))
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    rows = json.loads(p.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["ok"] is True
    assert set(row["probabilities"]) == set(labels)
    assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    speech = [s for s in row["segments"] if s["speech"]]
    assert speech
    for seg in speech:
        assert set(seg["probabilities"]) == set(labels)
        assert sum(seg["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)

    # in process, through the engine's own loader: the same numbers
    result = analyze_file(corpus_dir / CLIP, EmotionModel.load(folder))
    assert result.ok
    assert result.probabilities is not None
    np.testing.assert_allclose(
        [row["probabilities"][lab] for lab in labels], [result.probabilities[lab] for lab in labels], atol=1e-5
    )
    assert row["label"] == result.label
    assert [s["start_s"] for s in row["segments"]] == [round(s.start_s, 4) for s in result.segments]
    for seg, ref in zip(row["segments"], result.segments, strict=True):
        assert seg["speech"] == ref.speech
        if ref.speech:
            np.testing.assert_allclose(
                [seg["probabilities"][lab] for lab in labels], [ref.probabilities[lab] for lab in labels], atol=1e-5
            )

    # and the Keras model that was trained, on the training pipeline's windows of that clip: the same
    config = trained["config"]
    frames, _ = speech_window_features(
        iter_audio_blocks(corpus_dir / CLIP, sample_rate=config.sample_rate),
        config=config,
        featurizer=Featurizer(config),
    )
    assert frames.shape == (len(speech), config.n_frames, 42)
    x = ((frames - np.asarray(config.mean, np.float32)) / np.asarray(config.std, np.float32)).astype(np.float32)
    keras_probs = softmax(np.asarray(trained["model"](x, training=False)), temperature=TEMPERATURE)
    cli_probs = np.array([[s["probabilities"][lab] for lab in labels] for s in speech])
    np.testing.assert_allclose(cli_probs, keras_probs, atol=1e-4)


def test_a_width_that_is_not_the_feature_sets_is_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    """The log-mel width (n_mels) where the set's n_features is needed fails loudly, before any work."""
    from training.export import ExportError, export_onnx

    with pytest.raises(ExportError, match="takes 42 values per frame"):
        export_onnx(trained["model"], tmp_path / "m.onnx", n_features=trained["config"].n_mels)
    assert not (tmp_path / "m.onnx").exists()
    config = trained["config"]
    windows = featurize_clips(clips=[], config=config, cache_dir=tmp_path, workers=1, progress=False)
    common: dict[str, Any] = {
        "train": windows, "y_train": np.zeros(0, np.int64), "val": None, "y_val": None,
        "labels": trained["labels"], "mean": config.mean, "std": config.std, "log": lambda _: None,
    }
    with pytest.raises(ValueError, match="freq_warp warps log-mel bands"):
        fit_model(cfg=TrainConfig(arch="cnn1d", freq_warp=0.1), feature_config=config, **common)
    with pytest.raises(ValueError, match="64 values per frame"):
        fit_model(cfg=TrainConfig(arch="cnn1d"), feature_config=FeatureConfig(), **common)
