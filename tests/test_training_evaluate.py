"""Metrics, calibration and temperature scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser_engine.inference.model_meta import softmax
from training.evaluate import (
    classification_metrics,
    clip_probabilities,
    expected_calibration_error,
    fit_temperature,
    plot_confusion,
)

LABELS = ("a", "b", "c")


def test_metrics_on_a_known_confusion() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    m = classification_metrics(y_true=y_true, y_pred=y_pred, labels=LABELS)
    assert m["accuracy"] == 6 / 8
    assert np.isclose(m["uar"], (3 / 4 + 1 / 2 + 1) / 3)
    assert m["confusion"] == [[3, 1, 0], [1, 1, 0], [0, 0, 2]]
    assert np.isclose(m["per_class"]["a"]["precision"], 3 / 4)
    assert np.isclose(m["per_class"]["b"]["f1"], 0.5)


def test_absent_classes_are_left_out_of_uar() -> None:
    m = classification_metrics(y_true=np.array([0, 1]), y_pred=np.array([0, 2]), labels=LABELS)
    assert m["uar"] == 0.5
    assert m["per_class"]["c"]["recall"] is None


def test_clip_probabilities_average_windows() -> None:
    logits = np.array([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 10.0]])
    p = clip_probabilities(window_logits=logits, clip_index=np.array([0, 0, 1]), n_clips=3)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0], atol=1e-4)
    np.testing.assert_allclose(p[1], [0, 0, 1], atol=1e-4)
    assert np.isnan(p[2]).all()


def test_ece_and_temperature_fix_overconfidence() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.integers(0, 3, n)
    clean = rng.normal(0, 1, (n, 3))
    clean[np.arange(n), y] += 1.5
    # for unit-variance Gaussian scores shifted by 1.5 the calibrated logits are 1.5 * clean,
    # so the overconfident 4 * clean needs a temperature of 4 / 1.5
    over = clean * 4.0
    ece_over = expected_calibration_error(softmax(over), y)
    t = fit_temperature(window_logits=over, clip_index=np.arange(n), n_clips=n, y_true=y)
    assert 2.3 < t < 3.1
    ece_after = expected_calibration_error(softmax(over, temperature=t), y)
    assert ece_after < ece_over / 3
    assert expected_calibration_error(np.eye(3)[y], y) == 0.0


def test_confusion_png(tmp_path: Path) -> None:
    out = tmp_path / "cm.png"
    plot_confusion(confusion=[[3, 1, 0], [1, 1, 0], [0, 0, 0]], labels=LABELS, title="t", path=out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
