"""Fitting Keras models on cached feature windows, and predicting with them.

The windows are log-mel (float16) or another feature set of the FeatureConfig
(float32, ``n_features`` values per frame). The training batches are built in
NumPy from the cache: normalised with the training speakers' statistics, with
SpecAugment-style time and frequency masks drawn from an explicit generator. Model selection keeps the
weights of the epoch with the best clip-level UAR on the validation speakers.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.dsp.features import inverse_std, normalize_frames
from ser_engine.errors import ParameterError
from training.evaluate import classification_metrics, clip_probabilities
from training.features import WindowSet

__all__ = [
    "TrainConfig",
    "balanced_draw",
    "configure_tensorflow",
    "evaluate_clips",
    "fit_model",
    "freq_warp",
    "labels_of",
    "mel_centres_hz",
    "predict_logits",
]


@dataclass
class TrainConfig:
    """Hyper-parameters of one Keras training run."""

    arch: str = "cnn2d"
    arch_params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 2e-3
    label_smoothing: float = 0.05
    time_masks: int = 2
    time_mask_max: int = 25
    freq_masks: int = 2
    freq_mask_max: int = 8
    windows_per_epoch: int | None = None
    class_weighting: bool = True
    patience: int = 4
    mixup_alpha: float = 0.0
    ema_decay: float = 0.0
    freq_warp: float = 0.0
    balance: str = "none"
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict."""
        return asdict(self)


def configure_tensorflow(*, intra: int = 2, inter: int = 1) -> None:
    """Quiet TensorFlow and pin its thread pools (call before building models)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        pass  # already initialised: keep the existing pools


def labels_of(clips: Sequence[Any], *, labels: Sequence[str], fine: bool = False) -> npt.NDArray[np.int64]:
    """Class indices of clips (``fine`` uses the 8-class RAVDESS label)."""
    index = {lab: i for i, lab in enumerate(labels)}
    return np.array([index[c.fine_label if fine else c.label] for c in clips], dtype=np.int64)


def _spec_augment(x: npt.NDArray[np.float32], cfg: TrainConfig, rng: np.random.Generator) -> None:
    """In place: zero (= band mean after normalisation) random time and frequency stripes."""
    b, t, m = x.shape
    for i in range(b):
        for _ in range(cfg.time_masks):
            w = int(rng.integers(0, cfg.time_mask_max + 1))
            if w:
                s = int(rng.integers(0, max(1, t - w)))
                x[i, s : s + w, :] = 0.0
        for _ in range(cfg.freq_masks):
            w = int(rng.integers(0, cfg.freq_mask_max + 1))
            if w:
                s = int(rng.integers(0, max(1, m - w)))
                x[i, :, s : s + w] = 0.0


def mel_centres_hz(config: Any) -> npt.NDArray[np.float64]:
    """Centre frequencies (Hz) of the mel bands of a FeatureConfig, shape ``(n_mels,)``."""
    from ser_engine.dsp.features import hz_to_mel, mel_to_hz

    edges = np.linspace(hz_to_mel(config.fmin), hz_to_mel(config.fmax), config.n_mels + 2)
    return np.asarray(mel_to_hz(edges[1:-1]), dtype=np.float64)


def freq_warp(
    x: npt.NDArray[np.float32], *, centres_hz: npt.NDArray[np.float64], max_warp: float, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """Vocal-tract-length-style warping of log-mel windows.

    Each window's spectrum is rescaled in frequency by its own factor
    ``alpha ~ U(1 - max_warp, 1 + max_warp)``: output band ``i`` takes the
    (linearly interpolated) value found at ``centres_hz[i] / alpha``, edges
    replicated.

    Parameters
    ----------
    x : ndarray, shape (batch, n_frames, n_mels)
    centres_hz : ndarray, shape (n_mels,)
    max_warp : float
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (batch, n_frames, n_mels)
    """
    if max_warp <= 0:
        return x
    n_mels = x.shape[-1]
    grid = np.arange(n_mels, dtype=np.float64)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        alpha = rng.uniform(1.0 - max_warp, 1.0 + max_warp)
        src = np.interp(centres_hz / alpha, centres_hz, grid)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_mels - 1)
        f = (src - lo).astype(np.float32)
        out[i] = x[i][:, lo] * (1.0 - f) + x[i][:, hi] * f
    return out


def balanced_draw(labels: npt.ArrayLike, corpora: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Drawing probabilities of training windows, balanced over corpora and labels.

    A corpus gets a share proportional to the square root of its number of
    windows; inside a corpus each of its labels gets an equal share; inside a
    (corpus, label) cell windows are equally likely.

    Parameters
    ----------
    labels : array_like, shape (n_windows,)
    corpora : array_like, shape (n_windows,)

    Returns
    -------
    ndarray, shape (n_windows,), float64, summing to 1
    """
    y = np.asarray(labels)
    c = np.asarray(corpora)
    p = np.zeros(y.size, dtype=np.float64)
    names = np.unique(c)
    share = np.array([np.sqrt((c == n).sum()) for n in names], dtype=np.float64)
    share /= share.sum()
    for n, sh in zip(names, share, strict=True):
        in_c = c == n
        labs = np.unique(y[in_c])
        for lab in labs:
            cell = in_c & (y == lab)
            p[cell] = sh / labs.size / cell.sum()
    return np.asarray(p / p.sum(), dtype=np.float64)


