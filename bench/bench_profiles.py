"""Voice profiles from >= 8 s of neutral speech: ways to use them, measured on cached vectors.

A voice profile is what ``ser calibrate`` and the app's calibration dialog record: neutral speech
of one voice, at least 8 s of it. This script asks whether anything that can be computed from such
a profile helps more than the shipped logit shift. It reads the cached block-4 window vectors of
every clip (as ``bench/bench_adaptation.py`` does), fits the shipped read-out's recipe (standardised,
class-balanced logistic regression, ``--c``) and compares, on the same clips:

* ``zero-shot``: no profile;
* ``logit shift s``: the shipped method, the logits minus ``s`` times (the profile's mean logits
  minus the reference, the mean over training speakers of their neutral windows' mean logits);
  the shipped model uses s = 0.5, chosen on validation;
* ``neutral-centred head``: a second head fitted on each training speaker's windows minus that
  speaker's neutral mean, applied to a new voice's windows minus its profile's mean;
* ``speaker-centred head``: a second head fitted on each training speaker's windows minus the
  mean of all their speech, applied with the new voice's centre estimated as the profile's mean
  plus the training speakers' typical (all speech - neutral) offset;
* ``blend``: the mean of the shipped head's logits and one of those heads' (each half).

Profiles: random neutral clips of a speaker until their speech windows span >= 8 s (``--seeds``
draws, results averaged); a profile's clips are never scored, and a speaker without enough
neutral speech, or with nothing else to score, is left out of both columns. Three protocols, the
choice made on the first only:

1. each of the nine selection corpora left out in turn (fitted on every non-test window of the
   other eight; never the two held-out corpora), mean of per-corpus UAR;
2. the test speakers of those nine corpora (fitted on every non-test window of the nine), clips
   pooled;
3. the held-out protocol: the two corpora ``ser-train encoder`` holds out whole (UEM, emotiontts),
   fitted on the nine, mean of the two corpora's UAR.

Usage: ``python bench/bench_profiles.py [--c 0.003] [--seeds 3]`` (about 20 minutes on 2 cores).
Writes ``bench/results/profiles.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_adaptation as ba  # noqa: E402  (the sibling script: its loader of cached vectors and read-out recipe)

Array = np.ndarray
PROFILE_S = 8.0
HELD_OUT = ("uem-es", "emotiontts-ko")


def _means(x: Array, groups: Array, use: Array | None = None) -> dict[str, Array]:
    out = {}
    for g in np.unique(groups):
        m = groups == g
        if use is not None:
            m &= use
        if m.any():
            out[str(g)] = x[m].mean(0)
    return out


def draw_profiles(*, pool: dict[str, Array], seconds: Array, seed: int) -> dict[str, Array]:
    """Speaker -> the clip indices of a profile: random neutral clips until >= 8 s of speech windows."""
    rng = np.random.default_rng(seed)
    n = len(seconds)
    clip_spk = np.empty(n, dtype=object)
    clip_lab = np.empty(n, dtype=object)
    clip_spk[pool["ci"]] = pool["speaker"]
    clip_lab[pool["ci"]] = pool["label"]
    has = np.bincount(pool["ci"], minlength=n) > 0
    out: dict[str, Array] = {}
    for s in np.unique(pool["speaker"]):
        taken: list[int] = []
        total = 0.0
        for c in rng.permutation(np.flatnonzero((clip_spk == s) & (clip_lab == "neutral") & has)):
            taken.append(int(c))
            total += float(seconds[c])
            if total >= PROFILE_S:
                break
        rest = np.setdiff1d(np.flatnonzero((clip_spk == s) & has), taken)
        if total >= PROFILE_S and rest.size:
            out[str(s)] = np.array(taken)
    return out


def fit_all(*, pool: dict[str, Array], use: Array, labels: tuple[str, ...], c: float) -> dict[str, Any]:
    """Fit the shipped head, the two centred heads and the reference constants on the windows ``use``."""
    x, spk, y = pool["x"][use], pool["speaker"][use], pool["label"][use]
    neutral = _means(x, spk, y == "neutral")
    everything = _means(x, spk)
    w, b = ba.fit_linear(x=x, y=y, labels=labels, c=c)
    has_neutral = np.isin(spk, list(neutral))
    n_centre = np.stack([neutral.get(str(s), np.zeros(x.shape[1])) for s in spk])
    s_centre = np.stack([everything[str(s)] for s in spk])
    return {
        "shipped": (w, b),
        "neutral_centred": ba.fit_linear(x=(x - n_centre)[has_neutral], y=y[has_neutral], labels=labels, c=c),
        "speaker_centred": ba.fit_linear(x=x - s_centre, y=y, labels=labels, c=c),
        "reference_logits": np.mean([v @ w + b for v in neutral.values()], axis=0),
        "offset": np.mean([everything[s] - neutral[s] for s in neutral], axis=0),
    }


def variants(*, heads: dict[str, Any], x: Array, centre: Array) -> dict[str, Array]:
    """Logits of each way of using the profile; ``centre`` is each window's speaker's profile mean vector."""
    w, b = heads["shipped"]
    zero = x @ w + b
    out = {"zero-shot": zero}
    for s in (0.25, 0.5, 0.75, 1.0):
        out[f"logit shift s={s}"] = zero - s * (centre @ w + b - heads["reference_logits"])
    wn, bn = heads["neutral_centred"]
    ws, bs = heads["speaker_centred"]
    out["neutral-centred head"] = (x - centre) @ wn + bn
    out["speaker-centred head"] = (x - centre - heads["offset"]) @ ws + bs
    out["blend: shipped + neutral-centred head"] = 0.5 * zero + 0.5 * out["neutral-centred head"]
    out["blend: shipped + speaker-centred head"] = 0.5 * zero + 0.5 * out["speaker-centred head"]
    return out


def score(
    *, pool: dict[str, Array], heads: dict[str, Any], scored: Array, profiles: dict[str, Array],
    labels: tuple[str, ...],
) -> dict[str, dict[str, float]]:
    """Per variant: UAR per corpus and pooled, on the profiled speakers' clips outside their profiles."""
    spk = pool["speaker"]
    mine = {s: p for s, p in profiles.items() if s in set(spk[scored].tolist())}
    used = np.concatenate(list(mine.values())) if mine else np.array([], dtype=np.int64)
    idx = np.flatnonzero(scored & np.isin(spk, list(mine)) & ~np.isin(pool["ci"], used))
    centres = {s: pool["x"][np.isin(pool["ci"], p)].mean(0) for s, p in mine.items()}
    centre = np.stack([centres[str(s)] for s in spk[idx]])
    out: dict[str, dict[str, float]] = {}
    corpus, ci, lab = pool["corpus"][idx], pool["ci"][idx], pool["label"][idx]
    for name, lg in variants(heads=heads, x=pool["x"][idx], centre=centre).items():
        r = {str(c): ba.clip_uar(logits=lg[corpus == c], ci=ci[corpus == c], label=lab[corpus == c], labels=labels)
             for c in np.unique(corpus)}
        r["pooled"] = ba.clip_uar(logits=lg, ci=ci, label=lab, labels=labels)
        out[name] = r
    out["_speakers"] = {"n": float(len(mine))}
    return out


