""""Calibrate to my voice": the dialog records through the virtual microphone and saves a voice profile.

Real neutral speech of one CREMA-D speaker is played into the PulseAudio null sink whose
monitor is the default input; the dialog records it with ``ser_engine.live.session.LiveInput``
and builds the profile with the shipped model on a worker thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from desktop_support import temp_settings

from desktop_app.calibration_dialog import CalibrationDialog
from desktop_app.live_view import list_devices
from desktop_app.profiles import ProfileManager
from ser_engine.dsp.audio import load_audio
from ser_engine.errors import DeviceError
from ser_engine.inference.model import EmotionModel
from ser_engine.inference.profile import MIN_SPEECH_S, VoiceProfile, default_profile_dir
from ser_engine.live.ringbuffer import RingBuffer

pytestmark = pytest.mark.gui

SPEAKER_NEUTRAL = [  # one CREMA-D speaker (1001), neutral, nine sentences: ~21 s of audio, ~13 s of voiced speech
    "1001_DFA_NEU_XX.ogg", "1001_IEO_NEU_XX.ogg", "1001_IOM_NEU_XX.ogg",
    "1001_ITH_NEU_XX.ogg", "1001_ITS_NEU_XX.ogg", "1001_IWL_NEU_XX.ogg",
    "1001_IWW_NEU_XX.ogg", "1001_MTI_NEU_XX.ogg", "1001_TAI_NEU_XX.ogg",
]


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Profiles go to a temporary XDG data folder, never the user's."""
    home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def _neutral_speech_wav(corpus_dir: Path, tmp_path: Path) -> tuple[Path, float]:
    ys = [load_audio(corpus_dir / "crema-d" / name, sample_rate=16000).samples for name in SPEAKER_NEUTRAL]
    y = np.concatenate(ys)
    path = tmp_path / "speaker1001_neutral.wav"
    sf.write(str(path), y, 16000, subtype="FLOAT")
    return path, len(y) / 16000


def _dialog(qtbot, tmp_path: Path, model: EmotionModel, **kw) -> tuple[CalibrationDialog, ProfileManager]:
    settings = temp_settings(tmp_path)
    profiles = ProfileManager(settings=settings, model=model)
    dlg = CalibrationDialog(model=model, profiles=profiles, **kw)
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg, profiles


@pytest.mark.mic
@pytest.mark.corpus
@pytest.mark.slow
def test_calibration_records_speech_and_saves_a_profile(qtbot, tmp_path: Path, virtual_mic, corpus_dir: Path,
                                                        shipped_model: EmotionModel, data_home: Path) -> None:
    wav, seconds = _neutral_speech_wav(corpus_dir, tmp_path)
    assert seconds > 12.0
    list_devices(rescan=True)  # PortAudio sees the virtual microphone as the default input
    dlg, profiles = _dialog(qtbot, tmp_path, shipped_model, countdown_s=1, record_s=seconds + 0.5)
    # step 1: the text to read, the device, a live meter and Start
    qtbot.waitUntil(lambda: dlg.input is not None, timeout=10000)
    assert dlg.state == "intro"
    assert dlg.pages.currentIndex() == 0
    assert "North Wind" in dlg.text_label.text()
    assert "default input" in dlg.device_label.text()
    assert dlg.start_button.isVisible()
    assert dlg.start_button.isEnabled()
    assert not dlg.save_button.isVisible()
    # step 2: countdown, then recording while the speaker talks into the microphone
    dlg.start()
    assert dlg.state == "countdown"
    assert dlg.count_label.text() == "1"
    qtbot.waitUntil(lambda: dlg.state == "recording", timeout=5000)
    assert dlg.stop_button.isVisible()
    assert dlg.stop_button.text() == "Stop early"
    proc = virtual_mic.play(wav)
    qtbot.waitUntil(lambda: dlg.meter.level_db > -40.0, timeout=5000)  # the meter is live while recording
    qtbot.waitUntil(lambda: dlg.progress.value() > 0 and "s left" in dlg.progress.format(), timeout=5000)
    # step 3: the profile is built on a worker thread and shown
    qtbot.waitUntil(lambda: dlg.state in ("result", "failed"), timeout=60000)
    proc.wait(timeout=20)
    assert dlg.state == "result", dlg.error
    profile = dlg.profile
    assert profile is not None
    assert profile.speech_s >= MIN_SPEECH_S
    assert profile.sources == ("microphone",)
    assert profile.model_name == shipped_model.name
    text = dlg.result_text.text()
    assert f"{profile.speech_s:.1f} s" in text
    assert "before calibration" in text
    assert "after calibration" in text
    top_after = max(profile.after, key=profile.after.get)
    assert top_after.capitalize() in text.split("after calibration")[1]
    assert dlg.save_button.isVisible()
    assert dlg.again_button.isVisible()
    assert dlg.cancel_button.isVisible()
    assert dlg.name_edit.text().startswith("My voice")
    dlg.name_edit.setText("Speaker 1001 desk")
    with qtbot.waitSignal(dlg.saved, timeout=2000) as blocker:
        dlg.save()
    path = Path(blocker.args[0])
    # saved in $XDG_DATA_HOME/ser/profiles, loads back, and is the active profile
    assert path.parent == data_home / "ser" / "profiles" == default_profile_dir()
    loaded = VoiceProfile.load(path)
    assert loaded.name == "Speaker 1001 desk"
    assert loaded.logit_shift == profile.logit_shift
    assert profiles.settings.voice_profile == str(path)
    assert profiles.active_profile() == loaded
    assert dlg.input is None
    assert not dlg.isVisible()  # the device is closed with the dialog


