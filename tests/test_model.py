"""EmotionModel: loading, validation of model.json against the graph, inference."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tiny_model import TINY_LABELS, TRADEOFF, build_tiny_model

from ser_engine.config import FeatureConfig
from ser_engine.errors import ModelError, ParameterError, ProfileError
from ser_engine.inference.model import EmotionModel, ModelMetadata, model_fingerprint, softmax
from ser_engine.inference.profile import VoiceProfile


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def edit_json(d: Path, **changes: object) -> None:
    meta = json.loads((d / "model.json").read_text())
    meta.update(changes)
    (d / "model.json").write_text(json.dumps(meta))


def frames_like_speech(n: int, t: int = 297, *, seed: int = 0) -> np.ndarray:
    """Un-normalised log-mel-like frames (the tiny model's statistics are mean -6, std 3)."""
    return np.random.default_rng(seed).normal(-6.0, 3.0, (n, t, 64)).astype(np.float32)


def test_loads_and_predicts(tiny_model: EmotionModel) -> None:
    assert tiny_model.labels == TINY_LABELS
    assert tiny_model.feature_config.is_fitted
    assert tiny_model.affect_names == ()
    x = frames_like_speech(5)
    out = tiny_model.predict(x)
    assert len(out) == 5
    p = out.probabilities
    assert p.shape == (5, len(TINY_LABELS))
    assert p.dtype == np.float32
    assert out.logits.dtype == np.float32
    assert out.affect is None
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(p, softmax(out.logits, temperature=tiny_model.metadata.temperature))
    # normalised inside with the model's own statistics, then the graph
    graph = tiny_model._session.run(["logits"], {"features": tiny_model.featurizer.normalize(x)})[0]
    np.testing.assert_allclose(out.logits, graph, rtol=1e-6, atol=1e-6)
    # the batch size changes how often the graph runs, not what it says
    np.testing.assert_allclose(tiny_model.predict(x, batch_size=2).logits, out.logits, rtol=1e-6, atol=1e-6)
    empty = tiny_model.predict(np.zeros((0, 297, 64), np.float32))
    assert empty.probabilities.shape == (0, len(TINY_LABELS))
    with pytest.raises(ParameterError, match="shape"):
        tiny_model.predict(x[0])
    with pytest.raises(ParameterError, match="batch_size"):
        tiny_model.predict(x, batch_size=0)


def test_temperature_scales_logits(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = copy_model(tiny_model_dir, tmp_path / "t")
    edit_json(d, temperature=2.0)
    hot = EmotionModel.load(d)
    out = hot.predict(frames_like_speech(2, 100))
    np.testing.assert_allclose(out.probabilities, softmax(out.logits / 2.0), atol=1e-6)
    cool = EmotionModel.load(tiny_model_dir).predict(frames_like_speech(2, 100))
    np.testing.assert_array_equal(cool.logits, out.logits)
    assert not np.allclose(cool.probabilities, out.probabilities, atol=1e-3)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing dir", "model directory not found"),
        ("missing onnx", "model file not found"),
        ("empty onnx", "model file is empty"),
        ("corrupt onnx", "not a loadable ONNX model"),
        ("missing json", "model metadata not found"),
        ("invalid json", "not valid JSON"),
        ("too many labels", "does not match the 8 labels"),
        ("unknown label", "unknown labels"),
        ("wrong mel count", "values per frame"),
        ("graph width disagrees with the feature set", "feature set 'mfcc_zcr_rms' gives 42"),
        ("wrong input name", "graph input is 'features'"),
        ("fixed frames disagree", "disagrees with model.json input_shape"),
        ("no stats", "no normalisation statistics"),
    ],
)
def test_bad_models_give_clear_errors(tiny_model_dir: Path, tmp_path: Path, case: str, message: str) -> None:
    d = copy_model(tiny_model_dir, tmp_path / "m")
    if case == "missing dir":
        d = tmp_path / "nowhere"
    elif case == "missing onnx":
        (d / "model.onnx").unlink()
    elif case == "empty onnx":
        (d / "model.onnx").write_bytes(b"")
    elif case == "corrupt onnx":
        (d / "model.onnx").write_bytes(np.random.default_rng(0).bytes(3000))
    elif case == "missing json":
        (d / "model.json").unlink()
    elif case == "invalid json":
        (d / "model.json").write_text("{ not json")
    elif case == "too many labels":
        edit_json(d, labels=[*TINY_LABELS, "calm"])
    elif case == "unknown label":
        edit_json(d, labels=["joy", *TINY_LABELS[1:]])
    elif case == "wrong mel count":
        edit_json(d, input_shape=[None, None, 40])
    elif case == "graph width disagrees with the feature set":
        cfg = FeatureConfig(features="mfcc_zcr_rms").with_stats(mean=np.zeros(42), std=np.ones(42))
        edit_json(d, input_shape=[None, None, 42], feature_config=cfg.to_dict())
    elif case == "wrong input name":
        edit_json(d, input_name="mfcc")
    elif case == "fixed frames disagree":
        d = build_tiny_model(tmp_path / "fixed", fixed_frames=True)
        cfg = FeatureConfig(window_s=2.0).with_stats(mean=np.zeros(64), std=np.ones(64))
        edit_json(d, input_shape=[None, cfg.n_frames, 64], feature_config=cfg.to_dict())
    elif case == "no stats":
        cfg = FeatureConfig().to_dict()
        edit_json(d, feature_config=cfg)
    with pytest.raises(ModelError) as info:
        EmotionModel.load(d)
    assert message in str(info.value)
    assert str(tmp_path) in str(info.value)  # names the file or folder


