"""The embedder's graph rewritten in the operators ONNX Runtime fuses, then quantized to int8.

tf2onnx's export of the Keras embedder (:func:`training.whisper.embedder.export_embedder`) is
exact, but it hides every pattern ONNX Runtime's optimiser knows, so nothing is fused and one 3 s
window costs about 40 % more CPU than it needs:

* LayerNorm comes out in TensorFlow's "moments" form (GlobalAveragePool, Neg, Sub, Sqrt,
  Reciprocal, ...), which no LayerNormalization fusion matches;
* every Dense is a Tensordot: Reshape -> MatMul -> Reshape to a shape computed at run time;
* GELU is ``0.5 x (1 + erf(x / sqrt 2))`` spelled so that no Gelu fusion matches;
* attention is a dozen small ops per block;
* the two convolutions run channels-first and, once quantized, become ``ConvInteger``, which
  ONNX Runtime runs slowly (a quarter of the window's time for 8 % of its arithmetic).

:func:`read_weights` takes the weights back out of that graph, by the Keras layer names of
:mod:`training.whisper.encoder` (each checked for shape), and :func:`build_fused` writes the same
network with ``LayerNormalization``, ``com.microsoft.Gelu``, Q/K/V MatMuls into
``com.microsoft.MultiHeadAttention``, plain 3-D MatMuls, and each convolution as its three taps
side by side (Pad, Slice, Concat) times one matrix, so that it quantizes like every other
MatMul. :func:`fuse_embedder` checks the rewritten float32 graph against tf2onnx's, then quantizes
its MatMul weights to int8, per output channel with 7-bit range: without VNNI, the AVX2 int8 kernel
can saturate its 16-bit sums on full-range per-channel weights, which cost accuracy.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from training.export import ExportError

__all__ = ["FUSED_GRAPH", "build_fused", "fuse_embedder", "read_weights"]

FUSED_GRAPH = "fused-v1"
"""The ``graph`` entry of an embedder's metadata written by :func:`fuse_embedder`."""

_MS = "com.microsoft"
_CHECK_TOLERANCE = 1e-3
_I64 = np.int64
_END = int(np.iinfo(np.int64).max)

Array = npt.NDArray[Any]


