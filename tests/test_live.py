"""Live input through the virtual PulseAudio microphone: predictions, recording, device loss."""

from __future__ import annotations

import csv
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import VirtualMic, synth_speechlike
from waiting import wait_until

from ser_engine.dsp.audio import load_audio
from ser_engine.errors import DeviceError, SerError
from ser_engine.files.analysis import analyze_file
from ser_engine.inference.model import EmotionModel
from ser_engine.live.session import LiveInput, LiveSession, list_input_devices, resolve_device
from ser_engine.live.stream import Prediction, StreamSettings

pytestmark = pytest.mark.mic
SR = 16000


class Collector:
    def __init__(self) -> None:
        self.predictions: list[Prediction] = []
        self.errors: list[SerError] = []
        self.error_event = threading.Event()

    def on_prediction(self, p: Prediction) -> None:
        self.predictions.append(p)

    def on_error(self, e: SerError) -> None:
        self.errors.append(e)
        self.error_event.set()


def start_session(model: EmotionModel, col: Collector, **kwargs: object) -> LiveSession:
    session = LiveSession(model, on_prediction=col.on_prediction, on_error=col.on_error, **kwargs)  # type: ignore[arg-type]
    session.start()
    assert session.wait_for_audio(15), "the virtual microphone delivered no audio"
    return session


def wait_heard(session: LiveSession, col: Collector, *, after_s: float = 1.0) -> None:
    """Wait until the predictions reach ``after_s`` of stream time past what the session has read so far.

    Called when a playback has ended: the rest of what was played is then in the sound server's
    and PortAudio's buffers (far less than a second of audio), so it has been analysed, and
    recorded, when this returns. Stream time, not wall time: a slow machine only waits longer.
    """
    target = session.stats().seconds + after_s
    wait_until(lambda: bool(col.predictions) and col.predictions[-1].end_s >= target,
               what=f"predictions up to {target:.1f} s of stream time")


def test_default_input_records_what_is_played(virtual_mic: VirtualMic) -> None:
    import sounddevice as sd

    chunks: list[np.ndarray] = []
    stream = sd.InputStream(channels=1, samplerate=SR, callback=lambda indata, *_: chunks.append(indata.copy()))
    stream.start()

    def tone_ended() -> bool:
        """Tell whether the recording holds the tone and then 0.3 s of silence."""
        x = np.concatenate(list(chunks) or [np.zeros((0, 1), np.float32)])[:, 0]
        loud = np.flatnonzero(np.abs(x) > 0.01)
        return loud.size > 0 and x.size - loud[-1] > 0.3 * SR

    try:
        t = np.arange(SR) / SR
        fade = np.minimum(1.0, np.minimum(t, 1 - t) / 0.05)  # no clicks for the sound server's resampler
        virtual_mic.play((0.5 * fade * np.sin(2 * np.pi * 300 * t)).astype(np.float32)).wait(timeout=20)
        wait_until(tone_ended, what="the played tone, then silence, in the recording")
    finally:
        stream.stop()
        stream.close()
    x = np.concatenate(chunks)[:, 0]
    loud = x[np.abs(x) > 0.01]
    assert len(loud) > 0.8 * SR
    assert np.abs(x).max() == pytest.approx(0.5, abs=0.03)
    spec = np.abs(np.fft.rfft(x))
    assert np.fft.rfftfreq(len(x), 1 / SR)[np.argmax(spec)] == pytest.approx(300, abs=3)


@pytest.mark.usefixtures("virtual_mic")
def test_devices_are_listed_and_resolved() -> None:
    devices = list_input_devices()
    assert devices
    assert sum(d.is_default for d in devices) == 1
    default = resolve_device(None)
    assert default.is_default
    assert default.default_samplerate >= 8000
    assert resolve_device(default.index) == default
    assert resolve_device(default.name) == default
    with pytest.raises(DeviceError, match="no input device named"):
        resolve_device("no such microphone 42")
    with pytest.raises(DeviceError, match="no input device with index"):
        resolve_device(9999)


def test_bad_device_fails_at_start(tiny_model: EmotionModel) -> None:
    session = LiveSession(tiny_model, device="no such microphone 42")
    with pytest.raises(DeviceError):
        session.start()
    assert not session.running


