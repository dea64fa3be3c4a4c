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
corpora. Those heads are fitted on the training speakers of the eight original corpora (the
comparison made for the previous read-out, the MLP; key ``heads``).

Second section (key ``linear_loco``): the shipped read-out's kind, logistic regression (``--c``,
default the shipped C = 0.003; class-balanced, standardised) on block 4, each of the eleven corpora
left out in turn: fitted on every non-test window of the other ten, scored on all the left-out
corpus's clips (7-class argmax, UAR over the classes present), mean over the eleven; and fitted on
every non-test window of all eleven, scored on the test speakers' clips pooled. Two heads: the
shipped kind, adapted by a logit shift (a speaker's windows moved by their centre minus the
population centre), and one trained on speaker-centred vectors; centres from all the speaker's
speech, calm clips only (neutral, sad; all speech for a speaker without any) or 3, 6, 12 random
clips (``--seed``). Usage::

    python bench/bench_adaptation.py [--block 4] [--heads lr,mlp] [--no-loco] [--seed 0] [--c 0.003]

``--heads ''`` skips the first section. Updates ``bench/results/adaptation.json`` (the keys of a
section not run are kept) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
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
ALL_PARTS = ("train", "val", "test", "unseen_val", "unseen_test")
CALM = ("neutral", "sad")
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
    for p in ALL_PARTS:
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

        def score(probs: Array, keep: Array | None = None, q: dict[str, Array] = q) -> dict[str, float]:
            return mean_corpus_uar(probs, q, classes, keep)

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
            total = 0.0
            taken: list[int] = []
            for c in neutral:
                taken.append(int(c))
                total += q["seconds"][c]
                if total >= PROFILE_S:
                    break
            if total < PROFILE_S:
                continue
            prof[s] = x[np.isin(ci, taken)].mean(0)
            keep |= q["speaker"] == s
            keep[taken] = False
        r["base, profiled speakers' other clips"] = score(base(x), keep)
        r["neutral-centred, population centre"] = score(neu_head(x - ref))
        r["neutral-centred, voice profile"] = score(neu_head(centred(x, spk, prof)), keep)
        r["neutral-centred, all speech - offset"] = score(
            neu_head(centred(x, spk, {s: c - offset for s, c in group_means(x, spk, np.ones(len(x), bool)).items()})))
        r["_speakers_profiled"] = {"n": float(len(prof))}
        # the guard question: does the zero-shot arousal of a speaker's material tell calm-only material apart?
        high = np.isin(classes, ["angry", "fearful", "happy", "surprised"])
        aroused = base(x)[:, high].sum(axis=1)
        spk_all: list[float] = []
        calm_only: list[float] = []
        for s in np.unique(spk):
            mine = spk == s
            spk_all.append(float(aroused[mine].mean()))
            if (mine & calm).any():
                calm_only.append(float(aroused[mine & calm].mean()))
        pct = (0, 10, 50, 90, 100)
        r["_guard_high_arousal_all_speech"] = dict(zip(map(str, pct), np.percentile(spk_all, pct).round(3).tolist(),
                                                       strict=True))
        r["_guard_high_arousal_calm_only"] = dict(zip(map(str, pct), np.percentile(calm_only, pct).round(3).tolist(),
                                                      strict=True))
        results[p] = r
    return results


# --- the linear read-out as shipped (since 2026-12-06), each corpus left out in turn -------------------------


def pool_parts(*, data: dict[str, dict[str, Array]]) -> dict[str, Array]:
    """Every part's windows in one set: vectors, global clip index, and per window its speaker, label, corpus, part."""
    xs, cis, spk, lab, corp, part = [], [], [], [], [], []
    offset = 0
    for p in ALL_PARTS:
        q = data[p]
        xs.append(q["x"])
        cis.append(q["ci"] + offset)
        offset += len(q["label"])
        spk.append(q["speaker"][q["ci"]])
        lab.append(q["label"][q["ci"]])
        corp.append(q["corpus"][q["ci"]])
        part.append(np.full(len(q["ci"]), p))
    return {"x": np.concatenate(xs), "ci": np.concatenate(cis), "speaker": np.concatenate(spk),
            "label": np.concatenate(lab), "corpus": np.concatenate(corp), "part": np.concatenate(part)}


