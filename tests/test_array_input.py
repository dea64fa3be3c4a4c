"""The array-fed input: the real LiveSession worker on an array, as the self-test and the app's tests use it."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import synth_speechlike

from ser_engine.dsp.audio import load_audio, resample
from ser_engine.errors import ParameterError, SerError
from ser_engine.files.export import prediction_header, prediction_row
from ser_engine.inference.model import EmotionModel
from ser_engine.live.inputs import ArrayInput
from ser_engine.live.ringbuffer import RingBuffer
from ser_engine.live.session import LiveSession, settings_for
from ser_engine.live.stream import Prediction, Streamer

SR = 16000


def run_session(model: EmotionModel, samples: np.ndarray, rate: int, **kwargs: object
                ) -> tuple[LiveSession, list[Prediction], list[SerError]]:
    """Run a LiveSession on an ArrayInput until the array is used up."""
    preds: list[Prediction] = []
    errors: list[SerError] = []
    session = LiveSession(model, on_prediction=preds.append, on_error=errors.append,
                          input_factory=lambda: ArrayInput(samples, rate, speed=8.0), **kwargs)  # type: ignore[arg-type]
    session.start()
    assert session.finished.wait(60), "the session did not end after its input"
    session.stop()
    return session, preds, errors


def streamer_predictions(model: EmotionModel, samples16: np.ndarray) -> list[Prediction]:
    """Run the same samples through a Streamer directly (the reference)."""
    ring = RingBuffer(len(samples16) + 1)
    reader = ring.reader()
    ring.write(samples16)
    return Streamer(model, settings=settings_for(model)).push(reader)


def test_array_input_feeds_every_sample_in_order() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.5, 0.5, (22050, 2)).astype(np.float32)
    inp = ArrayInput(x, 22050, speed=20.0, block_s=0.01)
    assert inp.device is not None
    assert inp.device.max_input_channels == 2
    assert inp.device_rate == 22050
    inp.start()
    assert inp.ring is not None
    reader = inp.ring.reader(from_start=True)
    got: list[np.ndarray] = []
    done = threading.Event()
    while not done.is_set():
        done.wait(0.005)
        if inp.exhausted:
            done.set()
        got.append(reader.read_available())
    inp.stop()
    out = np.concatenate(got)
    np.testing.assert_array_equal(out, x.mean(axis=1).astype(np.float32))  # channels averaged, nothing lost
    assert reader.lost == 0
    assert inp.check() is None
    assert inp.callbacks == -(-22050 // inp.block)


@pytest.mark.parametrize("bad", [dict(speed=0.0), dict(speed=float("inf")), dict(block_s=-1.0),
                                 dict(ring_seconds=0.0), dict(sample_rate=4000)])
def test_array_input_refuses_bad_parameters(bad: dict[str, float]) -> None:
    kwargs: dict[str, float] = {"speed": 1.0, "block_s": 0.02, "ring_seconds": 30.0}
    rate = int(bad.pop("sample_rate", SR))
    kwargs.update(bad)
    with pytest.raises(ParameterError):
        ArrayInput(np.zeros(100, np.float32), rate, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        ArrayInput(np.zeros(0, np.float32), SR)


@pytest.mark.corpus
def test_session_on_an_array_gives_the_streamers_predictions(corpus_dir: Path, shipped_model: EmotionModel) -> None:
    """The live worker hop by hop = the Streamer on the whole signal (same windows, same numbers)."""
    clip = load_audio(corpus_dir / "ravdess" / "Actor_01" / "03-01-05-02-01-01-01.flac", sample_rate=SR).samples
    y = np.concatenate([clip, np.zeros(SR, np.float32), clip]).astype(np.float32)
    session, preds, errors = run_session(shipped_model, y, SR)
    assert errors == []  # an array ends the session cleanly
    assert session.error is None
    expected = streamer_predictions(shipped_model, y)
    hop = shipped_model.feature_config.hop_samples
    assert len(preds) == len(expected) == len(y) // hop
    assert any(p.speech for p in preds)
    assert any(not p.speech for p in preds)
    for got, want in zip(preds, expected, strict=True):
        assert (got.start_s, got.end_s, got.speech, got.label) == (want.start_s, want.end_s, want.speech, want.label)
        for lab in want.probabilities:
            assert got.probabilities[lab] == pytest.approx(want.probabilities[lab], abs=1e-5)
    stats = session.stats()
    assert stats.predictions == len(preds)
    assert stats.device_rate == SR
    assert stats.overflows == 0
    assert stats.lost_samples == 0
    assert not stats.running


def test_session_resamples_a_sound_cards_rate(tiny_model: EmotionModel) -> None:
    y16 = synth_speechlike(seconds=4.0, seed=4)
    y44 = resample(y16, orig_sr=SR, target_sr=44100)
    session, preds, errors = run_session(tiny_model, np.stack([y44, y44], axis=1), 44100)
    assert errors == []
    assert session.input is not None
    assert session.input.device_rate == 44100
    hop = tiny_model.feature_config.hop_samples
    assert len(preds) == session.audio.write_position // hop == len(y16) // hop  # the resampler's tail is flushed
    assert any(p.speech for p in preds)


def test_recording_from_an_array_holds_the_audio_and_the_exporters_rows(tmp_path: Path,
                                                                         tiny_model: EmotionModel) -> None:
    y = synth_speechlike(seconds=3.0, seed=6)
    preds: list[Prediction] = []
    wav, table = tmp_path / "rec" / "take.wav", tmp_path / "rec" / "take.csv"
    session = LiveSession(tiny_model, on_prediction=preds.append,
                          input_factory=lambda: ArrayInput(y, SR, speed=2.0))
    session.start_recording(wav, table)  # before start: the recording begins with the stream
    session.start()
    assert session.finished.wait(60)
    assert not session.recording  # the session closed it when the array ended
    session.stop()
    audio, rate = sf.read(str(wav), dtype="float32")
    assert rate == SR
    assert len(audio) == len(y)
    np.testing.assert_allclose(audio, y, atol=1 / 32767 + 1e-6)  # 16-bit PCM of exactly what the model heard
    with table.open(newline="") as fh:
        rows = list(csv.reader(fh))
    labels = tiny_model.labels
    assert rows[0] == prediction_header(labels=labels)
    want = [[str(v) for v in prediction_row(p, start_s=p.start_s, end_s=p.end_s, labels=labels)] for p in preds]
    assert rows[1:] == want
    assert len(want) == len(y) // tiny_model.feature_config.hop_samples


def test_a_bug_on_the_worker_ends_the_session_as_a_reported_failure(
        tiny_model: EmotionModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ser_engine.live.session import LiveInternalError

    calls: list[int] = []
    real_push = Streamer.push

    def buggy_push(self: Streamer, *args: object, **kwargs: object) -> list[Prediction]:
        calls.append(1)
        if len(calls) > 50:  # after some audio was recorded
            raise KeyError("window")
        return real_push(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Streamer, "push", buggy_push)
    y = synth_speechlike(seconds=8.0)
    preds: list[Prediction] = []
    errors: list[SerError] = []
    session = LiveSession(tiny_model, on_prediction=preds.append, on_error=errors.append,
                          input_factory=lambda: ArrayInput(y, SR, speed=2.0))
    wav = tmp_path / "rec.wav"
    session.start()
    session.start_recording(wav, tmp_path / "rec.csv")
    assert session.finished.wait(30), "the worker did not end"
    assert len(errors) == 1
    assert isinstance(errors[0], LiveInternalError)
    assert isinstance(errors[0].__cause__, KeyError)
    assert str(errors[0]) == "live analysis stopped by an internal error: KeyError: 'window'"
    assert session.error is errors[0]
    assert not session.running
    assert not session.recording  # closed, and what was recorded is a valid WAV
    rec, sr = sf.read(str(wav), dtype="float32")
    assert sr == SR
    assert len(rec) > 0
    logged = [r for r in caplog.records if r.name == "ser.session" and r.exc_info]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[1] is errors[0].__cause__  # the traceback reached the log
    session.stop()


def test_blas_is_single_threaded_while_a_session_runs(tiny_model: EmotionModel) -> None:
    # the worker's per-hop features are a small matrix product: a second BLAS thread would only
    # spin after each of them; the process's limits come back when the session ends
    from threadpoolctl import threadpool_info

    before = [pool["num_threads"] for pool in threadpool_info()]
    seen: list[int] = []

    def on_prediction(p: Prediction) -> None:  # on the worker thread, while the session runs
        del p
        seen.extend(pool["num_threads"] for pool in threadpool_info())

    session = LiveSession(tiny_model, on_prediction=on_prediction,
                          input_factory=lambda: ArrayInput(synth_speechlike(seconds=2.0), SR, speed=8.0))
    session.start()
    assert session.finished.wait(60)
    session.stop()
    assert seen
    assert set(seen) == {1}
    assert [pool["num_threads"] for pool in threadpool_info()] == before


def test_the_worker_runs_the_streamer_only_when_samples_arrived(tiny_model: EmotionModel,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # blocks far apart: the worker looks at the ring many times between two of them, and only
    # the looks that find new samples go on to the streamer
    pushes: list[int] = []
    real_push = Streamer.push

    def counting_push(self: Streamer, *args: object, **kwargs: object) -> list[Prediction]:
        pushes.append(1)
        return real_push(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Streamer, "push", counting_push)
    y = synth_speechlike(seconds=1.0)
    inp = ArrayInput(y, SR, block_s=0.25)
    preds: list[Prediction] = []
    session = LiveSession(tiny_model, on_prediction=preds.append, input_factory=lambda: inp)
    session.start()
    assert session.finished.wait(60)
    session.stop()
    assert inp.callbacks == 4
    assert 1 <= len(pushes) <= inp.callbacks + 1  # each block once at most, and the end
    assert len(preds) == len(y) // tiny_model.feature_config.hop_samples
