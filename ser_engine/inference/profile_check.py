"""Does a voice profile help on speech it was not made from? A two-fold held-out check.

A profile's own ``before``/``after`` (:class:`~ser_engine.inference.profile_store.VoiceProfile`)
are measured on the very windows the profile was made from, so they say little about the
speech a user will produce next. :func:`check_held_out` answers what a user can judge: how
seconds of their neutral recording that the profile did *not* see are classified without and
with calibration.

The recording's speech windows are split in time at the middle of the speech (the median of
the speech windows' centres). Fold 1 makes a profile from the audio after the split and scores
the speech windows that end at or before it; fold 2 makes a profile from the audio before the
split and scores the windows that start at or after it. Windows that cross the split hold audio
of both parts and are scored in neither fold. Every profile is made by
:func:`~ser_engine.inference.profile.profile_from_audio` and applied by
:meth:`~ser_engine.inference.model.EmotionModel.with_profile`, so the check follows whatever
method profiles use. Each fold's profile is made from about half the speech, so the check is,
if anything, a little pessimistic about a profile made from all of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ser_engine.dsp.core import iter_window_features
from ser_engine.errors import ParameterError, ProfileError
from ser_engine.inference.model import EmotionModel
from ser_engine.inference.profile import profile_from_audio
from ser_engine.inference.profile_store import VoiceProfile, is_number

__all__ = ["MIN_PART_SPEECH_S", "FoldCheck", "HeldOutCheck", "check_held_out"]

MIN_PART_SPEECH_S = 3.0
"""Least seconds of speech (counted as a profile counts them) each fold's profile is made from.
Each part holds about half the recording's speech, so a recording with the
:data:`~ser_engine.inference.profile.MIN_SPEECH_S` a saved profile needs normally passes."""

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FoldCheck:
    """One fold of the check: a profile made from one part, scored on the other.

    Attributes
    ----------
    calibration_span : tuple of float
        ``(start_s, end_s)`` of the audio the fold's profile was made from.
    held_out_span : tuple of float
        ``(start_s, end_s)`` of the other part; every scored window lies inside it.
    profile : VoiceProfile
        The fold's profile (made from ``calibration_span`` only).
    n_held_out : int
        Speech windows scored.
    before_neutral, after_neutral : int
        Of those, how many have the label as their arg-max without and with the profile.
    before_mean, after_mean : float
        Mean probability of the label over those windows without and with the profile.
    """

    calibration_span: tuple[float, float]
    held_out_span: tuple[float, float]
    profile: VoiceProfile
    n_held_out: int
    before_neutral: int
    after_neutral: int
    before_mean: float
    after_mean: float


@dataclass(frozen=True)
class HeldOutCheck:
    """How a recording's held-out speech windows are classified without and with calibration.

    Attributes
    ----------
    label : str
        The label checked (``"neutral"``: the recording is neutral speech).
    before_share, after_share : float
        In ``[0, 1]``: the share of held-out speech windows whose arg-max is ``label``,
        without and with the fold's profile, pooled over both folds.
    before_mean, after_mean : float
        In ``[0, 1]``: the mean probability of ``label`` over the same windows.
    n_windows : int
        Speech windows in the whole recording.
    n_held_out : int
        Speech windows scored (both folds together).
    n_straddling : int
        Speech windows that cross the split and are scored in neither fold;
        ``n_held_out + n_straddling == n_windows``.
    split_s : float
        Where the recording was split, in seconds from its start.
    folds : tuple of FoldCheck
        The two folds.
    """

    label: str
    before_share: float
    after_share: float
    before_mean: float
    after_mean: float
    n_windows: int
    n_held_out: int
    n_straddling: int
    split_s: float
    folds: tuple[FoldCheck, ...]

    @property
    def improved(self) -> bool:
        """Whether calibration made more held-out windows read as ``label`` (their arg-max).

        As many as before is not an improvement, even when the mean probability of
        ``label`` rose a little: the user sees the label the model picks.
        """
        return sum(f.after_neutral for f in self.folds) > sum(f.before_neutral for f in self.folds)


def check_held_out(
    *,
    audio: npt.ArrayLike,
    model: EmotionModel,
    label: str = "neutral",
    gate_sensitivity: float = 0.5,
    min_part_speech_s: float = MIN_PART_SPEECH_S,
) -> HeldOutCheck:
    """Check a recording's profile on its own held-out speech (two folds, split in time).

    Parameters
    ----------
    audio : array_like, shape (n,), float32
        Mono audio at ``model.feature_config.sample_rate``: the recording a profile is made
        from (neutral speech of one voice).
    model : EmotionModel
        The model profiles are made for; a profile it already has is ignored.
    label : str
        The label the recording should read as, one of ``model.labels``.
    gate_sensitivity : float
        Speech gate sensitivity in [0, 1], as for the profile.
    min_part_speech_s : float
        Least seconds of speech each fold's profile is made from.

    Returns
    -------
    HeldOutCheck

    Raises
    ------
    ProfileError
        The model cannot be calibrated, or there is too little speech to hold part of it
        out (fewer than two speech windows on either side of the split, or a part with
        less than ``min_part_speech_s`` of speech; the message says which).
    ParameterError
        Bad parameters, or audio that is not a finite 1-D array.
    """
    base = model.with_profile(None)
    if label not in base.labels:
        raise ParameterError(f"label {label!r} is not one of the model's labels {list(base.labels)}")
    if not (is_number(gate_sensitivity) and 0 <= gate_sensitivity <= 1):
        raise ParameterError(f"gate_sensitivity must be in [0, 1], got {gate_sensitivity!r}")
    if not (is_number(min_part_speech_s) and math.isfinite(min_part_speech_s) and min_part_speech_s >= 0):
        raise ParameterError(f"min_part_speech_s must be a non-negative number, got {min_part_speech_s!r}")
    if base.metadata.voice_reference is None:
        raise ProfileError(f"model {base.name} does not support voice calibration")
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"audio must be mono with shape (n,), got {y.shape}")
    if not np.isfinite(y).all():
        raise ParameterError("audio contains NaN or infinite samples")

    # The speech windows of the whole recording, cut and gated as file analysis and profiles cut them.
    cfg = base.feature_config
    sr = cfg.sample_rate
    starts: list[float] = []
    ends: list[float] = []
    feats: list[FloatArray] = []
    for wf in iter_window_features([y] if y.shape[0] else [], config=cfg, featurizer=base.featurizer,
                                   gate_sensitivity=gate_sensitivity):
        if wf.speech and wf.features is not None:
            starts.append(wf.start_s)
            ends.append(wf.end_s)
            feats.append(wf.features)
    n_windows = len(feats)
    if n_windows == 0:
        raise ProfileError("no speech found; nothing to check the profile on")

    # Split at the middle of the speech, on the sample grid.
    split = round(float(np.median((np.asarray(starts) + np.asarray(ends)) / 2) * sr))
    split_s = split / sr
    first = [i for i in range(n_windows) if ends[i] <= split_s]
    second = [i for i in range(n_windows) if starts[i] >= split_s]
    if len(first) < 2 or len(second) < 2:
        raise ProfileError(
            f"too little speech to hold part of it out ({n_windows} speech windows, "
            f"{len(first)} before and {len(second)} after the middle of the speech); record more speech"
        )
    duration_s = y.shape[0] / sr
    idx = base.labels.index(label)
    folds: list[FoldCheck] = []
    # (windows scored, calibration audio, calibration span, held-out span)
    for held, calib, calib_span, held_span in (
        (first, y[split:], (split_s, duration_s), (0.0, split_s)),
        (second, y[:split], (0.0, split_s), (split_s, duration_s)),
    ):
        part = f"the part from {calib_span[0]:.1f} s to {calib_span[1]:.1f} s"
        try:
            prof = profile_from_audio(calib, model=base, name="held-out check", sources=(part,),
                                      gate_sensitivity=gate_sensitivity, min_speech_s=min_part_speech_s)
        except ProfileError as exc:
            raise ProfileError(f"too little speech to hold part of it out ({exc})") from exc
        x = np.stack([feats[i] for i in held])
        p_before = base.predict(x).probabilities
        p_after = base.with_profile(prof).predict(x).probabilities
        folds.append(FoldCheck(
            calibration_span=calib_span,
            held_out_span=held_span,
            profile=prof,
            n_held_out=len(held),
            before_neutral=int(np.sum(np.argmax(p_before, axis=1) == idx)),
            after_neutral=int(np.sum(np.argmax(p_after, axis=1) == idx)),
            before_mean=float(np.mean(p_before[:, idx])),
            after_mean=float(np.mean(p_after[:, idx])),
        ))
    n_held = sum(f.n_held_out for f in folds)
    return HeldOutCheck(
        label=label,
        before_share=sum(f.before_neutral for f in folds) / n_held,
        after_share=sum(f.after_neutral for f in folds) / n_held,
        before_mean=sum(f.before_mean * f.n_held_out for f in folds) / n_held,
        after_mean=sum(f.after_mean * f.n_held_out for f in folds) / n_held,
        n_windows=n_windows,
        n_held_out=n_held,
        n_straddling=n_windows - n_held,
        split_s=split_s,
        folds=tuple(folds),
    )
