"""The held-out check of a voice profile: real neutral speech with the shipped model, and a model whose answer is known.

:func:`ser_engine.inference.profile_check.check_held_out` splits a recording's speech at its middle,
makes a profile from each half and scores the other half's speech windows without and with it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import synth_speechlike
from onnx import numpy_helper
from tiny_model import TINY_LABELS, build_tiny_model

from ser_engine.dsp.audio import load_audio
from ser_engine.dsp.core import iter_window_features
from ser_engine.errors import ParameterError, ProfileError
from ser_engine.inference.model import EmotionModel, softmax
from ser_engine.inference.model_meta import ModelMetadata
from ser_engine.inference.profile import profile_from_audio
from ser_engine.inference.profile_check import MIN_PART_SPEECH_S, HeldOutCheck, check_held_out

SR = 16000
# One CREMA-D test speaker (never trained on), neutral, the first nine sentences: ~16 s of audio, ~11 s of speech
SPEAKER_1013 = [f"1013_{s}_NEU_XX.ogg" for s in ("DFA", "IEO", "IOM", "ITH", "ITS", "IWL", "IWW", "MTI", "TAI")]


def _speech_windows(y: np.ndarray, model: EmotionModel) -> list[tuple[float, float, np.ndarray]]:
    """Speech windows of ``y`` as file analysis and profiles cut them: (start_s, end_s, features)."""
    return [(wf.start_s, wf.end_s, wf.features)
            for wf in iter_window_features([y], config=model.feature_config, featurizer=model.featurizer)
            if wf.speech and wf.features is not None]


@pytest.fixture(scope="module")
def neutral_speech(corpus_dir: Path) -> np.ndarray:
    return np.concatenate([load_audio(corpus_dir / "crema-d" / n, sample_rate=SR).samples for n in SPEAKER_1013])


@pytest.fixture(scope="module")
def real_check(neutral_speech: np.ndarray, shipped_model: EmotionModel) -> HeldOutCheck:
    return check_held_out(audio=neutral_speech, model=shipped_model)


@pytest.mark.corpus
def test_held_out_figures_on_a_real_speaker_are_consistent(real_check: HeldOutCheck, neutral_speech: np.ndarray,
                                                           shipped_model: EmotionModel) -> None:
    c = real_check
    windows = _speech_windows(neutral_speech, shipped_model)
    # every speech window of the recording is either scored in one fold or crosses the split
    assert c.n_windows == len(windows) == profile_from_audio(neutral_speech, model=shipped_model, name="all").n_windows
    assert len(c.folds) == 2
    assert c.n_held_out == sum(f.n_held_out for f in c.folds)
    assert c.n_held_out + c.n_straddling == c.n_windows
    assert c.n_straddling == sum(1 for s, e, _ in windows if s < c.split_s < e)
    assert all(f.n_held_out >= 2 for f in c.folds)
    for v in (c.before_share, c.after_share, c.before_mean, c.after_mean):
        assert 0.0 <= v <= 1.0
    assert c.before_share == sum(f.before_neutral for f in c.folds) / c.n_held_out
    assert c.after_share == sum(f.after_neutral for f in c.folds) / c.n_held_out
    assert c.improved == (c.after_share > c.before_share)
    # the split lies at the middle of the speech: the folds score about as many windows each
    assert abs(c.folds[0].n_held_out - c.folds[1].n_held_out) <= 2
    duration = len(neutral_speech) / SR
    assert c.folds[0].calibration_span == c.folds[1].held_out_span == (c.split_s, duration)
    assert c.folds[1].calibration_span == c.folds[0].held_out_span == (0.0, c.split_s)


@pytest.mark.corpus
def test_each_fold_profile_is_made_from_its_calibration_part_only(real_check: HeldOutCheck, neutral_speech: np.ndarray,
                                                                  shipped_model: EmotionModel) -> None:
    windows = _speech_windows(neutral_speech, shipped_model)
    label = shipped_model.labels.index("neutral")
    for fold in real_check.folds:
        a, b = fold.calibration_span
        part = neutral_speech[round(a * SR):round(b * SR)]
        again = profile_from_audio(part, model=shipped_model, name="part", min_speech_s=MIN_PART_SPEECH_S)
        assert fold.profile.logit_shift == again.logit_shift
        assert fold.profile.n_windows == again.n_windows < real_check.n_windows
        assert fold.profile.speech_s == again.speech_s >= MIN_PART_SPEECH_S
        # the windows scored lie wholly in the other part, and are all of its windows
        h0, h1 = fold.held_out_span
        assert h1 <= a or h0 >= b
        held = [w for s, e, w in windows if s >= h0 and e <= h1]
        assert len(held) == fold.n_held_out
        # before and after as the model gives them, without and with the fold's profile
        x = np.stack(held)
        p0 = shipped_model.with_profile(None).predict(x).probabilities
        p1 = shipped_model.with_profile(fold.profile).predict(x).probabilities
        assert fold.before_neutral == int(np.sum(p0.argmax(axis=1) == label))
        assert fold.after_neutral == int(np.sum(p1.argmax(axis=1) == label))
        assert fold.before_mean == pytest.approx(float(p0[:, label].mean()), abs=1e-6)
        assert fold.after_mean == pytest.approx(float(p1[:, label].mean()), abs=1e-6)


@pytest.mark.corpus
def test_the_model_a_profile_is_attached_to_does_not_change_the_check(real_check: HeldOutCheck,
                                                                      neutral_speech: np.ndarray,
                                                                      shipped_model: EmotionModel) -> None:
    """"Before" is the uncalibrated model, also when the app passes a model that already has the user's profile."""
    calibrated = shipped_model.with_profile(real_check.folds[0].profile)
    again = check_held_out(audio=neutral_speech, model=calibrated)
    assert dataclasses.replace(again, folds=()) == dataclasses.replace(real_check, folds=())


