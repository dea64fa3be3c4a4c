"""The shipped graph: the int8 embedder of the first k encoder blocks followed by the head.

:func:`head_graph` writes the head (:class:`training.encoder.head.EncoderHead`, standardisation
already folded into its first layer) as ONNX: ``block_means`` (batch, k, d_model) -> Gather of the
blocks read -> Flatten -> Gemm (ReLU Gemm...) -> ``logits`` (batch, n_labels), one Gemm ->
``affect`` (batch, 2) (arousal, valence logits) and, when the head has a voice calibration head
(:mod:`training.encoder.voice`), one Gemm -> ``voice_logits`` (batch, n_labels).
:func:`merge_model` joins it to the embedder (:func:`onnx.compose.merge_models`), so the file
takes ``features`` (batch, T, n_mels) like every model of the project. :func:`check_merged_parity`
compares the merged graph with the embedder and the numpy head on real windows;
:func:`write_model` writes ``model.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.errors import ParameterError
from ser_engine.inference.model import META_FILE, MODEL_FILE, ModelMetadata
from ser_engine.inference.model_meta import AffectOutput, ConfidenceTradeoff
from training.encoder.head import AFFECT_AXES, DenseHead, EncoderHead
from training.export import PARITY_TOLERANCE, ExportError

__all__ = [
    "AFFECT_OUTPUT",
    "LOGITS_OUTPUT",
    "VOICE_OUTPUT",
    "check_merged_parity",
    "head_graph",
    "merge_model",
    "write_model",
]

LOGITS_OUTPUT = "logits"
AFFECT_OUTPUT = "affect"
VOICE_OUTPUT = "voice_logits"
_EMBEDDING = "block_means"
_FEATURES = "features"


def _dense_nodes(head: DenseHead, *, source: str, output: str, prefix: str) -> tuple[list[Any], list[Any]]:
    """Gemm (+ Relu) nodes and their initializers computing ``head`` on the flattened vector ``source``."""
    from onnx import helper, numpy_helper

    nodes, inits = [], []
    x = source
    n = len(head.weights)
    for i, (w, b) in enumerate(zip(head.weights, head.biases, strict=True)):
        wn, bn = f"{prefix}/W{i}", f"{prefix}/b{i}"
        inits += [numpy_helper.from_array(w.astype(np.float32), wn), numpy_helper.from_array(b.astype(np.float32), bn)]
        y = output if i == n - 1 else f"{prefix}/h{i}"
        nodes.append(helper.make_node("Gemm", [x, wn, bn], [y], name=f"{prefix}/gemm{i}"))
        if i < n - 1:
            nodes.append(helper.make_node("Relu", [y], [y + "_relu"], name=f"{prefix}/relu{i}"))
            y += "_relu"
        x = y
    return nodes, inits


def head_graph(
    head: EncoderHead, *, n_blocks: int, d_model: int, opset: int, ir_version: int
) -> Any:
    """ONNX model of the head alone.

    Parameters
    ----------
    head : EncoderHead
    n_blocks : int
        Blocks the embedder gives (``block_means`` axis 1), at least ``head.n_blocks``.
    d_model : int
    opset, ir_version : int
        Those of the embedder it will be merged with.

    Returns
    -------
    onnx.ModelProto
        Input ``block_means`` (batch, n_blocks, d_model); outputs ``logits`` (batch, n_labels),
        ``affect`` (batch, 2) and, with a voice head, ``voice_logits`` (batch, n_labels), float32.
    """
    from onnx import TensorProto, checker, helper, numpy_helper

    if head.n_blocks > n_blocks:
        raise ParameterError(f"the head reads block {head.n_blocks} but the embedder gives {n_blocks}")
    idx = np.asarray([b - 1 for b in head.emotion.blocks], dtype=np.int64)
    inits = [numpy_helper.from_array(idx, "head/blocks")]
    nodes = [
        helper.make_node("Gather", [_EMBEDDING, "head/blocks"], ["head/selected"], axis=1, name="head/gather"),
        helper.make_node("Flatten", ["head/selected"], ["head/vector"], axis=1, name="head/flatten"),
    ]
    parts = [(head.emotion, LOGITS_OUTPUT), (head.affect, AFFECT_OUTPUT)]
    if head.voice is not None:
        parts.append((head.voice.head, VOICE_OUTPUT))
    for part, out in parts:
        n, i = _dense_nodes(part, source="head/vector", output=out, prefix=f"head/{out}")
        nodes += n
        inits += i
    graph = helper.make_graph(
        nodes,
        "encoder_head",
        [helper.make_tensor_value_info(_EMBEDDING, TensorProto.FLOAT, ["batch", n_blocks, d_model])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", part.n_out]) for part, out in parts],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)
    checker.check_model(model)
    return model


def merge_model(*, embedder_path: str | Path, head: EncoderHead, path: str | Path) -> Path:
    """Write the embedder followed by the head as one ONNX graph.

    Parameters
    ----------
    embedder_path : path-like
        Embedder of exactly ``head.n_blocks`` blocks (:func:`training.whisper.embedder.export_embedder`).
    head : EncoderHead
    path : path-like
        The ``model.onnx`` to write.

    Returns
    -------
    Path
        Input ``features`` (batch, T, n_mels); outputs ``logits`` (batch, n_labels),
        ``affect`` (batch, 2) and, with a voice head, ``voice_logits`` (batch, n_labels).
    """
    import onnx
    from onnx import compose

    from training.whisper.embedder import Embedder

    info = Embedder(embedder_path)
    n_blocks, d_model = info.n_blocks, info.d_model
    emb = onnx.load(str(embedder_path))
    if [o.name for o in emb.graph.output] != [_EMBEDDING]:
        raise ExportError(f"{embedder_path}: outputs {[o.name for o in emb.graph.output]}, expected [{_EMBEDDING!r}]")
    if n_blocks != head.n_blocks:
        raise ExportError(f"{embedder_path} runs {n_blocks} blocks, the head needs exactly {head.n_blocks}")
    opset = next(o.version for o in emb.opset_import if o.domain in ("", "ai.onnx"))
    h = head_graph(head, n_blocks=n_blocks, d_model=d_model, opset=opset, ir_version=emb.ir_version)
    merged = compose.merge_models(emb, h, io_map=[(_EMBEDDING, _EMBEDDING)])
    names = [o.name for o in merged.graph.output]
    expected = [LOGITS_OUTPUT, AFFECT_OUTPUT] + ([VOICE_OUTPUT] if head.voice is not None else [])
    if names != expected or merged.graph.input[0].name != _FEATURES:
        raise ExportError(f"merged graph has inputs {[i.name for i in merged.graph.input]} and outputs {names}")
    onnx.checker.check_model(merged)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(merged, str(out))
    return out


def _session(path: str | Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def check_merged_parity(
    *,
    model_path: str | Path,
    embedder_paths: list[str | Path],
    head: EncoderHead,
    features: npt.ArrayLike,
    batch: int = 1,
    tol: float = PARITY_TOLERANCE,
) -> dict[str, float]:
    """Max abs differences of the merged graph's outputs against embedder + numpy head.

    The int8 graphs quantise activations per call (the range of the whole batch), so both sides
    run the same batches of ``batch`` windows (1: as the training vectors were made).

    Parameters
    ----------
    model_path : path-like
        The merged graph.
    embedder_paths : list of path-like
        Embedders to compare with (each with at least ``head.n_blocks`` blocks: the one the
        merged graph was built from, and the one the training vectors came from).
    head : EncoderHead
    features : array_like, shape (n, T, n_mels)
        Normalised real windows.
    batch : int
    tol : float

    Returns
    -------
    dict
        ``"<embedder file name>/logits"``, ``.../affect`` and, with a voice head,
        ``.../voice_logits``: max abs difference; also ``.../probabilities``, the largest
        probability difference (temperature 1).

    Raises
    ------
    ExportError
        When a difference reaches ``tol``.
    """
    from ser_engine.inference.model_meta import softmax
    from training.whisper.embedder import Embedder

    x = np.asarray(features, dtype=np.float32)
    sess = _session(model_path)
    parts = {LOGITS_OUTPUT: head.emotion, AFFECT_OUTPUT: head.affect}
    if head.voice is not None:
        parts[VOICE_OUTPUT] = head.voice.head
    names = list(parts)
    got: dict[str, list[npt.NDArray[np.float32]]] = {n: [] for n in names}
    for i in range(0, x.shape[0], batch):
        for n, v in zip(names, sess.run(names, {_FEATURES: x[i : i + batch]}), strict=True):
            got[n].append(v)
    outputs = {n: np.concatenate(v) for n, v in got.items()}
    out: dict[str, float] = {}
    worst = 0.0
    for p in embedder_paths:
        emb = Embedder(p, threads=1, batch_size=batch)(x)
        name = Path(p).name
        for n, part in parts.items():
            out[f"{name}/{n}"] = float(np.max(np.abs(outputs[n] - part(emb))))
            worst = max(worst, out[f"{name}/{n}"])
        out[f"{name}/probabilities"] = float(np.max(np.abs(softmax(outputs[LOGITS_OUTPUT])
                                                          - softmax(head.emotion(emb)))))
    if not worst < tol:
        raise ExportError(f"merged graph differs from embedder + head by {worst:.2e} (tolerance {tol:.0e}): {out}")
    return out


def write_model(
    *,
    model_dir: str | Path,
    name: str,
    labels: tuple[str, ...],
    feature_config: FeatureConfig,
    temperature: float,
    affect_temperature: tuple[float, float],
    voice_reference: npt.ArrayLike,
    voice_fitted_on: str,
    voice_strength: float,
    uncertainty_threshold: float,
    voice_head: bool = False,
    provenance: dict[str, Any],
    metrics: dict[str, Any],
    confidence_tradeoff: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``model.json`` beside ``model.onnx`` and check that the engine loads the pair.

    The JSON is :class:`ser_engine.inference.model_meta.ModelMetadata`'s, with the ``"affect"`` output
    (probability of high arousal / positive valence = sigmoid(logit / t)), ``max_batch`` 1,
    with ``voice_head`` the voice calibration head's output (``voice_reference`` is then that
    head's reference and ``voice_strength`` its share of the blend) and, when given, the
    ``confidence_tradeoff`` measured on validation (:func:`training.crosscorpus.tradeoff_points`).

    Returns
    -------
    dict
        The JSON written.
    """
    from ser_engine.inference.model import EmotionModel

    meta = ModelMetadata(
        name=name,
        labels=labels,
        feature_config=feature_config,
        input_name=_FEATURES,
        output_name=LOGITS_OUTPUT,
        input_shape=(None, None, feature_config.n_features),
        temperature=float(temperature),
        provenance=provenance,
        metrics=metrics,
        voice_reference=tuple(float(v) for v in np.asarray(voice_reference).reshape(-1)),
        voice_reference_fitted_on=voice_fitted_on,
        voice_strength=float(voice_strength),
        voice_head_output=VOICE_OUTPUT if voice_head else None,
        uncertainty_threshold=float(uncertainty_threshold),
        affect=AffectOutput(
            output_name=AFFECT_OUTPUT,
            names=tuple(a.name for a in AFFECT_AXES),
            temperature=tuple(float(t) for t in affect_temperature),
        ),
        # int8 activation ranges are per graph call: one window per call gives the same numbers live and in files
        max_batch=1,
        confidence_tradeoff=None if confidence_tradeoff is None else ConfidenceTradeoff.from_dict(confidence_tradeoff),
    )
    data = meta.to_dict()
    d = Path(model_dir)
    if not (d / MODEL_FILE).is_file():
        raise ExportError(f"{d / MODEL_FILE} is missing: merge the graph first")
    (d / META_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    EmotionModel.load(d)  # the engine must accept the pair
    return data
