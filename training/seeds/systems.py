"""The seed projects' models, rebuilt to be trained under our protocol.

The five projects the repository started from describe a decision tree and a
k-NN (k = 4) on clip-pooled features, a 1D CNN of about 7 M parameters (five
convolution blocks over a flattened framewise feature vector), and seed 002's
CNN + BiLSTM on a (174, 40) MFCC matrix with a random hyper-parameter search.
Their code is not in this repository; the shapes below follow their
descriptions (layer sizes, input shapes, parameter counts) and are documented
where a detail had to be chosen.

What changes from the seeds is the protocol, not the models: items come from
:mod:`training.seeds.leak` (random, augment-before-split or speaker-independent
parts), and every network is trained with early stopping on the validation
part (Keras ``EarlyStopping`` on validation UAR, best weights restored; at
most ``max_epochs``), not for a fixed number of epochs. :func:`fit_seed` fits
one model and returns its predictor; :mod:`training.seeds.run` plans and runs
``ser-train seeds``.

The features of the real run are the seeds' sets in ``ser_engine``'s one
featurizer, computed through the engine's audio path
(:mod:`training.seeds.data`). The functions here take arrays in a model's
*view* of a clip's frames (:func:`view`): ``pooled`` (mean over frames) for
the tree and k-NN, ``flat`` (padded or cut to a fixed number of frames, then
flattened feature by feature) for the 1D CNN, ``sequence`` (padded or cut to
174 frames) for the CNN + BiLSTM. :func:`standin_mfcc` (librosa MFCC) and
:func:`run_seed` remain for the tests that compare with a librosa stand-in.

TensorFlow and scikit-learn are imported inside the functions that need them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError
from training.seeds.leak import Item, item_rng

__all__ = [
    "BILSTM_DEFAULT",
    "CNN1D_SEED_INPUT_DIM",
    "FEATURE_DIMS",
    "FEATURE_SETS",
    "SEARCH_SPACE",
    "SEED_MODELS",
    "SEED_RUNS",
    "TRAINING_CORPORA",
    "Featurize",
    "Predictor",
    "SeedRun",
    "augment_item",
    "build_seed_cnn1d",
    "build_seed_cnn_bilstm",
    "check_search_config",
    "draw_search_config",
    "featurize_items",
    "fit_keras",
    "fit_scaler",
    "fit_seed",
    "make_classifier",
    "model_macs",
    "random_search",
    "run_seed",
    "search_configs",
    "standardise",
    "standin_mfcc",
    "train_seed_model",
    "view",
]

Featurize = Callable[[npt.NDArray[np.float32], int], npt.NDArray[np.floating[Any]]]
"""``(samples (n,), sample_rate) -> framewise features (n_frames, n_features)``."""

SEED_MODELS: tuple[str, ...] = ("decision_tree", "knn", "cnn1d", "cnn_bilstm")

FEATURE_SETS: dict[str, str] = {
    "mfcc": "40 MFCC per frame (seed 002: a (174, 40) matrix)",
    "mfcc_zcr_rms": "MFCC + zero-crossing rate + RMS energy per frame (seeds 000, 003, 004)",
    "mfcc_chroma_mel": "MFCC + chroma + mel spectrogram per frame (seed 001)",
}
"""The seeds' feature sets, by the name their ``ser_engine`` FeatureConfig is to get."""
FEATURE_DIMS: dict[str, int] = {"mfcc": 40, "mfcc_zcr_rms": 22, "mfcc_chroma_mel": 180}
"""Features per frame as the seeds computed them: 40 MFCC; 20 MFCC + ZCR + RMS; 40 MFCC + 12 chroma + 128 mel."""

