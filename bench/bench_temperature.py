"""Measure whether one temperature can be honest for new speakers of known corpora and for new corpora.

The shipped read-out's recipe (logistic regression on block 4, ``--c`` as shipped; see
``bench/bench_adaptation.py``) on the cached per-window vectors, three kinds of scores of voices
the read-out never heard:

* ``left-out corpora``: each of the eleven corpora left out in turn (fitted on every non-test
  window of the other ten; every non-test clip of the left-out corpus scored): the shipped
  temperature is fitted on these;
* ``left-out speakers``: every non-test speaker scored by a read-out fitted without them (five
  folds of speakers, each corpus's other speakers kept in): new voices of known recording set-ups;
* ``test speakers``: the shipped read-out's own test (fitted on every non-test window), the ECE the
  target is set on; it only reads the table, nothing is chosen on it.

For each temperature of a grid, and for the temperatures fitted (clip-level NLL) on each kind of
out-of-fold score, the clips' ECE (15 bins; clip probability = mean of its windows' softmax at
that temperature, as ``ser analyze`` reports it). Then a temperature that grows with a window's
distance from the corpora fitted on (``T = exp(a + b * d)``, ``d`` the whitened distance, over the
first ``--dims`` principal axes, to the nearest corpus centre; ``a``, ``b`` fitted on both kinds of
out-of-fold scores, equal weight): a read-out that knows how far from home a voice is. Usage::

    python bench/bench_temperature.py [--c 0.003] [--dims 32] [--folds 5] [--seed 0]

Writes ``bench/results/temperature.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_adaptation import fit_linear, load, machine, pool_parts  # noqa: E402

Array = np.ndarray
LABELS = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
GRID = (0.8, 1.0, 1.2, 1.4, 1.5, 1.6, 1.8, 2.0, 2.2)
"""Temperatures tabled beside the two fitted ones."""


def clip_probs(*, logits: Array, ci: Array, temperature: Array | float) -> tuple[Array, Array]:
    """Mean window softmax per clip (windows divided by their temperature) and the clips' order."""
    t = np.broadcast_to(np.asarray(temperature, dtype=np.float64), (len(logits),))
    z = logits / t[:, None]
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    clips, inv = np.unique(ci, return_inverse=True)
    acc = np.zeros((len(clips), p.shape[1]))
    np.add.at(acc, inv, p)
    return acc / np.bincount(inv)[:, None], clips


def ece(*, probs: Array, y: Array, n_bins: int = 15) -> float:
    """Compute the expected calibration error of the top class (15 equal-width bins), as ``training.evaluate`` does."""
    from training.evaluate import expected_calibration_error

    return float(expected_calibration_error(probs, y, n_bins=n_bins))


def nll(*, probs: Array, y: Array) -> float:
    """Mean negative log-likelihood of the true labels ``y`` under ``probs`` (n_clips, n_labels)."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))


def out_of_fold(*, pool: dict[str, Array], y: Array, groups: Array, use: Array, c: float) -> Array:
    """Logits of every window in ``use``, each from the read-out fitted on ``use`` minus its group."""
    out = np.full((len(y), len(LABELS)), np.nan)
    for g in np.unique(groups[use]):
        held = use & (groups == g)
        w, b = fit_linear(x=pool["x"][use & ~held], y=pool["label"][use & ~held], labels=LABELS, c=c)
        out[held] = pool["x"][held] @ w + b
    return out


def distance_fn(*, x: Array, corpus: Array, dims: int) -> Callable[[Array], Array]:
    """Whitened distance (over ``dims`` principal axes of ``x``) to the nearest corpus centre, per window."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    sub = z[::4] - z[::4].mean(0)
    _, sv, vt = np.linalg.svd(sub, full_matrices=False)
    proj = vt[:dims].T / (sv[:dims] / np.sqrt(len(sub)))
    centres = np.stack([(z[corpus == c] @ proj).mean(0) for c in np.unique(corpus)])

    def dist(q: Array) -> Array:
        zz = ((q - mu) / sd) @ proj
        out: Array = np.sqrt(((zz[:, None, :] - centres[None]) ** 2).sum(-1)).min(1) / np.sqrt(dims)
        return out

    return dist


