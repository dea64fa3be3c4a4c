"""Evaluation of a model's window logits on clips: zero-shot, with voice profiles, selective, affect.

Shared by the encoder model and the old CNN, so both are measured on the same clips with the
same profiles. Clip probabilities average the window probabilities (:mod:`training.crosscorpus`,
as ``ser analyze``). A voice profile here is what the product makes: the speech windows of a
speaker's neutral clips, drawn in a seeded order until their voiced speech (as ``ser analyze``
and ``ser calibrate`` count it) reaches :data:`ser_engine.inference.profile.MIN_SPEECH_S` seconds
(:func:`profile_clips`), turned into a logit shift by :func:`ser_engine.inference.profile.shift_from_logits`
and, for a model with a voice calibration head, blended as the engine does
(:func:`training.encoder.voice.blend_logits`); the profile's clips are not scored.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.inference.model import EmotionModel
from ser_engine.inference.profile import MIN_SPEECH_S, shift_from_logits
from training.corpora import Clip
from training.crosscorpus import per_corpus_metrics, selective
from training.encoder.head import AFFECT_AXES, DenseHead, affect_metrics, binary_metrics, derived_affect_probs
from training.features import WindowSet

__all__ = [
    "Profiles",
    "clip_voiced_seconds",
    "embedding_reference",
    "embedding_shift_metrics",
    "mean_corpus_uar",
    "model_tables",
    "profile_clips",
    "profiled_metrics",
    "strip",
]

FloatArray = npt.NDArray[np.float64]


def strip(metrics: dict[str, Any]) -> dict[str, Any]:
    """Drop the private arrays (``_probs``, ``_y``) of a per-corpus result."""
    return {k: v for k, v in metrics.items() if not k.startswith("_")}


def mean_corpus_uar(metrics: dict[str, Any]) -> float:
    """Mean of the per-corpus UARs of a per-corpus result (``"all"`` left out)."""
    uars = [v["uar"] for k, v in metrics.items() if k != "all" and not k.startswith("_")]
    return float(np.mean(uars)) if uars else float("nan")


def clip_voiced_seconds(*, clips: Sequence[Clip], model: EmotionModel, workers: int = 1) -> FloatArray:
    """Voiced seconds of each clip as ``ser analyze`` reports them, the measure of a voice profile's length.

    Parameters
    ----------
    clips : sequence of Clip
    model : EmotionModel
        Any model with 3 s windows every 0.5 s (the gate does not depend on the model; the old CNN
        is the fast one).
    workers : int
        Threads of :func:`ser_engine.files.analysis.analyze_paths`.

    Returns
    -------
    ndarray, shape (n_clips,)
        :attr:`ser_engine.files.analysis.FileResult.speech_s` (0 for a file that failed).
    """
    from ser_engine.files.analysis import analyze_paths

    out = np.zeros(len(clips))
    results = analyze_paths([c.path for c in clips], model, workers=workers, expand=False)
    for i, r in enumerate(results):
        out[i] = r.speech_s if r.ok else 0.0
    return out


@dataclass(frozen=True)
class Profiles:
    """The profile clips of each speaker.

    Attributes
    ----------
    chosen : dict of str to list of int
        Speaker -> indices of the neutral clips making the profile.
    speech_s : dict of str to float
        Speaker -> seconds of speech in the profile.
    skipped : list of str
        Speakers without enough neutral speech, or with nothing left to score.
    """

    chosen: dict[str, list[int]]
    speech_s: dict[str, float]
    skipped: list[str]


def profile_clips(
    ws: WindowSet, *, speech_s: npt.ArrayLike, min_speech_s: float = MIN_SPEECH_S, seed: int = 0
) -> Profiles:
    """Draw each speaker's profile: neutral clips in a seeded order until ``min_speech_s`` is reached.

    Parameters
    ----------
    ws : WindowSet
    speech_s : array_like, shape (n_clips,)
        Voiced seconds of each clip (:func:`clip_voiced_seconds`; only neutral clips are read).
    min_speech_s : float
    seed : int

    Returns
    -------
    Profiles
    """
    sp = np.asarray(speech_s, dtype=np.float64)
    has = ws.windows_per_clip() > 0
    speakers = np.array([c.speaker for c in ws.clips])
    chosen: dict[str, list[int]] = {}
    secs: dict[str, float] = {}
    skipped: list[str] = []
    for s in sorted(set(speakers.tolist())):
        mine = np.flatnonzero((speakers == s) & has)
        neutral = [int(i) for i in mine if ws.clips[i].label == "neutral"]
        rng = np.random.default_rng([seed, zlib.crc32(s.encode())])
        order = [neutral[j] for j in rng.permutation(len(neutral))]
        take: list[int] = []
        total = 0.0
        for i in order:
            if total >= min_speech_s:
                break
            take.append(i)
            total += sp[i]
        if total < min_speech_s or len(take) == len(mine):
            skipped.append(s)
            continue
        chosen[s] = sorted(take)
        secs[s] = total
    return Profiles(chosen=chosen, speech_s=secs, skipped=skipped)


def profiled_metrics(
    *,
    logits: npt.ArrayLike,
    ws: WindowSet,
    labels: Sequence[str],
    temperature: float,
    reference: npt.ArrayLike,
    strength: float,
    profiles: Profiles,
    head_logits: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """Zero-shot against calibrated on the same clips (every clip of a profiled speaker but the profile's).

    Parameters
    ----------
    logits : array_like, shape (n_windows, n_labels)
        The emotion head's window logits.
    ws : WindowSet
    labels : sequence of str
    temperature : float
    reference : array_like, shape (n_labels,)
        The model's voice reference (of the voice head's logits when ``head_logits`` is given).
    strength : float
        The model's voice strength: the fraction of the offset removed, or with a voice head
        its share of the blend.
    profiles : Profiles
    head_logits : array_like, shape (n_windows, n_labels), optional
        The voice calibration head's logits (:mod:`training.encoder.voice`); without them the
        profile is a logit shift.

    Returns
    -------
    dict
        ``{"zero_shot", "calibrated"}`` (per-corpus results with ``_probs``/``_y``),
        ``"speakers"``, ``"speakers_skipped"``, ``"profile_speech_s"`` (mean), ``"strength"``.
    """
    from training.encoder.voice import blend_logits

    lg = np.asarray(logits, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float32)
    speakers = np.array([c.speaker for c in ws.clips])
    has = ws.windows_per_clip() > 0
    z2 = None if head_logits is None else np.asarray(head_logits, dtype=np.float64)
    shift = np.zeros((len(ws.clips), lg.shape[1]))
    blended = lg.copy()
    keep = np.zeros(len(ws.clips), dtype=bool)
    for s, chosen in profiles.chosen.items():
        mine = (speakers == s) & has
        wins = np.isin(ws.clip_index, chosen)
        if z2 is None:
            shift[mine] = shift_from_logits(window_logits=lg[wins].astype(np.float32), reference=ref,
                                            strength=strength)
        else:
            rows = np.isin(ws.clip_index, np.flatnonzero(mine))
            blended[rows] = blend_logits(logits=lg[rows], head_logits=z2[rows], profile_rows=wins[rows],
                                         reference=ref, strength=strength)
        keep[mine] = True
        keep[chosen] = False
    zero = per_corpus_metrics(logits=lg, windows=ws, labels=labels, temperature=temperature, keep=keep)
    cal = per_corpus_metrics(logits=blended, windows=ws, labels=labels, temperature=temperature, keep=keep,
                             shift_per_clip=shift)
    return {
        "zero_shot": zero,
        "calibrated": cal,
        "speakers": len(profiles.chosen),
        "speakers_skipped": len(profiles.skipped),
        "profile_speech_s": float(np.mean(list(profiles.speech_s.values()))) if profiles.speech_s else 0.0,
        "strength": strength,
    }


def embedding_reference(ws: WindowSet) -> FloatArray:
    """Mean over speakers of each speaker's mean vector over their neutral speech windows.

    Returns
    -------
    ndarray, shape (n_blocks, d_model)
    """
    spk = np.array([c.speaker for c in ws.clips])[ws.clip_index]
    neutral = np.array([c.label == "neutral" for c in ws.clips])[ws.clip_index]
    means = [ws.features[neutral & (spk == s)].astype(np.float64).mean(axis=0) for s in sorted(set(spk[neutral]))]
    if not means:
        raise ValueError("no neutral speech windows to build the embedding reference from")
    return np.asarray(np.mean(means, axis=0), dtype=np.float64)


def embedding_shift_metrics(
    *,
    head: DenseHead,
    ws: WindowSet,
    labels: Sequence[str],
    temperature: float,
    reference: npt.ArrayLike,
    profiles: Profiles,
) -> dict[str, Any]:
    """Calibration in the encoder's space: each profiled speaker's windows minus (profile mean - reference).

    The same clips as :func:`profiled_metrics` are scored. For a linear head it equals the logit
    shift at strength 1 (logits are affine in the vector); it differs for an MLP.

    Returns
    -------
    dict
        Per-corpus result (with ``_probs``/``_y``) of the shifted windows.
    """
    x = ws.features.astype(np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    speakers = np.array([c.speaker for c in ws.clips])
    has = ws.windows_per_clip() > 0
    keep = np.zeros(len(ws.clips), dtype=bool)
    for s, chosen in profiles.chosen.items():
        mine = (speakers == s) & has
        wins = np.isin(ws.clip_index, chosen)
        rows = np.isin(ws.clip_index, np.flatnonzero(mine))
        x[rows] -= x[wins].mean(axis=0) - ref
        keep[mine] = True
        keep[chosen] = False
    return per_corpus_metrics(logits=head(x), windows=ws, labels=labels, temperature=temperature, keep=keep)


def _short(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "uar", "macro_f1", "ece", "speakers")
    return {k: (round(float(m[k]), 4) if isinstance(m.get(k), float) else m.get(k)) for k in keys if k in m}


def _table(metrics: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: _short(v) for k, v in strip(metrics).items()}
    out["mean_corpus_uar"] = round(mean_corpus_uar(metrics), 4)
    return out


def model_tables(
    *,
    logits: dict[str, FloatArray],
    parts: dict[str, WindowSet],
    labels: Sequence[str],
    temperature: float,
    threshold: float,
    reference: npt.ArrayLike | None,
    strength: float,
    profiles: dict[str, Profiles],
    affect_logits: dict[str, FloatArray] | None = None,
    affect_temperature: Sequence[float] = (1.0, 1.0),
    head_logits: dict[str, FloatArray] | None = None,
) -> dict[str, Any]:
    """Every figure of one model on the given parts.

    Parameters
    ----------
    logits : dict of part -> ndarray, shape (n_windows, n_labels)
        Uncalibrated window logits of ``parts[part]``.
    parts : dict of part -> WindowSet
    labels : sequence of str
    temperature, threshold : float
        The model's temperature and uncertainty threshold.
    reference : array_like, shape (n_labels,), or None
        The model's voice reference (None: no calibrated figures).
    strength : float
        The model's voice strength.
    profiles : dict of part -> Profiles
        The same profile clips for every model.
    affect_logits : dict of part -> ndarray, shape (n_windows, 2), optional
        The model's affect output, if it has one.
    affect_temperature : sequence of float
    head_logits : dict of part -> ndarray, shape (n_windows, n_labels), optional
        The voice calibration head's logits, if the model has one (``reference`` is then its).

    Returns
    -------
    dict
        Per part: ``zero_shot`` (per corpus, ``mean_corpus_uar``), ``calibrated`` (zero-shot and
        calibrated on the same clips, at the model's strength and at strength 1: the whole
        offset removed, or with a voice head that head alone), ``uncertain``
        (:func:`training.crosscorpus.selective` at ``threshold``), ``affect`` (binary UAR/ECE
        of the affect output and of the 7-class probabilities).
    """
    out: dict[str, Any] = {}
    for p, ws in parts.items():
        lg = logits[p]
        zero = per_corpus_metrics(logits=lg, windows=ws, labels=labels, temperature=temperature)
        entry: dict[str, Any] = {"zero_shot": _table(zero)}
        sel = {"all": selective(zero["_probs"], zero["_y"], threshold)}
        corpus = np.array([c.corpus for c in ws.clips])
        for c in sorted(set(corpus.tolist())):
            sel[c] = selective(zero["_probs"][corpus == c], zero["_y"][corpus == c], threshold)
        entry["uncertain"] = sel
        if reference is not None and p in profiles:
            cal: dict[str, Any] = {}
            for tag, st in (("model_strength", strength), ("strength_1", 1.0)):
                r = profiled_metrics(logits=lg, ws=ws, labels=labels, temperature=temperature, reference=reference,
                                     strength=st, profiles=profiles[p],
                                     head_logits=None if head_logits is None else head_logits[p])
                cal[tag] = {
                    "strength": st,
                    "speakers": r["speakers"],
                    "speakers_skipped": r["speakers_skipped"],
                    "profile_speech_s": round(r["profile_speech_s"], 2),
                    "zero_shot": _table(r["zero_shot"]),
                    "calibrated": _table(r["calibrated"]),
                }
            entry["calibrated"] = cal
        aff: dict[str, Any] = {}
        for k, axis in enumerate(AFFECT_AXES):
            derived = derived_affect_probs(zero["_probs"], labels=labels, axis=axis)
            row: dict[str, dict[str, Any]] = {
                "from_emotions": {c: _short(v) for c, v in
                                  binary_metrics(probs=derived, clips=ws.clips, axis=axis).items()}
            }
            if affect_logits is not None:
                m = affect_metrics(logits=affect_logits[p][:, k], ws=ws, axis=axis, temperature=affect_temperature[k])
                row["affect_output"] = {c: _short(v) for c, v in m.items()}
            for key in list(row):
                per = [v["uar"] for c, v in row[key].items() if c != "all"]
                row[key]["mean_corpus_uar"] = round(float(np.mean(per)), 4) if per else None
            aff[axis.name] = row
        entry["affect"] = aff
        out[p] = entry
    return out
