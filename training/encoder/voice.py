"""The voice calibration head: what a profile of a speaker's neutral speech adds to the read-out.

A voice profile used to shift the emotion logits by the speaker's neutral offset (the profile's
mean logits minus a reference). On the encoder's vectors a second read-out does better: one
fitted on vectors centred on their speaker (each training speaker's windows minus the mean of
all that speaker's speech), so it reads how a window differs from its speaker's usual voice.

At run time the only speech of a new voice known in advance is its profile of neutral speech,
so the speaker's centre is estimated as the profile's mean plus the training speakers' typical
offset from neutral speech to all their speech. The head is linear, so centring the vector is
shifting its logits: ``head(x - profile mean - offset) = head(x) - head(profile mean) +
(b - offset @ W)``. The graph gives ``head(x)``; the profile stores ``mean head(profile) -
reference`` with ``reference = b - offset @ W``; the engine subtracts it
(:func:`ser_engine.inference.model_meta.calibrated_logits`) and blends the result with the
emotion head's own logits, the voice head's share being the model's voice strength.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError
from ser_engine.inference.model_meta import calibrated_logits
from ser_engine.inference.profile import shift_from_logits
from training.encoder.head import (
    Candidate,
    EncoderHead,
    VoiceHead,
    _Prepared,
    _standardizer,
    _window_labels,
    block_vectors,
    fit_candidate,
)
from training.features import WindowSet

__all__ = ["blend_logits", "fit_voice_head", "speaker_offset", "with_voice_head"]

FloatArray = npt.NDArray[np.float64]


def _speaker_means(x: FloatArray, speakers: npt.NDArray[np.str_], use: npt.NDArray[np.bool_]) -> dict[str, FloatArray]:
    return {str(s): x[use & (speakers == s)].mean(axis=0) for s in np.unique(speakers[use])}


def speaker_offset(*, x: npt.ArrayLike, speakers: Sequence[str], labels: Sequence[str]) -> FloatArray:
    """Mean over speakers with neutral speech of (mean of all their windows - mean of their neutral windows).

    Parameters
    ----------
    x : array_like, shape (n_windows, n_in)
    speakers, labels : sequence of str, length n_windows
        Each window's speaker and emotion label.

    Returns
    -------
    ndarray, shape (n_in,)
    """
    v = np.asarray(x, dtype=np.float64)
    spk = np.asarray(speakers)
    neutral = np.asarray(labels) == "neutral"
    if not neutral.any():
        raise ParameterError("no neutral windows to measure the speakers' offset from neutral speech on")
    every = _speaker_means(v, spk, np.ones(len(spk), dtype=bool))
    calm = _speaker_means(v, spk, neutral)
    return np.asarray(np.mean([every[s] - calm[s] for s in calm], axis=0), dtype=np.float64)


def fit_voice_head(*, train: WindowSet, candidate: Candidate, labels: Sequence[str], seed: int = 0) -> VoiceHead:
    """Fit the speaker-centred read-out on ``train`` with the emotion recipe's blocks and C.

    Parameters
    ----------
    train : WindowSet
        Block-mean vectors, shape (n_windows, n_blocks, d), of speakers with several emotions.
    candidate : Candidate
        The emotion recipe; the voice head is always a logistic regression (it must be linear
        for centring to be a logit shift) with the recipe's blocks and C.
    labels : sequence of str
    seed : int

    Returns
    -------
    VoiceHead
    """
    x = block_vectors(block_means=train.features, blocks=candidate.blocks).astype(np.float64)
    spk = np.array([c.speaker for c in train.clips])[train.clip_index]
    lab = np.array([c.label for c in train.clips])[train.clip_index]
    centres = _speaker_means(x, spk, np.ones(len(spk), dtype=bool))
    xc = x - np.stack([centres[str(s)] for s in spk])
    mean, std = _standardizer(xc.astype(np.float32))
    z = ((xc - mean) / std).astype(np.float32)
    prep = _Prepared(blocks=candidate.blocks, x=z, mean=mean, std=std)
    _, y = _window_labels(train, labels)
    head, _ = fit_candidate(Candidate("logreg", candidate.blocks, candidate.c), prep=prep, y=y, n_out=len(labels),
                            seed=seed)
    offset = speaker_offset(x=x, speakers=spk.tolist(), labels=lab.tolist())
    reference = head.biases[0] - offset @ head.weights[0]
    return VoiceHead(head=head, reference=np.asarray(reference, dtype=np.float64), offset=offset)


def with_voice_head(head: EncoderHead, *, train: WindowSet, candidate: Candidate, labels: Sequence[str],
                    seed: int = 0) -> EncoderHead:
    """``head`` with a voice calibration head fitted on ``train`` (:func:`fit_voice_head`)."""
    return replace(head, voice=fit_voice_head(train=train, candidate=candidate, labels=labels, seed=seed))


def blend_logits(
    *, logits: npt.ArrayLike, head_logits: npt.ArrayLike, profile_rows: npt.ArrayLike, reference: npt.ArrayLike,
    strength: float,
) -> FloatArray:
    """Calibrated logits of one speaker's windows from their profile's windows, as the engine computes them.

    Parameters
    ----------
    logits, head_logits : array_like, shape (n_windows, n_labels)
        The emotion head's and the voice head's logits of the speaker's windows.
    profile_rows : array_like of bool, shape (n_windows,)
        The windows of the profile's clips.
    reference : array_like, shape (n_labels,)
        :attr:`VoiceHead.reference`.
    strength : float
        The voice head's share of the blend.

    Returns
    -------
    ndarray, shape (n_windows, n_labels)
    """
    z2 = np.asarray(head_logits, dtype=np.float32)
    rows = np.asarray(profile_rows, dtype=bool)
    shift = shift_from_logits(window_logits=z2[rows], reference=reference, strength=1.0)
    out = calibrated_logits(logits=logits, head_logits=z2, shift=shift, strength=strength)
    return np.asarray(out, dtype=np.float64)