class _Reader:
    """Constant inputs of the tf2onnx graph's nodes, by Keras layer path (model prefix dropped)."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.nodes = {re.sub(r"^[^/]*?/", "", n.name, count=1): n for n in model.graph.node}

    def const(self, name: str, shape: tuple[int, ...] | None = None) -> Array:
        node = self.nodes.get(name)
        if node is None:
            raise ExportError(f"the tf2onnx embedder has no node {name!r} (was a Keras layer renamed?)")
        vals = [self.inits[x] for x in node.input if x in self.inits]
        if shape is not None:
            vals = [v for v in vals if v.size == int(np.prod(shape))]
        if len(vals) != 1:
            raise ExportError(f"node {name!r}: expected one constant of shape {shape}, got {[v.shape for v in vals]}")
        return vals[0].reshape(shape) if shape is not None else vals[0]

    def has(self, name: str) -> bool:
        return name in self.nodes


def read_weights(model: Any) -> dict[str, Any]:
    """Read the embedder's weights out of its tf2onnx float32 graph.

    Parameters
    ----------
    model : onnx.ModelProto
        :func:`training.whisper.embedder.export_embedder` with ``quantize_int8=False``.

    Returns
    -------
    dict
        ``clamp`` (Whisper's dynamic-range floor), ``conv1_w`` (d, n_mels, 1, 3), ``conv1_b``,
        ``conv2_w`` (d, d, 1, 3), ``conv2_b``, ``pos`` (n_ctx, d), ``blocks`` (one dict per block:
        layer norms' gains, biases and epsilons; ``query``/``key``/``value``/``out``/``mlp0``/``mlp2``
        weights (in, out) and biases; ``q_scale``), ``d``, ``n_mels``.

    Raises
    ------
    ExportError
        When the graph is not laid out as the Keras embedder exports.
    """
    from onnx import helper

    r = _Reader(model)
    w: dict[str, Any] = {"clamp": float(r.const("clamp_1/sub").ravel()[0])}
    c1 = r.const("conv1_1/convolution")
    d, n_mels = int(c1.shape[0]), int(c1.shape[1])
    w["conv1_w"], w["conv1_b"] = c1, r.const("conv1_1/BiasAdd", (d,))
    w["conv2_w"], w["conv2_b"] = r.const("conv2_1/convolution", (d, d, 1, 3)), r.const("conv2_1/BiasAdd", (d,))
    pads = r.const("pad2_1/Pad").ravel().tolist()
    if pads != [0, 0, 1, 0, 0, 1]:
        raise ExportError(f"unexpected padding before the second convolution: {pads}")
    attrs = {a.name: helper.get_attribute_value(a) for a in r.nodes["conv1_1/convolution"].attribute}
    if attrs.get("auto_pad") not in (b"SAME_UPPER", b"SAME_LOWER") or list(attrs.get("strides", [1, 1])) != [1, 1]:
        raise ExportError(f"unexpected first convolution: {attrs}")
    pos = [r.inits[x] for x in r.nodes["positional_embedding_1/strided_slice_2"].input
           if x in r.inits and r.inits[x].ndim == 3]
    if len(pos) != 1:
        raise ExportError("the positional embedding table was not found")
    w["pos"] = pos[0][0]
    blocks = []
    i = 1
    while r.has(f"block{i}_1/attn_ln_1/mul"):
        p = f"block{i}_1/"
        b: dict[str, Any] = {}
        for ln in ("attn_ln", "mlp_ln"):
            b[f"{ln}_g"] = r.const(f"{p}{ln}_1/mul", (d,))
            b[f"{ln}_b"] = r.const(f"{p}{ln}_1/add_1", (d,))
            b[f"{ln}_eps"] = float(r.const(f"{p}{ln}_1/add").ravel()[0])
        for name in ("query", "key", "value", "out", "mlp0", "mlp2"):
            pre = f"{p}attn_1/{name}_1" if name in ("query", "key", "value", "out") else f"{p}{name}_1"
            wm = r.const(f"{pre}/Tensordot/MatMul")
            b[f"{name}_w"] = wm
            b[f"{name}_b"] = (r.const(f"{pre}/BiasAdd", (wm.shape[1],)) if r.has(f"{pre}/BiasAdd")
                              else np.zeros(wm.shape[1], np.float32))
        b["q_scale"] = float(r.const(f"{p}attn_1/mul").ravel()[0])
        blocks.append(b)
        i += 1
    if not blocks:
        raise ExportError("no encoder block found in the tf2onnx embedder")
    w["blocks"], w["d"], w["n_mels"] = blocks, d, n_mels
    return w


class _Graph:
    """Nodes and initializers being written, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def name(self, s: str) -> str:
        self._n += 1
        return f"{s}_{self._n}"

    def const(self, arr: Any, name: str, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        nm = self.name(name)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=dtype), nm))
        return nm

    def op(self, op: str, ins: list[str], *, name: str, domain: str = "", out: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        nm = self.name(name)
        y = out or f"{nm}_out"
        self.nodes.append(helper.make_node(op, ins, [y], name=nm, domain=domain or None, **attrs))
        return y

    def dense(self, x: str, w: Array, b: Array | None, name: str) -> str:
        y = self.op("MatMul", [x, self.const(w, name + "/W")], name=name + "/MatMul")
        return y if b is None else self.op("Add", [y, self.const(b, name + "/b")], name=name + "/BiasAdd")

    def layer_norm(self, x: str, block: dict[str, Any], ln: str, prefix: str) -> str:
        """``LayerNormalization`` over the last axis with the block's ``ln`` gain, bias and epsilon."""
        gain, bias = self.const(block[f"{ln}_g"], prefix + ln + "/g"), self.const(block[f"{ln}_b"], prefix + ln + "/b")
        return self.op("LayerNormalization", [x, gain, bias], name=prefix + ln, axis=-1, epsilon=block[f"{ln}_eps"])

    def conv_k3(self, x: str, w: Array, b: Array, *, stride: int, name: str) -> str:
        """Kernel-3 convolution over time, padding 1, in (B, T, C) layout: three taps side by side times one matrix."""
        xp = self.op("Pad", [x, self.const([0, 1, 0, 0, 1, 0], "pads", _I64)], name=name + "/pad")
        axis, step = self.const([1], "axis", _I64), self.const([stride], "step", _I64)
        taps = [self.op("Slice", [xp, self.const([s], "start", _I64), self.const([e], "end", _I64), axis, step],
                        name=f"{name}/tap{k}") for k, (s, e) in enumerate(((0, -2), (1, -1), (2, _END)))]
        col = self.op("Concat", taps, name=name + "/taps", axis=2)
        c_out, c_in = w.shape[0], w.shape[1]
        matrix = w[:, :, 0, :].transpose(2, 1, 0).reshape(3 * c_in, c_out)  # row k * c_in + c
        return self.dense(col, matrix, b, name)


def build_fused(f32: Any, *, n_heads: int) -> Any:
    """Write the embedder of a tf2onnx float32 graph again, in operators ONNX Runtime fuses.

    Parameters
    ----------
    f32 : onnx.ModelProto
        The tf2onnx float32 embedder.
    n_heads : int
        Attention heads of the encoder.

    Returns
    -------
    onnx.ModelProto
        Input ``features`` (batch, T, n_mels), output ``block_means`` (batch, n_blocks, d_model),
        float32; the source's metadata copied.
    """
    from onnx import TensorProto, checker, helper

    w = read_weights(f32)
    d, n_mels = w["d"], w["n_mels"]
    if n_heads < 1 or d % n_heads:
        raise ExportError(f"d_model {d} is not a multiple of {n_heads} heads")
    g = _Graph()
    # Whisper's clamp, per window: max(x, max(x) - c)
    top = g.op("ReduceMax", ["features"], name="clamp/max", axes=[1, 2], keepdims=1)
    x = g.op("Max", ["features", g.op("Sub", [top, g.const(np.float32(w["clamp"]), "clamp")], name="clamp/floor")],
             name="clamp")
    x = g.op("Gelu", [g.conv_k3(x, w["conv1_w"], w["conv1_b"], stride=1, name="conv1")], domain=_MS, name="gelu1")
    x = g.op("Gelu", [g.conv_k3(x, w["conv2_w"], w["conv2_b"], stride=2, name="conv2")], domain=_MS, name="gelu2")
    shape = g.op("Shape", [x], name="pos/shape")
    t = g.op("Slice", [shape, g.const([1], "start", _I64), g.const([2], "end", _I64)], name="pos/frames")
    pos = g.op("Slice", [g.const(w["pos"], "pos/table"), g.const([0], "start", _I64), t, g.const([0], "axis", _I64)],
               name="pos/slice")
    x = g.op("Add", [x, pos], name="pos/add")
    means = []
    for i, b in enumerate(w["blocks"], start=1):
        p = f"block{i}/"
        h = g.layer_norm(x, b, "attn_ln", p)
        q = g.dense(h, b["query_w"], b["query_b"], p + "q")
        k = g.dense(h, b["key_w"], None, p + "k")  # Whisper's key projection has no bias
        v = g.dense(h, b["value_w"], b["value_b"], p + "v")
        a = g.op("MultiHeadAttention", [q, k, v], domain=_MS, name=p + "attn", num_heads=n_heads, scale=b["q_scale"])
        x = g.op("Add", [x, g.dense(a, b["out_w"], b["out_b"], p + "out")], name=p + "res1")
        h = g.layer_norm(x, b, "mlp_ln", p)
        h = g.op("Gelu", [g.dense(h, b["mlp0_w"], b["mlp0_b"], p + "mlp0")], domain=_MS, name=p + "gelu")
        x = g.op("Add", [x, g.dense(h, b["mlp2_w"], b["mlp2_b"], p + "mlp2")], name=p + "res2")
        # mean over time as (B, d, T) -> GlobalAveragePool: faster here than ReduceMean over axis 1
        means.append(g.op("GlobalAveragePool", [g.op("Transpose", [x], name=p + "mean/t", perm=[0, 2, 1])],
                          name=p + "mean"))
    cat = g.op("Concat", means, name="block_means/concat", axis=2)
    g.op("Transpose", [cat], name="block_means", out="block_means", perm=[0, 2, 1])
    graph = helper.make_graph(
        g.nodes, "whisper_embedder_fused",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "frames", n_mels])],
        [helper.make_tensor_value_info("block_means", TensorProto.FLOAT, ["batch", len(w["blocks"]), d])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(_MS, 1)],
                              ir_version=f32.ir_version, producer_name="ser.training.whisper.fused")
    for prop in f32.metadata_props:
        entry = model.metadata_props.add()
        entry.key, entry.value = prop.key, prop.value
    checker.check_model(model)
    return model