def predict_logits(
    model: Any, windows: WindowSet, *, mean: npt.ArrayLike, std: npt.ArrayLike, batch_size: int = 256
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Logits of the usable (speech) windows and their clip indices.

    Returns
    -------
    logits : ndarray, shape (n_usable, n_labels)
    clip_index : ndarray, shape (n_usable,)
    """
    use = np.flatnonzero(windows.usable())
    inv = inverse_std(std)
    out = []
    for i in range(0, use.size, batch_size):
        xb = normalize_frames(windows.features[use[i : i + batch_size]], mean=mean, inv_std=inv)
        out.append(np.asarray(model(xb, training=False)))
    logits = np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
    return logits.astype(np.float32), windows.clip_index[use]


def evaluate_clips(
    *,
    logits: npt.ArrayLike,
    clip_index: npt.ArrayLike,
    y_true: npt.ArrayLike,
    labels: Sequence[str],
    temperature: float = 1.0,
) -> tuple[dict[str, Any], npt.NDArray[np.float64]]:
    """Clip-level metrics from window logits (averaged window probabilities)."""
    y = np.asarray(y_true)
    probs = clip_probabilities(window_logits=logits, clip_index=clip_index, n_clips=y.size, temperature=temperature)
    ok = ~np.isnan(probs[:, 0])
    metrics = classification_metrics(y_true=y[ok], y_pred=probs[ok].argmax(axis=1), labels=labels, probs=probs[ok])
    return metrics, probs


def fit_model(
    *,
    cfg: TrainConfig,
    train: WindowSet,
    y_train: npt.ArrayLike,
    val: WindowSet | None,
    y_val: npt.ArrayLike | None,
    labels: Sequence[str],
    mean: npt.ArrayLike,
    std: npt.ArrayLike,
    log: Any = print,
    init_model: Any = None,
    feature_config: Any = None,
    val_groups: npt.ArrayLike | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train one model; keep the weights of the best validation score.

    Parameters
    ----------
    cfg : TrainConfig
    train, val : WindowSet
        ``val`` may be None (then the last epoch is kept).
    y_train, y_val : array_like, shape (n_clips,)
        Clip labels (indices into ``labels``).
    mean, std : array_like, shape (n_features,)
        Training statistics (one per value of a frame: the mel bands for log-mel).
    init_model : keras.Model, optional
        Start from this (built) model instead of a fresh ``cfg.arch``.
    feature_config : FeatureConfig, optional
        The features' configuration (mel band frequencies for
        ``cfg.freq_warp``, which needs log-mel windows); defaults to
        ``FeatureConfig()``. When given, its ``n_features`` must be the
        windows' width. A fresh model's input width is the windows' width.
    val_groups : array_like, shape (n_val_clips,), optional
        Group of each validation clip (e.g. 0 = validation speakers of the
        training corpora, 1 = an unseen corpus); the score is the mean of the
        groups' UARs. Default: one group.

    Notes
    -----
    ``cfg.balance``: ``"none"`` draws training windows uniformly (class weights
    in the loss when ``cfg.class_weighting``); ``"corpus_class"`` draws them so
    that every corpus gets a share proportional to the square root of its
    training windows and, inside a corpus, every label an equal share; the loss
    then weights labels by the inverse of their share of the draw.

    Returns
    -------
    model : keras.Model
    history : dict
        Per-epoch loss, validation UAR, the best epoch and timings.
    """
    import keras
    import tensorflow as tf

    from training.models import build_model

    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_labels = len(labels)
    n_features = train.features.shape[-1]  # FeatureConfig.n_features: the mel bands for log-mel
    if feature_config is not None and feature_config.n_features != n_features:
        raise ParameterError(
            f"feature_config gives {feature_config.n_features} values per frame "
            f"({feature_config.features}), the windows {n_features}"
        )
    if init_model is not None:
        model = init_model
    else:
        model = build_model(cfg.arch, n_features=n_features, n_labels=n_labels, seed=cfg.seed, **cfg.arch_params)

    use = np.flatnonzero(train.usable())
    draw_p, cw = _draw_and_class_weights(cfg=cfg, train=train, y_train=y_train, use=use, n_labels=n_labels)
    per_epoch = use.size if cfg.windows_per_epoch is None else min(use.size, cfg.windows_per_epoch)
    steps = max(1, per_epoch // cfg.batch_size)
    total_steps = steps * cfg.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate, decay_steps=total_steps, warmup_target=None, alpha=0.02
    )
    opt = keras.optimizers.Adam(learning_rate=schedule)
    mu = np.asarray(mean, dtype=np.float32)
    inv = inverse_std(std)
    if feature_config is None:
        from ser_engine.config import FeatureConfig

        feature_config = FeatureConfig()
    if cfg.freq_warp > 0 and feature_config.features != "logmel":
        raise ParameterError(f"freq_warp warps log-mel bands; the windows are {feature_config.features!r} features")
    if cfg.freq_warp > 0 and feature_config.n_mels != n_features:
        raise ParameterError(f"feature_config has {feature_config.n_mels} mel bands, the windows {n_features}")
    centres = mel_centres_hz(feature_config)

    ema = [tf.Variable(v, trainable=False) for v in model.trainable_variables] if cfg.ema_decay > 0 else []
    step = _train_step(model=model, optimizer=opt, cfg=cfg, n_labels=n_labels, class_weights=cw, ema=ema)

    history: dict[str, Any] = {"loss": [], "val_uar": [], "epoch_s": []}
    best_uar, best_epoch, best_weights = -1.0, -1, None
    stale = 0
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        if draw_p is None:
            order = rng.permutation(use)[: steps * cfg.batch_size]
        else:
            order = use[rng.choice(use.size, size=steps * cfg.batch_size, replace=True, p=draw_p)]
        losses = []
        for s in range(steps):
            idx = np.sort(order[s * cfg.batch_size : (s + 1) * cfg.batch_size])
            xb, yb, yb2, lam = _training_batch(
                train=train, y_train=y_train, idx=idx, cfg=cfg, centres=centres, mu=mu, inv=inv, rng=rng
            )
            losses.append(float(step(tf.constant(xb), tf.constant(yb), tf.constant(yb2), tf.constant(lam))))
        history["loss"].append(float(np.mean(losses)))
        msg = f"epoch {epoch + 1}/{cfg.epochs} loss {history['loss'][-1]:.4f}"
        if val is not None and y_val is not None:
            if ema:
                _swap_ema(model=model, ema=ema)  # evaluate (and keep) the averaged weights
            score, m, group_uar = _validation_score(
                model=model, val=val, y_val=y_val, val_groups=val_groups, labels=labels, mean=mu, std=std
            )
            if group_uar is not None:
                history.setdefault("val_group_uar", []).append([round(u, 4) for u in group_uar])
                msg += " groups " + "/".join(f"{u:.4f}" for u in group_uar)
            history["val_uar"].append(score)
            msg += f" val score {score:.4f} (pooled UAR {m['uar']:.4f} acc {m['accuracy']:.4f})"
            if score > best_uar:
                best_uar, best_epoch, best_weights = score, epoch, model.get_weights()
                stale = 0
            else:
                stale += 1
            if ema:
                _swap_ema(model=model, ema=ema)
        history["epoch_s"].append(time.perf_counter() - t0)
        log(msg + f" ({history['epoch_s'][-1]:.0f} s)")
        if val is not None and stale >= cfg.patience:
            log(f"early stop: no validation gain for {cfg.patience} epochs")
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    elif ema:
        _swap_ema(model=model, ema=ema)  # no validation: keep the averaged weights
    history["best_epoch"] = best_epoch + 1 if best_epoch >= 0 else len(history["loss"])
    history["best_val_uar"] = best_uar if best_uar >= 0 else math.nan
    return model, history


def _draw_and_class_weights(
    *, cfg: TrainConfig, train: WindowSet, y_train: npt.ArrayLike, use: npt.NDArray[np.intp], n_labels: int
) -> tuple[npt.NDArray[np.float64] | None, npt.NDArray[np.float64]]:
    """How :func:`fit_model` draws training windows, and the loss weight of each label.

    Parameters
    ----------
    use : ndarray, shape (n_usable,)
        Indices of the usable (speech) training windows.

    Returns
    -------
    draw_p : ndarray, shape (n_usable,), or None
        Drawing probability of each usable window (``cfg.balance == "corpus_class"``); None
        draws them uniformly.
    class_weights : ndarray, shape (n_labels,)
        The inverse of each label's share of the draw (ones without ``cfg.class_weighting``).
    """
    yw = np.asarray(y_train)[train.clip_index[use]]
    draw_p: npt.NDArray[np.float64] | None = None
    if cfg.balance == "corpus_class":
        draw_p = balanced_draw(yw, np.array([c.corpus for c in train.clips])[train.clip_index[use]])
        counts = np.bincount(yw, weights=draw_p, minlength=n_labels)
    elif cfg.balance == "none":
        counts = np.bincount(yw, minlength=n_labels).astype(np.float64)
    else:
        raise ParameterError(f"unknown balance {cfg.balance!r}")
    if cfg.class_weighting:
        cw = np.where(counts > 0, counts.sum() / (n_labels * np.maximum(counts, 1e-12)), 0.0)
    else:
        cw = np.ones(n_labels)
    return draw_p, np.asarray(cw, dtype=np.float64)


def _train_step(
    *, model: Any, optimizer: Any, cfg: TrainConfig, n_labels: int, class_weights: npt.NDArray[np.float64],
    ema: list[Any],
) -> Any:
    """Make the compiled training step of :func:`fit_model`: one batch's update, then the moving average.

    The step takes a batch ``xb`` (shape (batch, n_frames, n_features)), its labels ``yb``, the
    labels ``yb2`` of the windows mixed into it and the mixing weights ``lam`` (shape (batch,),
    1 without mixup), and returns the batch's weighted, label-smoothed cross-entropy. ``ema``
    (empty without ``cfg.ema_decay``) holds the moving average of the trainable weights.
    """
    import tensorflow as tf

    eps = cfg.label_smoothing
    cw_t = tf.constant(class_weights, dtype=tf.float32)
    n_updates = tf.Variable(0.0, trainable=False)

    @tf.function(reduce_retracing=True)  # type: ignore[untyped-decorator]
    def step(xb: Any, yb: Any, yb2: Any, lam: Any) -> Any:
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)
            target = tf.one_hot(yb, n_labels) * lam[:, None] + tf.one_hot(yb2, n_labels) * (1 - lam[:, None])
            target = target * (1 - eps) + eps / n_labels
            ce = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=logits)
            w = tf.gather(cw_t, yb) * lam + tf.gather(cw_t, yb2) * (1 - lam)
            loss = tf.reduce_sum(ce * w) / tf.reduce_sum(w)
            reg = tf.add_n(model.losses) if model.losses else 0.0
            total = loss + reg
        grads = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        if ema:
            n_updates.assign_add(1.0)
            d = tf.minimum(cfg.ema_decay, (1.0 + n_updates) / (10.0 + n_updates))
            for e, v in zip(ema, model.trainable_variables, strict=True):
                e.assign(d * e + (1.0 - d) * v)
        return loss

    return step


