"""Whisper's audio encoder in Keras 3, after ``whisper/model.py`` (``AudioEncoder``).

Input: normalised log-mel features (batch, T, n_mels), i.e. ``(log10(mel) + 4) / 4`` without
Whisper's clamp, which the graph applies first, per window: ``max(x, max(x) - 2)``.
Then conv1 (k3, pad 1) + GELU, conv2 (k3, stride 2, pad 1) + GELU, plus the first ceil(T/2)
rows of the positional table, and pre-LayerNorm residual blocks (self-attention, MLP).
GELU is exact, written with ``erf`` (TensorFlow's own exact GELU lowers to ``Erfc``, which
tf2onnx cannot convert).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from ser_engine.errors import ParameterError
from training.whisper.weights import EncoderWeights

__all__ = ["CLAMP_RANGE", "LN_EPSILON", "build_encoder", "gelu"]

CLAMP_RANGE = 2.0
"""Whisper floors log10-mel at its maximum minus 8, i.e. minus 2 in the normalised units."""

LN_EPSILON = 1e-5
"""LayerNorm epsilon of PyTorch (and of Whisper); Keras' default is 1e-3."""


def gelu(x: Any) -> Any:
    """Exact GELU, ``0.5 x (1 + erf(x / sqrt 2))``."""
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


class WindowClamp(keras.layers.Layer):  # type: ignore[misc]
    """``max(x, max_window(x) - CLAMP_RANGE)``, the maximum over each window's frames and bands."""

    def call(self, x: Any) -> Any:
        top = ops.max(x, axis=(1, 2), keepdims=True)
        return ops.maximum(x, top - CLAMP_RANGE)


class PositionalEmbedding(keras.layers.Layer):  # type: ignore[misc]
    """Adds the first ``T'`` rows of a fixed (n_ctx, d_model) table to (batch, T', d_model)."""

    def __init__(self, table: np.ndarray[Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init = np.asarray(table, dtype=np.float32)

    def build(self, input_shape: Any) -> None:  # noqa: ARG002 (the table has its own shape)
        self.table = self.add_weight(
            shape=self._init.shape, initializer=keras.initializers.Constant(self._init), trainable=False, name="table"
        )

    def call(self, x: Any) -> Any:
        return x + self.table[None, : ops.shape(x)[1]]


class SelfAttention(keras.layers.Layer):  # type: ignore[misc]
    """Multi-head self-attention over the whole sequence (no mask), (batch, T', d) -> (batch, T', d)."""

    def __init__(self, *, d_model: int, n_heads: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.d_model, self.n_heads = d_model, n_heads
        self.query = keras.layers.Dense(d_model, name="query")
        self.key = keras.layers.Dense(d_model, name="key")
        self.value = keras.layers.Dense(d_model, name="value")
        self.out = keras.layers.Dense(d_model, name="out")

    def build(self, input_shape: Any) -> None:
        for dense in (self.query, self.key, self.value):
            dense.build(input_shape)
        self.out.build(input_shape)

    def call(self, x: Any) -> Any:
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        h, dh = self.n_heads, self.d_model // self.n_heads

        def heads(y: Any) -> Any:  # (b, t, d) -> (b, h, t, dh)
            return ops.transpose(ops.reshape(y, (b, t, h, dh)), (0, 2, 1, 3))

        q = heads(self.query(x)) * (1.0 / math.sqrt(dh))
        k, v = heads(self.key(x)), heads(self.value(x))
        w = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), axis=-1)
        o = ops.reshape(ops.transpose(ops.matmul(w, v), (0, 2, 1, 3)), (b, t, self.d_model))
        return self.out(o)


class ResidualBlock(keras.layers.Layer):  # type: ignore[misc]
    """``x + attn(ln(x))``, then ``x + mlp(ln(x))`` with ``mlp = Dense(d_mlp), GELU, Dense(d)``."""

    def __init__(self, *, d_model: int, n_heads: int, d_mlp: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.attn_ln = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name="attn_ln")
        self.attn = SelfAttention(d_model=d_model, n_heads=n_heads, name="attn")
        self.mlp_ln = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name="mlp_ln")
        self.mlp0 = keras.layers.Dense(d_mlp, name="mlp0")
        self.mlp2 = keras.layers.Dense(d_model, name="mlp2")

    def build(self, input_shape: Any) -> None:
        for layer in (self.attn_ln, self.attn, self.mlp_ln, self.mlp0):
            layer.build(input_shape)
        self.mlp2.build((*input_shape[:-1], self.mlp0.units))

    def call(self, x: Any) -> Any:
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp2(gelu(self.mlp0(self.mlp_ln(x))))


