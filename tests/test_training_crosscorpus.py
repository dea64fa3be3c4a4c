"""Cross-corpus evaluation helpers on constructed windows with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ser_engine.errors import ParameterError
from training.corpora import HARMONISED_LABELS, Clip
from training.crosscorpus import (
    adaptation_eval,
    calibration_eval,
    choose_threshold,
    per_corpus_metrics,
    selective,
    speaker_mean_reference,
    threshold_for_coverage,
    tradeoff_points,
    voice_reference,
)
from training.features import WindowSet

L = HARMONISED_LABELS
N = L.index("neutral")


def clip(speaker: str, label: str, i: int, corpus: str = "x") -> Clip:
    return Clip(f"/{speaker}/{label}{i}", corpus, speaker, None, str(i), None, label, label)


def windows_for(clips: list[Clip], per_clip: int = 2) -> WindowSet:
    n = len(clips) * per_clip
    return WindowSet(
        features=np.zeros((n, 1, 1), np.float16),
        clip_index=np.repeat(np.arange(len(clips)), per_clip).astype(np.int32),
        speech=np.ones(n, bool),
        clips=clips,
    )


def biased_voice(speaker: str, bias: np.ndarray, corpus: str = "x") -> tuple[list[Clip], np.ndarray]:
    """Three neutral, two angry and two sad clips of a voice whose logits carry a constant ``bias``."""
    clips = [clip(speaker, "neutral", i, corpus) for i in range(3)]
    clips += [clip(speaker, lab, i, corpus) for lab in ("angry", "sad") for i in range(2)]
    logits = []
    for c in clips:
        z = np.zeros(len(L))
        z[L.index(c.label)] = 2.0
        logits += [z + bias, z + bias]
    return clips, np.array(logits)


def test_calibration_removes_a_constant_voice_offset_on_the_same_clips() -> None:
    bias = np.zeros(len(L))
    bias[L.index("fearful")] = 5.0  # this voice sounds fearful to the model, whatever it says
    c1, l1 = biased_voice("x:a", bias)
    c2, l2 = biased_voice("x:b", -bias)
    few = [clip("x:c", "neutral", 0), clip("x:c", "angry", 0)]  # too few neutral clips for k=2
    l3 = np.zeros((4, len(L)))
    ws = windows_for(c1 + c2 + few)
    logits = np.concatenate([l1, l2, l3])
    reference = np.zeros(len(L))
    reference[N] = 2.0  # a placed neutral voice
    out = calibration_eval(logits=logits, windows=ws, labels=L, temperature=1.0, reference=reference, k=2)
    assert out["speakers"] == 2
    assert out["speakers_skipped"] == 1
    # 2 speakers x (7 clips - 2 used for the profile) are scored, with and without the profile
    assert out["zero_shot"]["all"]["n"] == out["calibrated"]["all"]["n"] == 10
    assert out["calibrated"]["all"]["accuracy"] == 1.0
    assert out["zero_shot"]["all"]["accuracy"] < 0.6
    # strength 0 is the zero-shot model
    none = calibration_eval(logits=logits, windows=ws, labels=L, temperature=1.0, reference=reference, k=2,
                            strength=0.0)
    assert none["calibrated"]["all"]["accuracy"] == none["zero_shot"]["all"]["accuracy"]


def test_voice_reference_is_the_mean_of_per_speaker_neutral_means() -> None:
    clips = [clip("x:a", "neutral", 0), clip("x:a", "neutral", 1), clip("x:b", "neutral", 0), clip("x:b", "sad", 0)]
    ws = windows_for(clips, per_clip=1)
    logits = np.zeros((4, len(L)))
    logits[:, 0] = [1.0, 3.0, 10.0, 99.0]  # speaker a: mean 2; speaker b: 10 (its sad clip is ignored)
    ref, n = voice_reference(logits=logits, windows=ws)
    assert n == 2
    assert ref[0] == pytest.approx(6.0)
    assert speaker_mean_reference(logits=logits, windows=ws)[0] == pytest.approx((2.0 + 54.5) / 2)
    with pytest.raises(ValueError, match="neutral"):
        voice_reference(logits=logits[3:], windows=windows_for([clip("x:b", "sad", 0)], per_clip=1))


def test_adaptation_removes_a_speakers_mean_offset_without_labels() -> None:
    bias = np.zeros(len(L))
    bias[L.index("happy")] = 4.0
    c1, l1 = biased_voice("x:a", bias)
    c2, l2 = biased_voice("x:b", np.zeros(len(L)))
    ws = windows_for(c1 + c2)
    logits = np.concatenate([l1, l2])
    ref_all = speaker_mean_reference(logits=l2, windows=windows_for(c2))
    zero = per_corpus_metrics(logits=logits, windows=ws, labels=L, temperature=1.0)
    adapted = adaptation_eval(logits=logits, windows=ws, labels=L, temperature=1.0, reference_all=ref_all,
                              strength=1.0)
    assert zero["all"]["accuracy"] == 0.5
    assert adapted["all"]["accuracy"] == 1.0


def test_selective_and_threshold_choice() -> None:
    # confident clips are right, hesitant ones wrong: the threshold separates them
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.35, 0.65], [0.45, 0.55], [0.52, 0.48], [0.3, 0.7]])
    y = np.array([0, 0, 0, 0, 1, 1])
    s = selective(probs, y, 0.6)
    assert s["coverage"] == pytest.approx(4 / 6)
    assert s["accuracy_answered"] == pytest.approx(3 / 4)
    assert s["accuracy_uncertain"] == 0.0
    assert s["accuracy_all"] == pytest.approx(3 / 6)
    t, table = choose_threshold(probs, y)
    # all answered: 50 % right; from 0.53 the least confident (wrong) clip drops out and 60 % is reached
    assert t == 0.53
    assert len(table) == 71
    # nothing reaches the target accuracy: the best answered accuracy at >= 30 % coverage
    t2, _ = choose_threshold(probs, 1 - y)
    assert selective(probs, 1 - y, t2)["coverage"] >= 0.3


@pytest.mark.parametrize(
    ("confidence", "right", "grid", "expected"),
    [
        # 4 clips: answered share and accuracy of the answered at each threshold
        ([0.2, 0.4, 0.6, 0.8], [False, True, False, True], (0.3, 0.5, 0.7, 0.9),
         [(0.3, 0.75, 0.6667), (0.5, 0.5, 0.5), (0.7, 0.25, 1.0), (0.9, 0.0, 0.0)]),
        # a clip exactly at the threshold is answered
        ([0.5, 0.5], [True, False], (0.5,), [(0.5, 1.0, 0.5)]),
    ],
)
def test_tradeoff_points_count_answered_clips_and_their_accuracy(confidence, right, grid, expected) -> None:
    points = tradeoff_points(confidence=confidence, right=right, grid=grid)
    assert [(p["min_confidence"], p["coverage"], p["accuracy"]) for p in points] == expected


@pytest.mark.parametrize(
    ("coverages", "coverage", "expected"),
    [
        ([1.0, 0.9, 0.8, 0.79, 0.5], 0.8, 0.3),  # the largest still answering 80 %
        ([1.0, 0.9, 0.85, 0.82, 0.81], 0.8, 0.4),
        ([0.7, 0.6, 0.5, 0.4, 0.3], 0.8, 0.2),  # none does: the first
    ],
)
def test_threshold_for_coverage_takes_the_largest_that_answers_enough(coverages, coverage, expected) -> None:
    points = [{"min_confidence": t, "coverage": c, "accuracy": 0.5}
              for t, c in zip((0.2, 0.25, 0.3, 0.35, 0.4), coverages, strict=True)]
    assert threshold_for_coverage(points, coverage=coverage) == expected


def test_tradeoff_points_refuse_mismatched_input() -> None:
    with pytest.raises(ParameterError, match="equal non-empty"):
        tradeoff_points(confidence=[0.5, 0.6], right=[True])
