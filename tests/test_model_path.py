"""The one model path: EmotionModel.predict, used by file analysis, profiles, the streamer and training.

It must give the numbers the steps it replaced gave (normalise with the model's
statistics, the graph, minus the profile's shift, softmax of logits over the
temperature), on real clips and the shipped model; and it carries the optional
affect output of a model that has one through analysis and the streamer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import synth_speechlike
from tiny_model import build_tiny_model

from ser_engine.dsp.audio import iter_audio_blocks, load_audio
from ser_engine.dsp.core import iter_window_features
from ser_engine.dsp.features import fit_to_length
from ser_engine.dsp.smoothing import EmaSmoother
from ser_engine.errors import ModelError
from ser_engine.files.analysis import analyze_file
from ser_engine.inference.model import AffectOutput, EmotionModel, ModelMetadata, model_fingerprint
from ser_engine.inference.profile import VoiceProfile
from ser_engine.live.ringbuffer import RingBuffer
from ser_engine.live.stream import Streamer, StreamSettings

CLIPS = [
    "ravdess/Actor_01/03-01-05-02-01-01-01.flac",
    "ravdess/Actor_02/03-01-03-01-02-01-02.flac",
    "crema-d/1001_DFA_ANG_XX.ogg",
    "crema-d/1015_DFA_FEA_XX.ogg",
    "nemo/EB0_anger_1.ogg",
    "savee/DC_a01.flac",
]


def old_formula(model: EmotionModel, frames: np.ndarray, shift: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Compute by hand the steps the callers wrote out before the one path: normalise, graph, shift, softmax(/T).

    With a voice calibration head and a profile, the shift applies to the head's logits, which are
    blended with the model's own: ``(1 - s) * logits + s * (head - shift)``.
    """
    fc = model.feature_config
    mean = np.asarray(fc.mean, dtype=np.float32)
    inv = (1.0 / np.asarray(fc.std, dtype=np.float64)).astype(np.float32)
    x = (frames.astype(np.float32) - mean) * inv
    step = model.metadata.max_batch or len(x)  # an int8 graph's activation ranges are per call
    head_name = model.metadata.voice_head_output
    names = ["logits"] + ([head_name] if head_name is not None and shift is not None else [])
    runs = [model._session.run(names, {"features": x[i : i + step]}) for i in range(0, len(x), step)]
    logits = np.concatenate([np.asarray(r[0], dtype=np.float32) for r in runs])
    if shift is not None and head_name is not None:
        head = np.concatenate([np.asarray(r[1], dtype=np.float32) for r in runs])
        s = np.float32(model.metadata.voice_strength)
        logits = (np.float32(1) - s) * logits + s * (head - shift)
    elif shift is not None:
        logits = logits - shift
    z = logits.astype(np.float64) / model.metadata.temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return logits, e / e.sum(axis=1, keepdims=True)


def speech_frames(model: EmotionModel, path: Path) -> tuple[np.ndarray, list[float]]:
    cfg = model.feature_config
    wins = [w for w in iter_window_features(iter_audio_blocks(path), config=cfg, featurizer=model.featurizer)
            if w.speech and w.features is not None]
    assert wins, path
    return np.stack([w.features for w in wins]), [w.start_s for w in wins]


def profile_for(model: EmotionModel, shift: np.ndarray) -> VoiceProfile:
    labels = model.labels
    return VoiceProfile(name="test", model_name=model.name, model_sha256=model_fingerprint(model), labels=labels,
                        logit_shift=tuple(float(v) for v in shift), speech_s=10.0, n_windows=10,
                        created="2026-01-01T00:00:00Z", sources=("a.wav",),
                        before=dict.fromkeys(labels, 1 / len(labels)), after=dict.fromkeys(labels, 1 / len(labels)))


