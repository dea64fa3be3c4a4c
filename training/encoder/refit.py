"""The shipped read-out: the chosen recipe refitted on every corpus, judged by leaving each out.

:func:`training.encoder.head.select_head` chooses a read-out (blocks, classifier, C) with three
corpora held out, so that choice and the held-out figures stay honest. A user's voice is never
from any of our corpora, though, and more languages and recording set-ups in training carry
further than fewer. So the model that ships is the same recipe fitted again on the training,
validation and both unseen parts of all corpora (:func:`refit_all`): only the test speakers of
the training corpora stay out, and they still measure it on voices it never heard.

What it gets on a corpus it never heard cannot be measured on that model, so it is estimated
for the recipe: each corpus in turn is left out, the recipe is fitted on the others, and the
left-out corpus's clips in the pool are scored (leave-one-corpus-out,
:func:`leave_corpus_out`): every clip but the test speakers'. Those out-of-fold
logits are also what the shipped temperature, the uncertainty threshold and the voice
reference are fitted on: every one of them then describes voices the read-out never heard.

The recipe itself is chosen the same way before (:func:`choose_recipe`): one unseen validation
corpus is a noisy judge, so the validation's choice and a few linear read-outs are each scored
with every corpus of the selection parts left out in turn; the unseen test corpora stay unread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError
from training.crosscorpus import per_corpus_metrics
from training.encoder.evaluate import mean_corpus_uar, strip
from training.encoder.head import (
    AFFECT_AXES,
    Candidate,
    DenseHead,
    EncoderHead,
    Selection,
    _affect_temperature,
    _prepare,
    _window_labels,
    affect_metrics,
    fit_affect,
    fit_candidate,
)
from training.evaluate import fit_temperature
from training.features import WindowSet

__all__ = ["RECIPE_CANDIDATES", "LeftOut", "choose_recipe", "fit_recipe", "leave_corpus_out", "refit_all",
           "shipping_pool"]

FloatArray = npt.NDArray[np.float64]
Log = Callable[[str], None]

SHIPPING_PARTS: tuple[str, ...] = ("train", "val", "unseen_val", "unseen_test")
"""Split parts the shipped read-out is fitted on: all but the test speakers of the training corpora."""


SELECTION_PARTS: tuple[str, ...] = ("train", "val", "unseen_val")
"""Split parts the recipe is chosen on: the unseen test corpora and all test speakers stay out."""
RECIPE_CANDIDATES: tuple[Candidate, ...] = (
    Candidate("logreg", (4,), 0.01),
    Candidate("logreg", (4,), 0.003),
    Candidate("logreg", (3,), 0.01),
    Candidate("logreg", (2, 3), 0.01),
)
"""Read-outs compared with the validation's choice by leaving each selection corpus out in turn."""


def shipping_pool(parts: dict[str, WindowSet], *, names: Sequence[str] = SHIPPING_PARTS) -> WindowSet:
    """Join the parts ``names`` of ``parts`` (those present) into one set."""
    present = [parts[p] for p in names if p in parts and len(parts[p].clips)]
    if not present:
        raise ParameterError("no windows to fit the shipped read-out on")
    pool = present[0]
    for ws in present[1:]:
        pool = pool.concat(ws)
    return pool


def _fit_emotion(*, train: WindowSet, candidate: Candidate, labels: Sequence[str], seed: int) -> DenseHead:
    prep = _prepare(train, candidate.blocks)
    _, y = _window_labels(train, labels)
    head, _ = fit_candidate(candidate, prep=prep, y=y, n_out=len(labels), seed=seed)
    return head


def fit_recipe(
    *, train: WindowSet, selection: Selection, labels: Sequence[str], seed: int = 0, with_voice: bool = True
) -> EncoderHead:
    """Fit the chosen read-out (emotion candidate, each affect axis's C, voice head) on ``train``.

    Parameters
    ----------
    train : WindowSet
        Block-mean vectors, shape (n_windows, n_blocks, d), with their clips.
    selection : Selection
        What :func:`~training.encoder.head.select_head` chose.
    labels : sequence of str
        Emotion labels in output order.
    seed : int
    with_voice : bool
        Also fit the voice calibration head (:func:`training.encoder.voice.fit_voice_head`).

    Returns
    -------
    EncoderHead
    """
    from training.encoder.voice import fit_voice_head

    cand = selection.candidate
    prep = _prepare(train, cand.blocks)
    _, y = _window_labels(train, labels)
    emotion, _ = fit_candidate(cand, prep=prep, y=y, n_out=len(labels), seed=seed)
    ws, bs = [], []
    for axis in AFFECT_AXES:
        w, b = fit_affect(prep=prep, train=train, axis=axis, c=float(selection.affect_table[axis.name]["C"]))
        ws.append(w)
        bs.append(b)
    affect = DenseHead.fold(blocks=cand.blocks, mean=prep.mean, std=prep.std, weights=[np.stack(ws, axis=1)],
                            biases=[np.array(bs)])
    voice = fit_voice_head(train=train, candidate=cand, labels=labels, seed=seed) if with_voice else None
    return EncoderHead(emotion=emotion, affect=affect, voice=voice)