def fuse_embedder(*, source: str | Path, path: str | Path, n_heads: int) -> Path:
    """Write the fused int8 embedder of a float32 tf2onnx embedder.

    Parameters
    ----------
    source : path-like
        A float32 embedder (:func:`training.whisper.embedder.export_embedder`, ``quantize_int8=False``).
    path : path-like
        The ``.onnx`` to write, with the source's metadata (the caller records the change:
        :func:`training.whisper.embedder.quantize_embedder`).
    n_heads : int
        Attention heads of the encoder.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ExportError
        When the rewritten float32 graph differs from ``source`` by more than 1e-3 on random
        input (before any quantization).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from training.whisper.embedder import Embedder  # (that module imports this one)

    src, out = Path(source), Path(path)
    f32 = onnx.load(str(src))
    fused = build_fused(f32, n_heads=n_heads)
    n_mels = int(fused.graph.input[0].type.tensor_type.shape.dim[2].dim_value)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fused_path = Path(tmp) / "fused-f32.onnx"
        onnx.save(fused, str(fused_path))
        x = (np.random.default_rng(0).standard_normal((2, 298, n_mels)) * 0.5 - 0.3).astype(np.float32)
        a, b = Embedder(src)(x), Embedder(fused_path)(x)
        err = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
        if err > _CHECK_TOLERANCE:
            raise ExportError(f"the fused graph differs from {src}: shapes {a.shape} / {b.shape}, max abs {err:.3g}")
        quantize_dynamic(
            str(fused_path), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
            per_channel=True, reduce_range=True,
            # shape inference cannot type the com.microsoft operators' outputs
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return out
