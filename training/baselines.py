"""Scikit-learn baselines on pooled features: decision tree, k-nearest neighbours, SVM.

A clip is described by the mean and standard deviation over time of each
normalised log-mel band, averaged over its speech windows (128 numbers for 64
bands). The classifiers are fitted on training speakers' clean clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.dsp.features import inverse_std, normalize_frames
from ser_engine.errors import ParameterError
from training.features import WindowSet

__all__ = ["BASELINES", "make_baseline", "pooled_features"]

BASELINES = ("decision_tree", "knn", "svm")


def pooled_features(windows: WindowSet, *, mean: npt.ArrayLike, std: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per-clip pooled features, shape ``(n_clips, 2 * n_features)``."""
    inv = inverse_std(std)
    use = np.flatnonzero(windows.usable())
    n_features = windows.features.shape[-1]
    sums = np.zeros((len(windows.clips), 2 * n_features))
    counts = np.zeros(len(windows.clips))
    for i in range(0, use.size, 512):
        idx = use[i : i + 512]
        x = normalize_frames(windows.features[idx], mean=mean, inv_std=inv)
        feats = np.concatenate([x.mean(axis=1), x.std(axis=1)], axis=1)
        np.add.at(sums, windows.clip_index[idx], feats)
        np.add.at(counts, windows.clip_index[idx], 1)
    return sums / np.maximum(counts, 1)[:, None]


def make_baseline(name: str, *, seed: int = 0) -> Any:
    """Build an unfitted scikit-learn pipeline (standardisation + classifier)."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    if name == "decision_tree":
        clf: Any = DecisionTreeClassifier(max_depth=12, min_samples_leaf=5, class_weight="balanced", random_state=seed)
    elif name == "knn":
        clf = KNeighborsClassifier(n_neighbors=15, weights="distance")
    elif name == "svm":
        clf = SVC(C=10.0, gamma="scale", kernel="rbf", class_weight="balanced", random_state=seed)
    else:
        raise ParameterError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return make_pipeline(StandardScaler(), clf)


def fit_predict(
    name: str, *, x_train: npt.ArrayLike, y_train: npt.ArrayLike, x_eval: Sequence[npt.ArrayLike], seed: int = 0
) -> list[npt.NDArray[np.int64]]:
    """Fit baseline ``name`` and predict each array of ``x_eval``."""
    model = make_baseline(name, seed=seed)
    model.fit(np.asarray(x_train), np.asarray(y_train))
    return [np.asarray(model.predict(np.asarray(x)), dtype=np.int64) for x in x_eval]
