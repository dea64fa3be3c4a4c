"""Shared fixtures. Module-specific fixtures live in their own test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/tiny_model.py

from tiny_model import build_tiny_model  # noqa: E402

from ser_engine.model import EmotionModel  # noqa: E402

CORPUS_DIR = Path(os.environ.get("SER_CORPUS_DIR", ROOT.parent / "shared" / "data" / "ser"))
SHIPPED_MODEL_DIR = ROOT / "models"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpora. Missing corpora are an error, not a skip."""
    if not (CORPUS_DIR / "README.md").is_file():
        pytest.fail(f"corpus folder {CORPUS_DIR} not found (set SER_CORPUS_DIR)")
    return CORPUS_DIR


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny ONNX model with dynamic time axis."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> EmotionModel:
    return EmotionModel.load(tiny_model_dir)


@pytest.fixture(scope="session")
def shipped_model_dir() -> Path:
    """The real model shipped in models/. Its absence is a failure."""
    if not (SHIPPED_MODEL_DIR / "model.onnx").is_file():
        pytest.fail(f"the shipped model {SHIPPED_MODEL_DIR / 'model.onnx'} is missing")
    return SHIPPED_MODEL_DIR


@pytest.fixture(scope="session")
def shipped_model(shipped_model_dir: Path) -> EmotionModel:
    return EmotionModel.load(shipped_model_dir)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def synth_speechlike(*, seconds: float, sample_rate: int = 16000, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Voiced, syllable-modulated harmonic signal (float32, mono); not corpus audio."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t) + rng.normal(0, 1, n).cumsum() / n * 20
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    sig = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 0.5
    y = sig * envelope + rng.normal(0, 0.01, n)
    y = y / (np.abs(y).max() + 1e-9) * level
    return y.astype(np.float32)


# ---------------------------------------------------------------------------
# Virtual microphone (PulseAudio null sink "vmic"; default source vmic.monitor)
# ---------------------------------------------------------------------------
class VirtualMic:
    """A PulseAudio null sink whose monitor is the default input device.

    What :meth:`play` sends to the sink is what sounddevice's default input
    (PortAudio -> ALSA ``pulse``/``default``) records.
    """

    sink = "vmic"
    source = "vmic.monitor"

    def __init__(self, tmp_dir: Path) -> None:
        self._tmp_dir = tmp_dir
        self._count = 0

    # -- daemon -----------------------------------------------------------
    @staticmethod
    def server_running() -> bool:
        return subprocess.run(["pactl", "info"], capture_output=True, timeout=10).returncode == 0

    def ensure_running(self) -> None:
        """Start PulseAudio (DEVELOPERS.md recipe) if needed and make vmic the default."""
        import time

        if not self.server_running():
            subprocess.run(
                [
                    "pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n",
                    f"--load=module-null-sink sink_name={self.sink}",
                    "--load=module-native-protocol-unix", "--load=module-always-sink",
                ],
                capture_output=True, timeout=30,
            )
            deadline = time.monotonic() + 10
            while not self.server_running():
                if time.monotonic() > deadline:
                    pytest.fail("PulseAudio could not be started for the virtual microphone")
                time.sleep(0.1)
        sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True, timeout=10).stdout
        if not any(line.split("\t")[1:2] == [self.sink] for line in sinks.splitlines()):
            subprocess.run(
                ["pactl", "load-module", "module-null-sink", f"sink_name={self.sink}"],
                capture_output=True, timeout=10, check=True,
            )
        subprocess.run(["pactl", "set-default-sink", self.sink], capture_output=True, timeout=10, check=True)
        subprocess.run(["pactl", "set-default-source", self.source], capture_output=True, timeout=10, check=True)

    def kill_server(self) -> None:
        """Kill the PulseAudio daemon (simulates losing the input device)."""
        import time

        subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=10)
        deadline = time.monotonic() + 10
        while self.server_running() and time.monotonic() < deadline:
            time.sleep(0.1)

    def unload_sink(self) -> None:
        """Unload the vmic null-sink module (its monitor source disappears)."""
        mods = subprocess.run(["pactl", "list", "short", "modules"], capture_output=True, text=True, timeout=10).stdout
        for line in mods.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "module-null-sink" and f"sink_name={self.sink}" in parts[2]:
                subprocess.run(["pactl", "unload-module", parts[0]], capture_output=True, timeout=10)

    # -- playback ---------------------------------------------------------
    def play(self, source: Path | str | np.ndarray, *, sample_rate: int = 16000) -> subprocess.Popen[bytes]:
        """Play a file or a float array (mono or (n, channels)) into the virtual mic.

        Returns the running ``paplay`` process; ``.wait()`` for the end.
        """
        import soundfile as sf

        if isinstance(source, np.ndarray):
            self._count += 1
            path = self._tmp_dir / f"vmic_{self._count}.wav"
            sf.write(str(path), np.asarray(source, dtype=np.float32), sample_rate, subtype="FLOAT")
        else:
            path = Path(source)
        cmd = ["paplay", "-d", self.sink, str(path)]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="session")
def virtual_mic(tmp_path_factory: pytest.TempPathFactory) -> VirtualMic:
    """The virtual microphone; starts PulseAudio when it is not running. Fails (never skips)."""
    import shutil

    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: install pulseaudio and pulseaudio-utils (see DEVELOPERS.md)")
    mic = VirtualMic(tmp_path_factory.mktemp("vmic"))
    mic.ensure_running()
    return mic