@dataclass
class LeftOut:
    """Out-of-fold outputs of :func:`leave_corpus_out`.

    Attributes
    ----------
    emotion : ndarray, shape (n_windows, n_labels)
        Each window's emotion logits from the read-out fitted without its corpus.
    affect : ndarray, shape (n_windows, 2), or None
        The same for arousal and valence (None when only the emotions were fitted).
    corpora : list of str
        The corpora, each left out once.
    """

    emotion: FloatArray
    affect: FloatArray | None
    corpora: list[str]


def leave_corpus_out(
    *, pool: WindowSet, selection: Selection, labels: Sequence[str], seed: int = 0, log: Log = print,
    with_affect: bool = True,
) -> LeftOut:
    """Score every corpus of ``pool`` with the recipe fitted on the other corpora.

    Parameters
    ----------
    pool : WindowSet
        Windows of at least two corpora.
    selection : Selection
    labels : sequence of str
    seed : int
    log : callable
    with_affect : bool
        Also fit and score the arousal and valence read-outs.

    Returns
    -------
    LeftOut
    """
    corpus = np.array([c.corpus for c in pool.clips])
    corpora = sorted(set(corpus.tolist()))
    if len(corpora) < 2:
        raise ParameterError(f"leaving a corpus out needs at least two corpora, got {corpora}")
    emotion = np.full((len(pool), len(labels)), np.nan)
    affect = np.full((len(pool), len(AFFECT_AXES)), np.nan) if with_affect else None
    for name in corpora:
        held = corpus == name
        rows = held[pool.clip_index]
        train = pool.subset_clips(~held)
        if affect is not None:
            head = fit_recipe(train=train, selection=selection, labels=labels, seed=seed, with_voice=False)
            emotion[rows] = head.emotion(pool.features[rows])
            affect[rows] = head.affect(pool.features[rows])
        else:
            one = _fit_emotion(train=train, candidate=selection.candidate, labels=labels, seed=seed)
            emotion[rows] = one(pool.features[rows])
        log(f"left out {name}: {int(held.sum())} clips scored by a read-out of the other {len(corpora) - 1} corpora")
    return LeftOut(emotion=emotion, affect=affect, corpora=corpora)


def choose_recipe(
    *, parts: dict[str, WindowSet], selection: Selection, labels: Sequence[str], seed: int = 0, log: Log = print
) -> tuple[Selection, dict[str, Any]]:
    """Choose the read-out by leaving each selection corpus out in turn.

    One unseen validation corpus is a noisy judge of what carries to new corpora: the
    validation's choice (``selection``) and :data:`RECIPE_CANDIDATES` are each fitted on all but
    one corpus of :data:`SELECTION_PARTS` and scored on that corpus, for every corpus; the highest
    mean of per-corpus UAR wins (earlier in the list on a tie). The unseen test corpora and the
    test speakers are not read.

    Returns
    -------
    selection : Selection
        ``selection`` with the chosen candidate, its head fitted on the training windows and the
        affect temperatures refitted on the validation clips if the blocks changed.
    table : dict
        ``rule``, ``corpora`` and one row per candidate (``left_out_mean_uar``, ``per_corpus``).
    """
    from dataclasses import replace

    pool = shipping_pool(parts, names=SELECTION_PARTS)
    cands = [selection.candidate, *(c for c in RECIPE_CANDIDATES if c != selection.candidate)]
    rows: list[dict[str, Any]] = []
    for cand in cands:
        oof = leave_corpus_out(pool=pool, selection=replace(selection, candidate=cand), labels=labels, seed=seed,
                               log=lambda _: None, with_affect=False)
        m = per_corpus_metrics(logits=oof.emotion, windows=pool, labels=labels, temperature=1.0)
        per = {k: round(float(v["uar"]), 4) for k, v in strip(m).items() if k != "all"}
        rows.append({**cand.to_dict(), "left_out_mean_uar": round(mean_corpus_uar(m), 4), "per_corpus": per})
        log(f"recipe {cand.name}: mean UAR {rows[-1]['left_out_mean_uar']:.4f} with each of "
            f"{len(per)} corpora left out in turn")
    best = max(range(len(rows)), key=lambda i: (rows[i]["left_out_mean_uar"], -i))
    rows[best]["chosen"] = True
    chosen = cands[best]
    table = {"rule": "highest mean UAR over the corpora of the training, validation and unseen-validation parts, "
             "each scored by the read-out fitted on the others (the validation's choice first on a tie)",
             "corpora": sorted({c.corpus for c in pool.clips}), "table": rows}
    if chosen == selection.candidate:
        return selection, table
    moved = replace(selection, candidate=chosen)
    head = fit_recipe(train=parts["train"], selection=moved, labels=labels, seed=seed)
    sel_ws = shipping_pool(parts, names=("val", "unseen_val"))
    temps = tuple(_affect_temperature(logits=head.affect(sel_ws.features)[:, i], ws=sel_ws, axis=axis)
                  for i, axis in enumerate(AFFECT_AXES))
    log(f"recipe chosen: {chosen.name} (the validation chose {selection.candidate.name})")
    return replace(moved, head=head, affect_temperature=(float(temps[0]), float(temps[1]))), table