def main() -> int:
    """Measure and print; write bench/results/temperature.json."""
    from scipy.optimize import minimize

    from training.evaluate import fit_temperature

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--c", type=float, default=0.003, help="the logistic regression's C (the shipped recipe's)")
    ap.add_argument("--dims", type=int, default=32, help="principal axes of the distance")
    ap.add_argument("--folds", type=int, default=5, help="folds of speakers")
    ap.add_argument("--seed", type=int, default=0, help="seed of the speaker folds (numpy Generator)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    pool = pool_parts(data=load(4))
    y = np.array([LABELS.index(str(v)) for v in pool["label"]])
    ci, corpus = pool["ci"], pool["corpus"]
    not_test = pool["part"] != "test"
    speaker = np.array([f"{c}/{s}" for c, s in zip(corpus, pool["speaker"], strict=True)])
    rng = np.random.default_rng(args.seed)
    names = np.unique(speaker[not_test])
    fold_of = dict(zip(names, rng.integers(0, args.folds, len(names)), strict=True))
    fold = np.array([fold_of.get(s, -1) for s in speaker])

    scores: dict[str, tuple[Array, Array]] = {}  # kind -> (window logits, window mask)
    scores["left-out corpora"] = (out_of_fold(pool=pool, y=y, groups=corpus, use=not_test, c=args.c), not_test)
    print("left-out corpora scored", flush=True)
    scores["left-out speakers"] = (out_of_fold(pool=pool, y=y, groups=fold, use=not_test, c=args.c), not_test)
    print("left-out speakers scored", flush=True)
    w, b = fit_linear(x=pool["x"][not_test], y=pool["label"][not_test], labels=LABELS, c=args.c)
    test_logits = np.full((len(y), len(LABELS)), np.nan)
    test_logits[~not_test] = pool["x"][~not_test] @ w + b
    scores["test speakers"] = (test_logits, ~not_test)

    def clip_eval(kind: str, temperature: Array | float) -> tuple[float, float]:
        logits, m = scores[kind]
        t: Array | float = float(temperature) if isinstance(temperature, float) else np.asarray(temperature)[m]
        p, clips = clip_probs(logits=logits[m], ci=ci[m], temperature=t)
        yc = _clip_labels(ci[m], y[m], clips)
        return ece(probs=p, y=yc), nll(probs=p, y=yc)

    fitted = {}
    for kind in ("left-out corpora", "left-out speakers"):
        logits, m = scores[kind]
        clips, inv = np.unique(ci[m], return_inverse=True)
        yc = _clip_labels(ci[m], y[m], clips)
        fitted[kind] = fit_temperature(window_logits=logits[m], clip_index=inv, n_clips=len(clips), y_true=yc)
    kinds = list(scores)
    rows = []
    temps = sorted({*GRID, *(round(v, 3) for v in fitted.values())})
    for t in temps:
        row: dict[str, Any] = {"temperature": t, "fitted_on": [k for k, v in fitted.items() if round(v, 3) == t]}
        for kind in kinds:
            e, n = clip_eval(kind, t)
            row[kind] = {"ece": round(e, 4), "nll": round(n, 4)}
        rows.append(row)

    # a temperature that grows with the distance from the corpora fitted on
    dist = np.full(len(y), np.nan)
    for c in np.unique(corpus[not_test]):
        fit_m = not_test & (corpus != c)
        d = distance_fn(x=pool["x"][fit_m], corpus=corpus[fit_m], dims=args.dims)
        dist[not_test & (corpus == c)] = d(pool["x"][not_test & (corpus == c)])
    dist_corpora = dist.copy()
    dist_speakers = np.full(len(y), np.nan)
    for f in np.unique(fold[not_test]):
        fit_m = not_test & (fold != f)
        d = distance_fn(x=pool["x"][fit_m], corpus=corpus[fit_m], dims=args.dims)
        dist_speakers[not_test & (fold == f)] = d(pool["x"][not_test & (fold == f)])
    d_all = distance_fn(x=pool["x"][not_test], corpus=corpus[not_test], dims=args.dims)
    dist_test = np.full(len(y), np.nan)
    dist_test[~not_test] = d_all(pool["x"][~not_test])
    by_kind = {"left-out corpora": dist_corpora, "left-out speakers": dist_speakers, "test speakers": dist_test}

    def objective(p: Array) -> float:
        return float(np.mean([clip_eval(k, np.exp(p[0] + p[1] * np.nan_to_num(by_kind[k])))[1]
                              for k in ("left-out corpora", "left-out speakers")]))

    res = minimize(objective, np.array([np.log(1.5), 0.0]), method="Nelder-Mead")
    a, b_ = (float(v) for v in res.x)
    by_distance: dict[str, Any] = {"a": round(a, 4), "b": round(b_, 4), "dims": args.dims}
    for kind in kinds:
        t = np.exp(a + b_ * np.nan_to_num(by_kind[kind]))
        e, n = clip_eval(kind, t)
        m = scores[kind][1]
        by_distance[kind] = {"ece": round(e, 4), "nll": round(n, 4),
                             "mean_distance": round(float(by_kind[kind][m].mean()), 4),
                             "mean_temperature": round(float(t[m].mean()), 4)}

    out = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine(), "block": 4,
           "recipe": f"logistic regression C={args.c:g} class-balanced, standardised, block 4",
           "embedder": "the fused int8 embedder of ser-train encoder (training.encoder.run.embedder_file)",
           "folds": args.folds,
           "seed": args.seed, "fitted_temperature": {k: round(v, 4) for k, v in fitted.items()},
           "grid": rows, "by_distance": by_distance, "seconds": round(time.perf_counter() - t0, 1)}
    path = REPO / "bench" / "results" / "temperature.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print("\n| temperature | " + " | ".join(f"ECE {k}" for k in kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for row in rows:
        tag = f" (fitted on {', '.join(row['fitted_on'])})" if row["fitted_on"] else ""
        print(f"| {row['temperature']:.2f}{tag} | " + " | ".join(f"{100 * row[k]['ece']:.1f} %" for k in kinds) + " |")
    cells = [f"{100 * by_distance[k]['ece']:.1f} % (T {by_distance[k]['mean_temperature']:.2f})" for k in kinds]
    print(f"| exp({a:.2f} + {b_:.2f} d) | " + " | ".join(cells) + " |")
    return 0


def _clip_labels(ci: Array, y: Array, clips: Array) -> Array:
    """Each clip's label (of its first window), in the order of ``clips``."""
    first: dict[int, int] = {}
    for c, v in zip(ci.tolist(), y.tolist(), strict=True):
        first.setdefault(c, v)
    return np.array([first[int(c)] for c in clips])


if __name__ == "__main__":
    raise SystemExit(main())