def fit_linear(*, x: Array, y: Array, labels: tuple[str, ...], c: float = 0.01) -> tuple[Array, Array]:
    """Fit the linear read-out's recipe, folded into raw-vector weights: logits = x @ W + b over ``labels``.

    Standardised, class-balanced logistic regression (inverse regularisation ``c``); a class absent
    from ``y`` gets weight 0 and bias -30 (never predicted).
    """
    from sklearn.linear_model import LogisticRegression

    mu, sd = x.mean(0), x.std(0) + 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LogisticRegression(C=c, class_weight="balanced", max_iter=500).fit((x - mu) / sd, y)
    cols = np.array([labels.index(str(c)) for c in est.classes_])
    w = np.zeros((x.shape[1], len(labels)))
    b = np.full(len(labels), -30.0)
    w[:, cols] = (est.coef_ / sd).T
    b[cols] = est.intercept_ - (mu / sd) @ est.coef_.T
    return w, b


def clip_uar(*, logits: Array, ci: Array, label: Array, labels: tuple[str, ...]) -> float:
    """UAR over the classes present of clips scored by the mean of their windows' softmax probabilities."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    probs = e / e.sum(1, keepdims=True)
    clips, inv = np.unique(ci, return_inverse=True)
    acc = np.zeros((len(clips), len(labels)))
    np.add.at(acc, inv, probs)
    first = np.zeros(len(clips), dtype=np.int64)
    first[inv[::-1]] = np.arange(len(ci))[::-1]  # a window of each clip, for its label
    truth = label[first]
    pred = np.array(labels)[acc.argmax(1)]
    return float(np.mean([np.mean(pred[truth == c] == c) for c in sorted(set(truth))]))


def speaker_centres(*, x: Array, speaker: Array, use: Array | None = None) -> dict[str, Array]:
    """Each speaker's mean vector over its windows in ``use`` (over all its windows when it has none there)."""
    out = {}
    for s in np.unique(speaker):
        mine = speaker == s
        if use is not None and (mine & use).any():
            mine &= use
        out[str(s)] = x[mine].mean(0)
    return out


def random_clip_centres(*, x: Array, speaker: Array, ci: Array, k: int, rng: np.random.Generator) -> dict[str, Array]:
    """Each speaker's mean vector over the windows of ``k`` of its clips drawn at random (all, if fewer)."""
    out = {}
    for s in np.unique(speaker):
        clips = np.unique(ci[speaker == s])
        pick = rng.choice(clips, size=min(k, len(clips)), replace=False)
        out[str(s)] = x[np.isin(ci, pick)].mean(0)
    return out


def adapt_linear(
    *, pool: dict[str, Array], train: Array, test: Array, centred_head: bool, rng: np.random.Generator,
    c: float = 0.01,
) -> dict[str, float]:
    """Zero-shot and speaker-adapted UAR of a linear read-out fitted on ``train`` windows, scored on ``test``'s clips.

    ``centred_head`` False: the shipped kind of head; a speaker is adapted by shifting their windows
    by (their centre - the population centre, the mean of the training speakers' centres), which for a
    linear head is the logit shift (mean logits of their speech - mean of the training speakers' mean
    logits). True: a head fitted on speaker-centred vectors (each training speaker's mean subtracted);
    zero-shot it subtracts the population centre, adapted the test speaker's own centre.
    """
    from training.corpora import HARMONISED_LABELS as labels

    x_tr, spk_tr = pool["x"][train], pool["speaker"][train]
    tr_centres = speaker_centres(x=x_tr, speaker=spk_tr)
    population = np.mean(list(tr_centres.values()), axis=0)
    if centred_head:
        x_tr = x_tr - np.stack([tr_centres[str(s)] for s in spk_tr])
    w, b = fit_linear(x=x_tr, y=pool["label"][train], labels=labels, c=c)
    x, spk, ci, lab = pool["x"][test], pool["speaker"][test], pool["ci"][test], pool["label"][test]

    def score(shifted: Array) -> float:
        return clip_uar(logits=shifted @ w + b, ci=ci, label=lab, labels=labels)

    centres = {
        "all speech": speaker_centres(x=x, speaker=spk),
        "calm clips only": speaker_centres(x=x, speaker=spk, use=np.isin(lab, CALM)),
        **{f"{k} random clips": random_clip_centres(x=x, speaker=spk, ci=ci, k=k, rng=rng) for k in (3, 6, 12)},
    }
    res = {"zero-shot": score(x - population if centred_head else x)}
    for name, by_speaker in centres.items():
        c = np.stack([by_speaker[str(s)] for s in spk])
        res[name] = score(x - c if centred_head else x - c + population)
    return res