CNN1D_SEED_INPUT_DIM = 2376
"""The seeds' 1D CNN input: ZCR (108 frames) + RMS (108) + 20 MFCC x 108 frames of 2.5 s of audio."""
BILSTM_FRAMES, BILSTM_MFCC = 174, 40
TRAINING_CORPORA: tuple[str, ...] = ("ravdess", "crema-d", "tess", "savee", "ased", "nemo", "turev", "indowave")
"""The corpora our model trains on (every corpus not held out in ``training.splits.HELD_OUT``)."""


@dataclass(frozen=True)
class SeedRun:
    """One seed model on one feature set, with the view of the framewise features it takes."""

    model: str
    feature_set: str
    view: str
    n_frames: int | None = None


SEED_RUNS: tuple[SeedRun, ...] = (
    SeedRun("decision_tree", "mfcc_zcr_rms", "pooled"),
    SeedRun("decision_tree", "mfcc_chroma_mel", "pooled"),
    SeedRun("knn", "mfcc_zcr_rms", "pooled"),
    SeedRun("knn", "mfcc_chroma_mel", "pooled"),
    SeedRun("cnn1d", "mfcc_zcr_rms", "flat", 108),
    SeedRun("cnn_bilstm", "mfcc", "sequence", BILSTM_FRAMES),
)
"""Each seed model on the features its seed used (trees and k-NN on both pooled sets)."""


# Features -----------------------------------------------------------------
def standin_mfcc(
    y: npt.NDArray[np.float32], sample_rate: int, *, n_mfcc: int = 40, hop_length: int = 512
) -> npt.NDArray[np.float32]:
    """STAND-IN features for tests: librosa MFCC, shape ``(n_frames, n_mfcc)``.

    Not the seeds' feature sets (those come from ``ser_engine``'s featurizer);
    only something real to train on until they exist.
    """
    import librosa

    m = librosa.feature.mfcc(y=np.asarray(y, dtype=np.float32), sr=sample_rate, n_mfcc=n_mfcc, hop_length=hop_length)
    return np.ascontiguousarray(m.T, dtype=np.float32)


def augment_item(item: Item, y: npt.NDArray[np.float32], *, sample_rate: int, seed: int) -> npt.NDArray[np.float32]:
    """Return the audio of ``item``: ``y`` itself for a recording, else its seeds'-style augmented copy.

    Copy ``k`` applies the seeds' augmentations in turn: 1 additive noise
    (10-30 dB SNR), 2 pitch shift (+-2 semitones), 3 time stretch (0.8-1.2),
    4 time shift (+-0.5 s), then again from 1. The generator is
    :func:`training.seeds.leak.item_rng`, so a copy is the same in every protocol.

    Parameters
    ----------
    item : Item
    y : ndarray, shape (n,), float32
        The decoded recording.
    sample_rate : int
    seed : int

    Returns
    -------
    ndarray, shape (m,), float32
    """
    if item.copy == 0:
        return y
    from training.augment import AddNoise, PitchShift, TimeShift, TimeStretch

    transforms = (
        AddNoise(snr_db=(10.0, 30.0)),
        PitchShift(semitones=(-2.0, 2.0)),
        TimeStretch(rate_range=(0.8, 1.2)),
        TimeShift(max_shift_s=0.5),
    )
    t = transforms[(item.copy - 1) % len(transforms)]
    return np.asarray(t(y, sample_rate=sample_rate, rng=item_rng(item, seed=seed)), dtype=np.float32)


