""""Calibrate to my voice": the dialog records through the virtual microphone and saves a voice profile.

Real neutral speech of one CREMA-D speaker is played into the PulseAudio null sink whose
monitor is the default input; the dialog records it with ``ser_engine.live.session.LiveInput``
and builds the profile with the shipped model on a worker thread. Other tests give the dialog
an input that delivers the same speech faster than real time, or quiet audio, or fails.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from desktop_support import temp_settings
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel

import desktop_app.calibration_dialog as calibration_dialog
from desktop_app.calibration_dialog import CalibrationDialog
from desktop_app.live_view import list_devices
from desktop_app.profiles import ProfileManager
from ser_engine.dsp.audio import load_audio
from ser_engine.errors import DeviceError, ProfileError
from ser_engine.inference.model import EmotionModel
from ser_engine.inference.profile import MIN_SPEECH_S, VoiceProfile, default_profile_dir, profile_from_audio
from ser_engine.inference.profile_check import FoldCheck, HeldOutCheck, check_held_out
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


def _visible_widgets(dlg: CalibrationDialog) -> list[tuple[int, int, str]]:
    """Every visible widget of the dialog's layouts, top to bottom: (top, bottom, what) in dialog pixels.

    Containers (a widget with a layout of its own: the pages, the level-meter row) are entered,
    so a page's labels and the buttons under it are neighbours.
    """
    found: list[tuple[int, int, str]] = []

    def walk(layout: Any) -> None:
        for i in range(layout.count()):
            item = layout.itemAt(i)
            w = item.widget()
            if w is not None:
                if not w.isVisible():
                    continue
                if w.layout() is not None:
                    walk(w.layout())
                    continue
                top = w.mapTo(dlg, QPoint(0, 0)).y()
                what = w.text()[:40] if isinstance(w, QLabel) or hasattr(w, "text") else type(w).__name__
                found.append((top, top + w.height(), f"{type(w).__name__} {what!r}"))
            elif item.layout() is not None:
                walk(item.layout())

    walk(dlg.layout())
    return sorted(found)


def _assert_no_empty_band(dlg: CalibrationDialog) -> None:
    """No vertical gap over two lines between neighbouring visible widgets, nor under the last one."""
    limit = 2 * dlg.fontMetrics().lineSpacing()
    widgets = _visible_widgets(dlg)
    assert widgets
    bottom, above = 0, "the dialog's top"
    for top, end, what in widgets:
        assert top - bottom <= limit, f"{top - bottom} px empty between {above} and {what} (state {dlg.state})"
        if end > bottom:
            bottom, above = end, what
    assert dlg.height() - bottom <= limit, f"{dlg.height() - bottom} px empty under {above} (state {dlg.state})"


def _shown_text(dlg: CalibrationDialog) -> str:
    """Return the text of every visible label of the dialog."""
    return "\n".join(w.text() for w in dlg.findChildren(QLabel) if w.isVisible())


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
    qtbot.waitUntil(lambda: dlg.check is not None or dlg.check_error is not None, timeout=60000)
    check = dlg.check
    assert check is not None, dlg.check_error
    assert (f"Your held-out neutral speech: read as neutral in <b>{check.before_share * 100:.0f} %</b> of windows "
            f"before calibration, <b>{check.after_share * 100:.0f} %</b> after") in dlg.check_text.text()
    assert "active voice profile" not in _shown_text(dlg)  # said only once it is saved
    assert dlg.save_button.isVisible()
    assert dlg.again_button.isVisible()
    assert dlg.cancel_button.isVisible()
    assert dlg.name_edit.text().startswith("My voice")
    dlg.name_edit.setText("Speaker 1001 desk")
    with qtbot.waitSignal(dlg.saved, timeout=2000) as blocker:
        dlg.save()
    path = Path(blocker.args[0])
    assert dlg.state == "saved"
    assert "active voice profile" in dlg.save_note.text()
    # saved in $XDG_DATA_HOME/ser/profiles, loads back, and is the active profile
    assert path.parent == data_home / "ser" / "profiles" == default_profile_dir()
    loaded = VoiceProfile.load(path)
    assert loaded.name == "Speaker 1001 desk"
    assert loaded.logit_shift == profile.logit_shift
    assert profiles.settings.voice_profile == str(path)
    assert profiles.active_profile() == loaded
    assert dlg.input is None  # the device was closed when the recording ended
    with qtbot.waitSignal(dlg.closed, timeout=2000) as closed:
        dlg.close_button.click()
    assert closed.args == [True]
    assert not dlg.isVisible()


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
    qtbot.waitUntil(lambda: dlg.progress.value() > 0, timeout=5000)  # a little has been recorded
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


def test_a_dialog_closed_at_once_never_opens_the_microphone(qtbot, tmp_path: Path,
                                                             shipped_model: EmotionModel) -> None:
    """The first opening is queued at construction; closing before it runs leaves no stream behind."""
    from PySide6.QtCore import QTimer

    made: list[_FakeInput] = []

    def factory(device, *, ring_seconds):
        made.append(_FakeInput(device, ring_seconds=ring_seconds))
        return made[-1]

    dlg, _ = _dialog(qtbot, tmp_path, shipped_model, input_factory=factory)
    dlg.reject()
    after: list[bool] = []
    QTimer.singleShot(0, lambda: after.append(True))  # zero timers fire in order: the dialog's queued one first
    qtbot.waitUntil(lambda: bool(after), timeout=2000)
    assert made == []
    assert dlg.input is None


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


class _SpeakingInput(_FakeInput):
    """A microphone that hears ``speech`` from the moment :meth:`speak` is called, faster than real time.

    Each :meth:`check` (one per dialog tick) delivers the next ``chunk`` samples, then silence.
    """

    def __init__(self, device, *, ring_seconds: float, speech: np.ndarray, chunk: int = 8000):
        super().__init__(device, ring_seconds=ring_seconds)
        self.speech = speech
        self.chunk = chunk
        self.pos: int | None = None

    def speak(self) -> None:
        self.pos = 0

    def check(self) -> DeviceError | None:
        if self.pos is None:
            self.ring.write(np.zeros(533, np.float32))
            return None
        part = self.speech[self.pos:self.pos + self.chunk]
        self.pos += self.chunk
        self.ring.write(np.concatenate([part, np.zeros(self.chunk - len(part), np.float32)]).astype(np.float32))
        return None


def _speaking_dialog(qtbot, tmp_path: Path, model: EmotionModel, speech: np.ndarray
                     ) -> tuple[CalibrationDialog, ProfileManager]:
    """Show the dialog with a microphone that starts speaking ``speech`` when the recording starts."""
    made: list[_SpeakingInput] = []

    def factory(device, *, ring_seconds):
        made.append(_SpeakingInput(device, ring_seconds=ring_seconds, speech=speech))
        return made[-1]

    dlg, profiles = _dialog(qtbot, tmp_path, model, countdown_s=0, record_s=len(speech) / 16000,
                            input_factory=factory)
    dlg.state_changed.connect(lambda state: made[-1].speak() if state == "recording" else None)
    qtbot.waitUntil(lambda: dlg.input is not None, timeout=2000)
    return dlg, profiles


@pytest.fixture(scope="module")
def neutral_speech(corpus_dir: Path) -> np.ndarray:
    return np.concatenate([load_audio(corpus_dir / "crema-d" / n, sample_rate=16000).samples
                           for n in SPEAKER_NEUTRAL])


@pytest.mark.corpus
def test_result_shows_held_out_speech_before_and_after_and_saves_only_on_save(
        qtbot, tmp_path: Path, neutral_speech: np.ndarray, shipped_model: EmotionModel, data_home: Path) -> None:
    dlg, profiles = _speaking_dialog(qtbot, tmp_path, shipped_model, neutral_speech)
    _assert_no_empty_band(dlg)
    dlg.start()
    assert dlg.state == "recording"
    qtbot.waitUntil(lambda: _assert_no_empty_band(dlg), timeout=2000)
    qtbot.waitUntil(lambda: dlg.state in ("result", "failed"), timeout=60000)
    assert dlg.state == "result", dlg.error
    qtbot.waitUntil(lambda: _assert_no_empty_band(dlg), timeout=2000)  # also while the check runs
    qtbot.waitUntil(lambda: not dlg.checking, timeout=60000)
    assert not dlg.busy.isVisible()
    check, profile, recording = dlg.check, dlg.profile, dlg.recording
    assert check is not None, dlg.check_error
    assert profile is not None
    assert recording is not None
    np.testing.assert_array_equal(recording[:len(neutral_speech)], neutral_speech)  # what the microphone heard
    # the profile offered for saving is made from all of the recording's speech; the check from halves of it
    assert profile.logit_shift == profile_from_audio(recording, model=shipped_model, name="x").logit_shift
    assert profile.n_windows == check.n_windows == check.n_held_out + check.n_straddling
    expected = check_held_out(audio=recording, model=shipped_model)
    assert dataclasses.replace(check, folds=()) == dataclasses.replace(expected, folds=())
    # what the user reads: held-out windows read as neutral before and after, and what that means
    text = dlg.check_text.text()
    assert (f"Your held-out neutral speech: read as neutral in <b>{check.before_share * 100:.0f} %</b> of windows "
            f"before calibration, <b>{check.after_share * 100:.0f} %</b> after "
            f"(mean neutral probability {check.before_mean * 100:.0f} % before, "
            f"{check.after_mean * 100:.0f} % after)") in text
    assert f"{check.n_held_out} of {check.n_windows} windows" in text
    verdict = "makes your neutral speech read as neutral more often" if check.improved else (
        "did not make your neutral speech read more neutral")
    assert verdict in text
    # nothing is saved, nor said to be, before Save
    if check.improved:
        assert dlg.save_note.isVisible()
        assert "Nothing is saved until you press <b>Save</b>" in dlg.save_note.text()
    else:  # said in the verdict
        assert not dlg.save_note.isVisible()
        assert "It is saved only if you press <b>Save</b>" in text
    assert "active voice profile" not in _shown_text(dlg)
    assert not (data_home / "ser" / "profiles").exists()
    _assert_no_empty_band(dlg)
    closed: list[bool] = []
    dlg.closed.connect(closed.append)
    dlg.name_edit.setText("Speaker 1001")
    with qtbot.waitSignal(dlg.saved, timeout=2000) as blocker:
        dlg.save_button.click()
    # saved: the page says so, the check stays, only Close is offered, the dialog stays open until then
    assert dlg.state == "saved"
    assert dlg.isVisible()
    assert Path(blocker.args[0]).is_file()
    assert profiles.settings.voice_profile == str(blocker.args[0])
    assert dlg.result_title.text() == "Saved: “Speaker 1001”"
    assert "It is now the active voice profile in live mode" in dlg.save_note.text()
    assert dlg.check_text.isVisible()
    assert "saved only if" not in dlg.check_text.text()
    assert [b.text() for b in (dlg.cancel_button, dlg.again_button, dlg.save_button, dlg.close_button)
            if b.isVisible()] == ["Close"]
    qtbot.waitUntil(lambda: _assert_no_empty_band(dlg), timeout=2000)
    assert closed == []
    with qtbot.waitSignal(dlg.closed, timeout=2000):
        dlg.close_button.click()
    assert closed == [True]
    assert not dlg.isVisible()


@pytest.mark.parametrize(("before", "after", "verdict"), [
    (0.30, 0.55, "Calibration makes your neutral speech read as neutral more often."),
    (0.95, 0.85, "Calibration did not make your neutral speech read more neutral (fewer held-out windows read "
                 "as neutral with it)."),
    (0.50, 0.50, "Calibration did not make your neutral speech read more neutral (as many held-out windows read "
                 "as neutral with it as without)."),
    (1.00, 1.00, "Calibration did not make your neutral speech read more neutral (it already read as neutral in "
                 "every held-out window without calibration)."),
])
def test_the_verdict_says_plainly_when_calibration_does_not_help(before: float, after: float, verdict: str) -> None:
    check = _made_up_check(before=before, after=after)
    text = CalibrationDialog.describe_check(check)
    assert verdict in text
    assert ("It is saved only if you press <b>Save</b>" in text) == (not check.improved)
    saved = CalibrationDialog.describe_check(check, saved=True)  # after Save: the same finding, no advice to save
    assert verdict in saved
    assert "Save" not in saved
    assert f"read as neutral in <b>{before * 100:.0f} %</b> of windows before calibration, " \
           f"<b>{after * 100:.0f} %</b> after" in text


def _made_up_check(*, before: float, after: float) -> HeldOutCheck:
    """Make up a held-out check of 20 windows (two folds of 10), ``before``/``after`` the share read as neutral."""
    fold_args = {"calibration_span": (0.0, 1.0), "held_out_span": (1.0, 2.0), "n_held_out": 10,
                 "profile": None,  # the dialog does not show the folds' profiles
                 "before_neutral": round(before * 10), "after_neutral": round(after * 10),
                 "before_mean": before * 0.6, "after_mean": after * 0.6}
    folds = (FoldCheck(**fold_args), FoldCheck(**fold_args))
    return HeldOutCheck(label="neutral", before_share=before, after_share=after, before_mean=before * 0.6,
                        after_mean=after * 0.6, n_windows=26, n_held_out=20, n_straddling=6, split_s=8.0,
                        folds=folds)


@pytest.mark.corpus
def test_a_check_that_does_not_help_or_fails_is_shown_and_saving_stays_possible(
        qtbot, tmp_path: Path, neutral_speech: np.ndarray, shipped_model: EmotionModel,
        monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[object] = [_made_up_check(before=0.9, after=0.7), ProfileError("the part from 0.0 s to 2.0 s: "
                                                                                  "only 1.5 s of speech found")]

    def check(**_kw: Any) -> HeldOutCheck:  # what the engine's check gives, in turn
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, HeldOutCheck)
        return outcome

    monkeypatch.setattr(calibration_dialog, "check_held_out", check)
    dlg, _ = _speaking_dialog(qtbot, tmp_path, shipped_model, neutral_speech)
    dlg.start()
    qtbot.waitUntil(lambda: dlg.state in ("result", "failed") and not dlg.checking, timeout=60000)
    assert dlg.state == "result", dlg.error
    text = dlg.check_text.text()
    assert "read as neutral in <b>90 %</b> of windows before calibration, <b>70 %</b> after" in text
    assert "Calibration did not make your neutral speech read more neutral" in text
    assert "It is saved only if you press <b>Save</b>" in text
    assert not dlg.save_note.isVisible()  # the verdict already says so
    assert dlg.save_button.isEnabled()
    assert dlg.again_button.isEnabled()
    qtbot.waitUntil(lambda: _assert_no_empty_band(dlg), timeout=2000)
    # record again: this time the check cannot be made; the reason is shown and the profile can still be saved
    dlg.record_again()
    qtbot.waitUntil(lambda: dlg.input is not None, timeout=2000)
    assert dlg.check is None
    dlg.start()
    qtbot.waitUntil(lambda: dlg.state in ("result", "failed") and not dlg.checking, timeout=60000)
    assert dlg.state == "result", dlg.error
    assert dlg.check is None
    assert "could not be checked: the part from 0.0 s to 2.0 s: only 1.5 s of speech found" in dlg.check_text.text()
    assert "The profile can still be saved" in dlg.check_text.text()
    assert "Nothing is saved until you press <b>Save</b>" in dlg.save_note.text()
    assert dlg.save_note.isVisible()
    assert dlg.save_button.isEnabled()
    assert outcomes == []
    dlg.reject()


@pytest.mark.parametrize("how", ["cancel", "escape", "window"])
def test_closing_releases_the_microphone_then_says_closed_once(qtbot, tmp_path: Path, shipped_model: EmotionModel,
                                                               how: str) -> None:
    """Whoever paused live listening for the dialog may open the device again on ``closed``."""
    made: list[_FakeInput] = []

    def factory(device, *, ring_seconds):
        made.append(_FakeInput(device, ring_seconds=ring_seconds))
        return made[-1]

    dlg, _ = _dialog(qtbot, tmp_path, shipped_model, input_factory=factory)
    qtbot.waitUntil(lambda: dlg.input is not None, timeout=2000)
    seen: list[tuple[bool, object, bool]] = []
    dlg.closed.connect(lambda saved: seen.append((saved, dlg.input, made[-1].stopped)))
    with qtbot.waitSignal(dlg.closed, timeout=2000):
        if how == "cancel":
            dlg.cancel_button.click()
        elif how == "escape":
            qtbot.keyClick(dlg, Qt.Key.Key_Escape)
        else:
            dlg.close()
    assert seen == [(False, None, True)]  # nothing saved; the microphone was already closed
    assert not dlg.isVisible()
    dlg.reject()
    dlg.close()
    assert len(seen) == 1


def test_no_empty_band_on_the_pages_without_speech(qtbot, tmp_path: Path, shipped_model: EmotionModel) -> None:
    made: list[_FakeInput] = []

    def factory(device, *, ring_seconds):
        made.append(_FakeInput(device, ring_seconds=ring_seconds))
        return made[-1]

    dlg, _ = _dialog(qtbot, tmp_path, shipped_model, countdown_s=3, record_s=10.0, input_factory=factory)
    qtbot.waitUntil(lambda: dlg.input is not None, timeout=2000)
    qtbot.waitUntil(lambda: _assert_no_empty_band(dlg), timeout=2000)  # the text to read, the meter, Start
    dlg.start()
    assert dlg.state == "countdown"
    qtbot.waitUntil(lambda: _assert_no_empty_band(dlg), timeout=2000)
    made[0].lose_after = made[0].checks  # the microphone is lost at its next check
    qtbot.waitUntil(lambda: dlg.state == "failed", timeout=10000)
    qtbot.waitUntil(lambda: _assert_no_empty_band(dlg), timeout=2000)
    dlg.record_again()
    qtbot.waitUntil(lambda: dlg.state == "intro" and dlg.input is not None, timeout=2000)
    qtbot.waitUntil(lambda: _assert_no_empty_band(dlg), timeout=2000)
    dlg.reject()
