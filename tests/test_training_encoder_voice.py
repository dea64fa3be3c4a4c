"""The voice calibration head: fitted on speaker-centred vectors, applied through a neutral profile.

Synthetic vectors with a known structure: each speaker has a voice (a constant vector, larger
than the emotions' spread) and each emotion a direction, so what calibration must undo is known.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from ser_engine.errors import ParameterError
from ser_engine.inference.model_meta import calibrated_logits
from training.corpora import HARMONISED_LABELS, Clip
from training.encoder.build import AFFECT_OUTPUT, LOGITS_OUTPUT, VOICE_OUTPUT, head_graph
from training.encoder.head import Candidate, DenseHead, EncoderHead, VoiceHead
from training.encoder.voice import blend_logits, fit_voice_head, speaker_offset, with_voice_head
from training.features import WindowSet

L = HARMONISED_LABELS
D = 16
RECIPE = Candidate("logreg", (1,), 0.1)


def _voices(
    *, speakers: list[str], seed: int, clips_per_label: int = 3, voice_scale: float = 6.0,
    voices: dict[str, np.ndarray] | None = None,
) -> WindowSet:
    """Two windows per clip: the speaker's voice + the label's direction + a little noise."""
    rng = np.random.default_rng(seed)
    emotion = np.random.default_rng(123).normal(size=(len(L), D))  # the same directions in every set
    clips, rows = [], []
    for s in speakers:
        voice = voices[s] if voices is not None else rng.normal(scale=voice_scale, size=D)
        for lab in L:
            for i in range(clips_per_label):
                clips.append(Clip(f"/{s}/{lab}{i}.flac", "synth", s, None, str(i), None, lab, lab))
                for _ in range(2):
                    rows.append(voice + emotion[L.index(lab)] + rng.normal(scale=0.3, size=D))
    x = np.asarray(rows, dtype=np.float32)[:, None, :]  # one block
    return WindowSet(features=x, clip_index=np.repeat(np.arange(len(clips)), 2).astype(np.int32),
                     speech=np.ones(len(rows), bool), clips=clips)


def _neutral_rows(ws: WindowSet) -> np.ndarray:
    neutral = np.array([c.label == "neutral" for c in ws.clips])
    return neutral[ws.clip_index]


def _emotion_head(train: WindowSet) -> DenseHead:
    """Fit the plain read-out of the same recipe (the zero-shot model)."""
    from training.encoder.head import _prepare, _window_labels, fit_candidate

    _, y = _window_labels(train, L)
    head, _ = fit_candidate(RECIPE, prep=_prepare(train, RECIPE.blocks), y=y, n_out=len(L))
    return head


def _uar(logits: np.ndarray, ws: WindowSet, rows: np.ndarray) -> float:
    truth = np.array([L.index(c.label) for c in ws.clips])[ws.clip_index][rows]
    pred = logits[rows].argmax(axis=1)
    return float(np.mean([np.mean(pred[truth == k] == k) for k in np.unique(truth)]))


@pytest.fixture(scope="module")
def train() -> WindowSet:
    return _voices(speakers=[f"t:{i}" for i in range(10)], seed=0)


@pytest.fixture(scope="module")
def voice(train: WindowSet) -> VoiceHead:
    return fit_voice_head(train=train, candidate=RECIPE, labels=L)


def test_a_profile_of_neutral_speech_reads_a_new_voice_as_well_as_the_training_voices(
    train: WindowSet, voice: VoiceHead
) -> None:
    new = _voices(speakers=["n:0"], seed=7, voice_scale=12.0)  # a voice unlike any heard
    profile = _neutral_rows(new) & np.isin(new.clip_index, [i for i, c in enumerate(new.clips)
                                                            if c.label == "neutral" and c.sentence == "0"])
    scored = ~profile
    zero = _emotion_head(train)(new.features)
    alone = blend_logits(logits=zero, head_logits=voice.head(new.features), profile_rows=profile,
                         reference=voice.reference, strength=1.0)
    assert _uar(alone, new, scored) > 0.9
    assert _uar(alone, new, scored) > _uar(zero, new, scored) + 0.2


def test_calibrated_logits_do_not_depend_on_the_voice(voice: VoiceHead) -> None:
    a = _voices(speakers=["n:0"], seed=3)
    moved = WindowSet(features=a.features + np.random.default_rng(5).normal(scale=20, size=D).astype(np.float32),
                      clip_index=a.clip_index, speech=a.speech, clips=a.clips)
    profile = _neutral_rows(a)
    zero = np.zeros((len(a), len(L)))
    for st in (0.5, 1.0):
        got = [blend_logits(logits=zero, head_logits=voice.head(w.features), profile_rows=profile,
                            reference=voice.reference, strength=st) for w in (a, moved)]
        np.testing.assert_allclose(got[0], got[1], atol=2e-3)


def test_the_blend_is_the_head_on_vectors_centred_on_the_profile_plus_the_typical_offset(
    train: WindowSet, voice: VoiceHead
) -> None:
    new = _voices(speakers=["n:1"], seed=11)
    profile = _neutral_rows(new)
    x = new.features[:, 0, :].astype(np.float64)
    centred = x - x[profile].mean(axis=0) - voice.offset
    expected = voice.head(centred[:, None, :])
    zero = _emotion_head(train)(new.features)
    got = blend_logits(logits=zero, head_logits=voice.head(new.features), profile_rows=profile,
                       reference=voice.reference, strength=1.0)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    half = blend_logits(logits=zero, head_logits=voice.head(new.features), profile_rows=profile,
                        reference=voice.reference, strength=0.5)
    np.testing.assert_allclose(half, 0.5 * zero + 0.5 * expected, atol=1e-3)
    # the engine's own blend gives the same
    shift = voice.head(new.features)[profile].mean(axis=0) - voice.reference
    engine = calibrated_logits(logits=zero, head_logits=voice.head(new.features), shift=shift, strength=0.5)
    np.testing.assert_allclose(half, engine, atol=1e-3)


def test_speaker_offset_is_the_mean_step_from_neutral_to_all_speech() -> None:
    # speaker a: neutral at 0, the rest at 1 (3 of 4 windows) -> all mean 0.75, offset 0.75
    # speaker b: neutral at 5, the rest at 7 (1 of 2 windows) -> all mean 6, offset 1
    x = np.array([[0.0], [1.0], [1.0], [1.0], [5.0], [7.0]])
    spk = ["a", "a", "a", "a", "b", "b"]
    lab = ["neutral", "angry", "sad", "happy", "neutral", "angry"]
    np.testing.assert_allclose(speaker_offset(x=x, speakers=spk, labels=lab), [0.875])
    with pytest.raises(ParameterError, match="no neutral"):
        speaker_offset(x=x, speakers=spk, labels=["angry"] * 6)


def test_the_voice_head_must_read_the_emotion_heads_blocks(train: WindowSet, voice: VoiceHead) -> None:
    emotion = _emotion_head(train)
    affect = DenseHead(blocks=emotion.blocks, weights=(np.zeros((D, 2)),), biases=(np.zeros(2),))
    head = with_voice_head(EncoderHead(emotion=emotion, affect=affect), train=train, candidate=RECIPE, labels=L)
    assert head.voice is not None
    np.testing.assert_allclose(head.voice.reference, voice.reference)
    other = VoiceHead(head=DenseHead(blocks=(2,), weights=voice.head.weights, biases=voice.head.biases),
                      reference=voice.reference, offset=voice.offset)
    with pytest.raises(ParameterError, match="blocks"):
        EncoderHead(emotion=emotion, affect=affect, voice=other)


def test_the_head_graph_gives_the_voice_heads_logits_as_a_third_output(train: WindowSet, voice: VoiceHead) -> None:
    emotion = _emotion_head(train)
    affect = DenseHead(blocks=emotion.blocks, weights=(np.ones((D, 2)),), biases=(np.zeros(2),))
    x = train.features[:20].astype(np.float32)
    for with_voice in (False, True):
        head = EncoderHead(emotion=emotion, affect=affect, voice=voice if with_voice else None)
        graph = head_graph(head, n_blocks=1, d_model=D, opset=17, ir_version=8)
        sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        assert names == [LOGITS_OUTPUT, AFFECT_OUTPUT] + ([VOICE_OUTPUT] if with_voice else [])
        out = dict(zip(names, sess.run(None, {"block_means": x}), strict=True))
        np.testing.assert_allclose(out[LOGITS_OUTPUT], emotion(x), atol=1e-3)
        if with_voice:
            np.testing.assert_allclose(out[VOICE_OUTPUT], voice.head(x), atol=1e-3)
