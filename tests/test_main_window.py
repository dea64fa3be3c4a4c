"""The main window: builds with a real model, shows the model, reports a missing or corrupt model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from desktop_support import no_devices, temp_settings
from PySide6.QtWidgets import QMessageBox

from desktop_app.main_window import MainWindow, load_model
from desktop_app.palette import SILENCE_COLOR, emotion_color
from ser_engine.model import KNOWN_LABELS, EmotionModel

pytestmark = pytest.mark.gui


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
    assert any(t.startswith("inference") for t in texts) and any(t.startswith("overruns") for t in texts)
    # the tab choice persists
    w.tabs.setCurrentIndex(1)
    assert temp_settings(tmp_path).last_tab == 1


def test_palette_is_one_distinct_colour_per_emotion() -> None:
    colours = [emotion_color(lab) for lab in KNOWN_LABELS]
    assert len(set(colours)) == len(KNOWN_LABELS)
    assert SILENCE_COLOR not in colours


def _dialog_for(qtbot, tmp_path: Path, model_dir: Path) -> tuple[MainWindow, QMessageBox]:
    model, error = load_model(model_dir)
    assert model is None and error
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
    assert "model.json" in box2.informativeText() and "JSON" in box2.informativeText()
    box2.accept()


def test_settings_dialog_from_window_updates_settings(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    settings = temp_settings(tmp_path)
    w = MainWindow(settings=settings, model=tiny_model, device_lister=no_devices)
    qtbot.addWidget(w)
    dlg = w.open_settings()
    dlg.hop_s.setValue(1.0)
    dlg.accept()
    assert settings.stream_settings.hop_s == 1.0


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
