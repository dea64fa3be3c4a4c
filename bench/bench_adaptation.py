"""Calibration and unsupervised adaptation in the Whisper encoder's space, measured on cached vectors.

Reads the per-window block means that ``ser-train encoder`` cached (``~/.cache/ser/embeddings``;
computed on the first run, about half an hour on 2 cores) and compares, on clips of speakers never
trained on, read-outs of one block (logistic regression, or the shipped head's kind, an MLP of 256):

* ``base``: the head as shipped, no knowledge of the speaker (zero-shot);
* ``speaker-centred``: head trained on each training speaker's vectors minus that speaker's mean,
  applied to a new speaker's vectors minus the mean of *all* their speech (a folder declared to
  be one speaker); also from only 3, 6 or 12 random clips, and from calm clips only (neutral and
  sad: the guard case of a mostly calm speaker);
* ``neutral-centred``: head trained on vectors minus each speaker's neutral mean, applied with
  the population's neutral mean (zero-shot), a voice profile (random neutral clips summing to at
  least 8 s, left out of the scoring), or the mean of all speech minus the population's typical
  (all - neutral) offset.

Clip prediction: mean of its windows' probabilities; score: UAR per corpus, then the mean over
corpora. Usage::

    python bench/bench_adaptation.py [--block 4] [--heads lr,mlp]

Writes ``bench/results/adaptation.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

Array = np.ndarray
Head = Callable[[Array], Array]
PARTS = ("unseen_val", "unseen_test", "test")
PROFILE_S = 8.0


def load(block: int) -> dict[str, dict[str, Array]]:
    """Per part: window vectors of one block, clip index, and per-clip speaker, label, corpus, length."""
    from training.encoder.embed import embed_clips
    from training.encoder.run import WeightsSpec, embedder_file, prepare_clips, split_parts
    from training.features import default_cache_dir
    from training.pipeline import DEFAULT_DATA

    clips, part_of, _ = prepare_clips(root=DEFAULT_DATA)
    feat = default_cache_dir()
    b4 = embedder_file(spec=WeightsSpec("base"), n_blocks=4, cache_root=feat.parent)
    ws = embed_clips(clips=clips, embedder_path=b4, cache_dir=feat.parent / "embeddings", feature_cache_dir=feat,
                     workers=1, log=lambda _m: None)
    parts, _ = split_parts(ws, part_of=part_of)
    out = {}
    for p in ("train", *PARTS):
        w = parts[p]
        n_win = w.windows_per_clip()
        out[p] = {
            "x": w.features[:, block - 1, :].astype(np.float64), "ci": w.clip_index.astype(np.int64),
            "speaker": np.array([c.speaker for c in w.clips]), "label": np.array([c.label for c in w.clips]),
            "corpus": np.array([c.corpus for c in w.clips]),
            "seconds": np.where(n_win > 0, 3.0 + 0.5 * (n_win - 1), 0.0),  # speech windows' span
        }
    return out


def fit(x: Array, y: Array, kind: str) -> Head:
    """Fit a standardised, class-balanced logistic regression (C=0.01) or MLP(256)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "lr":
            est: Any = LogisticRegression(C=0.01, class_weight="balanced", max_iter=300).fit(z, y)
        else:
            cls, cnt = np.unique(y, return_counts=True)
            weight = dict(zip(cls, len(y) / (len(cls) * cnt), strict=True))
            est = MLPClassifier(hidden_layer_sizes=(256,), alpha=1.0, early_stopping=True, max_iter=200,
                                random_state=0, batch_size=256, n_iter_no_change=8)
            est.fit(z, y, sample_weight=np.array([weight[v] for v in y]))
    return lambda q: np.asarray(est.predict_proba((q - mu) / sd))


def mean_corpus_uar(
    probs: Array, part: dict[str, Array], classes: Array, keep: Array | None = None
) -> dict[str, float]:
    """UAR per corpus of the clips' mean window probabilities, and their mean (``mean``)."""
    from sklearn.metrics import recall_score

    n = len(part["label"])
    acc = np.zeros((n, probs.shape[1]))
    np.add.at(acc, part["ci"], probs)
    ok = np.bincount(part["ci"], minlength=n) > 0
    if keep is not None:
        ok &= keep
    pred = classes[acc.argmax(1)]
    res = {}
    for c in sorted(set(part["corpus"][ok])):
        r = ok & (part["corpus"] == c)
        truth = part["label"][r]
        res[str(c)] = float(recall_score(truth, pred[r], labels=sorted(set(truth)), average="macro"))
    res["mean"] = float(np.mean(list(res.values())))
    return res


def group_means(x: Array, groups: Array, use: Array) -> dict[str, Array]:
    """Mean vector of each group over the rows in ``use``."""
    return {g: x[(groups == g) & use].mean(0) for g in np.unique(groups[use])}


def centred(x: Array, groups: Array, centres: dict[str, Array]) -> Array:
    """``x`` minus its group's centre (rows of groups without a centre are left as they are)."""
    out = x.copy()
    for g, c in centres.items():
        out[groups == g] -= c
    return out


