"""AppSettings: preferences persist through QSettings, invalid stored values fall back safely."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from desktop_support import temp_settings
from PySide6.QtCore import QSettings
from tiny_model import TRADEOFF

from desktop_app.settings import AppSettings
from desktop_app.settings_dialog import SettingsDialog
from ser_engine.errors import ParameterError
from ser_engine.live.stream import StreamSettings

pytestmark = pytest.mark.gui


@pytest.mark.usefixtures("qapp")
def test_settings_persist_across_objects(tmp_path: Path) -> None:
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


@pytest.mark.usefixtures("qapp")
def test_invalid_stored_values_fall_back_to_defaults(tmp_path: Path) -> None:
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    store.setValue("analysis/hop_s", 9.0)  # longer than the window: invalid
    store.setValue("window/tab", "junk")
    store.sync()
    s = AppSettings(store)
    assert s.stream_settings == StreamSettings()
    assert s.last_tab == 0


@pytest.mark.usefixtures("qapp")
def test_last_folder_that_vanished_falls_back_to_home(tmp_path: Path) -> None:
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
    assert s.voice_profile == ""  # defaults: no calibration
    assert s.files_use_profile is False
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "anna.json").write_text("{}")  # a stored profile path must exist
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


# ---------------------------------------------------------------------- corrupted settings files
# Each case: the INI line that is wrong, the AppSettings attribute, and the default it must fall back to
# (None = computed in the test). Every key AppSettings stores has at least one case.
CORRUPT = [
    ("analysis", "window_s", "abc", "stream_settings", None),
    ("analysis", "window_s", "45", "stream_settings", None),  # out of 0.1-30 s
    ("analysis", "hop_s", "nan", "stream_settings", None),
    ("analysis", "smoothing", "1.5", "stream_settings", None),  # out of [0, 1)
    ("analysis", "gate_sensitivity", "@ByteArray(xyz)", "stream_settings", None),  # binary where a number is
    ("live", "input_device", "USB, Mic", "input_device", ""),  # a list (comma-separated INI value)
    ("live", "recordings_folder", "relative/rec", "recordings_folder", None),
    ("live", "recordings_folder", "@ByteArray(\\xff)", "recordings_folder", None),
    ("live", "recordings_folder", "", "recordings_folder", None),
    ("live", "recordings_folder", "/dev/null", "recordings_folder", None),  # exists, not a folder
    ("files", "last_folder", "/nonexistent/ser-folder", "last_folder", None),
    ("files", "last_folder", "42, 43", "last_folder", None),
    ("calibration", "profile", "/nonexistent/profiles/anna.json", "voice_profile", ""),
    ("calibration", "files_use_profile", "maybe", "files_use_profile", False),
    ("calibration", "files_use_profile", "7", "files_use_profile", False),
    ("window", "geometry", "notbytes", "window_geometry", b""),
    ("window", "geometry", "12", "window_geometry", b""),
    ("window", "tab", "7", "last_tab", 0),  # out of range
    ("window", "tab", "-1", "last_tab", 0),
    ("window", "tab", "1.5", "last_tab", 0),
    ("analysis", "min_confidence", "1", "min_confidence", None),  # out of [0, 1)
    ("analysis", "min_confidence", "-0.2", "min_confidence", None),
    ("analysis", "min_confidence", "often", "min_confidence", None),
    ("analysis", "min_confidence", "nan", "min_confidence", None),
]


def _config_home_ini(tmp_path: Path, text: str) -> Path:
    """Write a real settings file where ser-app looks for it under XDG_CONFIG_HOME=tmp_path/config."""
    ini = tmp_path / "config" / "ser" / "ser-app.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text(text)
    return ini


@pytest.mark.parametrize(("section", "key", "bad", "attr", "default"), CORRUPT,
                         ids=[f"{c[0]}/{c[1]}={c[2]}" for c in CORRUPT])
@pytest.mark.usefixtures("qapp")
def test_every_corrupt_value_falls_back_to_its_default_with_a_note(tmp_path: Path, caplog,
                                                                    section, key, bad, attr, default) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    good = {"analysis": "[analysis]\nsmoothing=0.25\n", "live": f"[live]\nrecordings_folder={rec}\n",
            "window": "[window]\ntab=1\n"}
    neighbour = "window" if section != "window" else "live"  # a valid value in the same file still counts
    text = good[neighbour] + f"\n[{section}]\n{key}={bad}\n"
    if section == "analysis" and key != "smoothing":
        text = f"[{section}]\nsmoothing=0.25\n{key}={bad}\n" + good["window"]
    ini = _config_home_ini(tmp_path, text)
    store = QSettings(str(ini), QSettings.Format.IniFormat)
    with caplog.at_level("WARNING", logger="ser.app"):
        s = AppSettings(store)  # must not raise, whatever the file holds
        value = getattr(s, attr)
        getattr(s, attr)  # read again: noted once
    expected = {"stream_settings": StreamSettings().replace(smoothing=0.25) if key != "smoothing" else StreamSettings(),
                "recordings_folder": str(Path.home() / "ser-recordings"),
                "last_folder": str(Path.home())}.get(attr, default)
    assert value == expected
    notes = [r for r in caplog.records if r.name == "ser.app" and f"{section}/{key}" in r.getMessage()]
    assert len(notes) == 1, [r.getMessage() for r in caplog.records]
    assert str(ini) in notes[0].getMessage()
    assert "invalid" in notes[0].getMessage()
    assert s.check() == [f"{section}/{key}"]
    if neighbour == "live":
        assert s.recordings_folder == str(rec)
    else:
        assert s.last_tab == 1
    # the user's file is not rewritten: a value that is only missing for now (a profile on an
    # unmounted drive) comes back when it exists again
    assert f"{key}={bad}" in ini.read_text()


@pytest.mark.usefixtures("qapp")
def test_valid_values_of_every_key_are_read_back_without_notes(tmp_path: Path, caplog) -> None:
    profile = tmp_path / "anna.json"
    profile.write_text("{}")
    geometry = bytes(range(256))
    s = temp_settings(tmp_path)
    s.set_stream_settings(StreamSettings(window_s=2.0, hop_s=0.25, smoothing=0.5, gate_sensitivity=0.2))
    s.input_device = "HDA Intel PCH: ALC, Analog (hw:0,0)"  # a comma inside a value written by the app
    s.recordings_folder = str(tmp_path / "rec")  # need not exist yet: recording creates it
    s.last_folder = str(tmp_path)
    s.voice_profile = str(profile)
    s.files_use_profile = True
    s.window_geometry = geometry
    s.last_tab = 1
    s.min_confidence = 0.45
    with caplog.at_level("WARNING", logger="ser.app"):
        again = temp_settings(tmp_path)
    assert again.check() == []
    assert not [r for r in caplog.records if r.name == "ser.app"]
    assert again.stream_settings == StreamSettings(window_s=2.0, hop_s=0.25, smoothing=0.5, gate_sensitivity=0.2)
    assert again.input_device == "HDA Intel PCH: ALC, Analog (hw:0,0)"
    assert again.recordings_folder == str(tmp_path / "rec")
    assert again.last_folder == str(tmp_path)
    assert again.voice_profile == str(profile)
    assert again.files_use_profile is True
    assert again.window_geometry == geometry
    assert again.last_tab == 1
    assert again.min_confidence == 0.45


@pytest.mark.usefixtures("qapp")
def test_hop_longer_than_the_window_gives_the_default_analysis_settings(tmp_path: Path, caplog) -> None:
    ini = _config_home_ini(tmp_path, "[analysis]\nwindow_s=1.0\nhop_s=2.0\n")
    with caplog.at_level("WARNING", logger="ser.app"):
        s = AppSettings(QSettings(str(ini), QSettings.Format.IniFormat))
    assert s.stream_settings == StreamSettings()
    assert any("hop_s" in r.getMessage() for r in caplog.records if r.name == "ser.app")


@pytest.mark.usefixtures("qapp")
def test_a_settings_file_of_random_bytes_gives_the_defaults(tmp_path: Path) -> None:
    ini = tmp_path / "config" / "ser" / "ser-app.ini"
    ini.parent.mkdir(parents=True)
    ini.write_bytes(np.random.default_rng(13).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    s = AppSettings(QSettings(str(ini), QSettings.Format.IniFormat))
    assert s.stream_settings == StreamSettings()
    assert s.last_tab == 0
    assert s.window_geometry == b""
    assert s.voice_profile == ""
    assert s.files_use_profile is False


CORRUPT_FILE = """[analysis]
window_s=abc
hop_s=nan
smoothing=1.5
gate_sensitivity=@ByteArray(xyz)

