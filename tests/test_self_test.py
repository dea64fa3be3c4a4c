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
    from desktop_app import app_version

    r = _run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ser-app {app_version()}"


def test_self_test_passes_with_the_shipped_model(shipped_model_dir: Path) -> None:
    r = _run("--self-test", env_extra={"SER_MODEL_DIR": str(shipped_model_dir)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "self-test passed" in r.stdout
    assert "[FAIL]" not in r.stdout
    assert "file mode: bad file reports its error" in r.stdout


def test_self_test_fails_loudly_without_a_model(tmp_path: Path) -> None:
    r = _run("--self-test", "--model-dir", str(tmp_path / "nothing"))
    assert r.returncode == 1
    assert "[FAIL] model loads" in r.stdout and str(tmp_path / "nothing") in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


@pytest.mark.corpus
def test_ser_app_answers_analyze_like_ser(corpus_dir: Path, tiny_model_dir: Path) -> None:
    """The bundle ships one executable: ``ser-app analyze`` is ``ser analyze``."""
    import json

    clip = corpus_dir / "savee" / "DC_h01.flac"
    r = _run("analyze", str(clip), "--model", str(tiny_model_dir), "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data) == 1 and data[0]["ok"] is True and data[0]["path"] == str(clip)
    assert data[0]["duration_s"] == pytest.approx(3.84, abs=0.05)
    bad = _run("analyze", str(corpus_dir / "no-such-file.wav"), "--model", str(tiny_model_dir))
    assert bad.returncode != 0 and "no-such-file.wav" in bad.stderr
