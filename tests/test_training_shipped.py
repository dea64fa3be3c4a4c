"""The shipped model in models/.

Its metadata agrees with the graph and the featurizer, and it recognises
emotions of test speakers well above chance.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import pytest

from ser_engine.config import FeatureConfig
from ser_engine.files.analysis import analyze_file
from ser_engine.inference.model import EmotionModel
from training.corpora import CORPORA, HARMONISED_LABELS, load_all
from training.evaluate import classification_metrics
from training.splits import assign, load_split, split_hash
from training.whisper.embedder import whisper_feature_config
from training.whisper.weights import WHISPER_BASE_SHA256


def test_metadata_agrees_with_graph_and_featurizer(shipped_model_dir: Path, shipped_model: EmotionModel) -> None:
    meta = json.loads((shipped_model_dir / "model.json").read_text())
    graph = onnx.load(str(shipped_model_dir / "model.onnx")).graph
    assert [i.name for i in graph.input] == [meta["input_name"]] == ["features"]
    # emotion logits, the arousal/valence logits, the voice calibration head's logits, as model.json names them
    outputs = [o.name for o in graph.output]
    assert outputs == [meta["output_name"], meta["affect"]["output_name"],
                       meta["voice_calibration"]["head_output"]] == ["logits", "affect", "voice_logits"]
    assert 0 < meta["voice_calibration"]["strength"] <= 1  # the head's share of the blend
    assert meta["affect"]["names"] == ["arousal", "valence"] == list(shipped_model.affect_names)
    dims = graph.input[0].type.tensor_type.shape.dim
    assert len(dims) == 3
    assert dims[2].dim_value == 80
    assert not dims[1].dim_value  # dynamic time axis, as model.json says
    assert meta["input_shape"] == [None, None, 80]
    out_dims = graph.output[0].type.tensor_type.shape.dim
    assert out_dims[1].dim_value in (0, len(meta["labels"]))
    assert tuple(meta["labels"]) == HARMONISED_LABELS == shipped_model.labels
    cfg = FeatureConfig.from_dict(meta["feature_config"])
    # Whisper's log-mel and normalisation, the config the encoder was trained with
    assert cfg == whisper_feature_config()
    assert meta["max_batch"] == 1  # int8 activation ranges are per call: one window per call
    assert 0.2 < meta["temperature"] < 10
    assert meta["provenance"]["split_sha256"] == split_hash()
    assert meta["provenance"]["encoder"]["weights_sha256"] == WHISPER_BASE_SHA256
    assert (shipped_model_dir / "model.onnx").stat().st_size <= 60_000_000
    card = (shipped_model_dir / "MODEL_CARD.md").read_text()
    assert "MIT" in card
    assert WHISPER_BASE_SHA256 in card
    # a window of another length runs (dynamic time axis), probabilities and affect scores in range
    out = shipped_model.predict(np.zeros((2, 150, 80), np.float32))
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert out.affect is not None
    assert out.affect.shape == (2, 2)
    assert ((out.affect > 0) & (out.affect < 1)).all()


@pytest.mark.corpus
def test_shipped_model_scores_well_above_chance_on_test_speakers(corpus_dir: Path, shipped_model: EmotionModel) -> None:
    clips, _ = load_all(root=corpus_dir)
    test = assign(clips=clips, split=load_split())["test"]
    # fixed sample: the first two clips (by path) of each corpus and label of the test speakers
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for c in sorted(test, key=lambda c: c.path):
        if len(groups[(c.corpus, c.label)]) < 2:
            groups[(c.corpus, c.label)].append(c)
    sample = [c for g in groups.values() for c in g]
    assert {c.corpus for c in sample} == {"ravdess", "crema-d", "tess", "savee", "ased", "nemo", "turev", "indowave"}
    assert len(sample) == 2 * len(groups) >= 2 * 40
    labels = shipped_model.labels
    y_true, y_pred = [], []
    for c in sample:
        r = analyze_file(c.path, shipped_model)  # the same path as `ser analyze`
        assert r.ok, r.error
        if r.label is None:
            continue
        y_true.append(labels.index(c.label))
        y_pred.append(labels.index(r.label))
    assert len(y_true) >= 0.95 * len(sample)
    m = classification_metrics(y_true=np.array(y_true), y_pred=np.array(y_pred), labels=labels)
    # chance is 1/7 = 14 %; a broken export or a label-order mistake lands near it
    assert m["uar"] >= 0.35, m["confusion"]


def test_shipped_model_carries_voice_calibration_and_uncertainty(shipped_model: EmotionModel) -> None:
    meta = shipped_model.metadata
    assert meta.voice_reference is not None
    assert len(meta.voice_reference) == len(shipped_model.labels)
    assert 0.0 < meta.uncertainty_threshold < 1.0
    # the reference is what the model says about placed neutral voices: neutral ranks first
    assert shipped_model.labels[int(np.argmax(meta.voice_reference))] == "neutral"
    prov = meta.provenance
    # the read-out was chosen with three corpora held out, then fitted on every corpus but the test
    # speakers; its unseen-corpus figure leaves each corpus out in turn
    assert set(prov["selection_held_out_corpora"]["unseen_test"]) == {"uem-es", "emotiontts-ko"}
    assert set(prov["corpora"]) == set(CORPORA)
    assert "test speakers" in prov["held_out"]
    unseen = meta.metrics["unseen_corpora"]
    assert {k for k in unseen if k not in ("all", "mean_corpus_uar")} == set(CORPORA)
