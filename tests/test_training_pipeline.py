"""A tiny end-to-end run on real clips.

Featurize (cached), fit one epoch, evaluate, export, parity, and loading by ser_engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference_windows import frame_windows

from ser_engine.inference.model import EmotionModel
from training.corpora import HARMONISED_LABELS
from training.features import featurize_clips
from training.pipeline import _parity_windows, _provenance, prepare_data
from training.splits import DEFAULT_SPLIT_PATH
from training.train import TrainConfig, evaluate_clips, fit_model, labels_of, predict_logits

pytestmark = [pytest.mark.training, pytest.mark.corpus, pytest.mark.slow]

TINY = {"filters": (8, 16, 16, 16), "stem_stride": (2, 2), "dropout": 0.1}


@pytest.fixture(scope="module")
def data(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("cache")
    d = prepare_data(root=corpus_dir, n_aug=1, cache_dir=cache, workers=1, limit=12, log=lambda _: None)
    d.cache = cache  # type: ignore[attr-defined]
    return d


def test_features_are_the_engine_windows_and_are_cached(data, monkeypatch: pytest.MonkeyPatch) -> None:
    w = data.clean["val"]
    assert w.features.shape[1:] == (data.config.n_frames, data.config.n_mels)
    n = len(w.clips) + len(data.no_speech["val"])
    assert n == 12
    assert set(np.unique(w.clip_index)) == set(range(len(w.clips)))
    # windows of the first clip equal the engine's speech windows of the decoded clip
    from ser_engine.dsp.audio import iter_audio_blocks
    from ser_engine.dsp.features import Featurizer
    from ser_engine.files.analysis import iter_window_features

    ref = np.stack([
        f.features
        for f in iter_window_features(
            iter_audio_blocks(w.clips[0].path), config=data.config, featurizer=Featurizer(data.config)
        )
        if f.speech and f.features is not None
    ])
    got = w.features[w.clip_index == 0].astype(np.float32)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=0.02)
    # a second call reads the cache instead of featurizing again: featurizing would raise here
    files = sorted(Path(data.cache).glob("*.npz"))
    assert len(files) == 6  # train, val, test, unseen_val, unseen_test, one augmented copy

    def featurize_again(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the clips were featurized again instead of read from the cache")

    monkeypatch.setattr("training.features._init_worker", featurize_again)
    monkeypatch.setattr("training.features._featurize_one", featurize_again)
    again = featurize_clips(clips=w.clips, config=data.config, cache_dir=data.cache, workers=1, progress=False)
    np.testing.assert_array_equal(again.features, w.features)
    assert sorted(Path(data.cache).glob("*.npz")) == files


def test_augmented_copy_differs_from_clean(data) -> None:
    assert data.train_aug is not None
    assert [c.path for c in data.train_aug.clips] == [c.path for c in data.clean["train"].clips]
    assert not np.array_equal(data.train_aug.features[:1], data.clean["train"].features[:1])
    assert np.isfinite(data.train_aug.features.astype(np.float32)).all()


def test_statistics_come_from_training_speakers(data) -> None:
    from training.features import fit_stats

    mean, std = fit_stats(data.clean["train"])
    np.testing.assert_allclose(data.config.mean, mean)
    np.testing.assert_allclose(data.config.std, std)
    assert data.config.is_fitted
    assert len(data.config.mean) == 64


def test_fit_evaluate_export_parity_and_engine_load(data, tmp_path: Path) -> None:
    from training.export import ExportError, check_parity, export_onnx, write_metadata
    from training.models import build_model
    from training.train import configure_tensorflow

    configure_tensorflow()
    labels = HARMONISED_LABELS
    train = data.clean["train"].concat(data.train_aug)
    cfg = TrainConfig(arch="cnn2d", arch_params=TINY, epochs=1, batch_size=16)
    model, hist = fit_model(
        cfg=cfg,
        train=train,
        y_train=labels_of(train.clips, labels=labels),
        val=data.clean["val"],
        y_val=labels_of(data.clips["val"], labels=labels),
        labels=labels,
        mean=data.config.mean,
        std=data.config.std,
        log=lambda _: None,
    )
    assert len(hist["loss"]) == 1
    assert np.isfinite(hist["loss"][0])
    logits, idx = predict_logits(model, data.clean["test"], mean=data.config.mean, std=data.config.std)
    metrics, probs = evaluate_clips(
        logits=logits, clip_index=idx, y_true=labels_of(data.clips["test"], labels=labels), labels=labels
    )
    assert metrics["n"] == len(data.clips["test"]) >= 10
    assert 0.0 <= metrics["uar"] <= 1.0
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)

    onnx_path = export_onnx(model, tmp_path / "model.onnx", n_features=64)
    diff = check_parity(model, onnx_path, _parity_windows(data, n=8))
    assert diff < 1e-4
    write_metadata(
        model_dir=tmp_path,
        name="tiny",
        labels=labels,
        feature_config=data.config,
        temperature=1.3,
        provenance={"command": "test"},
        metrics={},
    )
    loaded = EmotionModel.load(tmp_path)
    assert loaded.labels == labels
    assert loaded.metadata.temperature == 1.3
    # the engine reproduces the Keras probabilities on a real clip's windows
    import soundfile as sf

    y, _ = sf.read(data.clips["test"][0].path, dtype="float32")
    windows, _ = frame_windows(y=y, config=loaded.feature_config)
    p_engine = loaded.predict(loaded.featurizer.frames(windows)).probabilities
    feats = loaded.featurizer(windows)
    from ser_engine.inference.model import softmax

    p_keras = softmax(np.asarray(model(feats, training=False)), temperature=1.3)
    np.testing.assert_allclose(p_engine, p_keras, atol=1e-4)

    # a graph that disagrees with the Keras model fails the export
    other = build_model("cnn2d", n_features=64, n_labels=len(labels), seed=99, **TINY)
    with pytest.raises(ExportError, match="parity"):
        check_parity(other, onnx_path, _parity_windows(data, n=4))


def test_provenance_carries_no_absolute_path(corpus_dir: Path, tmp_path: Path) -> None:
    """model.json's provenance names the data and the split relative to the repository, wherever they are."""
    elsewhere = tmp_path / "speakers.json"
    elsewhere.write_bytes(DEFAULT_SPLIT_PATH.read_bytes())
    for split in (DEFAULT_SPLIT_PATH, elsewhere):
        prov = _provenance(root=corpus_dir, split_path=split, command="test", corpora=["ravdess"], extra={})
        assert not Path(prov["split_file"]).is_absolute(), prov
        assert not Path(prov["data_root"]).is_absolute(), prov
    assert _provenance(root=corpus_dir, split_path=DEFAULT_SPLIT_PATH, command="test", corpora=[],
                       extra={})["split_file"] == "training/splits/speakers.json"
