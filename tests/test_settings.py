"""AppSettings: preferences persist through QSettings, invalid stored values fall back safely."""

from __future__ import annotations

from pathlib import Path

import pytest
from desktop_support import temp_settings
from PySide6.QtCore import QSettings

from desktop_app.settings import AppSettings
from desktop_app.settings_dialog import SettingsDialog
from ser_engine.errors import ParameterError
from ser_engine.stream import StreamSettings

pytestmark = pytest.mark.gui


def test_settings_persist_across_objects(qapp, tmp_path: Path) -> None:
    s = temp_settings(tmp_path)
    assert s.stream_settings == StreamSettings()  # defaults on a fresh store
    s.set_stream_settings(StreamSettings(window_s=2.0, hop_s=0.25, smoothing=0.7, gate_sensitivity=0.8))
    s.input_device = "USB Microphone"
    s.last_folder = str(tmp_path)
    s.recordings_folder = str(tmp_path / "rec")
    s.last_tab = 1

    again = temp_settings(tmp_path)  # a new object on the same file, as after a restart
    assert again.stream_settings == StreamSettings(window_s=2.0, hop_s=0.25, smoothing=0.7, gate_sensitivity=0.8)
    assert again.input_device == "USB Microphone"
    assert again.last_folder == str(tmp_path)
    assert again.recordings_folder == str(tmp_path / "rec")
    assert again.last_tab == 1
    assert (tmp_path / "settings.ini").read_text().count("hop_s=0.25") == 1


def test_invalid_stored_values_fall_back_to_defaults(qapp, tmp_path: Path) -> None:
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    store.setValue("analysis/hop_s", 9.0)  # longer than the window: invalid
    store.setValue("window/tab", "junk")
    store.sync()
    s = AppSettings(store)
    assert s.stream_settings == StreamSettings()
    assert s.last_tab == 0


def test_last_folder_that_vanished_falls_back_to_home(qapp, tmp_path: Path) -> None:
    s = temp_settings(tmp_path)
    s.last_folder = str(tmp_path / "gone")
    assert s.last_folder == str(Path.home())


def test_changed_signal_and_validation(qtbot, tmp_path: Path) -> None:
    s = temp_settings(tmp_path)
    with qtbot.waitSignal(s.changed, timeout=1000):
        s.input_device = "x"
    with pytest.raises(ParameterError):
        StreamSettings(window_s=1.0, hop_s=2.0)


def test_settings_dialog_writes_the_model_and_rejects_bad_values(qtbot, tmp_path: Path) -> None:
    s = temp_settings(tmp_path)
    dlg = SettingsDialog(s)
    qtbot.addWidget(dlg)
    dlg.hop_s.setValue(0.25)
    dlg.smoothing.setValue(0.3)
    dlg.gate.setValue(70)
    dlg.accept()
    assert s.stream_settings == StreamSettings(window_s=3.0, hop_s=0.25, smoothing=0.3, gate_sensitivity=0.7)

    dlg2 = SettingsDialog(s)
    qtbot.addWidget(dlg2)
    dlg2.window_s.setValue(1.0)
    dlg2.hop_s.setValue(2.0)  # hop longer than the window
    dlg2.accept()
    assert "hop_s" in dlg2.error.text()
    assert s.stream_settings.hop_s == 0.25  # unchanged


def test_fixed_window_models_lock_the_window(qtbot, tmp_path: Path) -> None:
    dlg = SettingsDialog(temp_settings(tmp_path), fixed_window_s=3.0)
    qtbot.addWidget(dlg)
    assert not dlg.window_s.isEnabled()
    assert dlg.window_s.value() == 3.0


def test_voice_profile_choices_persist_and_bad_values_are_safe(qtbot, tmp_path: Path) -> None:
    s = temp_settings(tmp_path)
    assert s.voice_profile == "" and s.files_use_profile is False  # defaults: no calibration
    with qtbot.waitSignal(s.changed, timeout=1000):
        s.voice_profile = str(tmp_path / "profiles" / "anna.json")
    s.files_use_profile = True
    again = temp_settings(tmp_path)
    assert again.voice_profile == str(tmp_path / "profiles" / "anna.json")
    assert again.files_use_profile is True
    again.files_use_profile = False
    assert temp_settings(tmp_path).files_use_profile is False
    store = QSettings(str(tmp_path / "odd.ini"), QSettings.Format.IniFormat)
    store.setValue("calibration/files_use_profile", "junk")
    store.sync()
    assert AppSettings(store).files_use_profile is False