def test_fixed_frame_model_checks_input(tmp_path: Path) -> None:
    m = EmotionModel.load(build_tiny_model(tmp_path / "f", fixed_frames=True))
    with pytest.raises(ParameterError, match="exactly 297"):
        m.predict(np.zeros((1, 200, 64), np.float32))
    with pytest.raises(ParameterError, match="values per frame"):
        m.predict(np.zeros((1, 297, 40), np.float32))
    with pytest.raises(ParameterError, match="NaN"):
        m.predict(np.full((1, 297, 64), np.nan, np.float32))


def test_metadata_round_trip(tiny_model: EmotionModel, tmp_path: Path) -> None:
    tiny_model.metadata.save(tmp_path / "m.json")
    assert ModelMetadata.load(tmp_path / "m.json") == tiny_model.metadata


@pytest.mark.corpus
def test_shipped_model_is_consistent(shipped_model: EmotionModel) -> None:
    meta = shipped_model.metadata
    assert set(meta.labels) >= {"angry", "happy", "neutral", "sad"}
    assert meta.feature_config.is_fitted
    silence = shipped_model.featurizer.frames(np.zeros(meta.feature_config.window_samples, np.float32))
    p = shipped_model.predict(silence[None]).probabilities
    assert p.shape == (1, len(meta.labels))
    assert abs(float(p.sum()) - 1) < 1e-4


# ----------------------------------------------------------------------------- voice calibration metadata
def tiny_profile(model: EmotionModel, shift: np.ndarray, *, sha: str | None = None, name: str = "Anna") -> VoiceProfile:
    labels = model.labels
    return VoiceProfile(name=name, model_name=model.name, model_sha256=sha or model_fingerprint(model),
                        labels=labels, logit_shift=tuple(float(v) for v in shift), speech_s=12.0, n_windows=20,
                        created="2026-01-01T00:00:00Z", sources=("a.wav",),
                        before=dict.fromkeys(labels, 1 / len(labels)), after=dict.fromkeys(labels, 1 / len(labels)))


