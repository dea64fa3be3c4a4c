"""``ser-app --version`` and ``ser-app --self-test`` in a subprocess, as a user (or CI) runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}  # --self-test must set it itself
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "desktop_app.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_version() -> None:
    from importlib.metadata import version

    r = _run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ser-app {version('ser')}"  # pyproject.toml's version, the one source


def test_self_test_passes_with_the_shipped_model(shipped_model_dir: Path) -> None:
    r = _run("--self-test", env_extra={"SER_MODEL_DIR": str(shipped_model_dir)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "self-test passed" in r.stdout
    assert "[FAIL]" not in r.stdout
    assert "file mode: bad file reports its error" in r.stdout


def test_self_test_fails_loudly_without_a_model(tmp_path: Path) -> None:
    r = _run("--self-test", "--model-dir", str(tmp_path / "nothing"))
    assert r.returncode == 1
    assert "[FAIL] model loads" in r.stdout
    assert str(tmp_path / "nothing") in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


@pytest.mark.corpus
def test_ser_app_answers_analyze_like_ser(corpus_dir: Path, tiny_model_dir: Path) -> None:
    """The bundle ships one executable: ``ser-app analyze`` is ``ser analyze``."""
    import json

    clip = corpus_dir / "savee" / "DC_h01.flac"
    r = _run("analyze", str(clip), "--model", str(tiny_model_dir), "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data) == 1
    assert data[0]["ok"] is True
    assert data[0]["path"] == str(clip)
    assert data[0]["duration_s"] == pytest.approx(3.84, abs=0.05)
    bad = _run("analyze", str(corpus_dir / "no-such-file.wav"), "--model", str(tiny_model_dir))
    assert bad.returncode != 0
    assert "no-such-file.wav" in bad.stderr


def test_self_test_drops_only_the_offscreen_size_hints_noise(shipped_model_dir: Path) -> None:
    from desktop_app.qt_messages import OFFSCREEN_NOISE

    r = _run("--self-test", env_extra={"SER_MODEL_DIR": str(shipped_model_dir)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "propagateSizeHints" not in r.stderr
    # the same start-up on a window that triggers the message, plus a warning of our own: only ours shows
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from desktop_app import qt_messages\n"
        "qt_messages.install()\n"
        "from PySide6.QtCore import qWarning\n"
        "from PySide6.QtWidgets import QApplication, QLabel\n"
        "app = QApplication(['t'])\n"
        "w = QLabel('x'); w.show(); app.processEvents()\n"
        "w.setMinimumSize(300, 200); w.setMaximumSize(800, 600); app.processEvents()\n"
        "qWarning('a deliberate warning from the test')\n"
        "print('raw-before-install', file=sys.stderr)\n"
    )
    plain = subprocess.run([sys.executable, "-c", code.replace("qt_messages.install()\n", "")], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert OFFSCREEN_NOISE in plain.stderr  # without the filter Qt does print it: the check below can fail
    filtered = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert filtered.returncode == 0, filtered.stderr
    assert "propagateSizeHints" not in filtered.stderr
    assert "a deliberate warning from the test" in filtered.stderr


def test_self_test_drives_the_engines_live_session(shipped_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """In process: every live prediction the self-test sees comes out of LiveSession's own worker."""
    import threading

    from ser_engine.live.inputs import ArrayInput
    from ser_engine.live.session import LiveSession

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from desktop_app.self_test import run_self_test

    emitted: list[tuple[str, str]] = []
    real_emit = LiveSession._emit

    def spy(self: LiveSession, pred: object, inp: object) -> None:
        emitted.append((threading.current_thread().name, type(inp).__name__))
        real_emit(self, pred, inp)  # type: ignore[arg-type]

    monkeypatch.setattr(LiveSession, "_emit", spy)
    assert run_self_test(model_dir=shipped_model_dir) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "[ok] synthetic 16 kHz mono: the engine's live worker runs" in out
    assert "[ok] real format 44.1 kHz stereo 16-bit: the live worker ends cleanly" in out
    assert len(emitted) >= 10
    assert set(emitted) == {("ser-live-worker", ArrayInput.__name__)}
