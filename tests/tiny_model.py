"""A tiny, deterministic ONNX emotion model built with onnx.helper (no TensorFlow).

Tests use it where the behaviour under test does not depend on a trained
model: it pools the normalised feature frames (of ``config.features``; input
width ``config.n_features``) over time and applies a fixed linear layer, so
loud/high-frequency audio and quiet/low-frequency audio get different labels.
With ``affect`` names it has a second output, ``affect`` (one logit per name, another
fixed linear layer on the same pooled frames), described in ``model.json`` as the
encoder model's arousal/valence output is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ser_engine.config import FeatureConfig
from ser_engine.inference.model import AffectOutput, ModelMetadata

TINY_LABELS = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
TRADEOFF = {  # a model.json confidence_tradeoff for tests: three points, coverage falling as accuracy rises
    "measured_on": "validation clips of 23 speakers (n=1000)",
    "points": [
        {"min_confidence": 0.0, "coverage": 1.0, "accuracy": 0.6},
        {"min_confidence": 0.2, "coverage": 0.9, "accuracy": 0.64},
        {"min_confidence": 0.4, "coverage": 0.5, "accuracy": 0.8},
    ],
}


def build_tiny_model(
    out_dir: Path,
    *,
    labels: tuple[str, ...] = TINY_LABELS,
    config: FeatureConfig | None = None,
    fixed_frames: bool = False,
    seed: int = 0,
    affect: tuple[str, ...] = (),
    affect_temperature: tuple[float, ...] | None = None,
    voice_head: bool = False,
) -> Path:
    """Write ``model.onnx`` and ``model.json`` into ``out_dir`` and return it.

    ``voice_head``: a second linear head, output ``voice_logits``, declared as the voice
    calibration head (with a random reference and strength 0.5).
    """
    cfg = config or FeatureConfig()
    if not cfg.is_fitted:
        if cfg.features == "logmel":  # statistics close to real speech log-mel values
            cfg = cfg.with_stats(mean=np.full(cfg.n_mels, -6.0), std=np.full(cfg.n_mels, 3.0))
        else:
            cfg = cfg.with_stats(mean=np.zeros(cfg.n_features), std=np.ones(cfg.n_features))
    rng = np.random.default_rng(seed)
    n_mels, n_out = cfg.n_features, len(labels)  # the input width: n_mels for the log-mel set
    w = rng.normal(0, 1, (n_mels, n_out)).astype(np.float32)
    b = np.zeros(n_out, dtype=np.float32)
    t = cfg.n_frames if fixed_frames else "time"
    inp = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", t, n_mels])
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_out])]
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("ReduceMean", ["features", "axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
    ]
    init = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"), axes]
    if affect:
        wa = rng.normal(0, 1, (n_mels, len(affect))).astype(np.float32)
        nodes.append(helper.make_node("MatMul", ["pooled", "WA"], ["affect"]))
        outputs.append(helper.make_tensor_value_info("affect", TensorProto.FLOAT, ["batch", len(affect)]))
        init.append(numpy_helper.from_array(wa, "WA"))
    if voice_head:
        wv = rng.normal(0, 1, (n_mels, n_out)).astype(np.float32)
        bv = rng.normal(0, 1, n_out).astype(np.float32)
        nodes += [helper.make_node("MatMul", ["pooled", "WV"], ["mv"]),
                  helper.make_node("Add", ["mv", "BV"], ["voice_logits"])]
        outputs.append(helper.make_tensor_value_info("voice_logits", TensorProto.FLOAT, ["batch", n_out]))
        init += [numpy_helper.from_array(wv, "WV"), numpy_helper.from_array(bv, "BV")]
    graph = helper.make_graph(nodes, "tiny_ser", [inp], outputs, initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="ser-tests")
    model.ir_version = 9
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_dir / "model.onnx"))
    ModelMetadata(
        name="tiny-test-model",
        labels=labels,
        feature_config=cfg,
        input_shape=(None, cfg.n_frames if fixed_frames else None, n_mels),
        temperature=1.0,
        provenance={"note": "built by tests/tiny_model.py; untrained"},
        affect=AffectOutput(output_name="affect", names=affect,
                            temperature=affect_temperature or (1.0,) * len(affect)) if affect else None,
        voice_reference=tuple(float(v) for v in rng.normal(0, 1, n_out)) if voice_head else None,
        voice_reference_fitted_on="random (tests/tiny_model.py)" if voice_head else "",
        voice_strength=0.5 if voice_head else 1.0,
        voice_head_output="voice_logits" if voice_head else None,
    ).save(out_dir / "model.json")
    return out_dir
