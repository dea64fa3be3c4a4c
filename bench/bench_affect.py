"""Arousal and valence read-outs of the encoder's blocks, measured on cached vectors.

The shipped affect head is a binary logistic regression per axis on the block-4 window vector
(the emotion head's input). This script asks whether another block, or several blocks together,
read arousal and valence better on corpora never trained on. Labels are mapped as the model's
(``training.encoder.head.AFFECT_AXES``: arousal high = angry, fearful, happy, surprised; low =
neutral, sad; valence positive = happy, surprised; negative = angry, fearful, sad, disgust); a
clip's score is the mean of its windows' probabilities, thresholded at 0.5; binary UAR.

Each of the eleven corpora is left out in turn (fitted on every non-test window of the other ten,
all the left-out corpus's clips scored): the mean over the nine selection corpora (the ones a
choice may be made on), over all eleven, and the test speakers (fitted on all eleven, pooled).

Usage: ``python bench/bench_affect.py`` (about 15 minutes on 2 cores). Writes
``bench/results/affect.json`` and prints one line per read-out.
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_adaptation as ba  # noqa: E402  (the sibling script: its loader of cached vectors and read-out recipe)

Array = np.ndarray
HELD_OUT = ("uem-es", "emotiontts-ko")
CS = (0.001, 0.003, 0.01)


def binary_uar(*, x: Array, y: Array, ci: Array, fit: Array, scored: Array, c: float) -> float:
    """Fit on ``fit`` windows (``y`` 0/1), score ``scored`` windows' clips; ``y`` -1 windows are never used."""
    from sklearn.linear_model import LogisticRegression

    fit, scored = fit & (y >= 0), scored & (y >= 0)
    mu, sd = x[fit].mean(0), x[fit].std(0) + 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LogisticRegression(C=c, class_weight="balanced", max_iter=500).fit((x[fit] - mu) / sd, y[fit])
    p = est.predict_proba((x[scored] - mu) / sd)[:, 1]
    clips, inv = np.unique(ci[scored], return_inverse=True)
    total, count = np.zeros(len(clips)), np.zeros(len(clips))
    np.add.at(total, inv, p)
    np.add.at(count, inv, 1.0)
    truth = np.zeros(len(clips))
    truth[inv] = y[scored]
    pred = total / count >= 0.5
    return float(np.mean([np.mean(pred[truth == k] == k) for k in (0, 1) if (truth == k).any()]))


def main() -> int:
    """Measure every read-out, print, write bench/results/affect.json."""
    from training.encoder.head import AFFECT_AXES

    pools = {b: ba.pool_parts(data=ba.load(b)) for b in (2, 3, 4)}
    pool = pools[4]
    readouts = {
        "block 4": pools[4]["x"],
        "block 3": pools[3]["x"],
        "block 2": pools[2]["x"],
        "mean of blocks 3 and 4": (pools[3]["x"] + pools[4]["x"]) / 2,
        "blocks 3 and 4 side by side": np.concatenate([pools[3]["x"], pools[4]["x"]], axis=1),
        "blocks 2, 3 and 4 side by side": np.concatenate([pools[b]["x"] for b in (2, 3, 4)], axis=1),
    }
    corpus, part, label, ci = pool["corpus"], pool["part"], pool["label"], pool["ci"]
    corpora = [str(c) for c in np.unique(corpus)]
    not_test = part != "test"
    out: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": ba.machine(), "rows": {}}
    for axis in AFFECT_AXES:
        y = np.where(np.isin(label, axis.positive), 1, np.where(np.isin(label, axis.negative), 0, -1))
        for name, x in readouts.items():
            for c in CS:
                per = {held: binary_uar(x=x, y=y, ci=ci, fit=not_test & (corpus != held), scored=corpus == held, c=c)
                       for held in corpora}
                test = binary_uar(x=x, y=y, ci=ci, fit=not_test, scored=~not_test, c=c)
                row = {"nine selection corpora": float(np.mean([per[k] for k in corpora if k not in HELD_OUT])),
                       "eleven corpora": float(np.mean(list(per.values()))), "test speakers": test, "per_corpus": per}
                out["rows"][f"{axis.name}, {name}, C={c}"] = row
                print(f"{axis.name}, {name}, C={c}: nine {100 * row['nine selection corpora']:.1f}, eleven "
                      f"{100 * row['eleven corpora']:.1f}, test speakers {100 * test:.1f}", flush=True)
    path = REPO / "bench" / "results" / "affect.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
