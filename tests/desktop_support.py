"""Helpers for the desktop-app tests (imported by tests/test_desktop_*.py and friends)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from desktop_app.settings import AppSettings


def temp_settings(tmp_path: Path, name: str = "settings.ini") -> AppSettings:
    """Make an AppSettings on a private INI file (never the user's settings)."""
    return AppSettings(QSettings(str(tmp_path / name), QSettings.Format.IniFormat))


def no_devices() -> tuple[list[object], str | None]:
    return [], None


def corpus_clips(corpus_dir: Path) -> list[Path]:
    """Return a fixed, small set of real clips from three corpora (two formats)."""
    clips = [
        corpus_dir / "ravdess" / "Actor_01" / "03-01-05-02-01-01-01.flac",  # angry, strong
        corpus_dir / "ravdess" / "Actor_02" / "03-01-04-02-02-01-02.flac",  # sad, strong
        corpus_dir / "savee" / "DC_h01.flac",  # happy
        corpus_dir / "tess" / "YAF_angry" / "YAF_back_angry.ogg",
    ]
    missing = [c for c in clips if not c.is_file()]
    assert not missing, f"corpus clips missing: {missing}"
    return clips


def file_view(qtbot: Any, tmp_path: Path, model: Any) -> Any:
    """Show a FileView (offscreen) with temporary settings, cleaned up by ``qtbot``."""
    from desktop_app.file_view import FileView

    v = FileView(settings=temp_settings(tmp_path), model=model)
    qtbot.addWidget(v)
    v.resize(1200, 800)
    v.show()
    return v


def run_batch(qtbot: Any, view: Any, paths: list[Path], timeout: int = 120000) -> bool:
    """Give ``paths`` to the Files tab and wait for the batch; returns whether it was cancelled."""
    with qtbot.waitSignal(view.batch_finished, timeout=timeout) as blocker:
        view.add_paths(paths)
    return bool(blocker.args[0])
