"""Keras model builders (TensorFlow is imported lazily, inside the builders).

Every model takes normalised feature windows of shape ``(batch, time, n_features)``
with a dynamic time axis and returns logits ``(batch, n_labels)``. ``n_features`` is
the width of a frame, ``FeatureConfig.n_features``: the mel bands of the log-mel the
project's model uses, or the values of another feature set (42 for 40 MFCCs + ZCR + RMS).

* :func:`build_cnn2d` — the shipped architecture: 2D conv blocks on the
  log-mel image, BatchNorm, pooling, frequency axis averaged out, then global
  mean + max pooling over time (so the time axis stays dynamic), dropout,
  dense logits.
* :func:`build_cnn1d` — the seed projects' 1D CNN (mel bands as channels).
* :func:`build_cnn_bilstm` — the seed projects' CNN + BiLSTM.
"""

from __future__ import annotations

from typing import Any

from ser_engine.errors import ParameterError

__all__ = ["ARCHITECTURES", "build_cnn1d", "build_cnn2d", "build_cnn_bilstm", "build_model"]


def _keras() -> Any:
    import keras

    return keras


def build_cnn2d(
    *,
    n_features: int,
    n_labels: int,
    filters: tuple[int, ...] = (24, 48, 96, 128),
    dropout: float = 0.3,
    l2: float = 1e-4,
    stem_stride: tuple[int, int] = (1, 1),
    window_cmn: bool = False,
    seed: int = 0,
) -> Any:
    """2D CNN on the log-mel image.

    Parameters
    ----------
    n_features, n_labels : int
        Values per input frame (``FeatureConfig.n_features``) and output classes.
    filters : tuple of int
        Channels of each conv block (conv 3x3 - BN - ReLU - max-pool 2x2).
    dropout : float
    l2 : float
        Weight decay on conv and dense kernels.
    stem_stride : (int, int)
        Stride (time, frequency) of the first convolution; (2, 1) halves the
        cost of the whole network.
    window_cmn : bool
        Subtract each window's own mean per mel band (cepstral-style mean
        normalisation inside the graph), removing the window's long-term
        spectrum (channel, and part of the speaker's timbre).
    seed : int
        Initialiser seed.
    """
    keras = _keras()
    layers = keras.layers
    reg = keras.regularizers.l2(l2) if l2 > 0 else None
    inp = keras.Input(shape=(None, n_features), name="features")
    x = inp
    if window_cmn:
        x = layers.Lambda(lambda t: t - keras.ops.mean(t, axis=1, keepdims=True), name="window_cmn")(x)
    x = layers.Reshape((-1, n_features, 1))(x)
    for i, f in enumerate(filters):
        x = layers.Conv2D(
            f,
            3,
            strides=tuple(stem_stride) if i == 0 else (1, 1),
            padding="same",
            use_bias=False,
            kernel_regularizer=reg,
            kernel_initializer=keras.initializers.HeNormal(seed=seed + i),
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(pool_size=(2, 2), padding="same")(x)
    # (batch, time', mels', channels) -> average over frequency -> (batch, time', channels)
    x = layers.Lambda(lambda t: keras.ops.mean(t, axis=2), name="freq_mean")(x)
    avg = layers.GlobalAveragePooling1D()(x)
    mx = layers.GlobalMaxPooling1D()(x)
    x = layers.Concatenate()([avg, mx])
    x = layers.Dropout(dropout, seed=seed)(x)
    out = layers.Dense(
        n_labels, kernel_regularizer=reg, kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name="logits"
    )(x)
    return keras.Model(inp, out, name="cnn2d")


def build_cnn1d(
    *, n_features: int, n_labels: int, filters: tuple[int, ...] = (64, 128, 128), dropout: float = 0.3, seed: int = 0
) -> Any:
    """Build the seeds' 1D CNN: conv over time with the frame's values (mel bands, MFCCs...) as channels."""
    keras = _keras()
    layers = keras.layers
    inp = keras.Input(shape=(None, n_features), name="features")
    x = inp
    for i, f in enumerate(filters):
        x = layers.Conv1D(
            f, 5, padding="same", use_bias=False, kernel_initializer=keras.initializers.HeNormal(seed=seed + i)
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling1D(2, padding="same")(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    x = layers.Dropout(dropout, seed=seed)(x)
    out = layers.Dense(n_labels, kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name="logits")(x)
    return keras.Model(inp, out, name="cnn1d")


def build_cnn_bilstm(
    *,
    n_features: int,
    n_labels: int,
    filters: tuple[int, ...] = (64, 128),
    units: int = 64,
    dropout: float = 0.3,
    seed: int = 0,
) -> Any:
    """Build the seeds' CNN + BiLSTM: 1D conv blocks, a bidirectional LSTM, mean+max pooling."""
    keras = _keras()
    layers = keras.layers
    inp = keras.Input(shape=(None, n_features), name="features")
    x = inp
    for i, f in enumerate(filters):
        x = layers.Conv1D(
            f, 5, padding="same", use_bias=False, kernel_initializer=keras.initializers.HeNormal(seed=seed + i)
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling1D(2, padding="same")(x)
    x = layers.Bidirectional(
        layers.LSTM(
            units, return_sequences=True, seed=seed, kernel_initializer=keras.initializers.GlorotUniform(seed=seed)
        )
    )(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    x = layers.Dropout(dropout, seed=seed)(x)
    out = layers.Dense(n_labels, kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name="logits")(x)
    return keras.Model(inp, out, name="cnn_bilstm")


ARCHITECTURES = {"cnn2d": build_cnn2d, "cnn1d": build_cnn1d, "cnn_bilstm": build_cnn_bilstm}


def build_model(arch: str, *, n_features: int, **kwargs: Any) -> Any:
    """Build ``arch`` (a key of ``ARCHITECTURES``) with its keyword parameters.

    Parameters
    ----------
    arch : str
    n_features : int
        Values per input frame (``FeatureConfig.n_features``).
    **kwargs
        The builder's other parameters.

    Returns
    -------
    keras.Model
    """
    if arch not in ARCHITECTURES:
        raise ParameterError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](n_features=n_features, **kwargs)