def main() -> int:
    """Measure, print the table, write bench/results/profiles.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--c", type=float, default=0.003, help="inverse regularisation (the shipped recipe's C)")
    ap.add_argument("--seeds", type=int, default=3, help="profile draws to average")
    args = ap.parse_args()
    from training.corpora import HARMONISED_LABELS as labels

    data = ba.load(4)
    pool = ba.pool_parts(data=data)
    seconds = np.concatenate([data[p]["seconds"] for p in ba.ALL_PARTS])
    draws = [draw_profiles(pool=pool, seconds=seconds, seed=k) for k in range(args.seeds)]
    corpus, part = pool["corpus"], pool["part"]
    nine = [str(c) for c in np.unique(corpus) if c not in HELD_OUT]
    fit_nine = (part != "test") & ~np.isin(corpus, HELD_OUT)
    t0 = time.perf_counter()

    def run(use: Array, scored: Array) -> list[dict[str, dict[str, float]]]:
        heads = fit_all(pool=pool, use=use, labels=labels, c=args.c)
        return [score(pool=pool, heads=heads, scored=scored, profiles=d, labels=labels) for d in draws]

    res: dict[str, list[dict[str, dict[str, float]]]] = {
        "test speakers": run(fit_nine, (part == "test") & np.isin(corpus, nine)),
        "held out": run(fit_nine, np.isin(corpus, HELD_OUT)),
    }
    for held in nine:
        res[f"left out: {held}"] = run(fit_nine & (corpus != held), corpus == held)
        print(f"{held} done ({time.perf_counter() - t0:.0f} s)", flush=True)

    def mean_of(key: str, variant: str, field: str) -> float:
        return float(np.mean([r[variant][field] for r in res[key]]))

    names = [v for v in res["held out"][0] if not v.startswith("_")]
    table: dict[str, dict[str, float]] = {}
    for v in names:
        loco = float(np.mean([mean_of(f"left out: {c}", v, c) for c in nine]))
        held_out = float(np.mean([mean_of("held out", v, c) for c in HELD_OUT]))
        table[v] = {"nine corpora left out": loco, "test speakers": mean_of("test speakers", v, "pooled"),
                    "held out": held_out, **{f"held out: {c}": mean_of("held out", v, c) for c in HELD_OUT}}
    zero = table["zero-shot"]
    print("\n| way of using the profile | 9 corpora left out | test speakers | held-out corpora (UEM / emotiontts) |")
    print("|---|---|---|---|")
    for v, r in table.items():
        cells = [f"{100 * r[k]:.1f}" + ("" if v == "zero-shot" else f" ({100 * (r[k] - zero[k]):+.1f})")
                 for k in ("nine corpora left out", "test speakers", "held out")]
        cells[2] += f" ({100 * r['held out: uem-es']:.1f} / {100 * r['held out: emotiontts-ko']:.1f})"
        print(f"| {v} | " + " | ".join(cells) + " |")
    out = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": ba.machine(), "c": args.c,
           "seeds": args.seeds, "profile_s": PROFILE_S, "held_out": list(HELD_OUT),
           "seconds": round(time.perf_counter() - t0, 1), "table": table, "runs": res}
    path = REPO / "bench" / "results" / "profiles.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
