"""The test suite's sound server leaves the user's own sound server alone.

A stand-in for the user's desktop server (another private daemon with a sink ``speakers`` as
its default output and input) is what the environment points to, as a desktop session's does.
A real microphone test then runs in a child pytest: it must record through its own daemon,
and afterwards the "user's" server must have the same defaults and modules as before, no
client of the tests left on it, and no daemon of the tests left running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from private_pulse import PrivatePulse

pytestmark = [pytest.mark.mic, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def _pactl(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10, check=True, env=env).stdout


def _state(env: dict[str, str]) -> tuple[str, str, list[str]]:
    info = _pactl(env, "info")
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
    modules = sorted(line.split("\t", 1)[1] for line in _pactl(env, "list", "short", "modules").splitlines())
    return fields["Default Sink"], fields["Default Source"], modules


def _test_daemons() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "ser-pulse-" in line and "pulseaudio" in line]


def test_the_tests_never_touch_the_users_sound_server() -> None:
    user = PrivatePulse(Path(tempfile.mkdtemp(prefix="desk-pulse-", dir="/tmp")))
    try:
        # The "user's desktop": its own server with its own default devices.
        (user.folder / "asound.conf").write_text("")
        user.start()
        env = {**os.environ, **user.client_env()}
        _pactl(env, "load-module", "module-null-sink", "sink_name=speakers")
        _pactl(env, "set-default-sink", "speakers")
        _pactl(env, "set-default-source", "speakers.monitor")
        before = _state(env)
        daemons_before = _test_daemons()

        child = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/test_live.py::test_default_input_records_what_is_played"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-2000:]
        assert "1 passed" in child.stdout

        assert _state(env) == before, "the user's default devices or modules changed"
        clients = _pactl(env, "list", "short", "clients").splitlines()
        assert len(clients) == 1, f"clients left on the user's server: {clients}"  # the pactl asking
        assert _test_daemons() == daemons_before, "the tests' PulseAudio was left running"
    finally:
        user.close()