def featurize_items(
    *,
    items: Sequence[Item],
    featurize: Featurize,
    sample_rate: int = 16000,
    seed: int = 0,
    load: Callable[[str, int], npt.NDArray[np.float32]] | None = None,
) -> list[npt.NDArray[np.float32]]:
    """Framewise features of every item (recordings decoded once, copies augmented).

    Parameters
    ----------
    items : sequence of Item
    featurize : callable
        ``(samples (n,), sample_rate) -> (n_frames, n_features)``.
    sample_rate : int
        Decoding rate.
    seed : int
        Augmentation seed (:func:`augment_item`).
    load : callable, optional
        ``(path, sample_rate) -> samples``; default :func:`training.features.load_clip_audio`.

    Returns
    -------
    list of ndarray, each (n_frames_i, n_features), float32, in the order of ``items``
    """
    if load is None:
        from training.features import load_clip_audio

        def load(path: str, sr: int) -> npt.NDArray[np.float32]:
            return load_clip_audio(path, sample_rate=sr)

    cache: dict[str, npt.NDArray[np.float32]] = {}
    out = []
    for it in items:
        if it.clip.path not in cache:
            cache = {it.clip.path: load(it.clip.path, sample_rate)}  # items of one clip are adjacent when sorted
        y = augment_item(it, cache[it.clip.path], sample_rate=sample_rate, seed=seed)
        f = np.asarray(featurize(y, sample_rate), dtype=np.float32)
        if f.ndim != 2:
            raise ParameterError(f"{it.id}: features must be (n_frames, n_features), got shape {f.shape}")
        out.append(f)
    return out


def view(frames: Sequence[npt.ArrayLike], *, kind: str, n_frames: int | None = None) -> npt.NDArray[np.float32]:
    """Arrange framewise features as a seed model takes them.

    Parameters
    ----------
    frames : sequence of array_like, each (n_frames_i, n_features)
    kind : {"pooled", "flat", "sequence"}
        ``pooled``: mean over frames, ``(n_items, n_features)``; ``sequence``:
        zero-padded at the end or cut to ``n_frames``, ``(n_items, n_frames,
        n_features)``; ``flat``: that, flattened feature by feature (each
        feature's series in turn, as the seeds' ``hstack``), ``(n_items,
        n_features * n_frames)``.
    n_frames : int, optional
        Required for ``flat`` and ``sequence``.

    Returns
    -------
    ndarray, float32
    """
    arrays = [np.asarray(f, dtype=np.float32) for f in frames]
    if kind == "pooled":
        return np.stack([a.mean(axis=0) for a in arrays]) if arrays else np.zeros((0, 0), np.float32)
    if kind not in ("flat", "sequence"):
        raise ParameterError(f"unknown view {kind!r}; known: pooled, flat, sequence")
    if not n_frames or n_frames < 1:
        raise ParameterError(f"view {kind!r} needs n_frames >= 1")
    n_feat = arrays[0].shape[1] if arrays else 0
    seq = np.zeros((len(arrays), n_frames, n_feat), dtype=np.float32)
    for i, a in enumerate(arrays):
        m = min(n_frames, a.shape[0])
        seq[i, :m] = a[:m]
    if kind == "sequence":
        return seq
    return np.ascontiguousarray(seq.transpose(0, 2, 1).reshape(len(arrays), n_feat * n_frames))


def standardise(x_train: npt.ArrayLike, *others: npt.ArrayLike) -> tuple[npt.NDArray[np.float32], ...]:
    """Zero mean, unit variance per feature, with the training items' statistics (the seeds' StandardScaler).

    The statistics are taken over every axis but the last (items, and frames
    for a sequence). Constant features are left centred (scale 1).

    Returns
    -------
    tuple of ndarray, float32: ``x_train`` then each of ``others``, scaled
    """
    xt = np.asarray(x_train, dtype=np.float32)
    axes = tuple(range(xt.ndim - 1))
    mu = xt.mean(axis=axes, dtype=np.float64)
    sd = xt.std(axis=axes, dtype=np.float64)
    sd = np.where(sd > 1e-8, sd, 1.0)
    return tuple(((np.asarray(x, dtype=np.float32) - mu) / sd).astype(np.float32) for x in (xt, *others))