def test_voice_calibration_keys_parse_and_round_trip(tiny_model_dir: Path, tmp_path: Path) -> None:
    plain = EmotionModel.load(tiny_model_dir).metadata
    assert plain.voice_reference is None
    assert plain.uncertainty_threshold == 0.0
    assert "voice_calibration" not in plain.to_dict()
    assert "uncertainty_threshold" not in plain.to_dict()
    d = copy_model(tiny_model_dir, tmp_path / "c")
    ref = [0.5, -1.0, 0.0, 2.0, 1.5, -0.25, 3]
    edit_json(d, voice_calibration={"reference_logits": ref, "fitted_on": "test voices"}, uncertainty_threshold=0.35)
    meta = EmotionModel.load(d).metadata
    assert meta.voice_reference == tuple(float(v) for v in ref)
    assert meta.voice_reference_fitted_on == "test voices"
    assert meta.uncertainty_threshold == 0.35
    assert meta.voice_strength == 1.0  # absent: the whole offset is removed
    out = meta.to_dict()
    assert out["voice_calibration"] == {
        "reference_logits": [float(v) for v in ref],
        "fitted_on": "test voices",
        "strength": 1.0,
    }
    assert out["uncertainty_threshold"] == 0.35
    meta.save(tmp_path / "again.json")
    assert ModelMetadata.load(tmp_path / "again.json") == meta


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"voice_calibration": {"reference_logits": [0.0] * 6}}, "has 6 values but there are 7 labels"),
        ({"voice_calibration": {"reference_logits": [0.0] * 6 + ["x"]}}, "list of finite numbers"),
        ({"voice_calibration": {"reference_logits": [0.0] * 6 + [float("nan")]}}, "list of finite numbers"),
        ({"voice_calibration": {"reference_logits": []}}, "list of finite numbers"),
        ({"voice_calibration": [0.0] * 7}, "must be an object"),
        ({"voice_calibration": {"reference_logits": [0.0] * 7, "fitted_on": 3}}, "fitted_on must be a string"),
        ({"voice_calibration": {"reference_logits": [0.0] * 7, "strength": 2.5}}, "strength must be in [0, 2]"),
        ({"voice_calibration": {"reference_logits": [0.0] * 7, "strength": "1"}}, "strength must be a number"),
        ({"uncertainty_threshold": 1.0}, "uncertainty_threshold must be a number in [0, 1)"),
        ({"uncertainty_threshold": -0.1}, "uncertainty_threshold must be a number in [0, 1)"),
        ({"uncertainty_threshold": "0.4"}, "uncertainty_threshold must be a number in [0, 1)"),
        ({"uncertainty_threshold": float("nan")}, "uncertainty_threshold must be a number in [0, 1)"),
        ({"uncertainty_threshold": True}, "uncertainty_threshold must be a number in [0, 1)"),
    ],
)
def test_bad_voice_calibration_keys_are_refused(tiny_model_dir: Path, tmp_path: Path, changes: dict[str, object],
                                                message: str) -> None:
    d = copy_model(tiny_model_dir, tmp_path / "m")
    edit_json(d, **changes)
    with pytest.raises(ModelError) as info:
        EmotionModel.load(d)
    assert message in str(info.value)
    assert str(d / "model.json") in str(info.value)


def test_with_profile_shares_the_session_and_shifts_the_logits(tiny_model: EmotionModel) -> None:
    shift = np.array([1.5, -0.5, 0.25, 0.0, -2.0, 0.75, 3.0], np.float32)
    calibrated = tiny_model.with_profile(tiny_profile(tiny_model, shift))
    assert calibrated is not tiny_model
    assert tiny_model.profile is None
    assert calibrated.profile is not None
    assert calibrated._session is tiny_model._session
    assert calibrated.metadata is tiny_model.metadata
    assert calibrated.featurizer is tiny_model.featurizer
    x = frames_like_speech(4, 120, seed=3)
    raw = tiny_model.predict(x)
    shifted = calibrated.predict(x)
    np.testing.assert_allclose(shifted.logits, raw.logits - shift, atol=1e-6)
    t = tiny_model.metadata.temperature
    np.testing.assert_allclose(shifted.probabilities, softmax(raw.logits - shift, temperature=t), atol=1e-6)
    assert not np.allclose(shifted.probabilities, raw.probabilities, atol=1e-3)
    # the original is untouched and None gives an uncalibrated copy again
    np.testing.assert_array_equal(tiny_model.predict(x).logits, raw.logits)
    plain = calibrated.with_profile(None)
    assert plain.profile is None
    np.testing.assert_array_equal(plain.predict(x).logits, raw.logits)


def test_profile_of_another_model_is_refused(tiny_model: EmotionModel) -> None:
    other = "1a2b3c4d" + "0" * 56
    with pytest.raises(ProfileError) as info:
        tiny_model.with_profile(tiny_profile(tiny_model, np.zeros(7), sha=other))
    msg = str(info.value)
    assert "profile 'Anna' was made for model" in msg
    assert "sha 1a2b3c4d…" in msg
    assert f"sha {model_fingerprint(tiny_model)[:8]}…" in msg
    assert "record a new profile" in msg
    wrong_labels = replace(tiny_profile(tiny_model, np.zeros(7)),
                           labels=("angry", "calm", "fearful", "happy", "neutral", "sad", "surprised"))
    with pytest.raises(ProfileError, match="has the labels"):
        tiny_model.with_profile(wrong_labels)