def run(data: dict[str, dict[str, Array]], kind: str, seed: int = 5) -> dict[str, dict[str, dict[str, float]]]:
    """Every variant's scores on every part."""
    tr = data["train"]
    spk_w = tr["speaker"][tr["ci"]]
    y = tr["label"][tr["ci"]]
    every = np.ones(len(y), dtype=bool)
    all_c = group_means(tr["x"], spk_w, every)
    neu_c = group_means(tr["x"], spk_w, y == "neutral")
    has_neutral = np.isin(spk_w, list(neu_c))
    ref = np.mean(list(neu_c.values()), axis=0)
    offset = np.mean([all_c[s] - neu_c[s] for s in neu_c], axis=0)  # typical (all speech - neutral)
    base = fit(tr["x"], y, kind)
    spk_head = fit(centred(tr["x"], spk_w, all_c), y, kind)
    neu_head = fit(centred(tr["x"], spk_w, neu_c)[has_neutral], y[has_neutral], kind)
    classes = np.array(sorted(set(y)))
    rng = np.random.default_rng(seed)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for p in PARTS:
        q = data[p]
        x, ci = q["x"], q["ci"]
        spk = q["speaker"][ci]
        lab = q["label"][ci]
        score = lambda probs, keep=None, q=q: mean_corpus_uar(probs, q, classes, keep)  # noqa: E731
        r: dict[str, dict[str, float]] = {}
        r["base"] = score(base(x))
        r["speaker-centred, all speech"] = score(spk_head(centred(x, spk, group_means(x, spk, np.ones(len(x), bool)))))
        for k in (3, 6, 12):
            pick = np.zeros(len(x), dtype=bool)
            for s in np.unique(q["speaker"]):
                chosen = rng.permutation(np.flatnonzero(q["speaker"] == s))[:k]
                pick |= np.isin(ci, chosen)
            r[f"speaker-centred, {k} random clips"] = score(spk_head(centred(x, spk, group_means(x, spk, pick))))
        calm = np.isin(lab, ["neutral", "sad"])
        r["speaker-centred, calm clips only"] = score(spk_head(centred(x, spk, group_means(x, spk, calm))))
        # voice profiles: random neutral clips of at least PROFILE_S seconds, left out of the scoring
        keep = np.zeros(len(q["label"]), dtype=bool)
        prof: dict[str, Array] = {}
        for s in np.unique(q["speaker"]):
            neutral = rng.permutation(np.flatnonzero((q["speaker"] == s) & (q["label"] == "neutral")
                                                     & (q["seconds"] > 0)))
            total, chosen = 0.0, []
            for c in neutral:
                chosen.append(c)
                total += q["seconds"][c]
                if total >= PROFILE_S:
                    break
            if total < PROFILE_S:
                continue
            prof[s] = x[np.isin(ci, chosen)].mean(0)
            keep |= q["speaker"] == s
            keep[chosen] = False
        r["base, profiled speakers' other clips"] = score(base(x), keep)
        r["neutral-centred, population centre"] = score(neu_head(x - ref))
        r["neutral-centred, voice profile"] = score(neu_head(centred(x, spk, prof)), keep)
        r["neutral-centred, all speech - offset"] = score(
            neu_head(centred(x, spk, {s: c - offset for s, c in group_means(x, spk, np.ones(len(x), bool)).items()})))
        r["_speakers_profiled"] = {"n": float(len(prof))}
        # the guard question: does the zero-shot arousal of a speaker's material tell calm-only material apart?
        high = np.isin(classes, ["angry", "fearful", "happy", "surprised"])
        aroused = base(x)[:, high].sum(axis=1)
        every, calm_only = [], []
        for s in np.unique(spk):
            mine = spk == s
            every.append(float(aroused[mine].mean()))
            if (mine & calm).any():
                calm_only.append(float(aroused[mine & calm].mean()))
        pct = (0, 10, 50, 90, 100)
        r["_guard_high_arousal_all_speech"] = dict(zip(map(str, pct), np.percentile(every, pct).round(3).tolist(),
                                                       strict=True))
        r["_guard_high_arousal_calm_only"] = dict(zip(map(str, pct), np.percentile(calm_only, pct).round(3).tolist(),
                                                      strict=True))
        results[p] = r
    return results


def main() -> int:
    """Measure and print; write bench/results/adaptation.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block", type=int, default=4)
    ap.add_argument("--heads", default="lr,mlp")
    args = ap.parse_args()
    data = load(args.block)
    out: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d"),
                           "machine": f"{platform.node()}, {platform.machine()}", "block": args.block, "heads": {}}
    for kind in args.heads.split(","):
        res = run(data, kind)
        out["heads"][kind] = res
        print(f"\n### block {args.block}, head {kind}\n")
        print("| variant | " + " | ".join(PARTS) + " |")
        print("|---|" + "---|" * len(PARTS))
        for v in res[PARTS[0]]:
            if v.startswith("_"):
                continue
            print(f"| {v} | " + " | ".join(f"{100 * res[p][v]['mean']:.1f}" for p in PARTS) + " |")
        for p in PARTS:
            g_all, g_calm = res[p]["_guard_high_arousal_all_speech"], res[p]["_guard_high_arousal_calm_only"]
            print(f"guard, {p}: speakers' mean high-arousal probability (min/median/max) all speech "
                  f"{g_all['0']}/{g_all['50']}/{g_all['100']}, "
                  f"calm clips only {g_calm['0']}/{g_calm['50']}/{g_calm['100']}")
    path = REPO / "bench" / "results" / "adaptation.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