# Models ---------------------------------------------------------------------
def make_classifier(name: str, *, seed: int = 0) -> Any:
    """Build an unfitted seed classifier: standardisation + decision tree or k-NN (k = 4), else the seeds' defaults."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if name == "decision_tree":
        clf: Any = DecisionTreeClassifier(random_state=seed)
    elif name == "knn":
        clf = KNeighborsClassifier(n_neighbors=4)
    else:
        raise ParameterError(f"unknown seed classifier {name!r}; known: decision_tree, knn")
    return make_pipeline(StandardScaler(), clf)


def build_seed_cnn1d(*, input_dim: int = CNN1D_SEED_INPUT_DIM, n_labels: int, seed: int = 0) -> Any:
    """Build the seeds' 1D CNN: five convolution blocks over a flattened feature vector, about 7 M parameters.

    Blocks (filters, kernel): (512, 5), (512, 5), (256, 5), (256, 3), (128, 3),
    each conv (ReLU, same padding) - BatchNorm - max-pool (stride 2), dropout
    0.2 after blocks 2, 4 and 5; then flatten, dense 512 (ReLU) - BatchNorm,
    dense logits. With the seeds' ``input_dim`` 2376 and 7 labels: 7,193,223
    parameters (the flatten-to-dense layer holds 4.9 M of them).

    Parameters
    ----------
    input_dim : int
        Length of the flattened feature vector.
    n_labels : int
    seed : int

    Returns
    -------
    keras.Model
        Input ``(batch, input_dim)``, output logits ``(batch, n_labels)``.
    """
    import keras

    layers = keras.layers
    inp = keras.Input(shape=(input_dim,), name="features")
    x = layers.Reshape((input_dim, 1))(inp)
    blocks = ((512, 5, 5, False), (512, 5, 5, True), (256, 5, 5, False), (256, 3, 5, True), (128, 3, 3, True))
    for i, (filters, kernel, pool, drop) in enumerate(blocks):
        x = layers.Conv1D(
            filters, kernel, padding="same", activation="relu", kernel_initializer=keras.initializers.HeNormal(seed + i)
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling1D(pool_size=pool, strides=2, padding="same")(x)
        if drop:
            x = layers.Dropout(0.2, seed=seed + i)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu", kernel_initializer=keras.initializers.HeNormal(seed + 10))(x)
    x = layers.BatchNormalization()(x)
    out = layers.Dense(n_labels, kernel_initializer=keras.initializers.GlorotUniform(seed + 11), name="logits")(x)
    return keras.Model(inp, out, name="seed_cnn1d")


BILSTM_DEFAULT: dict[str, Any] = {
    "n_conv": 2,
    "filters": 64,
    "kernel_size": 5,
    "lstm_units": 64,
    "dense_units": 64,
    "dropout": 0.3,
    "learning_rate": 1e-3,
    "batch_size": 32,
}
"""Seed 002's CNN + BiLSTM configuration before its search (a point of :data:`SEARCH_SPACE`)."""

SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "n_conv": (1, 2, 3),
    "filters": (32, 64, 128),
    "kernel_size": (3, 5, 7),
    "lstm_units": (32, 64, 128),
    "dense_units": (32, 64, 128),
    "dropout": (0.1, 0.5),
    "learning_rate": (1e-4, 3e-3),
    "batch_size": (16, 32, 64),
}
"""Seed 002's random search: choices, except ``dropout`` (uniform in the interval, 2 decimals) and
``learning_rate`` (log-uniform in the interval, 2 significant digits)."""
_CONTINUOUS = ("dropout", "learning_rate")


def draw_search_config(*, rng: np.random.Generator) -> dict[str, Any]:
    """One configuration of seed 002's CNN + BiLSTM drawn from :data:`SEARCH_SPACE`.

    Parameters
    ----------
    rng : numpy.random.Generator

    Returns
    -------
    dict
        The keys of :data:`SEARCH_SPACE` (plain Python ints and floats).
    """
    cfg: dict[str, Any] = {}
    for key, choices in SEARCH_SPACE.items():
        if key == "dropout":
            cfg[key] = round(float(rng.uniform(*choices)), 2)
        elif key == "learning_rate":
            lo, hi = (math.log10(v) for v in choices)
            cfg[key] = float(f"{10 ** rng.uniform(lo, hi):.2g}")
        else:
            cfg[key] = int(choices[int(rng.integers(len(choices)))])
    return cfg