def refit_all(
    *, parts: dict[str, WindowSet], selection: Selection, labels: Sequence[str], seed: int = 0, log: Log = print
) -> dict[str, Any]:
    """Fit the shipped read-out on every corpus and estimate what it gets on corpora never heard.

    Parameters
    ----------
    parts : dict of str to WindowSet
        Vectors per split part; :data:`SHIPPING_PARTS` are fitted on, ``test`` is scored.
    selection : Selection
        The recipe (chosen with the unseen corpora held out).
    labels : sequence of str
    seed : int
    log : callable

    Returns
    -------
    dict
        ``head`` (:class:`EncoderHead`), ``temperature`` and ``affect_temperature`` (fitted on
        the out-of-fold clip logits), ``left_out`` (per-corpus metrics of the out-of-fold
        predictions at that temperature, with ``mean_corpus_uar``), ``left_out_affect``
        (binary metrics per axis), ``pool`` (the :class:`WindowSet` fitted on), ``oof``
        (:class:`LeftOut`), ``corpora``, ``train_windows``.
    """
    pool = shipping_pool(parts)
    oof = leave_corpus_out(pool=pool, selection=selection, labels=labels, seed=seed, log=log)
    assert oof.affect is not None
    head = fit_recipe(train=pool, selection=selection, labels=labels, seed=seed)
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[c.label] for c in pool.clips])
    temperature = fit_temperature(window_logits=oof.emotion, clip_index=pool.clip_index, n_clips=len(pool.clips),
                                  y_true=y)
    metrics = per_corpus_metrics(logits=oof.emotion, windows=pool, labels=labels, temperature=temperature)
    table: dict[str, Any] = strip(metrics)
    table["mean_corpus_uar"] = round(mean_corpus_uar(metrics), 4)
    affect_temps, affect_tables = [], {}
    for i, axis in enumerate(AFFECT_AXES):
        t = _affect_temperature(logits=oof.affect[:, i], ws=pool, axis=axis)
        affect_temps.append(t)
        m = affect_metrics(logits=oof.affect[:, i], ws=pool, axis=axis, temperature=t)
        per = [v["uar"] for k, v in m.items() if k != "all"]
        affect_tables[axis.name] = {**m, "mean_corpus_uar": round(float(np.mean(per)), 4) if per else None}
    log(f"left out in turn: mean corpus UAR {table['mean_corpus_uar']:.4f} over {len(oof.corpora)} corpora; "
        f"temperature {temperature:.3f}; shipped read-out fitted on {len(pool)} windows of {len(pool.clips)} clips")
    return {
        "head": head,
        "temperature": temperature,
        "affect_temperature": (float(affect_temps[0]), float(affect_temps[1])),
        "left_out": table,
        "left_out_affect": affect_tables,
        "pool": pool,
        "oof": oof,
        "corpora": oof.corpora,
        "train_windows": len(pool),
        "_probs": metrics["_probs"],
        "_y": metrics["_y"],
    }