def test_callback_only_copies_and_counts() -> None:
    inp = LiveInput()
    from ser_engine.live.ringbuffer import RingBuffer

    inp.ring = RingBuffer(SR)
    block = np.ones((512, 1), np.float32)

    class Status:
        input_overflow = True

        def __bool__(self) -> bool:
            return True

    inp._callback(block, 512, None, Status())
    assert inp.overflows == 1
    assert inp.ring.write_position == 512
    for _ in range(10):
        inp._callback(block, 512, None, None)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(500):
        inp._callback(block, 512, None, None)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert grown < 16 * 1024
    assert inp.callbacks == 511
    assert inp.overflows == 1


@pytest.mark.usefixtures("virtual_mic")
def test_input_is_called_back_with_blocks_of_a_fixed_length() -> None:
    from ser_engine.live.inputs import BLOCK_S

    frames: list[int] = []
    inp = LiveInput()
    real = inp._callback

    def spy(indata: np.ndarray, n: int, time_info: object, status: object) -> None:
        frames.append(n)
        real(indata, n, time_info, status)

    inp._callback = spy  # type: ignore[method-assign]
    inp.start()
    try:
        wait_until(lambda: len(frames) >= 5, what="five callbacks of the input")
    finally:
        inp.stop()
    assert set(frames) == {round(BLOCK_S * inp.device_rate)}


def test_live_session_predicts_records_and_reports(
    virtual_mic: VirtualMic, tiny_model: EmotionModel, tmp_path: Path
) -> None:
    col = Collector()
    session = start_session(tiny_model, col)
    try:
        assert session.input is not None
        input_latency_ms = session.input.latency_s * 1000.0  # PortAudio's, reported when the stream opened
        wav, csv_path = tmp_path / "rec.wav", tmp_path / "rec.csv"
        session.start_recording(wav, csv_path)
        quiet = np.random.default_rng(0).normal(0, 1e-4, 4 * SR).astype(np.float32)
        speech = synth_speechlike(seconds=4.0, seed=7, level=0.4)
        virtual_mic.play(np.concatenate([quiet, speech, quiet])).wait(timeout=30)
        wait_heard(session, col)
        paths = session.stop_recording()
    finally:
        session.stop()
    stats = session.stats()  # final: every prediction made has been delivered
    assert paths == (wav, csv_path)
    assert not col.errors
    assert not session.running
    preds = col.predictions
    assert len(preds) >= 20
    ends = [p.end_s for p in preds]
    assert np.allclose(np.diff(ends), 0.5)  # one prediction per hop, in stream time
    assert any(not p.speech and p.label is None for p in preds)
    speechy = [p for p in preds if p.speech]
    assert len(speechy) >= 4
    assert all(p.label in tiny_model.labels for p in speechy)
    assert stats.overflows == 0
    assert stats.lost_samples == 0
    assert stats.device_rate >= 8000
    assert stats.predictions == len(preds)
    assert stats.last_compute_ms == preds[-1].compute_ms > 0
    assert stats.delay_ms >= input_latency_ms  # the last prediction's delay includes the device's latency
    # the recording holds what was played, at 16 kHz
    rec, sr = sf.read(str(wav), dtype="float32")
    assert sr == SR
    assert len(rec) >= 12 * SR
    corr = np.correlate(rec[: 14 * SR], speech[SR : 2 * SR], mode="valid")
    lag = int(np.argmax(corr))
    seg = rec[lag : lag + SR]
    assert np.corrcoef(seg, speech[SR : 2 * SR])[0, 1] > 0.95
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert rows
    assert set(rows[0]) >= {"start_s", "end_s", "speech", "label", "confidence", "p_angry"}
    assert any(r["speech"] == "1" and r["label"] for r in rows)
    assert any(r["speech"] == "0" for r in rows)


def test_settings_change_while_running(virtual_mic: VirtualMic, tiny_model: EmotionModel) -> None:
    col = Collector()
    session = start_session(tiny_model, col)
    try:
        session.update_settings(StreamSettings(hop_s=0.25, window_s=2.0))
        virtual_mic.play(synth_speechlike(seconds=3.0)).wait(timeout=20)
        wait_heard(session, col, after_s=0.5)
    finally:
        session.stop()
    late = col.predictions[-6:]
    assert len(late) == 6
    assert np.allclose(np.diff([p.end_s for p in late]), 0.25)


