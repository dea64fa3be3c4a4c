"""Metrics of the classifiers, and temperature scaling.

Accuracy, unweighted accuracy (UAR), macro-F1, per-class P/R/F1, confusion
matrices, expected calibration error and temperature scaling.

Clip-level predictions average the window probabilities over the clip's speech
windows, as ``ser_engine.files.analysis`` does for a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.inference.model_meta import softmax

__all__ = [
    "classification_metrics",
    "clip_probabilities",
    "expected_calibration_error",
    "fit_temperature",
    "plot_confusion",
]


def clip_probabilities(
    *, window_logits: npt.ArrayLike, clip_index: npt.ArrayLike, n_clips: int, temperature: float = 1.0
) -> npt.NDArray[np.float64]:
    """Average window probabilities per clip.

    Parameters
    ----------
    window_logits : array_like, shape (n_windows, n_labels)
        Logits of the windows to average (already restricted to speech windows).
    clip_index : array_like, shape (n_windows,)
    n_clips : int
    temperature : float

    Returns
    -------
    ndarray, shape (n_clips, n_labels)
        Rows of clips without windows are NaN.
    """
    p = softmax(window_logits, temperature=temperature)  # the engine's: what users get per window
    idx = np.asarray(clip_index, dtype=np.int64)
    sums = np.zeros((n_clips, p.shape[1]))
    np.add.at(sums, idx, p)
    counts = np.bincount(idx, minlength=n_clips).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def expected_calibration_error(probs: npt.ArrayLike, y_true: npt.ArrayLike, *, n_bins: int = 15) -> float:
    """Compute the expected calibration error of the top-class confidence (equal-width bins)."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def fit_temperature(
    *, window_logits: npt.ArrayLike, clip_index: npt.ArrayLike, n_clips: int, y_true: npt.ArrayLike
) -> float:
    """Temperature minimising the clip-level negative log-likelihood (grid search, 0.3-6)."""
    y = np.asarray(y_true, dtype=np.int64)
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.3), np.log(6.0), 121)):
        p = clip_probabilities(window_logits=window_logits, clip_index=clip_index, n_clips=n_clips, temperature=t)
        ok = ~np.isnan(p[:, 0])
        nll = -np.mean(np.log(np.clip(p[ok, y[ok]], 1e-12, None)))
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    return best_t


def classification_metrics(
    *, y_true: npt.ArrayLike, y_pred: npt.ArrayLike, labels: Sequence[str], probs: npt.ArrayLike | None = None
) -> dict[str, Any]:
    """Accuracy, UAR (mean recall over classes present), macro-F1, per-class P/R/F1, confusion matrix, ECE.

    Classes absent from ``y_true`` are left out of UAR and macro-F1 (e.g.
    ``surprised`` in CREMA-D).
    """
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    k = len(labels)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (yt, yp), 1)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + np.nan_to_num(recall) > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    per_class = {
        lab: {
            "precision": float(precision[i]),
            "recall": float(recall[i]) if present[i] else None,
            "f1": float(f1[i]) if present[i] else None,
            "support": int(support[i]),
        }
        for i, lab in enumerate(labels)
    }
    out: dict[str, Any] = {
        "n": int(yt.size),
        "accuracy": float((yt == yp).mean()) if yt.size else float("nan"),
        "uar": float(np.nanmean(recall[present])) if present.any() else float("nan"),
        "macro_f1": float(np.mean(f1[present])) if present.any() else float("nan"),
        "per_class": per_class,
        "confusion": cm.tolist(),
        "labels": list(labels),
    }
    if probs is not None:
        out["ece"] = expected_calibration_error(probs, yt)
    return out


def plot_confusion(*, confusion: npt.ArrayLike, labels: Sequence[str], title: str, path: str | Path) -> None:
    """Save a row-normalised confusion matrix as PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=100)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if rows[i, 0] > 0:
                ax.text(
                    j,
                    i,
                    f"{norm[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
