"""Evaluation on voices the model never heard, through the engine's model wrapper.

Every figure here is computed from logits that :meth:`ser_engine.inference.model.EmotionModel.predict`
(the ONNX graph users run, through the path ``ser analyze`` takes) gives for the
cached speech windows, normalised there with the model's own statistics; clip
probabilities are the mean of the window probabilities, as ``ser analyze`` does.
Voice calibration uses :func:`ser_engine.inference.profile.shift_from_logits`, the
function ``ser calibrate`` and the app use, so a profile is evaluated exactly
as a user gets it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError
from training.corpora import Clip
from training.evaluate import classification_metrics, clip_probabilities
from training.features import WindowSet

__all__ = [
    "THRESHOLD_GRID",
    "adaptation_eval",
    "calibration_eval",
    "choose_threshold",
    "engine_logits",
    "per_corpus_metrics",
    "selective",
    "speaker_mean_reference",
    "voice_reference",
]

THRESHOLD_GRID = tuple(round(0.2 + 0.01 * i, 2) for i in range(71))
TARGET_ANSWERED_ACCURACY = 0.6
MIN_COVERAGE = 0.3


def engine_logits(model: Any, windows: WindowSet, *, batch: int = 512) -> npt.NDArray[np.float32]:
    """Logits of every window of ``windows`` from an :class:`~ser_engine.inference.model.EmotionModel`.

    The cached (un-normalised) features go through :meth:`~ser_engine.inference.model.EmotionModel.predict`
    in chunks of ``batch`` windows (the cache may be float16; each chunk is widened to float32).

    Returns
    -------
    ndarray, shape (n_windows, n_labels), float32
        After the model's voice profile's shift, when it has one.
    """
    out = [np.zeros((0, len(model.labels)), np.float32)]
    for i in range(0, len(windows), batch):
        out.append(model.predict(windows.features[i : i + batch].astype(np.float32), batch_size=batch).logits)
    return np.concatenate(out)


def _speaker_of(clips: Sequence[Clip]) -> npt.NDArray[np.str_]:
    return np.array([c.speaker for c in clips])


def per_corpus_metrics(
    *,
    logits: npt.ArrayLike,
    windows: WindowSet,
    labels: Sequence[str],
    temperature: float,
    shift_per_clip: npt.ArrayLike | None = None,
    keep: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """Clip-level metrics overall (``"all"``) and per corpus.

    Parameters
    ----------
    logits : array_like, shape (n_windows, n_labels)
    windows : WindowSet
        The windows' clips and clip indices.
    shift_per_clip : array_like, shape (n_clips, n_labels), optional
        Voice-profile shift subtracted from the logits of each clip's windows.
    keep : array_like of bool, shape (n_clips,), optional
        Clips to score (default all).
    """
    lg = np.asarray(logits, dtype=np.float64)
    if shift_per_clip is not None:
        lg = lg - np.asarray(shift_per_clip)[windows.clip_index]
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[c.label] for c in windows.clips])
    probs = clip_probabilities(window_logits=lg, clip_index=windows.clip_index, n_clips=len(windows.clips),
                               temperature=temperature)
    ok = ~np.isnan(probs[:, 0])
    if keep is not None:
        ok &= np.asarray(keep, dtype=bool)
    corpus = np.array([c.corpus for c in windows.clips])
    out: dict[str, Any] = {}
    for name in ["all", *sorted(set(corpus[ok]))]:
        sel = ok if name == "all" else ok & (corpus == name)
        if sel.any():
            m = classification_metrics(y_true=y[sel], y_pred=probs[sel].argmax(axis=1), labels=labels, probs=probs[sel])
            m["labels_present"] = [labels[i] for i in sorted(set(y[sel]))]
            m["speakers"] = len({windows.clips[i].speaker for i in np.flatnonzero(sel)})
            out[name] = m
    out["_probs"] = probs
    out["_y"] = y
    return out


def voice_reference(
    *, logits: npt.ArrayLike, windows: WindowSet, neutral: str = "neutral"
) -> tuple[npt.NDArray[np.float64], int]:
    """Compute the reference logits of a "placed" neutral voice.

    The mean over speakers of each speaker's mean logits over the speech
    windows of their neutral clips.

    Returns
    -------
    reference : ndarray, shape (n_labels,)
    n_speakers : int
    """
    lg = np.asarray(logits, dtype=np.float64)
    spk = _speaker_of(windows.clips)[windows.clip_index]
    is_neutral = np.array([c.label == neutral for c in windows.clips])[windows.clip_index]
    means = [lg[is_neutral & (spk == s)].mean(axis=0) for s in sorted(set(spk[is_neutral]))]
    if not means:
        raise ParameterError("no neutral speech windows to build the voice reference from")
    return np.mean(means, axis=0), len(means)


def calibration_eval(
    *,
    logits: npt.ArrayLike,
    windows: WindowSet,
    labels: Sequence[str],
    temperature: float,
    reference: npt.ArrayLike,
    k: int,
    seed: int = 0,
    strength: float = 1.0,
) -> dict[str, Any]:
    """Zero-shot against calibrated on the same clips, per speaker.

    For every speaker with more than ``k`` neutral clips (with speech), ``k`` of
    them are drawn (seeded per speaker) to make the voice profile
    (:func:`ser_engine.inference.profile.shift_from_logits` over their speech windows, with
    ``strength``);
    all the speaker's other clips are scored without and with the profile.

    Returns
    -------
    dict
        ``{"k", "zero_shot": per-corpus metrics, "calibrated": per-corpus metrics,
        "speakers": n, "speakers_skipped": n, "profile_speech_windows": mean}``
    """
    from ser_engine.inference.profile import shift_from_logits

    lg = np.asarray(logits, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    n_clips = len(windows.clips)
    has = windows.windows_per_clip() > 0
    speakers = _speaker_of(windows.clips)
    shift = np.zeros((n_clips, lg.shape[1]))
    keep = np.zeros(n_clips, dtype=bool)
    used, skipped, n_prof = 0, 0, []
    for s in sorted(set(speakers)):
        mine = np.flatnonzero((speakers == s) & has)
        neutral = [i for i in mine if windows.clips[i].label == "neutral"]
        if len(neutral) <= k:
            skipped += 1
            continue
        rng = np.random.default_rng([seed, zlib.crc32(s.encode()), k])
        chosen = sorted(rng.choice(neutral, size=k, replace=False).tolist())
        wins = np.isin(windows.clip_index, chosen)
        shift[mine] = shift_from_logits(
            window_logits=lg[wins].astype(np.float32), reference=ref.astype(np.float32), strength=strength
        )
        keep[mine] = True
        keep[chosen] = False
        used += 1
        n_prof.append(int(wins.sum()))
    zero = per_corpus_metrics(logits=lg, windows=windows, labels=labels, temperature=temperature, keep=keep)
    cal = per_corpus_metrics(
        logits=lg, windows=windows, labels=labels, temperature=temperature, keep=keep, shift_per_clip=shift
    )
    return {
        "k": k,
        "zero_shot": zero,
        "calibrated": cal,
        "speakers": used,
        "speakers_skipped": skipped,
        "profile_speech_windows": float(np.mean(n_prof)) if n_prof else 0.0,
    }


def adaptation_eval(
    *,
    logits: npt.ArrayLike,
    windows: WindowSet,
    labels: Sequence[str],
    temperature: float,
    reference_all: npt.ArrayLike,
    strength: float,
) -> dict[str, Any]:
    """Unsupervised adaptation to each voice (no labels, no neutral recording), for the report.

    Each speaker's shift is ``strength`` times (the mean logits over ALL their speech windows
    minus ``reference_all``, the same mean for reference speakers). It assumes the speaker's
    clips cover the emotions about as evenly as the reference speakers' did (true of an acted
    corpus, not of a person who is mostly calm); not a feature of the engine yet.

    Returns
    -------
    dict
        Per-corpus metrics (:func:`per_corpus_metrics`) of the adapted clips.
    """
    lg = np.asarray(logits, dtype=np.float64)
    spk = _speaker_of(windows.clips)[windows.clip_index]
    shift = np.zeros_like(lg)
    for s in set(spk.tolist()):
        mine = spk == s
        shift[mine] = strength * (lg[mine].mean(axis=0) - np.asarray(reference_all))
    return per_corpus_metrics(logits=lg - shift, windows=windows, labels=labels, temperature=temperature)


def speaker_mean_reference(*, logits: npt.ArrayLike, windows: WindowSet) -> npt.NDArray[np.float64]:
    """Mean over speakers of each speaker's mean logits over all their speech windows, shape ``(n_labels,)``."""
    lg = np.asarray(logits, dtype=np.float64)
    spk = _speaker_of(windows.clips)[windows.clip_index]
    return np.asarray(np.mean([lg[spk == s].mean(axis=0) for s in sorted(set(spk.tolist()))], axis=0), dtype=np.float64)