def _swap_ema(*, model: Any, ema: list[Any]) -> None:
    """Exchange the model's live weights with their moving average (an involution)."""
    import tensorflow as tf

    for e, v in zip(ema, model.trainable_variables, strict=True):
        tmp = tf.identity(v)
        v.assign(e)
        e.assign(tmp)


def _training_batch(
    *,
    train: WindowSet,
    y_train: npt.ArrayLike,
    idx: npt.NDArray[np.intp],
    cfg: TrainConfig,
    centres: npt.NDArray[np.float64],
    mu: npt.NDArray[np.float32],
    inv: npt.NDArray[np.float32],
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float32]]:
    """One training batch of :func:`fit_model`: windows ``idx``, warped, normalised, masked and mixed.

    Returns
    -------
    xb : ndarray, shape (batch, n_frames, n_features), float32
    yb, yb2 : ndarray, shape (batch,), int32
        Each window's label, and the label of the window mixed into it (``yb`` without mixup).
    lam : ndarray, shape (batch,), float32
        Each window's own share of the mix (ones without mixup).
    """
    xb = train.features[idx].astype(np.float32)
    xb = freq_warp(xb, centres_hz=centres, max_warp=cfg.freq_warp, rng=rng)
    xb = normalize_frames(xb, mean=mu, inv_std=inv)
    _spec_augment(xb, cfg, rng)
    yb = np.asarray(y_train)[train.clip_index[idx]].astype(np.int32)
    yb2, lam = yb, np.ones(yb.size, dtype=np.float32)
    if cfg.mixup_alpha > 0:
        # mixup: each window blended with another of the batch, labels and weights alike
        perm = rng.permutation(yb.size)
        lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha, size=yb.size).astype(np.float32)
        lam = np.maximum(lam, 1.0 - lam)
        xb = lam[:, None, None] * xb + (1.0 - lam[:, None, None]) * xb[perm]
        yb2 = yb[perm]
    return xb, yb, yb2, lam