def search_configs(*, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``n`` distinct configurations drawn from :data:`SEARCH_SPACE` (the first one is :data:`BILSTM_DEFAULT`)."""
    out = [dict(BILSTM_DEFAULT)][:n]
    while len(out) < n:
        cfg = draw_search_config(rng=rng)
        if cfg not in out:
            out.append(cfg)
    return out


def check_search_config(cfg: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` unless ``cfg`` is a point of :data:`SEARCH_SPACE`."""
    if set(cfg) != set(SEARCH_SPACE):
        raise ParameterError(f"configuration keys {sorted(cfg)} are not {sorted(SEARCH_SPACE)}")
    for key, space in SEARCH_SPACE.items():
        v = cfg[key]
        ok = space[0] <= v <= space[1] if key in _CONTINUOUS else v in space
        if not ok:
            raise ParameterError(f"{key}={v!r} is outside the search space {space}")


def build_seed_cnn_bilstm(
    *,
    n_labels: int,
    n_frames: int = BILSTM_FRAMES,
    n_features: int = BILSTM_MFCC,
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Any:
    """Seed 002's CNN + BiLSTM on a (174, 40) MFCC matrix.

    ``n_conv`` blocks of conv 1D over time (MFCCs as channels; ``filters``
    channels, doubled from the second block on; ReLU, same padding) -
    BatchNorm - max-pool 2 - dropout, a bidirectional LSTM (last
    state of each direction), dropout, dense (ReLU), dense logits.

    Parameters
    ----------
    n_labels : int
    n_frames, n_features : int
        Input shape (seed 002: 174 frames of 40 MFCC).
    config : mapping, optional
        A point of :data:`SEARCH_SPACE` (default :data:`BILSTM_DEFAULT`).
    seed : int

    Returns
    -------
    keras.Model
        Input ``(batch, n_frames, n_features)``, output logits ``(batch, n_labels)``.
    """
    import keras

    cfg = dict(BILSTM_DEFAULT if config is None else config)
    check_search_config(cfg)
    layers = keras.layers
    inp = keras.Input(shape=(n_frames, n_features), name="features")
    x = inp
    for i in range(cfg["n_conv"]):
        x = layers.Conv1D(
            cfg["filters"] * 2**i if i < 2 else cfg["filters"] * 2,
            cfg["kernel_size"],
            padding="same",
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed + i),
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling1D(2, padding="same")(x)
        x = layers.Dropout(cfg["dropout"], seed=seed + i)(x)
    x = layers.Bidirectional(
        layers.LSTM(cfg["lstm_units"], seed=seed, kernel_initializer=keras.initializers.GlorotUniform(seed + 5))
    )(x)
    x = layers.Dropout(cfg["dropout"], seed=seed + 6)(x)
    x = layers.Dense(cfg["dense_units"], activation="relu", kernel_initializer=keras.initializers.HeNormal(seed + 7))(x)
    out = layers.Dense(n_labels, kernel_initializer=keras.initializers.GlorotUniform(seed + 8), name="logits")(x)
    return keras.Model(inp, out, name="seed_cnn_bilstm")


def model_macs(model: Any) -> int:
    """Multiply-accumulates of one forward pass of one item (Conv1D, Dense and LSTM layers; others ignored)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv1D":
            out_len, out_ch = layer.output.shape[1], layer.output.shape[2]
            in_ch = layer.input.shape[-1]
            total += int(out_len) * int(layer.kernel_size[0]) * int(in_ch) * int(out_ch)
        elif kind == "Dense":
            total += int(layer.input.shape[-1]) * int(layer.units)
        elif kind == "Bidirectional":
            steps, n_in = int(layer.input.shape[1]), int(layer.input.shape[2])
            units = int(layer.forward_layer.units)
            total += 2 * steps * 4 * (n_in + units) * units
    return total


# Training -------------------------------------------------------------------
def _uar(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, n_labels: int) -> float:
    from training.evaluate import classification_metrics

    return float(classification_metrics(y_true=y_true, y_pred=y_pred, labels=[str(i) for i in range(n_labels)])["uar"])


def fit_keras(
    *,
    model: Any,
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    x_val: npt.NDArray[np.float32],
    y_val: npt.NDArray[np.int64],
    n_labels: int,
    max_epochs: int = 100,
    patience: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> dict[str, Any]:
    """Train to convergence: Adam, cross-entropy, early stopping on validation UAR, best weights restored.

    Parameters
    ----------
    model : keras.Model
        Built, not compiled; trained in place.
    x_train, x_val : ndarray, shape (n_items, ...) matching the model input, float32
    y_train, y_val : ndarray, shape (n_items,), label indices
    n_labels : int
    max_epochs, patience : int
        Training stops after ``patience`` epochs without a better validation UAR, or at ``max_epochs``.
    batch_size : int
    learning_rate : float
    seed : int
        Seeds Keras (initialisation, dropout, shuffling).

    Returns
    -------
    dict
        ``val_uar`` (per epoch), ``loss`` (per epoch), ``epochs_run``, ``best_epoch`` (1-based),
        ``best_val_uar``, ``seconds``.
    """
    import keras

    keras.utils.set_random_seed(seed)
    history: dict[str, Any] = {"val_uar": [], "loss": []}

    class _ValUAR(keras.callbacks.Callback):  # type: ignore[misc]
        """Writes ``val_uar`` into the epoch's logs, read by EarlyStopping after it."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            del epoch  # every epoch is scored the same way
            pred = np.asarray(self.model.predict(x_val, batch_size=256, verbose=0)).argmax(axis=1)
            uar = _uar(y_val, pred, n_labels)
            if logs is not None:
                logs["val_uar"] = uar
                history["loss"].append(float(logs.get("loss", math.nan)))
            history["val_uar"].append(uar)

    stop = keras.callbacks.EarlyStopping(monitor="val_uar", mode="max", patience=patience, restore_best_weights=True)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    t0 = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=max_epochs,
        shuffle=True,
        callbacks=[_ValUAR(), stop],
        verbose=0,
    )
    best = int(np.argmax(history["val_uar"]))
    history.update(
        epochs_run=len(history["val_uar"]),
        best_epoch=best + 1,
        best_val_uar=history["val_uar"][best],
        seconds=time.perf_counter() - t0,
    )
    return history


def fit_scaler(x_train: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-feature mean and scale of the training items over every axis but the last (constant features: 1)."""
    xt = np.asarray(x_train, dtype=np.float32)
    axes = tuple(range(xt.ndim - 1))
    mu = xt.mean(axis=axes, dtype=np.float64)
    sd = xt.std(axis=axes, dtype=np.float64)
    return mu, np.where(sd > 1e-8, sd, 1.0)


Predictor = Callable[[npt.ArrayLike], npt.NDArray[np.int64]]
"""``(items in the model's view) -> predicted label indices``."""


def fit_seed(
    *,
    model: str,
    x_train: npt.ArrayLike,
    y_train: npt.ArrayLike,
    x_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    n_labels: int,
    config: Mapping[str, Any] | None = None,
    max_epochs: int = 100,
    patience: int = 10,
    seed: int = 0,
) -> tuple[Predictor, dict[str, Any]]:
    """Fit one seed model; return its predictor and what the fit did.

    Parameters
    ----------
    model : str
        One of :data:`SEED_MODELS`.
    x_train, x_val : array_like
        Items in the model's view (:func:`view`): ``(n, n_features)`` for the tree
        and k-NN, ``(n, input_dim)`` for the 1D CNN, ``(n, n_frames, n_features)``
        for the CNN + BiLSTM. The networks standardise with the training
        statistics (the predictor applies them too); the tree and k-NN through
        their scikit-learn pipeline.
    y_train, y_val : array_like, shape (n,)
        Label indices.
    n_labels : int
    config : mapping, optional
        CNN + BiLSTM configuration (:data:`SEARCH_SPACE`); ignored by the others.
    max_epochs, patience : int
        Early stopping of the networks on validation UAR (:func:`fit_keras`).
    seed : int

    Returns
    -------
    predict : callable
        ``x -> label indices``.
    info : dict
        ``model``, ``val_uar``, ``parameters`` (networks: weights; tree: nodes; k-NN: None),
        ``epochs_run``, ``best_epoch``, ``max_epochs``, ``stopped`` ("early stopping" or
        "epoch limit"; None for the tree and k-NN), ``seconds`` (the fit), ``history`` and
        ``config`` (networks).
    """
    yt, yv = np.asarray(y_train, dtype=np.int64), np.asarray(y_val, dtype=np.int64)
    t0 = time.perf_counter()
    info: dict[str, Any] = {"model": model}
    if model in ("decision_tree", "knn"):
        clf = make_classifier(model, seed=seed)
        clf.fit(np.asarray(x_train, dtype=np.float32), yt)

        def predict(x: npt.ArrayLike) -> npt.NDArray[np.int64]:
            xa = np.asarray(x, dtype=np.float32)
            return np.asarray(clf.predict(xa), dtype=np.int64) if len(xa) else np.zeros(0, np.int64)

        info.update(
            parameters=int(clf[-1].tree_.node_count) if model == "decision_tree" else None,
            epochs_run=None,
            best_epoch=None,
            max_epochs=None,
            stopped=None,
            seconds=time.perf_counter() - t0,
        )
        info["val_uar"] = _uar(yv, predict(x_val), n_labels)
        return predict, info
    if model not in ("cnn1d", "cnn_bilstm"):
        raise ParameterError(f"unknown seed model {model!r}; known: {', '.join(SEED_MODELS)}")
    mu, sd = fit_scaler(x_train)

    def scale(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        return ((np.asarray(x, dtype=np.float32) - mu) / sd).astype(np.float32)

    xt = scale(x_train)
    if model == "cnn1d":
        net = build_seed_cnn1d(input_dim=xt.shape[1], n_labels=n_labels, seed=seed)
        batch, lr = 64, 1e-3
    else:
        cfg = dict(BILSTM_DEFAULT if config is None else config)
        net = build_seed_cnn_bilstm(
            n_labels=n_labels, n_frames=xt.shape[1], n_features=xt.shape[2], config=cfg, seed=seed
        )
        batch, lr = cfg["batch_size"], cfg["learning_rate"]
        info["config"] = cfg
    hist = fit_keras(
        model=net,
        x_train=xt,
        y_train=yt,
        x_val=scale(x_val),
        y_val=yv,
        n_labels=n_labels,
        max_epochs=max_epochs,
        patience=patience,
        batch_size=batch,
        learning_rate=lr,
        seed=seed,
    )

    def predict_net(x: npt.ArrayLike) -> npt.NDArray[np.int64]:
        xa = scale(x)
        if not len(xa):
            return np.zeros(0, np.int64)
        logits = np.asarray(net.predict(xa, batch_size=256, verbose=0), dtype=np.float32)
        return np.asarray(logits.argmax(axis=1), dtype=np.int64)

    info.update(
        val_uar=hist["best_val_uar"],
        parameters=int(net.count_params()),
        epochs_run=hist["epochs_run"],
        best_epoch=hist["best_epoch"],
        max_epochs=max_epochs,
        stopped="epoch limit" if hist["epochs_run"] >= max_epochs else "early stopping",
        history=hist,
        seconds=time.perf_counter() - t0,
    )
    return predict_net, info


def train_seed_model(
    *,
    model: str,
    x: Mapping[str, npt.ArrayLike],
    y: Mapping[str, npt.ArrayLike],
    n_labels: int,
    config: Mapping[str, Any] | None = None,
    max_epochs: int = 100,
    patience: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit one seed model on ``x["train"]`` (:func:`fit_seed`) and score it (UAR) on ``val`` and ``test``.

    Returns
    -------
    dict
        :func:`fit_seed`'s info plus ``test_uar``; ``seconds`` covers the fit and the test predictions.
    """
    t0 = time.perf_counter()
    predict, info = fit_seed(
        model=model,
        x_train=x["train"],
        y_train=y["train"],
        x_val=x["val"],
        y_val=y["val"],
        n_labels=n_labels,
        config=config,
        max_epochs=max_epochs,
        patience=patience,
        seed=seed,
    )
    info["test_uar"] = _uar(np.asarray(y["test"], dtype=np.int64), predict(x["test"]), n_labels)
    info["seconds"] = time.perf_counter() - t0
    return info


def random_search(
    *,
    x: Mapping[str, npt.ArrayLike],
    y: Mapping[str, npt.ArrayLike],
    n_labels: int,
    n_trials: int,
    rng: np.random.Generator,
    max_epochs: int = 100,
    patience: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Seed 002's random search of the CNN + BiLSTM, chosen on validation UAR (never on test).

    Returns
    -------
    dict
        ``trials`` (each :func:`train_seed_model`'s result without history), ``best`` (index into trials).
    """
    trials = []
    for cfg in search_configs(n=n_trials, rng=rng):
        r = train_seed_model(
            model="cnn_bilstm",
            x=x,
            y=y,
            n_labels=n_labels,
            config=cfg,
            max_epochs=max_epochs,
            patience=patience,
            seed=seed,
        )
        r.pop("history", None)
        trials.append(r)
    best = max(range(len(trials)), key=lambda i: trials[i]["val_uar"])
    return {"trials": trials, "best": best}


def run_seed(
    *,
    run: SeedRun,
    parts: Mapping[str, Sequence[Item]],
    featurize: Featurize,
    labels: Sequence[str],
    fine: bool = False,
    max_epochs: int = 100,
    patience: int = 10,
    sample_rate: int = 16000,
    seed: int = 0,
) -> dict[str, Any]:
    """Featurize the parts of a protocol (:mod:`training.seeds.leak`) and train and score one seed model.

    Parameters
    ----------
    run : SeedRun
    parts : mapping
        ``train`` / ``val`` / ``test`` lists of Item.
    featurize : callable
        ``(samples, sample_rate) -> (n_frames, n_features)``.
    labels : sequence of str
        Label vocabulary (the harmonised labels, or RAVDESS's 8 with ``fine``).
    fine : bool
        Score the clips' corpus-native labels.
    max_epochs, patience, sample_rate, seed : int

    Returns
    -------
    dict
        :func:`train_seed_model`'s result plus ``run``, ``items`` per part and the features' shape.
    """
    index = {lab: i for i, lab in enumerate(labels)}
    x: dict[str, npt.NDArray[np.float32]] = {}
    y: dict[str, npt.NDArray[np.int64]] = {}
    for p in ("train", "val", "test"):
        frames = featurize_items(items=parts[p], featurize=featurize, sample_rate=sample_rate, seed=seed)
        x[p] = view(frames, kind=run.view, n_frames=run.n_frames)
        y[p] = np.array([index[it.clip.fine_label if fine else it.clip.label] for it in parts[p]], dtype=np.int64)
    result = train_seed_model(
        model=run.model, x=x, y=y, n_labels=len(labels), max_epochs=max_epochs, patience=patience, seed=seed
    )
    result.update(run=asdict(run), items={p: len(parts[p]) for p in ("train", "val", "test")})
    result["input_shape"] = list(x["train"].shape[1:])
    return result
