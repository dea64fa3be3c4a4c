"""Live view plumbing: worker-thread predictions reach the widgets through queued signals.

These tests drive the live view with the engine's own
:class:`~ser_engine.live.session.LiveSession` fed by an :class:`~ser_engine.live.inputs.ArrayInput`
(real corpus speech through the session's resampler, streamer and model on its
worker thread). The microphone itself is covered by test_desktop_mic.py.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from desktop_support import corpus_clips, no_devices, temp_settings
from PySide6.QtCore import Qt, QThread

from desktop_app.live_controller import LiveController, array_session_factory
from desktop_app.live_view import NO_MICROPHONE_TEXT, DeviceInfo, LiveView
from ser_engine.dsp.audio import load_audio
from ser_engine.errors import DeviceError
from ser_engine.inference.model import EmotionModel
from ser_engine.live.inputs import ArrayInput
from ser_engine.live.session import LiveSession

pytestmark = pytest.mark.gui


def _view(qtbot, tmp_path: Path, model: EmotionModel, factory, lister=no_devices) -> LiveView:
    ctl = LiveController(model, factory=factory)
    v = LiveView(settings=temp_settings(tmp_path), model=model, controller=ctl, device_lister=lister)
    qtbot.addWidget(v)
    v.resize(1200, 800)
    v.show()
    return v


@pytest.mark.corpus
def test_predictions_reach_widgets_on_the_gui_thread(qtbot, tmp_path: Path, corpus_dir: Path,
                                                    tiny_model: EmotionModel) -> None:
    clip = load_audio(corpus_clips(corpus_dir)[0], sample_rate=44100)  # a sound card's rate
    silence = np.random.default_rng(0).normal(0, 1e-4, 44100 * 5).astype(np.float32)
    signal = np.concatenate([clip.samples, silence])
    view = _view(qtbot, tmp_path, tiny_model, array_session_factory(signal, 44100, speed=4.0))
    threads: list[bool] = []
    gui_thread = QThread.currentThread()
    view.controller.prediction.connect(lambda _: threads.append(QThread.currentThread() is gui_thread))
    assert view.start()
    session = view.controller.session
    assert isinstance(session, LiveSession)
    assert isinstance(session.input, ArrayInput)
    qtbot.waitUntil(session.finished.is_set, timeout=20000)
    expected = int(len(signal) / 44100 / 0.5)  # one prediction per 0.5 s hop
    qtbot.waitUntil(lambda: view.predictions_received >= expected - 1, timeout=5000)
    assert all(threads)
    assert len(threads) == view.predictions_received
    assert view.speech_predictions >= 4  # ~3.7 s of speech
    assert view.silence_predictions >= 2
    assert view.emotion.state == "no_speech"  # the clip ended in silence
    assert "no speech" in view.emotion.title.text()
    assert np.all(view.bars.values == 0)
    # the timeline keeps the speech part (finite) and gaps for silence (NaN); it is drawn on the repaint tick
    view.repaint_tick()
    lab = tiny_model.labels[0]
    _, y = view.timeline_curves[lab].getData()
    assert np.isfinite(y).sum() == view.speech_predictions
    assert np.isnan(y).sum() == view.silence_predictions
    view.repaint_tick()
    assert view.status_compute.text().endswith("ms/step")
    assert "—" not in view.status_compute.text()
    _, wave = view.wave_curve.getData()
    assert np.abs(wave).max() > 0.05  # the speech is on the waveform
    view.stop()
    assert not view.running
    assert view.start_button.text() == "Start"


def test_speech_shows_emotion_and_confidence(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    from desktop_app.self_test import synth_speech

    view = _view(qtbot, tmp_path, tiny_model, array_session_factory(synth_speech(seconds=4.0), 16000, speed=4.0))
    seen: list[tuple[str, str]] = []
    view.controller.prediction.connect(lambda _: seen.append((view.emotion.state, view.emotion.detail.text())))
    view.start()
    qtbot.waitUntil(lambda: view.speech_predictions >= 3, timeout=10000)
    p = view.last_prediction
    assert p is not None
    assert p.speech
    assert view.emotion.title.text() == p.label.capitalize()
    assert view.emotion.detail.text() == f"confidence {p.confidence * 100:.0f} %"
    assert view.bars.values.sum() == pytest.approx(100.0, abs=0.1)
    view.stop()


class _LosingInput(ArrayInput):
    """Delivers its audio, then is lost as an unplugged device is (its stream ends by itself)."""

    @property
    def exhausted(self) -> bool:
        return False  # a device has no end...

    def check(self) -> DeviceError | None:  # ...it disappears
        if super().exhausted:
            return DeviceError("input device 'USB mic' disappeared (stream aborted)")
        return None


def test_device_lost_is_reported_and_the_view_recovers(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    from desktop_app.self_test import synth_speech

    y = synth_speech(seconds=2.0)

    def losing(model, *, device, settings, on_prediction, on_error):
        del device  # a SessionFactory's signature: the input is made here
        return LiveSession(model, settings=settings, on_prediction=on_prediction, on_error=on_error,
                           input_factory=lambda: _LosingInput(y, 16000, speed=4.0))

    view = _view(qtbot, tmp_path, tiny_model, losing)
    with qtbot.waitSignal(view.controller.failed, timeout=10000) as blocker:
        assert view.start()
    assert "disappeared" in blocker.args[0]
    assert view.banner.isVisible()
    assert "USB mic" in view.banner.text()
    assert not view.running
    assert view.start_button.text() == "Start"
    assert view.start_button.isEnabled()
    assert view.emotion.state == "error"
    # the user restarts with a working input
    view.controller.factory = array_session_factory(y, 16000, speed=4.0)
    assert view.start()
    assert not view.banner.isVisible()
    qtbot.waitUntil(lambda: view.predictions_received >= 2, timeout=10000)
    view.stop()


def test_a_bug_in_the_live_worker_is_shown_logged_and_the_view_recovers(
        qtbot, tmp_path: Path, tiny_model: EmotionModel, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.self_test import synth_speech
    from ser_engine.cli.common import start_logging
    from ser_engine.live.stream import Streamer

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = start_logging(verbose=False)  # as the app does at start-up
    assert log is not None

    def buggy_push(*_: object) -> list[object]:
        raise ZeroDivisionError("float division by zero")

    y = synth_speech(seconds=2.0)
    view = _view(qtbot, tmp_path, tiny_model, array_session_factory(y, 16000, speed=4.0))
    with monkeypatch.context() as patch:
        patch.setattr(Streamer, "push", buggy_push)
        with qtbot.waitSignal(view.controller.failed, timeout=10000) as blocker:
            assert view.start()
    message = blocker.args[0]
    assert message == ("live analysis stopped by an internal error: ZeroDivisionError: float division by zero "
                       f"(details in {log})")
    assert view.controller.last_error_internal
    assert view.banner.isVisible()
    assert view.banner.text().startswith(f"Live analysis stopped: {message}")
    assert view.emotion.state == "error"
    assert not view.running
    assert view.start_button.isEnabled()
    text = log.read_text(encoding="utf-8")
    assert "live analysis stopped by an internal error" in text
    assert "in buggy_push" in text
    # the user presses Start again (the bug gone): predictions flow
    assert view.start()
    assert not view.banner.isVisible()
    assert not view.controller.last_error_internal
    qtbot.waitUntil(lambda: view.predictions_received >= 2, timeout=10000)
    view.stop()


def test_no_input_device_disables_live_but_says_why(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    view = LiveView(settings=temp_settings(tmp_path), model=tiny_model, device_lister=no_devices)
    qtbot.addWidget(view)
    assert view.controller is not None
    assert view.controller.needs_device
    assert view.banner.isVisibleTo(view)
    assert "No audio input device" in view.banner.text()
    assert not view.start_button.isEnabled()
    assert view.start() is False
    assert view.controller.session is None


def test_no_microphone_says_what_to_do_not_press_start(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    devices: list[DeviceInfo] = []
    # the real controller (microphone sessions), with a device lister the test controls
    view = LiveView(settings=temp_settings(tmp_path), model=tiny_model, device_lister=lambda: (list(devices), None))
    qtbot.addWidget(view)
    assert view.controller is not None
    assert view.controller.needs_device
    assert not view.start_button.isEnabled()
    shown = f"{view.emotion.title.text()} {view.emotion.detail.text()}"
    assert view.emotion.detail.text() == NO_MICROPHONE_TEXT
    assert "Press Start" not in shown
    assert "press Start" not in shown
    # a microphone is plugged in and the user presses Refresh: Start is offered again
    devices.append(DeviceInfo(2, "USB mic", True, 48000.0))
    view.refresh_button.click()
    assert view.start_button.isEnabled()
    assert "Press Start" in view.emotion.detail.text()
    # unplugged again
    devices.clear()
    view.refresh_button.click()
    assert not view.start_button.isEnabled()
    assert view.emotion.detail.text() == NO_MICROPHONE_TEXT


@pytest.mark.parametrize("opened_rate", [16000, 48000])
def test_device_rate_is_the_same_in_picker_and_status_bar(qtbot, tmp_path: Path, tiny_model: EmotionModel,
                                                          opened_rate: int) -> None:
    from desktop_app.self_test import synth_speech
    from ser_engine.dsp.audio import resample

    y = synth_speech(seconds=6.0)
    if opened_rate != 16000:
        y = resample(y, orig_sr=16000, target_sr=opened_rate)
    devs = [DeviceInfo(4, "default", True, 44100.0), DeviceInfo(5, "USB mic", False, 48000.0)]
    view = _view(qtbot, tmp_path, tiny_model, array_session_factory(y, opened_rate, speed=1.0),
                 lister=lambda: (devs, None))
    # before listening: the device's default rate, in both places
    assert "44.1 kHz" in view.device_combo.currentText()
    assert "default rate" in view.device_combo.currentText()
    assert view.status_rate.text() == "device default 44.1 kHz"
    assert view.start()
    khz = f"{opened_rate / 1000:g} kHz"
    qtbot.waitUntil(lambda: view.status_rate.text() == f"device {khz} → model 16 kHz", timeout=5000)
    assert f"open at {khz}" in view.device_combo.currentText()
    assert "44.1" not in view.device_combo.currentText()  # the rate shown is the one the stream runs at
    assert view.device_combo.itemText(1) == "USB mic  (default rate 48 kHz)"  # others: their default rate
    view.stop()
    qtbot.waitUntil(lambda: not view.running, timeout=5000)
    assert "default rate 44.1 kHz" in view.device_combo.currentText()
    assert view.status_rate.text() == "device default 44.1 kHz"


def test_device_that_cannot_open_shows_the_reason(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    def failing(*_: object, **__: object) -> None:
        raise DeviceError("cannot open input device 7 at 16000 Hz: Invalid sample rate")

    lister = lambda: ([DeviceInfo(7, "Broken mic", True, 48000.0)], None)  # noqa: E731
    view = _view(qtbot, tmp_path, tiny_model, failing, lister=lister)
    assert view.device_combo.currentText().startswith("Broken mic")
    assert view.start() is False
    assert "Broken mic" in view.banner.text()
    assert "Invalid sample rate" in view.banner.text()
    assert not view.running


def test_device_choice_persists_and_default_is_preselected(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    devs = [DeviceInfo(0, "HDMI in", False, 48000.0), DeviceInfo(3, "pulse", True, 44100.0),
            DeviceInfo(5, "USB mic", False, 16000.0)]
    view = _view(qtbot, tmp_path, tiny_model, array_session_factory(np.zeros(10, np.float32), 16000),
                 lister=lambda: (devs, None))
    assert view.current_device().name == "pulse"  # the default is preselected
    view.device_combo.setCurrentIndex(2)
    view2 = _view(qtbot, tmp_path, tiny_model, array_session_factory(np.zeros(10, np.float32), 16000),
                  lister=lambda: (devs, None))
    assert view2.current_device().name == "USB mic"  # remembered through the settings file


def test_callbacks_from_a_worker_thread_are_queued(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    """The engine calls on_prediction from its worker; nothing reaches slots until the GUI loop runs."""
    captured = {}

    class Dummy:
        def __init__(self, model, **kw):
            del model  # a SessionFactory's signature
            captured.update(kw)
            from ser_engine.live.ringbuffer import RingBuffer

            self.audio = RingBuffer(16000)

        def start(self):
            pass

        def stop(self):
            pass

        def stats(self):
            return {}

    ctl = LiveController(tiny_model, factory=lambda m, **kw: Dummy(m, **kw))
    got = []
    ctl.prediction.connect(got.append)
    ctl.start(device=None, settings=temp_settings(tmp_path).stream_settings)
    from ser_engine.live.stream import Prediction

    p = Prediction(start_s=0, end_s=3, speech=False, label=None, confidence=0.0)
    t = threading.Thread(target=captured["on_prediction"], args=(p,))
    t.start()
    t.join()
    assert got == []  # queued, not called on the worker thread
    qtbot.waitUntil(lambda: got == [p], timeout=2000)
    ctl.stop()
    captured["on_prediction"](p)  # a late callback after stop is dropped
    qtbot.wait(50)
    assert got == [p]


def test_overruns_are_counted_and_shown(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    from ser_engine.live.ringbuffer import RingBuffer
    from ser_engine.live.session import LiveStats as EngineStats

    class Overflowing:
        def __init__(self) -> None:
            self.audio = RingBuffer(16000)  # shorter than the waveform's 8 s: the view copes
            self.overflows = 0

        def start(self) -> None: ...
        def stop(self) -> None: ...

        def stats(self) -> EngineStats:
            return EngineStats(overflows=self.overflows, lost_samples=320 * self.overflows, last_compute_ms=3.2,
                               delay_ms=120.0, seconds=1.0, device_rate=48000, predictions=2, recording=False,
                               running=True)

    session = Overflowing()
    view = _view(qtbot, tmp_path, tiny_model, lambda *_, **__: session)
    assert view.start()
    view.repaint_tick()
    qtbot.waitUntil(lambda: view.status_overruns.text() == "overruns: 0", timeout=2000)
    session.overflows = 3
    qtbot.waitUntil(lambda: view.status_overruns.text() == "overruns: 3, 960 samples lost", timeout=2000)
    assert "E69F00" in view.status_overruns.styleSheet()  # highlighted
    assert view.status_compute.text() == "inference: 3.2 ms/step"
    assert view.status_delay.text() == "delay sound→prediction: 120 ms"
    assert view.status_rate.text() == "device 48 kHz → model 16 kHz"
    assert view.running  # overflows never stop the session
    view.stop()


def test_a_saved_recording_is_named_beside_the_meter_with_open_folder(qtbot, tmp_path: Path, tiny_model: EmotionModel,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices, QGuiApplication

    from desktop_app.self_test import synth_speech

    view = _view(qtbot, tmp_path, tiny_model, array_session_factory(synth_speech(seconds=60.0), 16000))
    folder = tmp_path / "recordings"
    view.settings.recordings_folder = str(folder)
    row = (view.recording_label, view.open_folder_button, view.copy_path_button)
    assert not any(w.isVisibleTo(view) for w in row)  # nothing to name before the first recording
    messages: list[str] = []
    view.message.connect(messages.append)
    assert view.start()

    def record_a_little() -> Path:
        session = view.controller.session
        view.toggle_recording()
        wav = view.controller.recording_path
        assert wav is not None, view.banner.text()
        assert view.recording_label.full_text() == f"Recording to: {wav}"
        t0 = session.stats().seconds
        qtbot.waitUntil(lambda: session.stats().seconds >= t0 + 0.5, timeout=10000)  # half a second recorded
        return wav

    # stopped with the Record button
    first = record_a_little()
    view.toggle_recording()
    assert first.is_file()
    assert view.recording_label.full_text() == f"Saved: {first}"
    assert view.recording_label.toolTip() == f"Saved: {first}"
    assert messages.count(f"Recording saved: {first}") == 1
    assert all(w.isVisible() for w in row)
    qtbot.waitUntil(lambda: view.recording_label.fontMetrics().horizontalAdvance(view.recording_label.text())
                    <= view.recording_label.contentsRect().width())
    shown = view.recording_label.text()
    assert shown.startswith("Saved: ")
    assert shown.endswith(first.name)  # elided, if at all, in the middle: the file name stays
    # stopped with Stop while recording: the recording is saved and said so too
    second = record_a_little()
    assert second != first
    view.stop()
    assert not view.running
    assert second.is_file()
    assert view.recording_label.full_text() == f"Saved: {second}"
    assert messages.count(f"Recording saved: {second}") == 1
    # Open folder: the system's file manager gets the folder holding the recording
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    qtbot.mouseClick(view.open_folder_button, Qt.MouseButton.LeftButton)
    assert opened == [QUrl.fromLocalFile(str(folder))]
    # without a file manager the view says so and the path stays shown
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda _url: False)
    assert view.open_recording_folder() is False
    assert messages[-1] == f"Cannot open the folder {folder}: no file manager answered"
    qtbot.mouseClick(view.copy_path_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == str(second)
    assert view.recording_label.isVisible()  # the row stays until the next recording


def test_scrolling_envelope_matches_a_full_recomputation() -> None:
    """The incremental waveform envelope equals min/max over the newest samples, however they arrive."""
    from desktop_app.widgets import ScrollingEnvelope
    from ser_engine.live.ringbuffer import RingBuffer

    rng = np.random.default_rng(7)
    ring = RingBuffer(16000 * 10)
    env = ScrollingEnvelope(columns=50, per=160)
    written = []
    for size in rng.integers(1, 900, 400):
        block = rng.normal(0, 0.3, size).astype(np.float32)
        ring.write(block)
        written.append(block)
        env.update(ring)
        allv = np.concatenate(written)
        whole = allv[: len(allv) - (ring.write_position - env.end)][-50 * 160:]
        whole = np.concatenate([np.zeros(50 * 160 - len(whole), np.float32), whole])
        cols = whole.reshape(50, 160)
        assert np.array_equal(env.lo, cols.min(axis=1))
        assert np.array_equal(env.hi, cols.max(axis=1))
        x, val = env.line(ring)
        assert len(x) == len(val)
        if ring.write_position > env.end:  # the newest partial column is drawn too
            tail = allv[env.end - ring.write_position :]
            assert x[-1] == 0.0
            assert val[-2] == tail.min()
            assert val[-1] == tail.max()
        assert x[0] == -(50 * 160 + ring.write_position - env.end)
        assert np.all(np.diff(x) >= 0)


# ---------------------------------------------------------------------------
# voice profiles and "uncertain"
# ---------------------------------------------------------------------------
SPEAKER_1001_NEUTRAL = ["1001_DFA_NEU_XX.ogg", "1001_IEO_NEU_XX.ogg", "1001_IOM_NEU_XX.ogg",
                        "1001_ITH_NEU_XX.ogg", "1001_ITS_NEU_XX.ogg", "1001_IWL_NEU_XX.ogg"]


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # never the user's profiles


@pytest.fixture(scope="module")
def speaker_profile(corpus_dir: Path, shipped_model: EmotionModel):
    from ser_engine.inference.profile import profile_from_files

    return profile_from_files([corpus_dir / "crema-d" / n for n in SPEAKER_1001_NEUTRAL], model=shipped_model,
                              name="Speaker 1001")


def _store_with_profiles(tmp_path: Path, prof):
    """Make a store holding a good profile, one made for another model and a broken file."""
    import dataclasses

    from ser_engine.inference.profile import ProfileStore

    store = ProfileStore(tmp_path / "profiles")
    good = store.save(prof)
    other = store.save(dataclasses.replace(prof, name="Old laptop", model_sha256="0" * 64))
    broken = store.directory / "broken.json"
    broken.write_text("{ this is not JSON")
    return store, good, other, broken


@pytest.mark.corpus
def test_profile_picker_lists_refuses_and_persists(qtbot, tmp_path: Path, shipped_model: EmotionModel,
                                                   speaker_profile) -> None:
    from desktop_app.profiles import ProfileManager
    from ser_engine.errors import ProfileError

    store, good, other, _broken = _store_with_profiles(tmp_path, speaker_profile)
    settings = temp_settings(tmp_path)
    profiles = ProfileManager(settings=settings, model=shipped_model, store=store)
    models = []

    def factory(model, **kw):
        models.append(model)
        return array_session_factory(np.zeros(16000, np.float32), 16000)(model, **kw)

    ctl = LiveController(shipped_model, factory=factory)
    view = LiveView(settings=settings, model=shipped_model, controller=ctl, device_lister=no_devices,
                    profiles=profiles)
    qtbot.addWidget(view)
    combo = view.profile_combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert texts[0] == "No calibration"
    assert combo.currentIndex() == 0
    assert "Speaker 1001" in texts
    assert "broken — unusable: cannot be read" in texts
    assert "Old laptop — unusable: made for another model" in texts
    item_model = combo.model()
    for i, t in enumerate(texts):
        assert item_model.item(i).isEnabled() == ("unusable" not in t)  # unusable ones cannot be chosen
    tip = combo.itemData(texts.index("broken — unusable: cannot be read"), Qt.ItemDataRole.ToolTipRole)
    assert "broken.json" in tip
    assert "JSON" in tip
    with pytest.raises(ProfileError, match="made for model"):
        profiles.set_active(other)  # the engine's message says which model it was made for
    assert settings.voice_profile == ""
    # choosing the good profile: stored in the settings model, the live session gets the calibrated model
    combo.setCurrentIndex(texts.index("Speaker 1001"))
    assert settings.voice_profile == str(good)
    assert view.active_profile_name() == "Speaker 1001"
    assert view.start()
    assert models[-1].profile == speaker_profile
    view.stop()
    # after a restart (a new view on the same settings file) the choice is still there
    view2 = LiveView(settings=temp_settings(tmp_path), model=shipped_model,
                     controller=LiveController(shipped_model, factory=factory), device_lister=no_devices,
                     profiles=ProfileManager(settings=temp_settings(tmp_path), model=shipped_model, store=store))
    qtbot.addWidget(view2)
    assert view2.profile_combo.currentText() == "Speaker 1001"
    assert view2.controller.model.profile == speaker_profile
    # the chosen profile's file is broken afterwards: said, and live runs uncalibrated
    good.write_text("garbage")
    view2.profiles.refresh()
    assert view2.profile_combo.currentIndex() == 0
    assert view2.controller.model.profile is None
    assert view2.profile_note.isVisibleTo(view2)
    assert "cannot be used" in view2.profile_note.text()


@pytest.mark.corpus
def test_switching_profile_while_listening_takes_effect(qtbot, tmp_path: Path, corpus_dir: Path,
                                                        shipped_model: EmotionModel, speaker_profile) -> None:
    from desktop_app.profiles import ProfileManager

    store, good, _, _ = _store_with_profiles(tmp_path, speaker_profile)
    settings = temp_settings(tmp_path)
    profiles = ProfileManager(settings=settings, model=shipped_model, store=store)
    speech = load_audio(corpus_dir / "crema-d" / "1001_IEO_HAP_HI.ogg", sample_rate=16000).samples
    sessions: list[LiveSession] = []

    def factory(model, **kw):
        sessions.append(array_session_factory(np.tile(speech, 20), 16000, speed=2.0)(model, **kw))
        return sessions[-1]

    view = LiveView(settings=settings, model=shipped_model, controller=LiveController(shipped_model, factory=factory),
                    device_lister=no_devices, profiles=profiles)
    qtbot.addWidget(view)
    view.show()
    assert view.start()
    qtbot.waitUntil(lambda: view.speech_predictions >= 2, timeout=20000)
    profiles.set_active(good)  # while listening, not recording: restarted with the calibrated model
    assert view.running
    assert len(sessions) == 2
    assert sessions[-1].model.profile == speaker_profile
    n = view.predictions_received
    qtbot.waitUntil(lambda: view.predictions_received >= n + 2, timeout=20000)
    # while recording the switch waits for the next Start, and says so
    view.controller.start_recording(tmp_path / "r.wav", tmp_path / "r.csv")
    profiles.set_active(None)
    assert len(sessions) == 2
    assert view.running
    assert "takes effect when you press Start again" in view.profile_note.text()
    view.stop()
    assert view.start()
    assert sessions[-1].model.profile is None
    view.stop()


@pytest.mark.corpus
def test_uncertain_prediction_shows_uncertain_in_grey(qtbot, tmp_path: Path, corpus_dir: Path,
                                                      shipped_model_dir: Path) -> None:
    import json
    import shutil

    from desktop_app.palette import UNCERTAIN_COLOR, emotion_color
    from ser_engine.live.stream import Prediction

    strict = tmp_path / "strict-model"
    shutil.copytree(shipped_model_dir, strict)
    meta = json.loads((strict / "model.json").read_text())
    meta["uncertainty_threshold"] = 0.99  # (nearly) every real prediction is uncertain
    (strict / "model.json").write_text(json.dumps(meta))
    model = EmotionModel.load(strict)
    clip = load_audio(corpus_clips(corpus_dir)[1], sample_rate=16000).samples
    view = _view(qtbot, tmp_path, model, array_session_factory(clip, 16000, speed=4.0))
    seen: list[tuple[bool, str, str, str, float]] = []
    view.controller.prediction.connect(lambda p: seen.append(
        (p.uncertain, view.emotion.state, view.emotion.title.text(), view.emotion.title.styleSheet(),
         float(view.bars.values.sum()))) if p.speech else None)
    assert view.start()
    qtbot.waitUntil(lambda: view.speech_predictions >= 3, timeout=20000)
    view.stop()
    uncertain = [s for s in seen if s[0]]
    assert len(uncertain) >= 3
    for _, state, title, style, bars in uncertain:
        assert state == "uncertain"
        assert title == "Uncertain"
        assert UNCERTAIN_COLOR in style
        assert not any(emotion_color(lab) in style for lab in model.labels)
        assert bars == pytest.approx(100.0, abs=0.1)  # the probability bars are still shown
    # the detail line names the arg-max emotion and its probability
    p = Prediction(start_s=0, end_s=3, speech=True, label="angry", confidence=0.41,
                   probabilities={lab: (0.41 if lab == "angry" else 0.59 / 6) for lab in model.labels},
                   uncertain=True)
    view.on_prediction(p)
    assert view.emotion.detail.text() == "perhaps angry (41 %)"
    assert view.bars.values.max() == pytest.approx(41.0)


@pytest.mark.corpus
def test_manage_dialog_renames_and_deletes_with_confirmation(qtbot, tmp_path: Path, shipped_model: EmotionModel,
                                                             speaker_profile, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    from desktop_app.profiles import ProfileManager
    from desktop_app.profiles_dialog import ProfilesDialog

    store, good, other, broken = _store_with_profiles(tmp_path, speaker_profile)
    settings = temp_settings(tmp_path)
    profiles = ProfileManager(settings=settings, model=shipped_model, store=store)
    profiles.set_active(good)
    view = LiveView(settings=settings, model=shipped_model, device_lister=no_devices, profiles=profiles)
    qtbot.addWidget(view)
    dlg = view.open_profiles()
    assert isinstance(dlg, ProfilesDialog)
    names = [dlg.table.item(r, 0).text() for r in range(dlg.table.rowCount())]
    status = [dlg.table.item(r, 1).text() for r in range(dlg.table.rowCount())]
    assert "Speaker 1001  (active)" in names
    assert status[names.index("broken")] == "unusable: cannot be read"
    assert status[names.index("Old laptop")] == "unusable: made for another model"
    dlg.select(other)
    assert not dlg.use_button.isEnabled()
    assert "made for model" in dlg.detail.text()
    # rename the active profile: the file follows the name, the active choice follows the file
    dlg.select(good)
    new_path = dlg.rename_selected("Anna (desk mic)")
    assert new_path is not None
    assert new_path.exists()
    assert not good.exists()
    assert settings.voice_profile == str(new_path)
    assert view.profile_combo.currentText() == "Anna (desk mic)"
    from ser_engine.inference.profile import VoiceProfile

    assert VoiceProfile.load(new_path).name == "Anna (desk mic)"
    # delete asks first; "No" keeps the file
    asked = []

    def answer(reply):
        def question(*args, **kwargs):
            del kwargs  # QMessageBox.question's signature
            asked.append(args[2])
            return reply
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    dlg.select(new_path)
    assert dlg.delete_selected() is False
    assert new_path.exists()
    assert "Anna (desk mic)" in asked[-1]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    assert dlg.delete_selected() is True
    assert not new_path.exists()
    assert settings.voice_profile == ""
    assert view.profile_combo.currentText() == "No calibration"
    assert view.controller.model.profile is None
    # the broken file can be deleted too
    dlg.select(broken)
    assert dlg.delete_selected() is True
    assert not broken.exists()
    assert [e.name for e in profiles.entries] == ["Old laptop"]
    dlg.accept()


@pytest.mark.parametrize("listening", [True, False])
def test_calibration_pauses_listening_and_resumes_it_when_the_dialog_closes(
    qtbot, tmp_path: Path, shipped_model: EmotionModel, listening: bool
) -> None:
    """Listening stops while the dialog owns the microphone and comes back when it closes; stopped stays stopped."""
    from desktop_app.profiles import ProfileManager

    settings = temp_settings(tmp_path)
    profiles = ProfileManager(settings=settings, model=shipped_model)
    quiet = np.random.default_rng(0).normal(0, 1e-4, 16000 * 600).astype(np.float32)  # outlives the test
    ctl = LiveController(shipped_model, factory=array_session_factory(quiet, 16000))
    view = LiveView(settings=settings, model=shipped_model, controller=ctl, device_lister=no_devices,
                    profiles=profiles)
    qtbot.addWidget(view)
    view.show()
    messages: list[str] = []
    view.message.connect(messages.append)
    if listening:
        assert view.start()
    dlg = view.open_calibration()
    assert dlg is not None
    assert not view.running  # the dialog has the microphone
    assert ("Listening paused for the calibration" in messages) == listening
    with qtbot.waitSignal(dlg.closed, timeout=10000) as closed:
        dlg.reject()
    assert closed.args == [False]
    assert view.running == listening
    if listening:
        view.stop()


def test_every_plot_paints_its_axes_from_a_cache(qtbot, tmp_path: Path, affect_model: EmotionModel) -> None:
    # curves over the axes change 30 times a second (waveform) or every hop (timelines, bars):
    # the axes, which never change, must not be redrawn with them
    from PySide6.QtWidgets import QGraphicsItem

    view = LiveView(settings=temp_settings(tmp_path), model=affect_model, device_lister=no_devices)
    qtbot.addWidget(view)
    for plot in (view.wave_plot, view.timeline_plot, view.affect_plot, view.bars):
        for name in ("left", "bottom"):
            axis = plot.getPlotItem().getAxis(name)
            assert axis.cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache, (plot, name)
