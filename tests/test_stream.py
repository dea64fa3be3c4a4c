"""Streamer: incremental features equal the featurizer; gating; smoothing; stream time."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import synth_speechlike
from tiny_model import build_tiny_model

from ser_engine.dsp.audio import load_audio
from ser_engine.errors import ParameterError
from ser_engine.inference.model import EmotionModel
from ser_engine.live.ringbuffer import RingBuffer
from ser_engine.live.stream import Prediction, Streamer, StreamSettings

SR = 16000


def feed(streamer: Streamer, signal: np.ndarray, *, chunk: int = 1234) -> list[Prediction]:
    ring = RingBuffer(10 * SR)
    reader = ring.reader()
    preds: list[Prediction] = []
    for i in range(0, len(signal), chunk):
        ring.write(signal[i : i + chunk])
        preds += streamer.push(reader)
    return preds


def test_incremental_features_equal_featurizer_on_full_window(tiny_model: EmotionModel) -> None:
    streamer = Streamer(tiny_model, settings=StreamSettings())
    assert streamer.incremental
    y = synth_speechlike(seconds=9.0, seed=3)
    ring = RingBuffer(10 * SR)
    reader = ring.reader()
    checked = 0
    for i in range(0, len(y), 4000):
        ring.write(y[i : i + 4000])
        for pred in streamer.push(reader):
            cached = streamer.window_features()
            if pred.end_s < 3.0:
                continue
            window = y[round(pred.start_s * SR) : round(pred.end_s * SR)]
            expected = tiny_model.featurizer.log_mel(window)
            assert cached is not None
            assert cached.shape == expected.shape == (297, 64)
            np.testing.assert_allclose(cached, expected, rtol=1e-5, atol=1e-5)
            checked += 1
    assert checked == 13  # windows ending at 3.0, 3.5, ..., 9.0 s


def test_speech_predictions_match_model_on_the_window(tiny_model: EmotionModel) -> None:
    streamer = Streamer(tiny_model, settings=StreamSettings(smoothing=0.0))
    y = synth_speechlike(seconds=5.0, seed=1)
    preds = feed(streamer, y)
    full = [p for p in preds if p.end_s - p.start_s == pytest.approx(3.0)]
    assert full
    assert all(p.speech for p in full)
    p = full[-1]
    window = y[round(p.start_s * SR) : round(p.end_s * SR)]
    expected = tiny_model.predict(tiny_model.featurizer.frames(window)[None]).probabilities[0]
    got = np.array([p.raw_probabilities[lab] for lab in tiny_model.labels])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert p.label == tiny_model.labels[int(np.argmax(expected))]
    assert p.confidence == pytest.approx(float(expected.max()), abs=1e-5)
    # a prediction's compute time is the time of its own step: within the push call that made it
    fresh = Streamer(tiny_model, settings=StreamSettings(smoothing=0.0))
    ring = RingBuffer(SR)
    reader = ring.reader()
    ring.write(y[: SR // 2])  # one hop: one prediction
    t0 = time.perf_counter()
    [made] = fresh.push(reader)
    push_ms = (time.perf_counter() - t0) * 1000.0
    assert 0 < made.compute_ms <= push_ms


def test_stream_times_and_hops(tiny_model: EmotionModel) -> None:
    streamer = Streamer(tiny_model, settings=StreamSettings(window_s=2.0, hop_s=0.25))
    preds = feed(streamer, synth_speechlike(seconds=4.0))
    assert len(preds) == 16  # every full hop of 4 s consumed
    assert [p.end_s for p in preds] == pytest.approx([0.25 * (i + 1) for i in range(16)])
    # before a full window: the samples so far (centre-padded for the model); then 2 s windows
    assert preds[0].start_s == 0.0
    assert preds[-1].start_s == pytest.approx(2.0)


def test_silence_says_no_speech(tiny_model: EmotionModel) -> None:
    streamer = Streamer(tiny_model)
    rng = np.random.default_rng(0)
    quiet = rng.normal(0, 1e-4, 4 * SR).astype(np.float32)
    preds = feed(streamer, np.concatenate([quiet, synth_speechlike(seconds=4.0), np.zeros(6 * SR, np.float32)]))
    silent = [p for p in preds if p.end_s <= 4.0]
    assert silent
    assert all(not p.speech and p.label is None and p.probabilities == {} for p in silent)
    assert all(p.confidence == 0.0 for p in silent)
    speechy = [p for p in preds if 5.0 <= p.end_s <= 8.0]
    assert all(p.speech and p.label in tiny_model.labels for p in speechy)
    assert all(sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-4) for p in speechy)
    assert not preds[-1].speech  # the last window (11-14 s) is digital silence
    assert preds[-1].level_dbfs == -120.0


def test_smoothing_is_an_ema_of_raw_probabilities(tiny_model: EmotionModel) -> None:
    streamer = Streamer(tiny_model, settings=StreamSettings(smoothing=0.6))
    y = np.concatenate(
        [synth_speechlike(seconds=3, seed=1, level=0.05), synth_speechlike(seconds=3, seed=2, level=0.9)]
    )
    preds = [p for p in feed(streamer, y) if p.speech]
    assert len(preds) >= 6
    labels = tiny_model.labels
    state = np.array([preds[0].raw_probabilities[k] for k in labels])
    for p in preds[1:]:
        raw = np.array([p.raw_probabilities[k] for k in labels])
        state = 0.4 * raw + 0.6 * state
        np.testing.assert_allclose([p.probabilities[k] for k in labels], state, atol=1e-5)


def test_gap_in_the_stream_restarts_the_window(tiny_model: EmotionModel) -> None:
    streamer = Streamer(tiny_model)
    ring = RingBuffer(SR)  # 1 s: a slow reader loses samples
    reader = ring.reader()
    y = synth_speechlike(seconds=6.0)
    ring.write(y[: SR // 2])
    assert len(streamer.push(reader)) == 1
    ring.write(y[SR // 2 : 3 * SR])  # 2.5 s at once: 1.5 s overwritten before being read
    preds = streamer.push(reader)
    assert reader.lost > 0
    assert streamer.discontinuities == 1
    # the window restarted after the gap: it holds only samples after it
    assert preds[0].start_s >= 2.0


def test_fixed_frame_model_rejects_other_windows(tmp_path: Path) -> None:
    model = EmotionModel.load(build_tiny_model(tmp_path / "fixed", fixed_frames=True))
    Streamer(model, settings=StreamSettings(window_s=3.0))
    with pytest.raises(ParameterError, match="3 s windows"):
        Streamer(model, settings=StreamSettings(window_s=2.0))


def test_non_multiple_hop_falls_back_to_full_featurization(tiny_model: EmotionModel) -> None:
    streamer = Streamer(tiny_model, settings=StreamSettings(hop_s=0.333))
    assert not streamer.incremental
    preds = feed(streamer, synth_speechlike(seconds=4.0))
    assert preds
    assert all(p.speech for p in preds[2:])


def test_update_settings(tiny_model: EmotionModel) -> None:
    streamer = Streamer(tiny_model)
    y = synth_speechlike(seconds=1.0)
    streamer.push_block(y[: SR // 2], end_sample=SR // 2)
    p = streamer.push_block(y[SR // 2 :], end_sample=SR)
    assert p.speech
    assert p.start_s == 0.0
    assert p.end_s == 1.0
    streamer.update_settings(StreamSettings(gate_sensitivity=0.9, smoothing=0.2))
    assert streamer.settings.gate_sensitivity == 0.9
    streamer.update_settings(StreamSettings(window_s=2.0))
    assert streamer.window == 2 * SR
    with pytest.raises(ParameterError, match="exactly hop"):
        streamer.push_block(np.zeros(3 * SR, np.float32), end_sample=3 * SR)


@pytest.mark.parametrize(
    "kwargs",
    [{"window_s": 0}, {"hop_s": 4.0}, {"smoothing": 1.0}, {"smoothing": -0.1}, {"gate_sensitivity": 2},
     {"window_s": float("nan")}, {"hop_s": "0.5"}, {"window_s": 0.49}, {"window_s": 10.01}, {"hop_s": 0.049},
     {"window_s": 10.0, "hop_s": 5.01}],
)
def test_settings_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        StreamSettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.corpus
def test_stream_of_corpus_clips_gates_speech_and_pauses(corpus_dir: Path, tiny_model: EmotionModel) -> None:
    clips = [load_audio(f).samples for f in sorted((corpus_dir / "ravdess" / "Actor_03").glob("*.flac"))[:3]]
    pause = np.random.default_rng(0).normal(0, 3e-5, 4 * SR).astype(np.float32)
    y = np.concatenate([pause, clips[0], pause, clips[1], pause, clips[2], pause])
    preds = feed(Streamer(tiny_model), y)
    # windows entirely inside a pause are silent; windows centred in a clip are speech
    bounds = []
    t = 0.0
    for c in clips:
        t += 4.0
        bounds.append((t, t + len(c) / SR))
        t += len(c) / SR
    for p in preds:
        inside_pause = all(p.end_s <= a or p.start_s >= b for a, b in bounds)
        if inside_pause and p.end_s - p.start_s >= 2.9:
            assert not p.speech, (p.start_s, p.end_s)
        mid = (p.start_s + p.end_s) / 2
        if p.end_s - p.start_s >= 2.9 and any(a + 1.0 < mid < b - 1.0 for a, b in bounds):
            assert p.speech, (p.start_s, p.end_s)