@pytest.mark.corpus
@pytest.mark.parametrize("calibrated", [False, True])
def test_the_one_path_gives_the_old_numbers_on_real_clips(shipped_model: EmotionModel, corpus_dir: Path,
                                                          calibrated: bool) -> None:
    shift = np.linspace(-0.6, 0.6, len(shipped_model.labels)).astype(np.float32) if calibrated else None
    model = shipped_model.with_profile(profile_for(shipped_model, shift)) if shift is not None else shipped_model
    for rel in CLIPS:
        path = corpus_dir / rel
        frames, starts = speech_frames(model, path)
        out = model.predict(frames)
        logits, probs = old_formula(model, frames, shift)
        np.testing.assert_array_equal(out.logits, logits)  # the same float32 operations, the same bits
        np.testing.assert_allclose(out.probabilities, probs, rtol=0, atol=1e-7)
        # file analysis reports exactly these windows and their mean
        res = analyze_file(path, model)
        speech = [s for s in res.segments if s.speech]
        assert [s.start_s for s in speech] == starts
        got = np.array([[s.probabilities[lab] for lab in model.labels] for s in speech])
        np.testing.assert_array_equal(got, out.probabilities)
        np.testing.assert_allclose([res.probabilities[lab] for lab in model.labels],
                                   out.probabilities.astype(np.float64).mean(axis=0), rtol=0, atol=1e-12)
        assert out.affect is not None
        assert list(res.affect) == list(model.affect_names)
        np.testing.assert_allclose([res.affect[k] for k in model.affect_names],
                                   out.affect.astype(np.float64).mean(axis=0), rtol=0, atol=1e-7)
        np.testing.assert_array_equal([[s.affect[k] for k in model.affect_names] for s in speech], out.affect)


@pytest.mark.corpus
def test_the_streamer_takes_the_same_path(shipped_model: EmotionModel, corpus_dir: Path) -> None:
    """Each live speech hop's raw probabilities are predict() on that window's frames."""
    y = load_audio(corpus_dir / CLIPS[0]).samples
    st = Streamer(shipped_model, settings=StreamSettings(smoothing=0.0))
    hop = st.hop
    checked = 0
    for end in range(hop, y.size - y.size % hop + 1, hop):
        p = st.push_block(y[end - hop : end], end_sample=end)
        frames = st.window_features()
        if p.speech and end >= st.window and frames is not None:
            expected = shipped_model.predict(frames[None]).probabilities[0]
            _, by_hand = old_formula(shipped_model, frames[None], None)
            np.testing.assert_array_equal([p.raw_probabilities[lab] for lab in shipped_model.labels], expected)
            np.testing.assert_allclose(expected, by_hand[0], rtol=0, atol=1e-7)
            checked += 1
    assert checked >= 2


@pytest.mark.corpus
def test_training_scores_the_engine_model_through_the_same_path(shipped_model: EmotionModel,
                                                                corpus_dir: Path) -> None:
    from training.crosscorpus import engine_logits
    from training.features import WindowSet

    frames, _ = speech_frames(shipped_model, corpus_dir / CLIPS[2])
    ws = WindowSet(features=frames.astype(np.float16), clip_index=np.zeros(len(frames), np.int32),
                   speech=np.ones(len(frames), bool), clips=[None])  # type: ignore[list-item]
    got = engine_logits(shipped_model, ws, batch=2)
    expected, _ = old_formula(shipped_model, frames.astype(np.float16).astype(np.float32), None)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- the optional affect output
AFFECT = ("arousal", "valence")


@pytest.fixture(scope="module")
def affect_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("affect"), affect=AFFECT, affect_temperature=(2.0, 0.5))


def test_affect_metadata_parses_and_round_trips(affect_model_dir: Path, tmp_path: Path) -> None:
    meta = ModelMetadata.load(affect_model_dir / "model.json")
    assert meta.affect == AffectOutput(output_name="affect", names=AFFECT, temperature=(2.0, 0.5))
    data = meta.to_dict()
    assert data["affect"] == {"output_name": "affect", "names": list(AFFECT), "temperature": [2.0, 0.5]}
    meta.save(tmp_path / "again.json")
    assert ModelMetadata.load(tmp_path / "again.json") == meta
    plain = ModelMetadata.from_dict({k: v for k, v in data.items() if k != "affect"})
    assert plain.affect is None
    assert "affect" not in plain.to_dict()


