"""Voice profiles: calibrating the model to one speaker, room and microphone.

A new voice shifts the model's outputs. A :class:`VoiceProfile` is made from
at least :data:`MIN_SPEECH_S` seconds (better fifteen or more) of one person's *neutral* speech: it stores how far
the model's mean logits on that speech lie from the model's mean logits on
neutral speech of reference speakers (``voice_calibration.reference_logits``
in ``model.json``). :meth:`ser_engine.inference.model.EmotionModel.with_profile` gives a
model that subtracts that shift from every window's logits, before the
temperature and the softmax. A model may instead carry a second, speaker-centred head
(``voice_calibration.head_output``): the profile then measures that head's logits, and a
calibrated window's logits blend the model's own with the head's minus the shift
(:func:`~ser_engine.inference.model.calibrated_logits`).

The speech is cut, gated and featurised exactly as ``ser analyze`` does
(:func:`ser_engine.dsp.core.iter_window_features`), and measured the same way: its
seconds of speech are the voiced 20 ms gate frames of the speech windows,
pauses under 0.3 s bridged (:class:`ser_engine.dsp.core.VoiceTrack`), the
``speech_s`` ``ser analyze`` reports for a file. Profiles are versioned
JSON files (never pickle); :class:`ProfileStore` keeps a user's profiles, one
file each, under :func:`default_profile_dir` (both in :mod:`ser_engine.inference.profile_store`,
re-exported here).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ser_engine.dsp.audio import iter_audio_blocks
from ser_engine.dsp.core import VoiceTrack, iter_window_features
from ser_engine.errors import AudioError, ParameterError, ProfileError
from ser_engine.inference.model import BATCH, EmotionModel, calibrated_logits, model_fingerprint, softmax
from ser_engine.inference.profile_store import (
    PROFILE_FORMAT,
    PROFILE_VERSION,
    ProfileStore,
    VoiceProfile,
    default_profile_dir,
    is_number,
)

__all__ = [
    "MIN_SPEECH_S",
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "ProfileStore",
    "VoiceProfile",
    "default_profile_dir",
    "model_fingerprint",
    "profile_from_audio",
    "profile_from_files",
    "shift_from_logits",
]

MIN_SPEECH_S = 8.0
"""Least seconds of speech a profile is made from, in the unit of ``ser analyze``'s ``speech_s``
(voiced gate frames, pauses under 0.3 s bridged)."""

FloatArray = npt.NDArray[np.float32]


# ----------------------------------------------------------------------------- building
def shift_from_logits(
    *, window_logits: npt.ArrayLike, reference: npt.ArrayLike, strength: float = 1.0
) -> FloatArray:
    """Compute the profile's logit shift: ``strength`` times (mean logits of the speech windows minus the reference).

    Parameters
    ----------
    window_logits : array_like, shape (n_windows, n_labels)
        Uncalibrated logits of the voice's neutral speech windows.
    reference : array_like, shape (n_labels,)
        The model's reference logits (``ModelMetadata.voice_reference``).
    strength : float
        In ``[0, 2]``: the fraction of the offset removed (``ModelMetadata.voice_strength``,
        chosen on validation voices); 1.0 removes it all.

    Returns
    -------
    ndarray, shape (n_labels,), float32
    """
    x = np.asarray(window_logits, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ParameterError(f"window_logits must have shape (n_windows >= 1, n_labels), got {x.shape}")
    if ref.ndim != 1 or ref.shape[0] != x.shape[1]:
        raise ParameterError(f"reference must have shape ({x.shape[1]},), got {ref.shape}")
    if not (np.isfinite(x).all() and np.isfinite(ref).all()):
        raise ParameterError("window_logits and reference must be finite")
    if not (isinstance(strength, (int, float)) and 0 <= strength <= 2):
        raise ParameterError(f"strength must be in [0, 2], got {strength!r}")
    shift: FloatArray = (float(strength) * (x.mean(axis=0) - ref)).astype(np.float32)
    return shift


def _check_options(model: EmotionModel, name: str, gate_sensitivity: float, min_speech_s: float) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ParameterError("a voice profile needs a non-empty name")
    if not (is_number(gate_sensitivity) and 0 <= gate_sensitivity <= 1):
        raise ParameterError(f"gate_sensitivity must be in [0, 1], got {gate_sensitivity!r}")
    if not (is_number(min_speech_s) and math.isfinite(min_speech_s) and min_speech_s >= 0):
        raise ParameterError(f"min_speech_s must be a non-negative number, got {min_speech_s!r}")
    if model.metadata.voice_reference is None:
        raise ProfileError(
            f"model {model.name} does not support voice calibration (its model.json has no "
            "voice_calibration.reference_logits)"
        )


class _Collector:
    """Speech-window logits (uncalibrated) and voiced seconds of one or more streams."""

    def __init__(self, model: EmotionModel, gate_sensitivity: float) -> None:
        self.model = model.with_profile(None)
        self.gate_sensitivity = gate_sensitivity
        self.logits: list[FloatArray] = []
        self.head_logits: list[FloatArray] = []  # what the profile is measured on (profile_logits)
        self.speech_s = 0.0
        self.n_windows = 0

    def add(self, blocks: Iterable[FloatArray]) -> None:
        """Window, gate and featurise one stream (as ``ser analyze``) and keep its speech logits.

        Its voiced seconds are added as ``ser analyze`` measures a file's ``speech_s``.
        """
        m = self.model
        sr = m.feature_config.sample_rate
        voice = VoiceTrack(sample_rate=sr)
        n_samples = 0
        batch: list[FloatArray] = []

        def counted(stream: Iterable[FloatArray]) -> Iterator[FloatArray]:
            nonlocal n_samples
            for block in stream:
                n_samples += len(block)
                yield block

        def flush() -> None:
            if batch:
                frames = np.stack(batch)
                logits = m.predict(frames).logits
                self.logits.append(logits)
                self.head_logits.append(logits if m.metadata.voice_head_output is None else m.profile_logits(frames))
                batch.clear()

        for wf in iter_window_features(counted(blocks), config=m.feature_config, featurizer=m.featurizer,
                                       gate_sensitivity=self.gate_sensitivity):
            if not wf.speech or wf.features is None:
                continue
            voice.add(start_s=wf.start_s, voiced=wf.voiced)
            self.n_windows += 1
            batch.append(wf.features)
            if len(batch) >= BATCH:
                flush()
        flush()
        self.speech_s += voice.speech_s(duration_s=n_samples / sr)

    def profile(self, *, name: str, sources: Sequence[str], where: str, min_speech_s: float) -> VoiceProfile:
        m = self.model
        if self.n_windows == 0 or self.speech_s < min_speech_s:
            found = "no speech found" if self.n_windows == 0 else f"only {self.speech_s:.1f} s of speech found"
            raise ProfileError(f"{where}: {found}; need at least {min_speech_s:g} s of normal speech")
        meta = m.metadata
        logits = np.concatenate(self.logits)
        measured = np.concatenate(self.head_logits)
        reference = np.asarray(meta.voice_reference, dtype=np.float32)
        blend = meta.voice_head_output is not None
        # with a calibration head the strength is its share of the blend, applied by calibrated_logits
        shift = shift_from_logits(window_logits=measured, reference=reference,
                                  strength=1.0 if blend else meta.voice_strength)
        t = meta.temperature
        before = softmax(logits, temperature=t).mean(axis=0)
        after = softmax(calibrated_logits(logits=logits, head_logits=measured if blend else None, shift=shift,
                                          strength=meta.voice_strength), temperature=t).mean(axis=0)
        labels = m.labels
        return VoiceProfile(
            name=name.strip(),
            model_name=m.name,
            model_sha256=model_fingerprint(m),
            labels=labels,
            logit_shift=tuple(float(v) for v in shift),
            speech_s=round(float(self.speech_s), 4),  # to the precision ser analyze reports a file's speech_s
            n_windows=int(self.n_windows),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            sources=tuple(sources),
            before={lab: float(v) for lab, v in zip(labels, before, strict=True)},
            after={lab: float(v) for lab, v in zip(labels, after, strict=True)},
        )


def profile_from_audio(
    audio: npt.ArrayLike,
    *,
    model: EmotionModel,
    name: str,
    sources: Sequence[str] = ("microphone",),
    gate_sensitivity: float = 0.5,
    min_speech_s: float = MIN_SPEECH_S,
) -> VoiceProfile:
    """Make a voice profile from a recording of neutral speech.

    The audio is cut into the model's windows, gated and featurised exactly as
    file analysis does (:func:`ser_engine.dsp.core.iter_window_features`); the
    speech windows' uncalibrated logits give the shift
    (:func:`shift_from_logits`).

    Parameters
    ----------
    audio : array_like, shape (n,), float32
        Mono audio at ``model.feature_config.sample_rate``.
    model : EmotionModel
        Its ``metadata.voice_reference`` is needed; a profile it already has is ignored.
    name : str
        The profile's name.
    sources : sequence of str
        Recorded in the profile (default ``("microphone",)``).
    gate_sensitivity : float
        Speech gate sensitivity in [0, 1].
    min_speech_s : float
        Least seconds of speech accepted, measured as ``ser analyze`` measures a
        file's ``speech_s`` (voiced gate frames, pauses under 0.3 s bridged).

    Returns
    -------
    VoiceProfile

    Raises
    ------
    ProfileError
        The model cannot be calibrated, or too little speech (the message says
        how much was found).
    ParameterError
        Bad parameters or audio that is not a finite 1-D array.
    """
    _check_options(model, name, gate_sensitivity, min_speech_s)
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"audio must be mono with shape (n,), got {y.shape}")
    if not np.isfinite(y).all():
        raise ParameterError("audio contains NaN or infinite samples")
    col = _Collector(model, gate_sensitivity)
    col.add([y] if y.shape[0] else [])
    where = ", ".join(sources) or "recording"
    return col.profile(name=name, sources=sources, where=where, min_speech_s=min_speech_s)


def profile_from_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    model: EmotionModel,
    name: str,
    gate_sensitivity: float = 0.5,
    min_speech_s: float = MIN_SPEECH_S,
) -> VoiceProfile:
    """Make a voice profile from audio files of one person's neutral speech.

    Each file is decoded block-wise with :func:`ser_engine.dsp.audio.iter_audio_blocks`
    and analysed as ``ser analyze`` would; the speech windows of all files are pooled.

    Parameters
    ----------
    paths : sequence of path-like
    model, name, gate_sensitivity, min_speech_s : see :func:`profile_from_audio`

    Returns
    -------
    VoiceProfile
        ``sources`` holds the files' base names.

    Raises
    ------
    ProfileError
        A file cannot be read (the message names it and the reason), the model
        cannot be calibrated, or too little speech over all files.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ParameterError("profile_from_files needs at least one file")
    _check_options(model, name, gate_sensitivity, min_speech_s)
    col = _Collector(model, gate_sensitivity)
    sr = model.feature_config.sample_rate
    for f in files:
        if f.is_dir():
            raise ProfileError(f"{f}: is a folder; give the audio files")
        try:
            col.add(iter_audio_blocks(f, sample_rate=sr))
        except AudioError as exc:  # a bad file; anything else is not the file's fault and propagates
            text = str(exc).strip() or type(exc).__name__
            raise ProfileError(text if str(f) in text else f"{f}: {text}") from exc
    where = str(files[0]) if len(files) == 1 else f"{len(files)} files ({', '.join(f.name for f in files[:3])}" + (
        ", …)" if len(files) > 3 else ")")
    return col.profile(name=name, sources=[f.name for f in files], where=where, min_speech_s=min_speech_s)