def set_digest(d: Path) -> str:
    """Compute the documented fingerprint: per file of the set (graph, then metadata) name, NUL, size, bytes."""
    h = hashlib.sha256()
    for name in ("model.onnx", "model.json"):
        data = (d / name).read_bytes()
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def test_fingerprint_covers_the_model_set(tiny_model_dir: Path, tmp_path: Path) -> None:
    m = EmotionModel.load(tiny_model_dir)
    assert m.files == (tiny_model_dir / "model.onnx", tiny_model_dir / "model.json")
    assert model_fingerprint(m) == m.fingerprint == set_digest(tiny_model_dir)
    # the same graph with other metadata (here the temperature) is another model: its profiles do not apply
    d = copy_model(tiny_model_dir, tmp_path / "t")
    edit_json(d, temperature=1.5)
    other = EmotionModel.load(d)
    assert other.fingerprint == set_digest(d) != m.fingerprint
    with pytest.raises(ProfileError, match="record a new profile"):
        other.with_profile(tiny_profile(m, np.zeros(7)))


def test_profiles_that_name_the_graph_alone_stay_valid(tiny_model: EmotionModel, tiny_model_dir: Path) -> None:
    """Profiles made before the fingerprint covered the set hold the SHA-256 of model.onnx: still accepted."""
    onnx_only = hashlib.sha256((tiny_model_dir / "model.onnx").read_bytes()).hexdigest()
    assert onnx_only != tiny_model.fingerprint
    shift = np.linspace(-1, 1, 7).astype(np.float32)
    old = tiny_model.with_profile(tiny_profile(tiny_model, shift, sha=onnx_only))
    x = frames_like_speech(2, seed=4)
    np.testing.assert_allclose(old.predict(x).logits, tiny_model.predict(x).logits - shift, atol=1e-6)


def test_uncertainty_threshold(tiny_model_dir: Path, tmp_path: Path) -> None:
    m = EmotionModel.load(tiny_model_dir)
    assert not m.is_uncertain(0.0)  # no threshold: never uncertain
    d = copy_model(tiny_model_dir, tmp_path / "u")
    edit_json(d, uncertainty_threshold=0.4)
    u = EmotionModel.load(d)
    assert u.is_uncertain(0.39)
    assert not u.is_uncertain(0.4)
    assert not u.is_uncertain(0.9)
    assert u.with_profile(None).is_uncertain(0.2)


@pytest.mark.corpus
def test_shipped_model_supports_calibration(shipped_model: EmotionModel) -> None:
    meta = shipped_model.metadata
    assert meta.voice_reference is not None
    assert len(meta.voice_reference) == len(meta.labels)
    # the reference is neutral speech: its arg-max is neutral
    assert meta.labels[int(np.argmax(meta.voice_reference))] == "neutral"
    assert 0 < meta.uncertainty_threshold < 1


