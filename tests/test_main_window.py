"""The main window: builds with a real model, shows the model, reports a missing or corrupt model."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from desktop_support import no_devices, temp_settings
from PySide6.QtWidgets import QMessageBox

from desktop_app.main_window import MainWindow, load_model
from desktop_app.palette import SILENCE_COLOR, emotion_color
from ser_engine.inference.model import KNOWN_LABELS, EmotionModel

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # voice profiles: never the user's


def test_main_window_builds(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    w = MainWindow(settings=temp_settings(tmp_path), model=tiny_model, device_lister=no_devices)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.tabs.count() == 2
    assert w.model_label.text() == "model: tiny-test-model"
    assert w.files.open_files_button.isEnabled()
    # every label gets a bar in its own colour, in the model's order
    assert w.live.bars.labels == tiny_model.labels
    assert w.files.distribution.labels == tiny_model.labels
    # status bar carries the live figures
    texts = [lab.text() for lab in w.live.status_widgets()]
    assert any(t.startswith("inference") for t in texts)
    assert any(t.startswith("overruns") for t in texts)
    # the tab choice persists
    w.tabs.setCurrentIndex(1)
    assert temp_settings(tmp_path).last_tab == 1


def test_palette_is_one_distinct_colour_per_emotion() -> None:
    colours = [emotion_color(lab) for lab in KNOWN_LABELS]
    assert len(set(colours)) == len(KNOWN_LABELS)
    assert SILENCE_COLOR not in colours


def _dialog_for(qtbot, tmp_path: Path, model_dir: Path) -> tuple[MainWindow, QMessageBox]:
    model, error = load_model(model_dir)
    assert model is None
    assert error
    w = MainWindow(settings=temp_settings(tmp_path), model=model, model_error=error, device_lister=no_devices)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.model_dialog is not None and w.model_dialog.isVisible(), timeout=3000)
    box = w.model_dialog
    assert box is not None
    return w, box


def test_missing_model_dialog_names_the_path(qtbot, tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"
    w, box = _dialog_for(qtbot, tmp_path, missing)
    assert str(missing) in box.informativeText()
    assert "not found" in box.informativeText()
    # the app is open but both modes are disabled
    assert not w.live.start_button.isEnabled()
    assert not w.files.open_files_button.isEnabled()
    assert w.model_label.text() == "model: none"
    box.accept()  # auto-accept
    assert not box.isVisible()
    assert w.isVisible()


def test_corrupt_model_dialog_names_the_problem(qtbot, tmp_path: Path, tiny_model_dir: Path) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.onnx").write_bytes(b"\x08\x01garbage that is not an ONNX graph" * 10)
    _w, box = _dialog_for(qtbot, tmp_path, broken)
    assert str(broken / "model.onnx") in box.informativeText()
    assert "not a loadable ONNX model" in box.informativeText()
    box.accept()

    # metadata that does not parse is named too
    (broken / "model.onnx").write_bytes((tiny_model_dir / "model.onnx").read_bytes())
    (broken / "model.json").write_text("{ not json")
    (tmp_path / "b").mkdir()
    _, box2 = _dialog_for(qtbot, tmp_path / "b", broken)
    assert "model.json" in box2.informativeText()
    assert "JSON" in box2.informativeText()
    box2.accept()


def test_settings_dialog_from_window_updates_settings(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    settings = temp_settings(tmp_path)
    w = MainWindow(settings=settings, model=tiny_model, device_lister=no_devices)
    qtbot.addWidget(w)
    dlg = w.open_settings()
    dlg.hop_s.setValue(1.0)
    dlg.accept()
    assert settings.stream_settings.hop_s == 1.0


def test_minimum_confidence_from_settings_reaches_live_files_profiles_and_chart(
    qtbot, tmp_path: Path, tiny_model: EmotionModel
) -> None:
    """Accepting a new minimum confidence applies at once: every model in use and the histogram's line."""
    settings = temp_settings(tmp_path)
    w = MainWindow(settings=settings, model=tiny_model, device_lister=no_devices)
    qtbot.addWidget(w)
    dlg = w.open_settings()
    dlg.min_confidence_default.setChecked(False)
    dlg.min_confidence.setValue(62)
    dlg.accept()
    assert settings.min_confidence == pytest.approx(0.62)
    for model in (w.model, w.files.model, w.live.model, w.profiles.model_for()):
        assert model.metadata.uncertainty_threshold == pytest.approx(0.62)
        assert model.is_uncertain(0.61)
        assert not model.is_uncertain(0.63)
    chart = w.files.batch_chart
    assert chart.threshold == pytest.approx(0.62)
    assert chart.threshold_line is not None
    assert chart.threshold_line.value() == pytest.approx(62)
    # back to the model's own value
    dlg = w.open_settings()
    dlg.min_confidence_default.setChecked(True)
    dlg.accept()
    assert settings.min_confidence is None
    own = tiny_model.metadata.uncertainty_threshold
    assert w.profiles.model_for().metadata.uncertainty_threshold == own
    assert chart.threshold == own


