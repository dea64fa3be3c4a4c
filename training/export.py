"""Export a Keras model to ONNX and write its ``model.json``.

tf2onnx with an explicit input signature; parity with Keras is checked; the
metadata is written by :class:`ser_engine.inference.model.ModelMetadata`.
"""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.inference.model import META_FILE, MODEL_FILE, ModelMetadata, softmax

__all__ = [
    "PARITY_TOLERANCE",
    "ExportError",
    "check_parity",
    "export_onnx",
    "git_commit",
    "library_versions",
    "write_metadata",
]

PARITY_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The exported graph is unusable or disagrees with Keras."""


def export_onnx(model: Any, path: str | Path, *, n_features: int, opset: int = 17) -> Path:
    """Convert ``model`` with input ``features`` float32 ``(None, None, n_features)`` and output ``logits``.

    Parameters
    ----------
    model : keras.Model
    path : path-like
        The ``.onnx`` file to write.
    n_features : int
        Values per frame, ``FeatureConfig.n_features`` (the mel bands for log-mel, 42 for
        40 MFCCs + ZCR + RMS).
    opset : int
        ONNX opset.

    Returns
    -------
    Path
        The written ``.onnx`` file.

    Raises
    ------
    ExportError
        When the width disagrees with the model's input.
    """
    width = n_features
    shape = getattr(model, "input_shape", None)  # (None, None, width) for the builders of training.models
    if isinstance(shape, tuple) and shape and isinstance(shape[-1], int) and shape[-1] != width:
        raise ExportError(f"the model takes {shape[-1]} values per frame, the export was asked for {width}")

    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec([None, None, width], tf.float32, name="features"),)

    @tf.function(input_signature=spec)  # type: ignore[untyped-decorator]
    def serve(features: Any) -> Any:
        return {"logits": tf.identity(model(features, training=False), name="logits")}

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=opset, output_path=None)
    # name the graph output "logits" whatever tf2onnx called it
    graph = model_proto.graph
    if len(graph.output) != 1:
        raise ExportError(f"expected one graph output, got {[o.name for o in graph.output]}")
    old = graph.output[0].name
    if old != "logits":
        for node in graph.node:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = "logits"
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = "logits"
        graph.output[0].name = "logits"
    if graph.input[0].name != "features":
        raise ExportError(f"graph input is named {graph.input[0].name!r}, expected 'features'")
    import onnx

    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, str(out))
    return out


def check_parity(
    model: Any,
    onnx_path: str | Path,
    features: npt.ArrayLike,
    *,
    temperature: float = 1.0,
    tol: float = PARITY_TOLERANCE,
) -> float:
    """Max abs difference of probabilities, ONNX Runtime vs Keras, on ``features`` (batch, time, n_features).

    Also runs a batch of one with a different time length, to prove the time
    axis is dynamic.

    Raises
    ------
    ExportError
        When the difference reaches ``tol`` or the graph refuses another length.
    """
    import onnxruntime as ort

    x = np.asarray(features, dtype=np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    onnx_logits = sess.run(["logits"], {"features": x})[0]
    keras_logits = np.asarray(model(x, training=False))
    diff = float(
        np.max(np.abs(softmax(onnx_logits, temperature=temperature) - softmax(keras_logits, temperature=temperature)))
    )
    if not diff < tol:
        raise ExportError(f"ONNX/Keras parity failed: max abs probability difference {diff:.2e} >= {tol:.0e}")
    short = x[:1, : max(16, x.shape[1] // 2)]
    try:
        d2 = float(
            np.max(
                np.abs(
                    softmax(sess.run(["logits"], {"features": short})[0])
                    - softmax(np.asarray(model(short, training=False)))
                )
            )
        )
    except Exception as exc:  # onnxruntime's and TensorFlow's errors derive from Exception directly
        raise ExportError(f"the ONNX graph refuses a window of {short.shape[1]} frames: {exc}") from exc
    if not d2 < tol:
        raise ExportError(f"ONNX/Keras parity failed on a {short.shape[1]}-frame input: {d2:.2e}")
    return max(diff, d2)


def library_versions() -> dict[str, str]:
    """Return the versions of Python and the libraries a model's provenance records."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    names = (
        "tensorflow",
        "keras",
        "tf2onnx",
        "onnx",
        "onnxruntime",
        "numpy",
        "scikit-learn",
        "librosa",
        "soundfile",
        "soxr",
    )
    for name in names:
        for dist in (name, name + "-cpu"):
            try:
                out[name] = md.version(dist)
                break
            except md.PackageNotFoundError:
                continue
    return out


def git_commit(repo: str | Path | None = None) -> str:
    """HEAD commit of the repository (``+dirty`` when training/ has uncommitted changes), or ``unknown``."""
    cwd = Path(repo) if repo else Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "training"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def write_metadata(
    *,
    model_dir: str | Path,
    name: str,
    labels: tuple[str, ...],
    feature_config: FeatureConfig,
    temperature: float,
    provenance: dict[str, Any],
    metrics: dict[str, Any],
) -> ModelMetadata:
    """Write ``model.json`` next to ``model.onnx`` and return the metadata."""
    prov = dict(provenance)
    prov.setdefault("date", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    prov.setdefault("libraries", library_versions())
    prov.setdefault("git_commit", git_commit())
    meta = ModelMetadata(
        name=name,
        labels=labels,
        feature_config=feature_config,
        input_name="features",
        output_name="logits",
        input_shape=(None, None, feature_config.n_features),
        temperature=float(temperature),
        provenance=prov,
        metrics=metrics,
    )
    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    if not (d / MODEL_FILE).is_file():
        raise ExportError(f"{d / MODEL_FILE} is missing: export the graph first")
    meta.save(d / META_FILE)
    return meta