def run_loco_linear(*, data: dict[str, dict[str, Array]], seed: int, c: float = 0.01) -> dict[str, Any]:
    """Speaker adaptation of the linear read-out, each of the eleven corpora left out in turn, and on test speakers.

    Each corpus: fitted on every non-test window of the other corpora, scored on all the left-out
    corpus's clips (UAR over the classes present), then the mean over corpora. Test speakers: fitted
    on every non-test window of all corpora, scored on the test speakers' clips pooled (one UAR).
    """
    pool = pool_parts(data=data)
    rng = np.random.default_rng(seed)
    not_test = pool["part"] != "test"
    corpora = [str(c) for c in np.unique(pool["corpus"])]
    out: dict[str, Any] = {}
    for centred_head, tag in ((False, "shipped head, logit shift"), (True, "speaker-centred head")):
        per: dict[str, dict[str, float]] = {}
        for held in corpora:
            per[held] = adapt_linear(pool=pool, train=not_test & (pool["corpus"] != held),
                                     test=pool["corpus"] == held, centred_head=centred_head, rng=rng, c=c)
            print(f"{tag}, {held}: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in per[held].items()), flush=True)
        variants = list(per[corpora[0]])
        test = adapt_linear(pool=pool, train=not_test, test=~not_test, centred_head=centred_head, rng=rng, c=c)
        out[tag] = {"left_out_mean": {v: float(np.mean([per[c][v] for c in corpora])) for v in variants},
                    "test_speakers_pooled": test, "per_corpus": per}
    return out


def print_loco(*, res: dict[str, Any]) -> None:
    """Markdown table: mean of per-corpus UAR (corpora left out in turn) and test speakers, per variant."""
    tags = list(res)
    print("\n### linear read-out (block 4), each corpus left out in turn / test speakers pooled\n")
    print("| centre | " + " | ".join(f"{t}: corpora left out / test speakers" for t in tags) + " |")
    print("|---|" + "---|" * len(tags))
    for v in res[tags[0]]["left_out_mean"]:
        cells = [f"{100 * res[t]['left_out_mean'][v]:.1f} / {100 * res[t]['test_speakers_pooled'][v]:.1f}"
                 for t in tags]
        print(f"| {v} | " + " | ".join(cells) + " |")


def machine() -> str:
    """CPU model and core count (``/proc/cpuinfo`` where there is one)."""
    import os

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def main() -> int:
    """Measure and print; write (update) bench/results/adaptation.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block", type=int, default=4)
    ap.add_argument("--heads", default="lr,mlp", help="read-outs of the held-out comparison ('' to skip it)")
    ap.add_argument("--loco", action=argparse.BooleanOptionalAction, default=True,
                    help="the linear read-out's adaptation, each corpus left out in turn (key linear_loco)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random clips (numpy Generator)")
    ap.add_argument("--c", type=float, default=0.003,
                    help="inverse regularisation of the linear read-out (the shipped recipe's C)")
    args = ap.parse_args()
    data = load(args.block)
    path = REPO / "bench" / "results" / "adaptation.json"
    out: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    if args.heads:
        out.update({"date": today, "machine": f"{platform.node()}, {platform.machine()}", "block": args.block,
                    "heads": {}})
    for kind in filter(None, args.heads.split(",")):
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
    if args.loco:
        t0 = time.perf_counter()
        loco = run_loco_linear(data=data, seed=args.seed, c=args.c)
        out["linear_loco"] = {"date": today, "machine": machine(), "block": args.block, "seed": args.seed, "c": args.c,
                              "seconds": round(time.perf_counter() - t0, 1), **loco}
        print_loco(res=loco)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