@pytest.mark.corpus
def test_files_dropped_on_the_live_tab_go_to_file_mode(qtbot, tmp_path: Path, corpus_dir: Path,
                                                       tiny_model: EmotionModel) -> None:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    w = MainWindow(settings=temp_settings(tmp_path), model=tiny_model, device_lister=no_devices)
    qtbot.addWidget(w)
    w.tabs.setCurrentWidget(w.live)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(corpus_dir / "savee" / "DC_h01.flac"))])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.files.batch_finished, timeout=30000):
        w.dropEvent(event)
    assert w.tabs.currentWidget() is w.files
    assert [r.path.name for r in w.files.finished_results()] == ["DC_h01.flac"]


@pytest.mark.corpus
def test_voice_menu_and_status_bar_show_the_profile(qtbot, tmp_path: Path, monkeypatch, corpus_dir: Path,
                                                   shipped_model: EmotionModel) -> None:
    from desktop_app.calibration_dialog import CalibrationDialog
    from desktop_app.profiles_dialog import ProfilesDialog
    from ser_engine.inference.profile import default_profile_dir, profile_from_files

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    settings = temp_settings(tmp_path)
    w = MainWindow(settings=settings, model=shipped_model, device_lister=no_devices)
    qtbot.addWidget(w)
    w.show()
    assert w.profile_label.text() == "voice: no calibration"
    assert w.live.profiles is w.files.profiles is w.profiles  # one shared profile list
    menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Voice")
    assert [a.text() for a in menu.actions()] == ["Calibrate to my voice…", "Manage voice profiles…"]
    # a profile saved in the user's profile folder appears and can be made active
    names = ["1001_DFA_NEU_XX.ogg", "1001_IEO_NEU_XX.ogg", "1001_IOM_NEU_XX.ogg", "1001_ITH_NEU_XX.ogg",
             "1001_ITS_NEU_XX.ogg", "1001_IWL_NEU_XX.ogg", "1001_IWW_NEU_XX.ogg", "1001_MTI_NEU_XX.ogg"]  # 11 s voiced
    prof = profile_from_files([corpus_dir / "crema-d" / n for n in names], model=shipped_model, name="Anna")
    path = w.profiles.save(prof)
    assert path.parent == default_profile_dir() == tmp_path / "xdg-data" / "ser" / "profiles"
    assert w.profile_label.text() == "voice: Anna"
    assert w.live.profile_combo.currentText() == "Anna"
    assert w.files.profile_box.text() == "Use voice profile: Anna"
    # the menu opens the dialogs (the calibration one on the Live tab)
    w.tabs.setCurrentWidget(w.files)
    manage = w.manage_profiles_action
    manage.trigger()
    assert isinstance(w.live.profiles_dialog, ProfilesDialog)
    assert w.live.profiles_dialog.isVisible()
    w.live.profiles_dialog.accept()
    fake_inputs = []

    class Quiet:
        def __init__(self, device, *, ring_seconds):
            del device  # an input factory's signature: any device gives this quiet input
            from ser_engine.live.ringbuffer import RingBuffer

            self.device_rate, self.ring = 16000, RingBuffer(int(ring_seconds * 16000))
            fake_inputs.append(self)

        def start(self): ...
        def stop(self): ...
        def check(self): return None

    monkeypatch.setattr("desktop_app.calibration_dialog._default_input", Quiet)
    w.calibrate_action.trigger()
    dlg = w.live.calibration_dialog
    assert isinstance(dlg, CalibrationDialog)
    assert dlg.isVisible()
    assert w.tabs.currentWidget() is w.live
    qtbot.waitUntil(lambda: dlg.input is not None, timeout=2000)
    dlg.reject()
    w.profiles.set_active(None)
    assert w.profile_label.text() == "voice: no calibration"