@pytest.mark.mic
@pytest.mark.slow
@pytest.mark.usefixtures("virtual_mic")
def test_silence_says_too_little_speech_and_stays_usable(qtbot, tmp_path: Path, shipped_model: EmotionModel,
                                                         data_home: Path) -> None:
    list_devices(rescan=True)
    dlg, profiles = _dialog(qtbot, tmp_path, shipped_model, countdown_s=0, record_s=4.0)
    qtbot.waitUntil(lambda: dlg.input is not None, timeout=10000)
    dlg.start()  # nothing is played: the microphone hears silence
    assert dlg.state == "recording"
    qtbot.waitUntil(lambda: dlg.state in ("result", "failed"), timeout=30000)
    assert dlg.state == "failed"
    assert dlg.profile is None
    assert dlg.result_title.text() == "Not enough speech"
    assert "speech" in dlg.result_text.text()
    assert f"{MIN_SPEECH_S:g} s" in dlg.result_text.text()
    assert not dlg.save_button.isVisible()
    assert dlg.again_button.isVisible()
    assert dlg.again_button.isEnabled()
    assert not (data_home / "ser" / "profiles").exists() or not list(
        (data_home / "ser" / "profiles").iterdir())
    # Record again: back to step 1 with the microphone open
    dlg.record_again()
    assert dlg.state == "intro"
    assert dlg.input is not None
    assert dlg.start_button.isEnabled()
    dlg.start()
    qtbot.wait(300)
    dlg.stop_early()  # stopping after a fraction of a second is too little speech too
    qtbot.waitUntil(lambda: dlg.state == "failed", timeout=30000)
    assert dlg.again_button.isEnabled()
    dlg.reject()
    assert dlg.input is None
    assert profiles.settings.voice_profile == ""


class _FakeInput:
    """A microphone that opens and delivers quiet audio, then (optionally) disappears."""

    def __init__(self, device, *, ring_seconds: float, fail_open: bool = False, lose_after: int | None = None):
        del device  # an input factory's signature: any device gives this input
        self.device_rate = 16000
        self.ring = RingBuffer(int(ring_seconds * 16000))
        self.fail_open = fail_open
        self.lose_after = lose_after
        self.checks = 0
        self.stopped = False

    def start(self) -> None:
        if self.fail_open:
            raise DeviceError("cannot open input device 'USB mic' at 16000 Hz: Device unavailable")

    def check(self) -> DeviceError | None:
        self.checks += 1
        self.ring.write(np.zeros(533, np.float32))
        if self.lose_after is not None and self.checks > self.lose_after:
            return DeviceError("input device 'USB mic' stopped delivering audio (disconnected?)")
        return None

    def stop(self) -> None:
        self.stopped = True


def test_a_microphone_that_cannot_open_is_explained(qtbot, tmp_path: Path, shipped_model: EmotionModel) -> None:
    made: list[_FakeInput] = []

    def factory(device, *, ring_seconds):
        made.append(_FakeInput(device, ring_seconds=ring_seconds, fail_open=len(made) == 0))
        return made[-1]

    dlg, _ = _dialog(qtbot, tmp_path, shipped_model, device=3, device_name="USB mic", input_factory=factory)
    qtbot.waitUntil(lambda: len(made) == 1, timeout=2000)
    assert dlg.input is None
    assert dlg.input_error.isVisible()
    assert "Device unavailable" in dlg.input_error.text()
    assert not dlg.start_button.isEnabled()
    assert dlg.retry_input_button.isVisible()
    dlg.retry_input_button.click()  # plugged back in
    assert dlg.input is made[1]
    assert not dlg.input_error.isVisible()
    assert dlg.start_button.isEnabled()
    dlg.reject()
    assert made[1].stopped


def test_device_lost_while_recording_shows_the_reason(qtbot, tmp_path: Path, shipped_model: EmotionModel) -> None:
    made: list[_FakeInput] = []

    def factory(device, *, ring_seconds):
        made.append(_FakeInput(device, ring_seconds=ring_seconds, lose_after=20))
        return made[-1]

    dlg, _ = _dialog(qtbot, tmp_path, shipped_model, countdown_s=0, record_s=10.0, input_factory=factory)
    qtbot.waitUntil(lambda: dlg.input is not None, timeout=2000)
    dlg.start()
    qtbot.waitUntil(lambda: dlg.state == "failed", timeout=5000)
    assert dlg.result_title.text() == "The microphone stopped"
    assert "disconnected" in dlg.result_text.text()
    assert made[0].stopped
    assert dlg.again_button.isEnabled()
    dlg.record_again()
    assert dlg.state == "intro"
    assert dlg.input is made[1]
    dlg.reject()