@pytest.mark.parametrize(
    ("affect", "message"),
    [
        ([1.0], "affect must be an object"),
        ({"output_name": "affect", "names": ["arousal"], "temperature": [1.0, 1.0]}, "has 2 values but there are 1"),
        ({"output_name": "affect", "names": ["arousal", "arousal"], "temperature": [1.0, 1.0]}, "names repeat"),
        ({"output_name": "affect", "names": [], "temperature": []}, "names must be non-empty"),
        ({"output_name": "affect", "names": ["arousal"], "temperature": [0.0]}, "must be positive numbers"),
        ({"output_name": "affect", "names": ["arousal"], "temperature": ["1"]}, "list of positive numbers"),
        ({"output_name": "", "names": ["arousal"], "temperature": [1.0]}, "output_name must be a non-empty string"),
        ({"output_name": "logits", "names": ["arousal"], "temperature": [1.0]}, "emotion output's name too"),
        ({"output_name": "affect", "names": ["arousal"], "temperature": [1.0], "bias": 1}, "unknown keys: bias"),
        ({"output_name": "mood", "names": ["arousal", "valence"], "temperature": [1.0, 1.0]}, "no output 'mood'"),
        ({"output_name": "affect", "names": ["arousal"], "temperature": [1.0]}, "model.json's affect names 1"),
    ],
)
def test_bad_affect_metadata_is_refused(affect_model_dir: Path, tmp_path: Path, affect: object, message: str) -> None:
    d = tmp_path / "m"
    shutil.copytree(affect_model_dir, d)
    meta = json.loads((d / "model.json").read_text())
    meta["affect"] = affect
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"model\.json") as info:
        EmotionModel.load(d)
    assert message in str(info.value)


def test_affect_scores_are_the_calibrated_sigmoid(affect_model_dir: Path, tiny_model: EmotionModel) -> None:
    model = EmotionModel.load(affect_model_dir)
    assert model.affect_names == AFFECT
    frames = np.random.default_rng(0).normal(-6.0, 3.0, (5, 297, 64)).astype(np.float32)
    out = model.predict(frames, batch_size=2)
    assert out.affect is not None
    assert out.affect.shape == (5, 2)
    assert out.affect.dtype == np.float32
    raw = model._session.run(["affect"], {"features": model.featurizer.normalize(frames)})[0].astype(np.float64)
    expected = 1.0 / (1.0 + np.exp(-raw / np.array([2.0, 0.5])))
    np.testing.assert_allclose(out.affect, expected, rtol=1e-6, atol=1e-7)
    # the emotion output is what the same graph without the affect output gives
    np.testing.assert_allclose(out.logits, tiny_model.predict(frames, batch_size=2).logits, rtol=1e-6, atol=1e-6)


def test_affect_is_carried_through_analysis_and_the_streamer(affect_model_dir: Path, tmp_path: Path) -> None:
    model = EmotionModel.load(affect_model_dir)
    y = synth_speechlike(seconds=5.0, seed=2)
    wav = tmp_path / "speech.wav"
    sf.write(str(wav), y, 16000, subtype="FLOAT")
    res = analyze_file(wav, model)
    speech = [s for s in res.segments if s.speech]
    assert speech
    frames, starts = speech_frames(model, wav)
    assert [s.start_s for s in speech] == starts
    scores = model.predict(frames).affect
    assert scores is not None
    np.testing.assert_array_equal([[s.affect[n] for n in AFFECT] for s in speech], scores)
    assert all(s.affect == {} for s in res.segments if not s.speech)
    np.testing.assert_allclose([res.affect[n] for n in AFFECT], scores.astype(np.float64).mean(axis=0), atol=1e-12)
    # not (yet) part of what the CLI and the exports write
    assert "affect" not in res.to_dict()
    assert all("affect" not in s.to_dict() for s in res.segments)

    # live: the same EMA as the probabilities, reset on silence
    settings = StreamSettings(smoothing=0.6)
    st = Streamer(model, settings=settings)
    signal = np.concatenate([y, np.zeros(4 * 16000, np.float32)])
    ring = RingBuffer(signal.size + 16000)
    reader = ring.reader()
    ring.write(signal)
    ema = EmaSmoother(alpha=1.0 - settings.smoothing)
    n_speech = n_silent = 0
    while p := next(iter(st.push(reader, max_steps=1)), None):  # one hop at a time: its window's frames
        if not p.speech:
            n_silent += 1
            ema.reset()
            assert p.affect == {}
            continue
        end = round(p.end_s * 16000)
        if end >= st.window:
            frames = st.window_features()
        else:  # before a full window: the samples so far, centre-padded
            frames = model.featurizer.frames(fit_to_length(y=signal[:end], length=st.window))
        assert frames is not None
        scores = model.predict(frames[None]).affect
        assert scores is not None
        ema.update(scores[0])
        np.testing.assert_allclose([p.affect[n] for n in AFFECT], ema.state, rtol=0, atol=1e-6)
        assert "affect" not in p.to_dict()
        n_speech += 1
    assert n_speech >= 4
    assert n_silent >= 2