def test_status_bar_fields_are_separated(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    from PySide6.QtWidgets import QLabel

    w = MainWindow(settings=temp_settings(tmp_path), model=tiny_model, device_lister=no_devices)
    qtbot.addWidget(w)
    w.tabs.setCurrentWidget(w.live)
    w.show()
    qtbot.waitExposed(w)
    w.live.status_rate.setText("device 16 kHz → model 16 kHz")
    qtbot.wait(50)
    labels = [lab for lab in w.statusBar().findChildren(QLabel) if lab.isVisible() and lab.text()]
    labels.sort(key=lambda lab: lab.mapTo(w, lab.rect().topLeft()).x())
    kinds = ["sep" if lab.objectName() == "status_separator" else "field" for lab in labels]
    fields = [lab.text() for lab in labels if lab.objectName() != "status_separator"]
    assert fields[0].startswith("inference")
    assert fields[-1].startswith("model:")
    assert len(fields) == 6  # inference, delay, overruns, device rate, voice, model
    # every two neighbouring fields have a separator between them, and none touch
    assert kinds == ["field", "sep"] * 5 + ["field"]
    for a, b in itertools.pairwise(labels):
        right_a = a.mapTo(w, a.rect().topRight()).x()
        left_b = b.mapTo(w, b.rect().topLeft()).x()
        assert left_b > right_a
    # in the Files tab the live figures and their separators go away together
    w.tabs.setCurrentWidget(w.files)
    shown = [lab for lab in w.statusBar().findChildren(QLabel) if lab.isVisible() and lab.text()]
    assert [lab.objectName() == "status_separator" for lab in shown].count(True) == 1
    assert not any(lab.text().startswith("inference") for lab in shown)


def test_ser_app_help_lists_the_subcommands_as_ser_does(capsys) -> None:
    from desktop_app.main import main
    from ser_engine.cli.commands import SUBCOMMANDS
    from ser_engine.cli.main import main as ser_main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert set(SUBCOMMANDS) == {"analyze", "calibrate", "devices", "info", "listen"}
    with pytest.raises(SystemExit):
        ser_main(["--help"])
    ser_help = " ".join(capsys.readouterr().out.split())
    for name, text in SUBCOMMANDS.items():
        assert f"\n  {name:<10} {text}\n" in out, name  # one line per command in the epilog...
        assert f"{name} {text}" in ser_help, name  # ...worded as `ser --help` words it
    assert f"ser-app {{{','.join(SUBCOMMANDS)}}} ..." in out
    # and the passthrough really answers: `ser-app devices --help` is the CLI's own help
    with pytest.raises(SystemExit):
        main(["devices", "--help"])
    assert "usage: ser devices" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# nothing is cut: the live state texts and the status-bar messages, at the default and the minimum size
# ---------------------------------------------------------------------------
def _fits(label) -> None:
    """Assert ``label`` (a FitLabel) is shown and its text fits its width."""
    shown = label.text()
    assert label.isVisible()
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width(), (shown, label.width())


def _shown_whole(label) -> None:
    """Assert ``label`` (a FitLabel) shows its whole text within its width."""
    _fits(label)
    assert label.text() == label.full_text(), (label.text(), label.full_text())


def _resize(qtbot, w: MainWindow, which: str) -> None:
    """Resize ``w`` to the default size, or to the smallest it allows now (a banner can change that)."""
    from PySide6.QtCore import QSize

    size = QSize(1280, 860) if which == "default" else w.minimumSize()
    w.resize(size)
    qtbot.waitUntil(lambda: w.size() == size.expandedTo(w.minimumSize()))


def test_every_live_state_text_fits_at_the_default_and_the_minimum_size(qtbot, tmp_path: Path,
                                                                       tiny_model: EmotionModel) -> None:
    from PySide6.QtCore import QSize

    from desktop_app.live_view import NO_MICROPHONE_TEXT, DeviceInfo
    from ser_engine.errors import DeviceError
    from ser_engine.live.stream import Prediction

    devices: list[DeviceInfo] = []
    # the real controller (it needs a device), with a device list the test controls
    w = MainWindow(settings=temp_settings(tmp_path), model=tiny_model, device_lister=lambda: (list(devices), None))
    qtbot.addWidget(w)
    w.tabs.setCurrentWidget(w.live)
    w.show()
    qtbot.waitExposed(w)
    assert w.size() == QSize(1280, 860)  # the default size (no saved geometry)
    view, display = w.live, w.live.emotion

    def no_microphone() -> None:
        devices.clear()
        view.refresh_devices()
        assert display.detail.full_text() == NO_MICROPHONE_TEXT

    def device_back() -> None:
        devices.append(DeviceInfo(3, "USB mic", True, 48000.0))
        view.refresh_devices()

    def cannot_open() -> None:
        def failing(*_: object, **__: object) -> None:
            raise DeviceError("cannot open input device 3 at 16000 Hz: Invalid sample rate")

        view.controller.factory = failing
        assert view.start() is False

    def bug_on_start() -> None:
        def buggy(*_: object, **__: object) -> None:
            raise ZeroDivisionError("float division by zero")

        view.controller.factory = buggy
        assert view.start() is False

    def prediction(label: str | None, *, uncertain: bool = False) -> None:
        probs = {lab: (0.55 if lab == label else 0.45 / 6) for lab in tiny_model.labels} if label else {}
        view.on_prediction(Prediction(start_s=0, end_s=3, speech=label is not None, label=label,
                                      confidence=0.55 if label else 0.0, probabilities=probs, uncertain=uncertain))

    # every state the live view shows, reached the way the app reaches it
    states = [no_microphone, device_back, cannot_open, bug_on_start, view._reset_display, lambda: prediction(None),
              lambda: view.on_failed("input device 'USB mic' disappeared (stream aborted)"),
              lambda: view._on_running_changed(False),
              lambda: view.set_unavailable("No model", "the model could not be loaded (see the message)"),
              lambda: view.set_unavailable("No model loaded", "live analysis is disabled until a model is available")]
    states += [lambda lab=lab: prediction(lab) for lab in tiny_model.labels]
    states += [lambda lab=lab: prediction(lab, uncertain=True) for lab in tiny_model.labels]
    states += [lambda lab=lab: display.show_emotion(lab, 0.99) for lab in KNOWN_LABELS]  # any model's labels
    seen = set()
    for name in ("default", "minimum"):
        for show in states:
            show()
            _resize(qtbot, w, name)
            seen.add(display.title.full_text())
            for label in (display.title, display.detail):
                qtbot.waitUntil(lambda label=label: _shown_whole(label), timeout=3000)
            assert display.title.toolTip() == display.title.full_text(), name
    assert {"Listening — no speech", "Listening…", "Stopped", "Input lost", "No microphone", "Uncertain",
            "No model"} <= seen


def test_status_bar_messages_are_shown_whole_with_the_live_figures(qtbot, tmp_path: Path,
                                                                  tiny_model: EmotionModel) -> None:
    from desktop_app.live_controller import array_session_factory
    from desktop_app.self_test import synth_speech

    settings = temp_settings(tmp_path)
    folder = tmp_path / "recordings"
    settings.recordings_folder = str(folder)
    w = MainWindow(settings=settings, model=tiny_model, device_lister=no_devices,
                   session_factory=array_session_factory(synth_speech(seconds=60.0), 16000))
    qtbot.addWidget(w)
    w.tabs.setCurrentWidget(w.live)
    w.show()
    qtbot.waitExposed(w)
    view = w.live
    figures = [lab for lab in view.status_widgets() if lab.objectName() != "status_separator"]
    assert view.start()
    qtbot.waitUntil(lambda: view.status_delay.text().startswith("delay sound→prediction"), timeout=10000)
    view.toggle_recording()
    session = view.controller.session
    t0 = session.stats().seconds
    qtbot.waitUntil(lambda: session.stats().seconds >= t0 + 0.5, timeout=10000)  # half a second recorded
    view.toggle_recording()
    wav = next(folder.glob("*.wav"))
    message = f"Recording saved: {wav}"
    assert w.status_message.full_text() == message
    assert w.status_message.toolTip() == message
    label = w.status_message

    def roomy() -> None:
        _fits(label)
        # the room the permanent fields leave it: most of the bar, not a few letters
        assert label.width() >= 0.6 * w.width()

    for name in ("default", "minimum"):
        _resize(qtbot, w, name)
        qtbot.waitUntil(roomy, timeout=3000)
        assert label.geometry().right() < w.profile_label.geometry().left(), name  # beside it, not under
        # what happened and the file name are read; a folder too long for the room is cut in the middle
        assert label.text().startswith("Recording saved: /"), name
        assert label.text().endswith(wav.name), name
        if name == "default":
            assert label.text() == message
    # the figures made way for the message; they come back when it goes
    assert not any(lab.isVisible() for lab in figures)
    w.clear_status_message()
    qtbot.waitUntil(lambda: all(lab.isVisible() for lab in figures))
    assert w.status_message.text() == ""
    # at the default size a short message leaves the figures where they are
    w.resize(1280, 860)
    qtbot.waitUntil(lambda: w.size().width() == 1280)
    view.message.emit("Listening to the microphone")
    qtbot.waitUntil(lambda: _shown_whole(w.status_message), timeout=3000)
    assert all(lab.isVisible() for lab in figures)
    view.stop()


def test_the_app_keeps_blas_to_one_thread() -> None:
    # in a fresh process: the limit is the process's for good
    import subprocess
    import sys

    code = ("import numpy\n"
            "from threadpoolctl import threadpool_info\n"
            "from desktop_app.main import single_threaded_blas\n"
            "single_threaded_blas()\n"
            "print(sorted({pool['num_threads'] for pool in threadpool_info()}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "[1]"
