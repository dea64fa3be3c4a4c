"""Shared fixtures. Module-specific fixtures live in their own test modules."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/tiny_model.py

from private_pulse import SINK, SOURCE, PrivatePulse, prepare_private_pulse  # noqa: E402
from tiny_model import build_tiny_model  # noqa: E402

from ser_engine.inference.model import EmotionModel  # noqa: E402

CORPUS_DIR = Path(os.environ.get("SER_CORPUS_DIR", ROOT.parent / "shared" / "data" / "ser"))
SHIPPED_MODEL_DIR = ROOT / "models"


@pytest.fixture(scope="session", autouse=True)
def _private_state_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point ``$XDG_STATE_HOME`` at a temporary folder: the programs' log files never land in the user's."""
    patch = pytest.MonkeyPatch()
    state = tmp_path_factory.mktemp("xdg-state")
    patch.setenv("XDG_STATE_HOME", str(state))
    yield state
    patch.undo()


@pytest.fixture(autouse=True)
def _qt_garbage_dies_on_the_gui_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect a Qt test's reference cycles on the GUI thread, right after it.

    Widgets caught in cycles (a lambda connected to a signal holding its view) are otherwise
    freed whenever the cyclic collector next runs, which may be on an audio or worker thread
    that happens to allocate: Qt then destroys GUI objects off the GUI thread and aborts.
    """
    yield
    if "qtbot" in request.fixturenames:
        gc.collect()


@pytest.fixture(autouse=True)
def _fresh_ser_logging() -> Iterator[None]:
    """Remove the ``ser`` log handlers a test's ``main()`` installed (they hold that test's stderr and log file)."""
    yield
    root = logging.getLogger("ser")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """Return the shared corpora. Missing corpora are an error, not a skip."""
    if not (CORPUS_DIR / "README.md").is_file():
        pytest.fail(f"corpus folder {CORPUS_DIR} not found (set SER_CORPUS_DIR)")
    return CORPUS_DIR


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build an untrained tiny ONNX model with dynamic time axis."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> EmotionModel:
    return EmotionModel.load(tiny_model_dir)


@pytest.fixture(scope="session")
def affect_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the tiny model with a second output: arousal and valence (as the encoder model's)."""
    return build_tiny_model(tmp_path_factory.mktemp("affect_model"), affect=("arousal", "valence"))


@pytest.fixture(scope="session")
def affect_model(affect_model_dir: Path) -> EmotionModel:
    return EmotionModel.load(affect_model_dir)


@pytest.fixture(scope="session")
def shipped_model_dir() -> Path:
    """Return the real model shipped in models/. Its absence is a failure."""
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
# Virtual microphone: a private PulseAudio daemon per pytest session (tests/private_pulse.py)
# ---------------------------------------------------------------------------
_PULSE: PrivatePulse | None = None


def pytest_configure() -> None:
    """Send every sound client of the session to its own sound server, before any test module runs.

    PortAudio reads the ALSA configuration when it initialises (on ``import sounddevice``),
    so the variables that point ALSA and libpulse at the private daemon are exported here.
    The user's sound server and its default devices are never touched. The daemon itself is
    started by the first test that needs it (:func:`virtual_mic`): collecting the tests, or a
    run without such a test, starts no process.
    """
    global _PULSE
    if _PULSE is None:
        _PULSE = prepare_private_pulse()


def pytest_unconfigure() -> None:
    global _PULSE
    if _PULSE is not None:
        _PULSE.close()
        _PULSE = None


class VirtualMic:
    """The null sink ``vmic`` of the session's private PulseAudio; its monitor is the default input.

    What :meth:`play` sends to the sink is what sounddevice's default input
    (PortAudio -> ALSA ``default`` -> the private server) records.
    """

    sink = SINK
    source = SOURCE

    def __init__(self, pulse: PrivatePulse, tmp_dir: Path) -> None:
        self._pulse = pulse
        self._tmp_dir = tmp_dir
        self._count = 0

    @property
    def server(self) -> str:
        """The private server's address (``unix:/tmp/ser-pulse-.../run/native``)."""
        return f"unix:{self._pulse.socket}"

    # -- daemon -----------------------------------------------------------
    def server_running(self) -> bool:
        return self._pulse.running()

    def ensure_running(self) -> None:
        """(Re)start the private daemon if needed, with vmic as its default sink and source."""
        try:
            self._pulse.start()
        except RuntimeError as exc:
            pytest.fail(str(exc))

    def kill_server(self) -> None:
        """Stop the private daemon (simulates losing the input device)."""
        self._pulse.stop()

    def unload_sink(self) -> None:
        """Unload the vmic null-sink module (its monitor source disappears)."""
        self._pulse.unload_sink()

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
    """Return the virtual microphone of the session's private PulseAudio. Fails (never skips)."""
    import shutil

    for tool in ("pactl", "paplay"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: install pulseaudio-utils (scripts/setup.sh test does)")
    if _PULSE is None:
        pytest.fail("the private PulseAudio was not created")
    mic = VirtualMic(_PULSE, tmp_path_factory.mktemp("vmic"))
    mic.ensure_running()  # the daemon's first start
    if "sounddevice" in sys.modules:
        # PortAudio lists devices once, when initialised: if an earlier test did that before the
        # daemon ran, it has not seen the virtual microphone yet
        from ser_engine.live.inputs import rescan_devices

        rescan_devices()
    return mic