def selective(probs: npt.ArrayLike, y: npt.ArrayLike, threshold: float) -> dict[str, float]:
    """Coverage and accuracy of the clips whose top probability reaches ``threshold``."""
    p = np.asarray(probs)
    yy = np.asarray(y)
    ok = ~np.isnan(p[:, 0])
    p, yy = p[ok], yy[ok]
    conf = p.max(axis=1)
    answered = conf >= threshold
    acc = float((p[answered].argmax(axis=1) == yy[answered]).mean()) if answered.any() else float("nan")
    below = ~answered
    acc_below = float((p[below].argmax(axis=1) == yy[below]).mean()) if below.any() else float("nan")
    return {
        "threshold": float(threshold),
        "coverage": float(answered.mean()) if answered.size else 0.0,
        "accuracy_answered": acc,
        "accuracy_uncertain": acc_below,
        "accuracy_all": float((p.argmax(axis=1) == yy).mean()) if yy.size else float("nan"),
        "n": int(yy.size),
    }


TRADEOFF_GRID = tuple(round(0.05 * i, 2) for i in range(4, 19))
"""Thresholds of a model's ``confidence_tradeoff`` curve: 0.20, 0.25, ... 0.90."""
TARGET_COVERAGE = 0.8
"""The encoder model's threshold rule: at least this share of the validation clips stays answered."""