def test_uncertain_flags_follow_the_threshold(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Analysis (file and segments) and the streamer mark predictions below the threshold as uncertain."""
    import soundfile as sf
    from conftest import synth_speechlike

    from ser_engine.files.analysis import analyze_file
    from ser_engine.live.stream import Streamer, StreamSettings

    wav = tmp_path / "speech.wav"
    y = synth_speechlike(seconds=4.0, seed=3)
    sf.write(str(wav), y, 16000)
    d = copy_model(tiny_model_dir, tmp_path / "u")
    for threshold in (0.0, 0.9999999):
        edit_json(d, uncertainty_threshold=threshold)
        m = EmotionModel.load(d)
        res = analyze_file(wav, m)
        assert res.label is not None
        assert res.confidence is not None
        assert res.confidence < threshold or threshold == 0
        assert res.uncertain is (threshold > 0)
        assert res.to_dict()["uncertain"] is (threshold > 0)
        speech = [s for s in res.segments if s.speech]
        assert speech
        assert all(s.uncertain is (max(s.probabilities.values()) < threshold) for s in speech)
        st = Streamer(m, settings=StreamSettings(smoothing=0.0))
        preds = [st.push_block(y[i : i + 8000], end_sample=i + 8000) for i in range(0, 64000, 8000)]
        spoken = [p for p in preds if p.speech]
        assert spoken
        assert all(p.uncertain is (p.confidence < threshold) and p.label is not None for p in spoken)
        assert any(p.uncertain for p in spoken) is (threshold > 0)
        assert all(p.uncertain is False for p in preds if not p.speech)
        assert spoken[0].to_dict()["uncertain"] is spoken[0].uncertain


# ----------------------------------------------------------------------------- the user's minimum confidence
@pytest.fixture
def model_with_threshold(tiny_model_dir: Path, tmp_path: Path) -> EmotionModel:
    """Load the tiny model with an uncertainty threshold of 0.4 in its model.json."""
    d = copy_model(tiny_model_dir, tmp_path / "t")
    edit_json(d, uncertainty_threshold=0.4)
    return EmotionModel.load(d)


@pytest.mark.parametrize("bad", [-0.01, 1.0, 1.5, float("nan"), float("inf"), True, "0.5"])
def test_min_confidence_out_of_range_is_refused(model_with_threshold: EmotionModel, bad: object) -> None:
    with pytest.raises(ParameterError) as info:
        model_with_threshold.with_min_confidence(bad)  # type: ignore[arg-type]
    message = str(info.value)
    assert "minimum confidence must be a number at least 0 and less than 1" in message
    assert repr(bad) in message
    assert model_with_threshold.metadata.uncertainty_threshold == 0.4


@pytest.mark.parametrize(("value", "threshold", "uncertain_at_0_3", "uncertain_at_0_6"), [
    (None, 0.4, True, False),  # the model's own
    (0.0, 0.0, False, False),  # never uncertain
    (0.25, 0.25, False, False),
    (0.5, 0.5, True, False),
    (0.99, 0.99, True, True),
])
def test_with_min_confidence_replaces_the_threshold_of_a_copy(model_with_threshold: EmotionModel, value: float | None,
                                                              threshold: float, uncertain_at_0_3: bool,
                                                              uncertain_at_0_6: bool) -> None:
    original = model_with_threshold
    meta_before = original.metadata
    m = original.with_min_confidence(value)
    assert m is not original
    assert m.metadata.uncertainty_threshold == threshold
    assert m.metadata == replace(meta_before, uncertainty_threshold=threshold)  # nothing else changes
    assert m.min_confidence == value
    assert m.default_min_confidence == 0.4
    assert m.is_uncertain(0.3) is uncertain_at_0_3
    assert m.is_uncertain(0.6) is uncertain_at_0_6
    assert m._session is original._session  # a copy, not a second session
    assert m.fingerprint == original.fingerprint  # the model set is the same: its profiles still apply
    # the original is untouched
    assert original.metadata is meta_before
    assert original.metadata.uncertainty_threshold == 0.4
    assert original.min_confidence is None
    assert original.is_uncertain(0.3)
    assert not original.is_uncertain(0.45)
    # None gives the model's own threshold back, from any copy
    assert m.with_min_confidence(None).metadata.uncertainty_threshold == 0.4
    assert m.with_min_confidence(None).min_confidence is None


@pytest.mark.parametrize("order", ["profile first", "min confidence first"])
def test_min_confidence_and_profile_combine_in_either_order(model_with_threshold: EmotionModel, order: str) -> None:
    base = model_with_threshold
    shift = np.array([1.5, -0.5, 0.25, 0.0, -2.0, 0.75, 3.0], np.float32)
    profile = tiny_profile(base, shift)
    if order == "profile first":
        m = base.with_profile(profile).with_min_confidence(0.8)
    else:
        m = base.with_min_confidence(0.8).with_profile(profile)
    assert m.profile is profile
    assert m.metadata.uncertainty_threshold == 0.8
    assert m.is_uncertain(0.7)
    x = frames_like_speech(3, 120, seed=5)
    np.testing.assert_allclose(m.predict(x).logits, base.predict(x).logits - shift, atol=1e-6)
    # undoing one keeps the other
    plain = m.with_profile(None)
    assert plain.profile is None
    assert plain.metadata.uncertainty_threshold == 0.8
    own = m.with_min_confidence(None)
    assert own.profile is profile
    assert own.metadata.uncertainty_threshold == 0.4
    assert base.profile is None
    assert base.metadata.uncertainty_threshold == 0.4


def test_analysis_and_streamer_follow_the_min_confidence(tiny_model: EmotionModel, tmp_path: Path) -> None:
    """File analysis and the live streamer ask the model: a copy's minimum confidence is all they need."""
    import soundfile as sf
    from conftest import synth_speechlike

    from ser_engine.files.analysis import analyze_file
    from ser_engine.live.stream import Streamer, StreamSettings

    wav = tmp_path / "speech.wav"
    y = synth_speechlike(seconds=4.0, seed=3)
    sf.write(str(wav), y, 16000)
    for value, uncertain in ((0.0, False), (0.9999, True)):
        m = tiny_model.with_min_confidence(value)
        res = analyze_file(wav, m)
        assert res.label is not None
        assert res.uncertain is uncertain
        speech = [s for s in res.segments if s.speech]
        assert speech
        assert all(s.uncertain is uncertain and s.label is not None for s in speech)
        st = Streamer(m, settings=StreamSettings(smoothing=0.0))
        preds = [st.push_block(y[i : i + 8000], end_sample=i + 8000) for i in range(0, 64000, 8000)]
        spoken = [p for p in preds if p.speech]
        assert spoken
        assert all(p.uncertain is uncertain for p in spoken)


# ----------------------------------------------------------------------------- confidence_tradeoff in model.json


def test_confidence_tradeoff_parses_round_trips_and_interpolates(tiny_model_dir: Path, tmp_path: Path) -> None:
    from ser_engine.inference.model_meta import TradeoffPoint

    d = copy_model(tiny_model_dir, tmp_path / "c")
    edit_json(d, uncertainty_threshold=0.3, confidence_tradeoff=TRADEOFF)
    m = EmotionModel.load(d)
    tradeoff = m.metadata.confidence_tradeoff
    assert tradeoff is not None
    assert tradeoff.measured_on == TRADEOFF["measured_on"]
    assert [p.to_dict() for p in tradeoff.points] == TRADEOFF["points"]
    # round trip: to_dict holds it as model.json did, and load(save()) gives the same metadata
    assert m.metadata.to_dict()["confidence_tradeoff"] == TRADEOFF
    m.metadata.save(tmp_path / "again.json")
    assert ModelMetadata.load(tmp_path / "again.json") == m.metadata
    # a measured point is given as measured
    at = tradeoff.at(0.2)
    assert at == TradeoffPoint(0.2, 0.9, 0.64)
    assert not at.estimated
    assert at.describe() == "answers 90 % of the clips, 64 % of those right"
    # between two points: linear, and said to be an estimate
    mid = m.metadata.tradeoff_at()  # the model's own threshold, 0.3
    assert mid is not None
    assert (mid.min_confidence, mid.coverage, mid.accuracy) == pytest.approx((0.3, 0.7, 0.72))
    assert mid.estimated
    assert mid.describe() == "answers about 70 % of the clips, about 72 % of those right"
    # the user's minimum confidence moves the point the metadata gives
    assert m.with_min_confidence(0.4).metadata.tradeoff_at() == TradeoffPoint(0.4, 0.5, 0.8)
    # outside what was measured: nothing is said
    assert tradeoff.at(0.41) is None
    assert m.metadata.tradeoff_at(0.9) is None


def test_models_without_a_tradeoff_say_nothing_about_it(tiny_model: EmotionModel) -> None:
    assert tiny_model.metadata.confidence_tradeoff is None
    assert tiny_model.metadata.tradeoff_at() is None
    assert tiny_model.metadata.tradeoff_at(0.5) is None
    assert "confidence_tradeoff" not in tiny_model.metadata.to_dict()


def _points(*rows: tuple[object, object, object]) -> list[dict[str, object]]:
    return [{"min_confidence": t, "coverage": c, "accuracy": a} for t, c, a in rows]


@pytest.mark.parametrize(("value", "message"), [
    ([], "confidence_tradeoff must be an object with measured_on and points"),
    ({"points": _points((0.0, 1.0, 0.6))}, "measured_on must be a non-empty string"),
    ({"measured_on": "  ", "points": _points((0.0, 1.0, 0.6))}, "measured_on must be a non-empty string"),
    ({"measured_on": "v", "points": []}, "points must list at least one point"),
    ({"measured_on": "v", "points": "0.3"}, "points must be a list of objects"),
    ({"measured_on": "v", "points": _points((0.0, 1.0, 0.6)), "extra": 1}, "unknown keys: extra"),
    ({"measured_on": "v", "points": [{"min_confidence": 0.0, "coverage": 1.0}]},
     "points[0] must be an object with exactly the keys min_confidence, coverage, accuracy"),
    ({"measured_on": "v", "points": [[0.0, 1.0, 0.6]]}, "points[0] must be an object"),
    ({"measured_on": "v", "points": _points((0.0, 1.0, "0.6"))}, "points[0].accuracy must be a number"),
    ({"measured_on": "v", "points": _points((0.0, 1.0, True))}, "points[0].accuracy must be a number"),
    ({"measured_on": "v", "points": _points((0.0, 1.0, 0.6), (1.0, 0.1, 0.9))},
     "points[1].min_confidence must be a number in [0, 1)"),
    ({"measured_on": "v", "points": _points((-0.1, 1.0, 0.6))}, "points[0].min_confidence must be a number in [0, 1)"),
    ({"measured_on": "v", "points": _points((0.0, 1.2, 0.6))}, "points[0].coverage must be a number in [0, 1]"),
    ({"measured_on": "v", "points": _points((0.0, 1.0, -0.5))}, "points[0].accuracy must be a number in [0, 1]"),
    ({"measured_on": "v", "points": _points((0.3, 0.8, 0.6), (0.2, 0.9, 0.5))},
     "points must be sorted by min_confidence without repeats: points[1] has 0.2 after 0.3"),
    ({"measured_on": "v", "points": _points((0.2, 0.9, 0.6), (0.2, 0.9, 0.6))}, "without repeats"),
    ({"measured_on": "v", "points": _points((0.1, 0.8, 0.6), (0.2, 0.9, 0.7))},
     "points[1].coverage 0.9 is above the coverage 0.8 at the lower min_confidence 0.1"),
])
def test_bad_confidence_tradeoff_is_refused_with_a_clear_message(tiny_model_dir: Path, tmp_path: Path, value: object,
                                                                 message: str) -> None:
    d = copy_model(tiny_model_dir, tmp_path / "m")
    edit_json(d, confidence_tradeoff=value)
    with pytest.raises(ModelError) as info:
        EmotionModel.load(d)
    assert message in str(info.value)
    assert "model.json confidence_tradeoff" in str(info.value)
    assert str(d / "model.json") in str(info.value)


@pytest.mark.corpus
def test_the_shipped_model_loads_without_a_tradeoff_or_with_one(shipped_model_dir: Path, tmp_path: Path) -> None:
    """The shipped model.json may or may not carry measured points: both load, and the minimum confidence applies."""
    m = EmotionModel.load(shipped_model_dir)
    own = m.metadata.uncertainty_threshold
    assert m.with_min_confidence(0.5).metadata.uncertainty_threshold == 0.5
    assert m.with_min_confidence(None).metadata.uncertainty_threshold == own
    d = copy_model(shipped_model_dir, tmp_path / "s")
    edit_json(d, confidence_tradeoff=TRADEOFF)
    with_tradeoff = EmotionModel.load(d)
    assert with_tradeoff.metadata.tradeoff_at(0.2) is not None


@pytest.mark.parametrize(("change", "message"), [
    ({"head_output": "logits"}, "graph output of its own"),
    ({"head_output": ""}, "graph output of its own"),
    ({"head_output": 3}, "must be a string"),
    ({"strength": 0.0}, r"\(0, 1\]"),
    ({"strength": 1.5}, r"\(0, 1\]"),
])
def test_a_voice_calibration_head_is_validated(tmp_path: Path, change: dict, message: str) -> None:
    d = build_tiny_model(tmp_path / "m", voice_head=True)
    data = json.loads((d / "model.json").read_text())
    assert data["voice_calibration"]["head_output"] == "voice_logits"  # written, and read back below
    assert EmotionModel.load(d).metadata.voice_head_output == "voice_logits"
    data["voice_calibration"].update(change)
    (d / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match=message):
        EmotionModel.load(d)


def test_a_voice_calibration_head_missing_from_the_graph_is_named(tmp_path: Path) -> None:
    d = build_tiny_model(tmp_path / "m", voice_head=True)
    data = json.loads((d / "model.json").read_text())
    data["voice_calibration"]["head_output"] = "centred_logits"
    (d / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="no output 'centred_logits'"):
        EmotionModel.load(d)
