"""Fitting: class weighting, mixup, weight averaging and best-epoch selection."""

from __future__ import annotations

import numpy as np
import pytest

from training.features import WindowSet
from training.train import TrainConfig, evaluate_clips, fit_model, predict_logits

pytestmark = [pytest.mark.training]

LABELS = ("a", "b", "c")
TINY = {"filters": (8, 8, 8, 8), "stem_stride": (2, 2), "dropout": 0.0}


def _separable(n_clips: int, *, seed: int) -> tuple[WindowSet, np.ndarray]:
    """Two windows per clip; each class raises its own third of the mel bands."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_clips) % 3
    x = rng.standard_normal((2 * n_clips, 40, 12)).astype(np.float32)
    idx = np.repeat(np.arange(n_clips), 2).astype(np.int32)
    for k in range(3):
        x[y[idx] == k, :, 4 * k : 4 * k + 4] += 1.5
    ws = WindowSet(
        features=x.astype(np.float16), clip_index=idx, speech=np.ones(idx.size, dtype=bool), clips=[None] * n_clips
    )
    return ws, y


@pytest.mark.parametrize(
    "extra",
    [{}, {"mixup_alpha": 0.4}, {"ema_decay": 0.99}, {"mixup_alpha": 0.4, "ema_decay": 0.99}],
    ids=["plain", "mixup", "ema", "mixup+ema"],
)
def test_learns_and_keeps_the_weights_it_scored(extra: dict[str, float]) -> None:
    from training.train import configure_tensorflow

    configure_tensorflow()
    train, y_train = _separable(240, seed=1)
    val, y_val = _separable(60, seed=2)
    cfg = TrainConfig(
        arch="cnn2d", arch_params=TINY, epochs=4, batch_size=16, learning_rate=5e-3, patience=99, seed=3, **extra
    )
    model, hist = fit_model(
        cfg=cfg,
        train=train,
        y_train=y_train,
        val=val,
        y_val=y_val,
        labels=LABELS,
        mean=np.zeros(12),
        std=np.ones(12),
        log=lambda _: None,
    )
    assert len(hist["loss"]) == 4
    assert np.isfinite(hist["loss"]).all()
    assert hist["best_val_uar"] > 0.9  # chance is 1/3
    # the returned weights are exactly the ones that earned the best validation score
    logits, ci = predict_logits(model, val, mean=np.zeros(12), std=np.ones(12))
    m, _ = evaluate_clips(logits=logits, clip_index=ci, y_true=y_val, labels=LABELS)
    assert m["uar"] == pytest.approx(hist["best_val_uar"])
    assert hist["val_uar"][hist["best_epoch"] - 1] == pytest.approx(hist["best_val_uar"])


def test_ema_without_validation_returns_the_average_not_the_last_step() -> None:
    from training.train import configure_tensorflow

    configure_tensorflow()
    train, y_train = _separable(120, seed=4)
    common = dict(arch="cnn2d", arch_params=TINY, epochs=2, batch_size=16, learning_rate=5e-3, seed=5)
    kw = dict(train=train, y_train=y_train, val=None, y_val=None, labels=LABELS, mean=np.zeros(12), std=np.ones(12))
    plain, _ = fit_model(cfg=TrainConfig(**common), log=lambda _: None, **kw)
    averaged, _ = fit_model(cfg=TrainConfig(**common, ema_decay=0.9), log=lambda _: None, **kw)
    # same seed, same batches: only the weight averaging differs
    w_plain = plain.get_layer("logits").get_weights()[0]
    w_avg = averaged.get_layer("logits").get_weights()[0]
    assert not np.allclose(w_plain, w_avg)
    assert np.isfinite(w_avg).all()


def test_freq_warp_moves_a_formant_by_the_drawn_factor() -> None:
    from ser_engine.config import FeatureConfig
    from training.train import freq_warp, mel_centres_hz

    centres = mel_centres_hz(FeatureConfig())
    assert centres.shape == (64,)
    assert 50 < centres[0] < centres[-1] < 8000
    x = np.zeros((400, 5, 64), dtype=np.float32)
    k = 30
    x[:, :, k] = 1.0  # a single band lit, at centres[k] Hz
    rng = np.random.default_rng(0)
    y = freq_warp(x, centres_hz=centres, max_warp=0.15, rng=rng)
    assert y.shape == x.shape
    assert np.isfinite(y).all()
    # replay the generator: each window's energy sits where centres[k] * alpha falls
    alphas = np.random.default_rng(0).uniform(0.85, 1.15, size=400)
    expected = np.interp(centres[k] * alphas, centres, np.arange(64))
    got = (y[:, 0, :] * np.arange(64)).sum(axis=1) / y[:, 0, :].sum(axis=1)
    np.testing.assert_allclose(got, expected, atol=0.51)
    assert got.min() < k - 2
    assert got.max() > k + 2
    # no warp is the identity
    np.testing.assert_array_equal(freq_warp(x, centres_hz=centres, max_warp=0.0, rng=rng), x)