[live]
input_device=USB, Mic
recordings_folder=relative/rec

[files]
last_folder=/nonexistent/ser-folder

[calibration]
profile=/nonexistent/profiles/anna.json
files_use_profile=maybe

[window]
geometry=notbytes
tab=7
"""


def _app_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"), QT_QPA_PLATFORM="offscreen")
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


@pytest.mark.slow
def test_the_app_starts_with_a_corrupted_settings_file(tmp_path: Path) -> None:
    """End to end: the real ``ser-app`` start (the user's settings file) and ``ser-app --self-test``, exit 0."""
    ini = _config_home_ini(tmp_path, CORRUPT_FILE)
    ser_app = str(Path(sys.executable).parent / "ser-app")
    env = _app_env(tmp_path)
    # the real start-up reads ~/.config/ser/ser-app.ini (here under XDG_CONFIG_HOME), shows the window, quits
    run = subprocess.run([ser_app], env={**env, "SER_APP_REPORT_READY": "quit"}, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("ready "), run.stdout + run.stderr[-3000:]
    for key in ("analysis/window_s", "analysis/hop_s", "analysis/smoothing", "analysis/gate_sensitivity",
                "live/input_device", "live/recordings_folder", "files/last_folder", "calibration/profile",
                "calibration/files_use_profile", "window/geometry", "window/tab"):
        assert f"{ini}: {key}=" in run.stderr, (key, run.stderr[-3000:])
    assert "Traceback" not in run.stderr
    test = subprocess.run([ser_app, "--self-test"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
    assert "self-test passed" in test.stdout


@pytest.mark.usefixtures("qapp")
def test_recordings_folder_with_a_tilde_is_expanded(tmp_path: Path) -> None:
    s = temp_settings(tmp_path)
    s.recordings_folder = "~/my recordings"
    assert temp_settings(tmp_path).recordings_folder == str(Path.home() / "my recordings")


def test_window_and_hop_default_to_the_models_as_in_ser(qtbot, tmp_path: Path, tiny_model_dir: Path) -> None:
    """The app's default window/hop are the model's FeatureConfig, the CLI's defaults; a user's choice stays."""
    import json
    import shutil

    from desktop_app.file_view import FileView
    from ser_engine.inference.model import EmotionModel

    other = tmp_path / "model-2s"
    shutil.copytree(tiny_model_dir, other)
    meta = json.loads((other / "model.json").read_text())
    meta["feature_config"].update(window_s=2.0, hop_s=0.25)
    (other / "model.json").write_text(json.dumps(meta))
    model = EmotionModel.load(other)
    s = temp_settings(tmp_path)
    view = FileView(settings=s, model=model)  # any view given the model makes its window/hop the defaults
    qtbot.addWidget(view)
    assert (s.stream_settings.window_s, s.stream_settings.hop_s) == (2.0, 0.25)
    assert s.stream_settings.smoothing == StreamSettings().smoothing
    dialog = SettingsDialog(s)
    qtbot.addWidget(dialog)
    dialog.window_s.setValue(3.0)
    dialog._defaults()  # Restore defaults: the model's
    assert (dialog.window_s.value(), dialog.hop_s.value()) == (2.0, 0.25)
    s.set_stream_settings(s.stream_settings.replace(smoothing=0.7))  # the defaults are not written down...
    assert "window_s" not in (tmp_path / "settings.ini").read_text()
    s.set_stream_settings(s.stream_settings.replace(window_s=2.5))  # ...a choice of the user is
    again = temp_settings(tmp_path)
    again.use_model_defaults(model)
    assert (again.stream_settings.window_s, again.stream_settings.hop_s, again.stream_settings.smoothing) == \
        (2.5, 0.25, 0.7)


# ----------------------------------------------------------------------------- minimum confidence


def _model(tiny_model_dir: Path, tmp_path: Path, **changes: object):  # type: ignore[no-untyped-def]
    """Load a copy of the tiny model with changed model.json keys."""
    import json
    import shutil

    from ser_engine.inference.model import EmotionModel

    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    meta = json.loads((d / "model.json").read_text())
    meta.update(changes)
    (d / "model.json").write_text(json.dumps(meta))
    return EmotionModel.load(d)


def test_min_confidence_round_trip(qtbot, tmp_path: Path) -> None:
    s = temp_settings(tmp_path)
    assert s.min_confidence is None  # the model's own by default
    with qtbot.waitSignal(s.changed, timeout=1000):
        s.min_confidence = 0.45
    assert temp_settings(tmp_path).min_confidence == 0.45
    s.min_confidence = 0.0  # never uncertain: a value of its own, not "the default"
    assert temp_settings(tmp_path).min_confidence == 0.0
    with qtbot.waitSignal(s.changed, timeout=1000):
        s.min_confidence = None
    assert temp_settings(tmp_path).min_confidence is None
    assert "min_confidence" not in (tmp_path / "settings.ini").read_text()  # follows the model again
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ParameterError, match="minimum confidence must be at least 0 and less than 1"):
            s.min_confidence = bad
    assert temp_settings(tmp_path).min_confidence is None


@pytest.mark.parametrize("tradeoff", [True, False], ids=["with tradeoff", "without tradeoff"])
def test_settings_dialog_sets_the_min_confidence(qtbot, tmp_path: Path, tiny_model_dir: Path, tradeoff: bool) -> None:
    extra = {"confidence_tradeoff": TRADEOFF} if tradeoff else {}
    model = _model(tiny_model_dir, tmp_path, uncertainty_threshold=0.3, **extra)
    s = temp_settings(tmp_path)
    s.use_model_defaults(model.with_min_confidence(0.1))  # the model's own value whatever the app applied
    assert s.model_min_confidence == 0.3
    dlg = SettingsDialog(s)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    # the model's default: ticked, its value shown greyed, what it gives on validation below
    assert dlg.min_confidence_default.isChecked()
    assert dlg.min_confidence_default.text() == "The model's default (30 %)"
    assert not dlg.min_confidence.isEnabled()
    assert dlg.min_confidence.value() == 30
    assert dlg.min_confidence_value() is None
    assert dlg.tradeoff.isVisible() is tradeoff
    if tradeoff:
        assert dlg.tradeoff.text() == "On validation this answers about 70 % of the clips, about 72 % of those right."
        assert TRADEOFF["measured_on"] in dlg.tradeoff.toolTip()
    # the user's own value
    dlg.min_confidence_default.setChecked(False)
    assert dlg.min_confidence.isEnabled()
    dlg.min_confidence.setValue(40)
    if tradeoff:
        assert dlg.tradeoff.text() == "On validation this answers 50 % of the clips, 80 % of those right."
        dlg.min_confidence.setValue(60)
        assert dlg.tradeoff.text() == "Not measured on validation for this value."
        dlg.min_confidence.setValue(40)
    dlg.accept()
    assert s.min_confidence == 0.4
    assert temp_settings(tmp_path).min_confidence == 0.4
    # opened again: the value, not the default; Restore defaults goes back to the model's
    again = SettingsDialog(s)
    qtbot.addWidget(again)
    assert not again.min_confidence_default.isChecked()
    assert again.min_confidence.value() == 40
    again._defaults()
    assert again.min_confidence_default.isChecked()
    assert again.min_confidence.value() == 30
    again.accept()
    assert s.min_confidence is None


def test_settings_dialog_leaves_an_untouched_min_confidence_as_stored(qtbot, tmp_path: Path) -> None:
    s = temp_settings(tmp_path)
    s.min_confidence = 0.455  # finer than the box's whole percent
    dlg = SettingsDialog(s)  # no model known: the default has no number
    qtbot.addWidget(dlg)
    assert dlg.min_confidence_default.text() == "The model's default"
    assert not dlg.tradeoff.isVisibleTo(dlg)
    dlg.hop_s.setValue(0.25)
    dlg.accept()
    assert s.min_confidence == 0.455
    assert s.stream_settings.hop_s == 0.25


def _shown_dialog(qtbot, settings: AppSettings) -> SettingsDialog:
    """Return a settings dialog on screen (offscreen), laid out."""
    dlg = SettingsDialog(settings)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    return dlg


def test_settings_dialog_shows_the_whole_recordings_folder(qtbot, tmp_path: Path) -> None:
    """The default folder (~/ser-recordings) fits whole; a longer one is elided in the middle, never cut."""
    s = temp_settings(tmp_path)
    home_default = s.recordings_folder
    assert home_default == str(Path.home() / "ser-recordings")
    field = _shown_dialog(qtbot, s).folder
    assert field.text() == home_default
    assert field.toolTip() == home_default
    assert field.displayed_text() == home_default
    assert field.width() > field.fontMetrics().horizontalAdvance(home_default)
    # a path longer than the field: its start and its folder's name stay in view, the full path is the tooltip
    long = str(tmp_path / ("a-long-folder-name-" * 8) / "ser-recordings")
    s.recordings_folder = long
    field = _shown_dialog(qtbot, s).folder
    assert field.text() == long
    assert field.toolTip() == long
    shown = field.displayed_text()
    assert "…" in shown
    head, tail = shown.split("…")
    assert long.startswith(head)
    assert long.endswith(tail)
    assert head.startswith("/")
    assert tail.endswith("ser-recordings")
    field.grab()  # paints the elided path
    field.setFocus()  # being edited: the whole path
    qtbot.waitUntil(field.hasFocus, timeout=2000)
    assert field.displayed_text() == long
    field.setText("/somewhere/else")
    assert field.toolTip() == "/somewhere/else"


def test_profiles_and_the_app_model_follow_the_min_confidence(qtbot, tmp_path: Path, tiny_model_dir: Path) -> None:
    from test_profile import make_profile

    from desktop_app.main import app_model
    from desktop_app.profiles import ProfileManager
    from ser_engine.inference.profile import ProfileStore

    s = temp_settings(tmp_path)
    model, error = app_model(tiny_model_dir, s)
    assert error is None
    assert model is not None
    assert model.metadata.uncertainty_threshold == 0.0  # the tiny model's own
    s.min_confidence = 0.6
    model, _ = app_model(tiny_model_dir, s)
    assert model is not None
    assert model.metadata.uncertainty_threshold == 0.6
    assert model.default_min_confidence == 0.0
    missing, why = app_model(tmp_path / "no-model", s)
    assert missing is None
    assert why is not None
    assert "no-model" in why
    store = ProfileStore(tmp_path / "profiles")
    path = store.save(make_profile(model, name="Anna"))
    profiles = ProfileManager(settings=s, model=model, store=store)
    profiles.set_active(path)
    calibrated = profiles.model_for()
    assert calibrated.profile is not None
    assert calibrated.metadata.uncertainty_threshold == 0.6
    with qtbot.waitSignal(profiles.changed, timeout=1000):
        profiles.set_min_confidence(0.3)
    for m in (profiles.model_for(), profiles.model_for(use_profile=False)):
        assert m.metadata.uncertainty_threshold == 0.3
    assert profiles.model_for().profile is not None
    assert profiles.model_for().profile == calibrated.profile
    with qtbot.assertNotEmitted(profiles.changed):
        profiles.set_min_confidence(0.3)  # already in use: nothing to switch
    profiles.set_min_confidence(None)
    assert profiles.model_for().metadata.uncertainty_threshold == 0.0
    profiles.refresh()  # profiles read again keep the current minimum confidence
    assert profiles.model_for().metadata.uncertainty_threshold == 0.0
    with pytest.raises(ParameterError):
        profiles.set_min_confidence(1.5)