# ---------------------------------------------------------------------------------------------- a known answer
def _constant_model(out_dir: Path, *, logits: list[float], reference: list[float]) -> EmotionModel:
    """Build a calibratable model whose logits are ``logits`` for every window (zero weights, that bias)."""
    build_tiny_model(out_dir)
    graph = onnx.load(str(out_dir / "model.onnx"))
    for init in graph.graph.initializer:
        value = numpy_helper.to_array(init)
        if init.name == "W":
            init.CopyFrom(numpy_helper.from_array(np.zeros_like(value), "W"))
        elif init.name == "B":
            init.CopyFrom(numpy_helper.from_array(np.asarray(logits, dtype=np.float32), "B"))
    onnx.save(graph, str(out_dir / "model.onnx"))
    meta = ModelMetadata.load(out_dir / "model.json")
    dataclasses.replace(meta, temperature=2.0, voice_reference=tuple(reference),
                        voice_reference_fitted_on="a test's choice", voice_strength=1.0).save(out_dir / "model.json")
    return EmotionModel.load(out_dir)


def _speechlike(seconds: float) -> np.ndarray:
    return np.concatenate([synth_speechlike(seconds=2.0, seed=i) for i in range(round(seconds / 2))])


def test_a_voice_read_as_sad_everywhere_is_known_before_calibration(tmp_path: Path) -> None:
    sad, neutral = TINY_LABELS.index("sad"), TINY_LABELS.index("neutral")
    logits = [0.0] * len(TINY_LABELS)
    logits[sad], logits[neutral] = 3.0, 1.0
    reference = [0.0] * len(TINY_LABELS)
    reference[neutral] = 4.0
    model = _constant_model(tmp_path / "m", logits=logits, reference=reference)
    y = _speechlike(16.0)
    c = check_held_out(audio=y, model=model)
    # without calibration every window reads as sad, with the known neutral probability
    assert c.before_share == 0.0
    assert c.before_mean == pytest.approx(float(softmax(np.asarray(logits), temperature=2.0)[neutral]), abs=1e-6)
    assert c.n_held_out + c.n_straddling == c.n_windows == len(_speech_windows(y, model))
    assert c.n_held_out >= 4
    # with it, whatever the method: every window reads as the calibrated model reads it (it is constant)
    for fold in c.folds:
        p = model.with_profile(fold.profile).predict(np.zeros((1, 10, model.feature_config.n_features))).probabilities
        assert fold.after_neutral == (fold.n_held_out if p[0].argmax() == neutral else 0)
        assert fold.after_mean == pytest.approx(float(p[0, neutral]), abs=1e-6)
    # a shift towards the reference, where neutral leads, turns the sad reading into neutral
    assert c.after_share == 1.0
    assert c.improved


def test_a_voice_already_read_as_neutral_cannot_improve(tmp_path: Path) -> None:
    neutral = TINY_LABELS.index("neutral")
    logits = [0.0] * len(TINY_LABELS)
    logits[neutral] = 2.0
    model = _constant_model(tmp_path / "m", logits=logits, reference=logits)  # the reference voice itself
    c = check_held_out(audio=_speechlike(16.0), model=model)
    assert c.before_share == c.after_share == 1.0
    assert c.before_mean == pytest.approx(c.after_mean, abs=1e-6)
    assert not c.improved  # as many windows read as neutral is no improvement


# ---------------------------------------------------------------------------------------------- refusals
def test_too_little_speech_to_hold_out_is_said(tmp_path: Path) -> None:
    model = _constant_model(tmp_path / "m", logits=[0.0] * 7, reference=[0.0] * 7)
    with pytest.raises(ProfileError, match="no speech found"):
        check_held_out(audio=np.zeros(10 * SR, np.float32), model=model)
    with pytest.raises(ProfileError, match="too little speech to hold part of it out"):
        check_held_out(audio=_speechlike(4.0), model=model)  # under two windows each side of the middle
    with pytest.raises(ProfileError, match=r"too little speech to hold part of it out .*need at least 30 s"):
        check_held_out(audio=_speechlike(12.0), model=model, min_part_speech_s=30.0)


def test_bad_arguments_are_refused(tmp_path: Path, tiny_model: EmotionModel) -> None:
    model = _constant_model(tmp_path / "m", logits=[0.0] * 7, reference=[0.0] * 7)
    y = _speechlike(12.0)
    with pytest.raises(ParameterError, match="label 'calm'"):
        check_held_out(audio=y, model=model, label="calm")
    with pytest.raises(ParameterError, match="mono"):
        check_held_out(audio=np.stack([y, y]), model=model)
    with pytest.raises(ParameterError, match="NaN"):
        check_held_out(audio=np.full(SR, np.nan, np.float32), model=model)
    with pytest.raises(ParameterError, match="gate_sensitivity"):
        check_held_out(audio=y, model=model, gate_sensitivity=2.0)
    with pytest.raises(ProfileError, match="does not support voice calibration"):
        check_held_out(audio=y, model=tiny_model)  # no voice reference in its model.json
