"""A PulseAudio sound server of the test session's own.

The tests record from "the default microphone" through the real path (sounddevice ->
PortAudio -> ALSA -> the ``pulse`` plugin -> a PulseAudio server). On a developer's desktop a
sound server (PulseAudio or PipeWire) already runs with the user's speakers and microphone;
the tests must neither use nor change it. So each pytest session starts its own daemon:

* its own runtime folder and socket in a fresh temporary folder (``PULSE_RUNTIME_PATH``,
  ``PULSE_SERVER``), its own state folder and cookie; no D-Bus, no X11, no real-time
  scheduling request, no autospawn (``PULSE_CLIENTCONFIG``): nothing outside that folder;
* a null sink ``vmic`` whose monitor is the default source *of this daemon only*; the user's
  server and its defaults are never contacted;
* ALSA's ``default`` device pointed at it for the test processes only, through
  ``ALSA_CONFIG_PATH`` (the system configuration first, then one file of ours that redefines
  ``default``), which also covers desktops where PipeWire's ALSA plugin is the default;
* stopped, and its folder removed, when the session ends.

Every variable is set in ``os.environ`` of the pytest process, so the programs the tests start
(``ser listen``, ``ser-app``, ``paplay``, ``pactl``) inherit it; nothing else on the machine sees it.
The daemon is the program named by ``SER_PULSEAUDIO``, else the ``pulseaudio`` on the PATH, else
the copy that ``scripts/setup.sh test`` unpacks into ``.venv/opt/pulseaudio`` (it does not install
the ``pulseaudio`` package, which would replace the sound server of a PipeWire desktop).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SINK = "vmic"
SOURCE = "vmic.monitor"

#: The system's ALSA configuration (it loads /etc/alsa/conf.d, /etc/asound.conf, ~/.asoundrc);
#: the file of ours that follows it in ALSA_CONFIG_PATH redefines ``default`` after all of them.
SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"
ALSA_DEFAULT = """\
# ser tests: ALSA's default device is the tests' private PulseAudio server (PULSE_SERVER).
pcm.!default { type pulse hint { show on description "ser tests: private PulseAudio" } }
ctl.!default { type pulse }
"""


class PrivatePulse:
    """A private PulseAudio daemon with a null sink ``vmic`` as default output and input.

    Parameters
    ----------
    folder : Path
        An empty folder of the session's own (short path: Unix socket names are limited to
        107 bytes).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runtime = folder / "run"
        self.socket = self.runtime / "native"
        self.log = folder / "pulse.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        (folder / "state").mkdir(mode=0o700, exist_ok=True)
        (folder / "client.conf").write_text("autospawn = no\n")
        (folder / "asound.conf").write_text(ALSA_DEFAULT)

    # -- environment --------------------------------------------------------------------------
    def client_env(self) -> dict[str, str]:
        """Variables that send PulseAudio and ALSA clients to this daemon (and nowhere else)."""
        alsa = f"{SYSTEM_ALSA_CONF}:{self.folder / 'asound.conf'}"
        return {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_RUNTIME_PATH": str(self.runtime),
            "PULSE_STATE_PATH": str(self.folder / "state"),
            "PULSE_COOKIE": str(self.folder / "cookie"),
            "PULSE_CLIENTCONFIG": str(self.folder / "client.conf"),
            "ALSA_CONFIG_PATH": alsa,
        }

    @staticmethod
    def program() -> str | None:
        """Return the daemon to run: ``$SER_PULSEAUDIO`` or ``pulseaudio`` on the PATH."""
        chosen = os.environ.get("SER_PULSEAUDIO")
        if chosen:
            return chosen if os.access(chosen, os.X_OK) else None
        unpacked = Path(sys.prefix) / "opt" / "pulseaudio" / "pulseaudio"  # scripts/setup.sh's private copy
        return shutil.which("pulseaudio") or (str(unpacked) if os.access(unpacked, os.X_OK) else None)

    # -- daemon -------------------------------------------------------------------------------
    def running(self) -> bool:
        """Tell whether the daemon answers on its socket."""
        env = {**os.environ, **self.client_env()}
        try:
            return subprocess.run(["pactl", "info"], capture_output=True, timeout=10, env=env).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def start(self, *, timeout_s: float = 15.0) -> None:
        """Start the daemon (if it is not running) and make ``vmic`` its default sink and source.

        Raises
        ------
        RuntimeError
            No daemon program, or it did not answer within ``timeout_s`` (the message has its log).
        """
        if self._proc is not None and self._proc.poll() is None and self.running():
            self._defaults()
            return
        program = self.program()
        if program is None:
            raise RuntimeError("no PulseAudio daemon found: install pulseaudio (scripts/setup.sh test does), "
                               "or set SER_PULSEAUDIO to one")
        # The daemon must not find the user's session bus or X display (it would announce
        # itself there), nor ask rtkit for real-time scheduling over the system bus.
        env = {k: v for k, v in os.environ.items()
               if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR")}
        env.update(self.client_env())
        argv = [
            program, "--daemonize=no", "-n", "--use-pid-file=no", "--exit-idle-time=-1",
            "--realtime=no", "--high-priority=no",
            f"--log-target=file:{self.log}",
            f"--load=module-null-sink sink_name={SINK}",
            f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
            "--load=module-always-sink",
        ]
        self._proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not self.running():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                self.stop()
                raise RuntimeError(f"the tests' private PulseAudio ({program}) did not start:\n{log}")
            time.sleep(0.05)
        self._defaults()

    def _pactl(self, *args: str) -> str:
        env = {**os.environ, **self.client_env()}
        return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10, check=True,
                              env=env).stdout

    def _defaults(self) -> None:
        sinks = self._pactl("list", "short", "sinks")
        if not any(line.split("\t")[1:2] == [SINK] for line in sinks.splitlines()):
            self._pactl("load-module", "module-null-sink", f"sink_name={SINK}")
        self._pactl("set-default-sink", SINK)
        self._pactl("set-default-source", SOURCE)

    def stop(self) -> None:
        """Stop the daemon (it is gone when this returns)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def unload_sink(self) -> None:
        """Unload the ``vmic`` module: its monitor, the default input, disappears."""
        for line in self._pactl("list", "short", "modules").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "module-null-sink" and f"sink_name={SINK}" in parts[2]:
                self._pactl("unload-module", parts[0])

    def close(self) -> None:
        """Stop the daemon and remove its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def prepare_private_pulse() -> PrivatePulse:
    """Create the session's daemon (not started) and export its client variables.

    From then on every sound client of this process and of the programs it starts is sent to
    the private daemon, running or not: none ever reaches the user's sound server.
    """
    folder = Path(tempfile.mkdtemp(prefix="ser-pulse-", dir="/tmp"))
    pulse = PrivatePulse(folder)
    os.environ.update(pulse.client_env())
    return pulse


def start_private_pulse() -> tuple[PrivatePulse, str | None]:
    """Create the session's daemon, export its client variables, start it.

    Returns the daemon and the reason it could not start (``None`` when it runs); the
    variables are exported either way, so no test ever reaches the user's sound server.
    """
    pulse = prepare_private_pulse()
    try:
        pulse.start()
    except RuntimeError as exc:
        return pulse, str(exc)
    return pulse, None