def tradeoff_points(
    *, confidence: npt.ArrayLike, right: npt.ArrayLike, grid: tuple[float, ...] = TRADEOFF_GRID
) -> list[dict[str, float]]:
    """Coverage and accuracy of the answered clips at each threshold (``confidence_tradeoff`` points).

    Parameters
    ----------
    confidence : array_like, shape (n_clips,)
        Each clip's top probability.
    right : array_like of bool, shape (n_clips,)
        Whether each clip's top label is its true label.
    grid : tuple of float
        Thresholds, increasing.

    Returns
    -------
    list of dict
        ``{"min_confidence", "coverage", "accuracy"}`` per threshold, rounded to 4 decimals
        (accuracy 0 where nothing is answered).
    """
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(right, dtype=bool)
    if conf.ndim != 1 or conf.shape != ok.shape or conf.size == 0:
        raise ParameterError(f"confidence and right must be equal non-empty 1-D arrays, got {conf.shape}, {ok.shape}")
    rows = []
    for t in grid:
        answered = conf >= t
        n = int(answered.sum())
        rows.append({"min_confidence": float(t), "coverage": round(n / conf.size, 4),
                     "accuracy": round(float(ok[answered].mean()) if n else 0.0, 4)})
    return rows


def threshold_for_coverage(points: list[dict[str, float]], *, coverage: float = TARGET_COVERAGE) -> float:
    """Return the largest threshold of ``points`` whose coverage is at least ``coverage`` (else the first)."""
    fine = [p["min_confidence"] for p in points if p["coverage"] >= coverage]
    return max(fine) if fine else points[0]["min_confidence"]


def choose_threshold(probs: npt.ArrayLike, y: npt.ArrayLike) -> tuple[float, list[dict[str, float]]]:
    """Choose the "uncertain" threshold on validation clips.

    The smallest grid value at which the clips answered (top probability at or
    above it) are right at least ``TARGET_ANSWERED_ACCURACY`` of the time while
    at least ``MIN_COVERAGE`` of the clips are answered; when no value reaches
    the target, the value with the best answered accuracy at that coverage.

    Returns
    -------
    threshold : float
    table : list of dict
        :func:`selective` at every grid value.
    """
    table = [selective(probs, y, t) for t in THRESHOLD_GRID]
    feasible = [r for r in table if r["coverage"] >= MIN_COVERAGE]
    if not feasible:
        return THRESHOLD_GRID[0], table
    hit = [r for r in feasible if r["accuracy_answered"] >= TARGET_ANSWERED_ACCURACY]
    if hit:
        return hit[0]["threshold"], table
    best = max(feasible, key=lambda r: r["accuracy_answered"])
    return best["threshold"], table