def _dense(w: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    """PyTorch Linear (out, in) -> Keras Dense [kernel (in, out), bias]."""
    return [w.T, b]


def build_encoder(weights: EncoderWeights, *, n_blocks: int, final_norm: bool = False) -> keras.Model:
    """Whisper's encoder up to block ``n_blocks``, with its weights set.

    Parameters
    ----------
    weights : EncoderWeights
    n_blocks : int
        Blocks to build, ``1 <= n_blocks <= weights.n_blocks``.
    final_norm : bool
        Also output the final LayerNorm (``ln_post``) of the last block, which is Whisper's
        (and CTranslate2's ``encode``) output; needs ``n_blocks == weights.n_blocks``.

    Returns
    -------
    keras.Model
        Input ``features`` (batch, T, n_mels) float32, any T up to ``2 * n_ctx``; outputs a list
        of the ``n_blocks`` block outputs, each (batch, ceil(T/2), d_model) (before ``ln_post``),
        followed by the ``ln_post`` output when ``final_norm``.
    """
    if not 1 <= n_blocks <= weights.n_blocks:
        raise ParameterError(f"n_blocks must be in 1..{weights.n_blocks}, got {n_blocks}")
    if final_norm and n_blocks != weights.n_blocks:
        raise ParameterError(f"final_norm needs all {weights.n_blocks} blocks, got n_blocks={n_blocks}")
    w, d = weights.tensors, weights.d_model
    features = keras.Input(shape=(None, weights.n_mels), name="features", dtype="float32")
    x = WindowClamp(name="clamp")(features)
    conv1 = keras.layers.Conv1D(d, 3, padding="same", name="conv1")
    x = keras.layers.Activation(gelu, name="gelu1")(conv1(x))
    x = keras.layers.ZeroPadding1D(1, name="pad2")(x)  # PyTorch's padding=1 on both sides
    conv2 = keras.layers.Conv1D(d, 3, strides=2, padding="valid", name="conv2")
    x = keras.layers.Activation(gelu, name="gelu2")(conv2(x))
    x = PositionalEmbedding(w["positional_embedding"], name="positional_embedding")(x)
    conv1.set_weights([w["conv1.weight"].transpose(2, 1, 0), w["conv1.bias"]])
    conv2.set_weights([w["conv2.weight"].transpose(2, 1, 0), w["conv2.bias"]])
    outputs = []
    for i in range(n_blocks):
        block = ResidualBlock(d_model=d, n_heads=weights.n_heads, d_mlp=weights.d_mlp, name=f"block{i + 1}")
        x = block(x)
        p = f"blocks.{i}."
        block.attn_ln.set_weights([w[p + "attn_ln.weight"], w[p + "attn_ln.bias"]])
        for proj in ("query", "key", "value", "out"):
            getattr(block.attn, proj).set_weights(_dense(w[f"{p}attn.{proj}.weight"], w[f"{p}attn.{proj}.bias"]))
        block.mlp_ln.set_weights([w[p + "mlp_ln.weight"], w[p + "mlp_ln.bias"]])
        block.mlp0.set_weights(_dense(w[p + "mlp.0.weight"], w[p + "mlp.0.bias"]))
        block.mlp2.set_weights(_dense(w[p + "mlp.2.weight"], w[p + "mlp.2.bias"]))
        outputs.append(x)
    if final_norm:
        ln_post = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name="ln_post")
        outputs.append(ln_post(x))
        ln_post.set_weights([w["ln_post.weight"], w["ln_post.bias"]])
    return keras.Model(features, outputs, name=f"whisper_encoder_b{n_blocks}")
