"""``scripts/setup.sh app`` without a display: what it says before it starts ser-app on a virtual X server.

The script runs for real against a stand-in environment (nothing is installed): a ``.venv``
whose Python answers "installed", whose ``xvfb-run`` prints the command it was given, and
``SER_SKIP_APT=1``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _stand_in_venv(where: Path) -> Path:
    bin_ = where / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").write_text("#!/bin/sh\nexit 0\n")  # `python -c 'import ser_engine'` succeeds
    (bin_ / "xvfb-run").write_text('#!/bin/sh\necho "xvfb-run $*"\n')
    for tool in bin_.iterdir():
        tool.chmod(0o755)
    # the stamp setup.sh writes after installing the [gui] extra: pyproject.toml unchanged since
    (where / ".ser-installed-gui").write_text(hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
                                              + "\n")
    return where


@pytest.mark.parametrize(("args", "keeps_running"), [
    ((), True),
    (("some.wav",), True),
    (("--self-test",), False),
    (("--verbose", "--self-test"), False),
    (("--version",), False),
])
def test_app_without_display_says_ctrl_c_only_when_the_app_keeps_running(tmp_path: Path, args: tuple[str, ...],
                                                                          keeps_running: bool) -> None:
    venv = _stand_in_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "VIRTUAL_ENV"}}
    env.update(SER_VENV=str(venv), SER_SKIP_APT="1", SER_PYTHON=sys.executable)
    p = subprocess.run(["bash", "scripts/setup.sh", "app", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert "No display found" in out
    assert ("Stop it with Ctrl+C." in out) is keeps_running
    assert ("it ends by itself" in out) is not keeps_running
    assert out.splitlines()[-1].split() == ["xvfb-run", "-a", "-s", "-screen", "0", "1280x800x24", "ser-app", *args]