@pytest.mark.corpus
def test_live_result_agrees_with_file_analysis(
    virtual_mic: VirtualMic, shipped_model: EmotionModel, corpus_dir: Path, tmp_path: Path
) -> None:
    clip_path = corpus_dir / "ravdess" / "Actor_16" / "03-01-05-02-01-01-16.flac"  # angry, strong, test actor
    file_res = analyze_file(clip_path, shipped_model)
    assert file_res.ok
    assert file_res.label is not None
    col = Collector()
    session = start_session(shipped_model, col, settings=StreamSettings(smoothing=0.0))
    try:
        session.start_recording(tmp_path / "live.wav")
        clip = load_audio(clip_path).samples
        pad = np.zeros(2 * SR, np.float32)
        virtual_mic.play(np.concatenate([pad, clip, pad])).wait(timeout=30)
        wait_heard(session, col)
    finally:
        session.stop()
    speech = [p for p in col.predictions if p.speech and p.end_s - p.start_s > 2.9]
    assert speech
    mean = np.mean([[p.raw_probabilities[k] for k in shipped_model.labels] for p in speech], axis=0)
    assert shipped_model.labels[int(np.argmax(mean))] == file_res.label
    rec_res = analyze_file(tmp_path / "live.wav", shipped_model)
    assert rec_res.label == file_res.label


def test_device_loss_ends_session_and_keeps_recording(
    virtual_mic: VirtualMic, tiny_model: EmotionModel, tmp_path: Path
) -> None:
    col = Collector()
    session = start_session(tiny_model, col)
    wav, csv_path = tmp_path / "lost.wav", tmp_path / "lost.csv"
    try:
        session.start_recording(wav, csv_path)
        recording_from = session.stats().seconds
        player = virtual_mic.play(synth_speechlike(seconds=6.0))
        # the device is lost once 2 s have been recorded and predicted
        wait_until(lambda: bool(col.predictions) and col.predictions[-1].end_s >= recording_from + 2.0,
                   what="2 s recorded")
        virtual_mic.kill_server()
        player.wait(timeout=10)
        assert col.error_event.wait(10), "device loss was not reported"
    finally:
        session.stop()
        virtual_mic.ensure_running()
    assert len(col.errors) == 1
    assert isinstance(col.errors[0], DeviceError)
    assert "input device" in str(col.errors[0])
    assert not session.running
    assert not session.recording
    rec, sr = sf.read(str(wav), dtype="float32")  # the recording up to the loss is a valid WAV
    assert sr == SR
    assert len(rec) >= SR
    assert csv_path.read_text().count("\n") >= 2
    # the device works again for the next session
    col2 = Collector()
    s2 = start_session(tiny_model, col2)
    s2.stop()
    assert not col2.errors


def test_sink_unloaded_is_device_loss(virtual_mic: VirtualMic, tiny_model: EmotionModel) -> None:
    col = Collector()
    session = start_session(tiny_model, col, stall_timeout=1.5)
    try:
        virtual_mic.unload_sink()
        assert col.error_event.wait(15), "losing the source was not reported"
    finally:
        session.stop()
        virtual_mic.ensure_running()
    assert isinstance(col.errors[0], DeviceError)


def test_same_session_restarts_after_stop(virtual_mic: VirtualMic, tiny_model: EmotionModel) -> None:
    col = Collector()
    session = start_session(tiny_model, col)
    virtual_mic.play(np.zeros(SR, np.float32)).wait(timeout=20)
    session.stop()
    first = len(col.predictions)
    assert first >= 1
    assert not session.running
    session.start()
    try:
        assert session.running
        virtual_mic.play(synth_speechlike(seconds=2.0)).wait(timeout=20)
        wait_until(lambda: len(col.predictions) > first, what="a prediction of the restarted session")
    finally:
        session.stop()
    later = col.predictions[first:]
    assert later
    assert not col.errors
    assert later[0].end_s - later[0].start_s <= 0.5 + 1e-6  # a fresh window, not the old one continued