def _validation_score(
    *,
    model: Any,
    val: WindowSet,
    y_val: npt.ArrayLike,
    val_groups: npt.ArrayLike | None,
    labels: Sequence[str],
    mean: npt.NDArray[np.float32],
    std: npt.ArrayLike,
) -> tuple[float, dict[str, Any], list[float] | None]:
    """Score the model on the validation clips, as :func:`fit_model` selects epochs.

    Returns
    -------
    score : float
        The clip UAR, or with ``val_groups`` the mean of the groups' clip UARs.
    metrics : dict
        The pooled clip metrics (:func:`evaluate_clips`).
    group_uar : list of float, or None
        Each group's clip UAR (None without ``val_groups``).
    """
    vl, vi = predict_logits(model, val, mean=mean, std=std)
    m, probs = evaluate_clips(logits=vl, clip_index=vi, y_true=y_val, labels=labels)
    if val_groups is None:
        return m["uar"], m, None
    g = np.asarray(val_groups)
    yv = np.asarray(y_val)
    ok = ~np.isnan(probs[:, 0])
    group_uar = [
        classification_metrics(
            y_true=yv[ok & (g == k)], y_pred=probs[ok & (g == k)].argmax(axis=1), labels=labels
        )["uar"]
        for k in np.unique(g)
    ]
    return float(np.mean(group_uar)), m, group_uar
