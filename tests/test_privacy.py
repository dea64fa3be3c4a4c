"""Nothing leaves the machine, nothing is written where the user did not ask.

The real ``ser analyze`` (on a real corpus clip) and ``ser-app --self-test`` run as
subprocesses under ``strace -f`` with a fresh ``HOME`` (every ``XDG_*`` variable unset,
``ORT_DISABLE_TELEMETRY`` removed from the environment so that only our own code can set
it). The test fails on

* any ``connect``/``sendto``/``sendmsg``/``bind`` to an address that is not a Unix socket
  (``AF_INET``, ``AF_INET6``, ``AF_NETLINK``...: DNS lookups go through these), and on any
  Unix socket other than the local servers listed in :data:`ALLOWED_UNIX_SOCKETS`
  (the name-service cache ``nscd`` is *not* allowed: a connection there is the first step
  of a host-name lookup);
* any file or folder created, opened for writing, renamed, linked, truncated or removed
  outside the fresh HOME's ``ser`` folders (config, data, state, cache), the temporary
  folder the test chose (``TMPDIR``), the output paths it chose and ``/dev/null``. Nothing in
  ``/tmp`` or ``/dev/shm`` is allowed for ``ser analyze`` and the self-test: Qt (offscreen)
  needs none; only ``ser listen`` (a real microphone) may let libpulse keep its cookie in
  ``~/.config/pulse`` and libjack its metadata database in ``/dev/shm/jack_db-<uid>`` (see there);
* a ``~/.cache/Microsoft`` folder in the fresh HOME (ONNX Runtime's telemetry queue).

``PYTHONDONTWRITEBYTECODE=1`` keeps the interpreter from caching bytecode next to the
installed modules (Python's own doing, and not possible in a read-only install).
``test_the_trace_catches_network_and_stray_writes`` proves the checker can fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import VirtualMic, synth_speechlike
from waiting import ProcessOutput

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TRACED = "connect,sendto,sendmsg,bind,open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2," \
         "unlink,unlinkat,link,linkat,symlink,symlinkat,truncate"

#: Unix sockets a desktop program may talk to, all local servers:
#: PulseAudio (sounddevice -> PortAudio -> ALSA -> pulse plugin) in its runtime folder
#: ($XDG_RUNTIME_DIR/pulse, the system-wide /run/pulse, or libpulse's /tmp/pulse-XXXX
#: fallback when XDG_RUNTIME_DIR is unset); the X server (path or abstract socket) when Qt
#: runs on xcb; the D-Bus system and session buses (Qt's xcb platform theme and
#: accessibility); the JACK sound server's socket in /dev/shm (PortAudio probes its JACK host
#: API when it initialises: seen as a refused connect to /dev/shm/jack_default_0_0 in
#: ``ser listen``). The offscreen runs (analyze, self-test) need none of them.
ALLOWED_UNIX_SOCKETS = (
    re.compile(r"/dev/shm/jack_[A-Za-z0-9_]+"),
    re.compile(r"/run/user/\d+/pulse/native"),
    re.compile(r"(/var)?/run/pulse/native"),
    re.compile(r"/tmp/pulse-[A-Za-z0-9]+/native"),
    re.compile(r"@?/tmp/\.X11-unix/X\d+"),
    re.compile(r"(/var)?/run/dbus/system_bus_socket"),
    re.compile(r"/run/user/\d+/bus"),
    # the tests' own PulseAudio daemon (tests/private_pulse.py), which ``ser listen`` records from
    re.compile(r"/tmp/ser-pulse-[A-Za-z0-9_]+/run/native"),
)
#: Variables of the tests' private sound server that a user's environment does not have: the
#: traced programs get only ``PULSE_SERVER`` (and the ALSA configuration), like any client.
TEST_ONLY_ENV = ("PULSE_COOKIE", "PULSE_CLIENTCONFIG", "PULSE_STATE_PATH", "PULSE_RUNTIME_PATH")
WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_TMPFILE|O_APPEND")
SER_FOLDERS = (".config/ser", ".local/share/ser", ".local/state/ser", ".cache/ser")


@dataclass
class Trace:
    """What a traced run did that it should not have."""

    network: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    returncode: int = 0
    output: str = ""

    @property
    def violations(self) -> list[str]:
        return self.network + self.writes


def _join_split_lines(text: str) -> list[str]:
    """Join the halves of calls that strace -f splits (``<unfinished ...>``, ``<... resumed>``)."""
    pending: dict[str, str] = {}
    lines = []
    for raw in text.splitlines():
        pid, _, rest = raw.partition(" ")
        rest = rest.lstrip()
        if rest.startswith(("+++", "---")):
            continue
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")]
            continue
        m = re.match(r"<\.\.\. \w+ resumed>(.*)", rest)
        if m:
            rest = pending.pop(pid, "") + m.group(1)
        lines.append(rest)
    return lines


_STR = r'"((?:[^"\\]|\\.)*)"'
_DIRFD_PATH = re.compile(r"(AT_FDCWD|-?\d+)(?:<([^>]*)>)?, " + _STR)


def _resolve(directory: str | None, path: str, cwd: Path) -> str:
    base = directory if directory else str(cwd)
    return os.path.normpath(os.path.join(base, path))


def _written_paths(call: str, args: str, cwd: Path) -> list[str]:
    """Paths a successful file-system call creates, modifies or removes."""
    if call in ("open", "creat", "mkdir", "unlink", "truncate"):
        m = re.match(_STR + r"(.*)", args)
        if not m:
            return []
        if call == "open" and not WRITE_FLAGS.search(m.group(2)):
            return []
        return [_resolve(None, m.group(1), cwd)]
    if call in ("openat", "openat2", "mkdirat", "unlinkat"):
        m = _DIRFD_PATH.match(args)
        if not m:
            return []
        if call.startswith("openat") and not WRITE_FLAGS.search(args[m.end():]):
            return []
        return [_resolve(m.group(2), m.group(3), cwd)]
    if call in ("rename", "link", "symlink"):
        paths = re.findall(_STR, args)
        keep = paths if call == "rename" else paths[1:]  # a link's source is only read
        return [_resolve(None, p, cwd) for p in keep]
    if call in ("renameat", "renameat2", "linkat", "symlinkat"):
        pairs = [_resolve(d, p, cwd) for _, d, p in _DIRFD_PATH.findall(args)]
        return pairs if call.startswith("rename") else pairs[-1:]
    return []


def check_trace(text: str, *, cwd: Path, allowed_writes: list[Path], allowed_dirs: list[Path]) -> Trace:
    """Parse an ``strace -f -y`` log and list the network use and the writes outside the allowed places.

    ``allowed_writes``: folders inside which anything may be written; ``allowed_dirs``:
    folders that may be created (the parents of the ``ser`` folders), nothing else in them.
    """
    out = Trace()
    prefixes = [str(p) for p in allowed_writes]
    dirs = {str(p) for p in allowed_dirs}
    for line in _join_split_lines(text):
        m = re.match(r"(\w+)\((.*)\)\s+=\s+(-?\d+|\?)", line)
        if not m:
            continue
        call, args, ret = m.groups()
        if call in ("connect", "sendto", "sendmsg", "bind"):
            fam = re.search(r"sa_family=(\w+)", args)
            if fam is None:
                continue  # sendto on a connected socket: the connect was checked
            if fam.group(1) != "AF_UNIX":
                out.network.append(line)
                continue
            sun = re.search(r'sun_path=(@?)"((?:[^"\\]|\\.)*)"', args)
            path = (sun.group(1) + sun.group(2)) if sun else ""
            if not any(p.fullmatch(path) for p in ALLOWED_UNIX_SOCKETS):
                out.network.append(line)
            continue
        if ret == "?" or ret.startswith("-"):
            continue  # failed: nothing was written
        for path in _written_paths(call, args, cwd):
            if path == "/dev/null" or (path in dirs and call.startswith("mkdir")):
                continue
            if not any(path == p or path.startswith(p + "/") for p in prefixes):
                out.writes.append(f"{path}  <- {line}")
    return out


def traced_run(argv: list[str], *, root: Path, extra_env: dict[str, str] | None = None,
               chosen: list[Path] | None = None, timeout: float = 300,
               during: Callable[[ProcessOutput], None] | None = None) -> tuple[Trace, Path]:
    """Run ``argv`` under strace with a fresh HOME below ``root``; returns the findings and the HOME.

    ``chosen``: further folders the user chose (output paths) where writing is allowed;
    ``during``: called while the program runs, with its output as it prints it (e.g. to wait until
    it listens, then play into the virtual microphone).
    """
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is not installed (scripts/setup.sh test installs it)")
    home, tmp, cwd = root / "home", root / "tmp", root / "cwd"
    for d in (home, tmp, cwd):
        d.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("XDG_") and k not in ("ORT_DISABLE_TELEMETRY", "SER_MODEL_DIR", *TEST_ONLY_ENV)}
    env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1", QT_QPA_PLATFORM="offscreen")
    env.update(extra_env or {})
    log = root / "strace.log"
    with subprocess.Popen([strace, "-f", "-qq", "-y", "-s", "4096", "-e", f"trace={TRACED}", "-o", str(log), *argv],
                          cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        output = ProcessOutput(proc)
        try:
            if during is not None:
                during(output)
            stdout, stderr = output.finish(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
    allowed = [home / s for s in SER_FOLDERS] + [tmp, *(chosen or [])]
    parents = [home / ".config", home / ".local", home / ".local/share", home / ".local/state", home / ".cache"]
    found = check_trace(log.read_text(errors="replace"), cwd=cwd, allowed_writes=allowed, allowed_dirs=parents)
    found.returncode = proc.returncode
    found.output = stdout[-3000:] + stderr[-3000:]
    return found, home


def _assert_private(found: Trace, home: Path) -> None:
    assert found.returncode == 0, found.output
    assert not found.network, "network use:\n" + "\n".join(found.network[:20])
    assert not found.writes, "writes outside the ser folders and the chosen paths:\n" + "\n".join(found.writes[:20])
    assert not (home / ".cache" / "Microsoft").exists(), "ONNX Runtime's telemetry queue was created"


@pytest.mark.corpus
def test_ser_analyze_stays_on_the_machine(corpus_dir: Path, tmp_path: Path) -> None:
    clip = corpus_dir / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac"
    assert clip.is_file(), clip
    found, home = traced_run([str(BIN / "ser"), "analyze", "--format", "json", "--segments", str(clip)],
                             root=tmp_path)
    _assert_private(found, home)
    assert '"ok": true' in found.output  # it did analyse the clip


@pytest.mark.gui
def test_app_self_test_stays_on_the_machine(tmp_path: Path) -> None:
    found, home = traced_run([str(BIN / "ser-app"), "--self-test"], root=tmp_path)
    _assert_private(found, home)
    assert "self-test passed" in found.output


@pytest.mark.mic
def test_ser_listen_with_recording_stays_on_the_machine(virtual_mic: VirtualMic, tmp_path: Path) -> None:
    """Listen and record for 14 s: nothing leaves the machine, the recording lands where asked.

    14 s is longer than the ~10 s after which ONNX Runtime's telemetry resolves its server, so a
    lookup would be seen here; the sound server is reached through its Unix socket only.
    """
    out = tmp_path / "out"
    out.mkdir()
    record = out / "session.wav"
    speech = synth_speechlike(seconds=6.0, level=0.4)

    def play(output: ProcessOutput) -> None:
        output.wait_for_line("stdout", lambda line: line.startswith("{"), what="the first prediction (audio flows)")
        virtual_mic.play(speech).wait(timeout=30)

    # Opening a microphone also lets two sound libraries keep their own state, nothing else:
    # libpulse creates its authentication cookie ~/.config/pulse/cookie (the PulseAudio client's
    # folder) when it connects, and PortAudio's JACK host API (probed on initialisation) makes
    # libjack open its metadata database in /dev/shm/jack_db-<uid>/.
    sound_state = [tmp_path / "run" / "home" / ".config" / "pulse", Path(f"/dev/shm/jack_db-{os.getuid()}")]
    found, home = traced_run([str(BIN / "ser"), "listen", "--duration", "14", "--format", "jsonl",
                              "--record", str(record)],
                             root=tmp_path / "run", chosen=[out, *sound_state], during=play,
                             extra_env={"PULSE_SERVER": virtual_mic.server})
    _assert_private(found, home)
    assert record.is_file()
    assert record.stat().st_size > 44
    assert '"label"' in found.output, found.output
    assert '"speech": true' in found.output, found.output


def test_the_trace_catches_network_and_stray_writes(tmp_path: Path) -> None:
    """The checker is not blind: a UDP connect (no packet is sent), an IPv6 one and stray files are caught."""
    stray = tmp_path / "stray.txt"
    code = (
        "import os, socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('127.0.0.1', 9)); s.close()\n"
        "s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
        "try:\n    s.connect(('::1', 9))\nexcept OSError:\n    pass\n"
        f"open({str(stray)!r}, 'w').write('x')\n"
        "home = os.path.expanduser('~')\n"
        "os.makedirs(os.path.join(home, '.cache', 'Microsoft'))\n"
        "os.makedirs(os.path.join(home, '.config', 'ser'))\n"
        "open(os.path.join(home, '.config', 'ser', 'ok.ini'), 'w').write('fine')\n"
        "open(os.path.join(os.environ['TMPDIR'], 'ok.tmp'), 'w').write('fine')\n"
        "open('in-cwd.txt', 'w').write('x')\n"
    )
    found, home = traced_run([sys.executable, "-c", code], root=tmp_path / "run")
    assert found.returncode == 0, found.output
    assert any("AF_INET," in n and "127.0.0.1" in n for n in found.network), found.network
    assert any("AF_INET6" in n for n in found.network), found.network
    written = sorted({w.split("  <- ")[0] for w in found.writes})
    expected = [stray, home / ".cache" / "Microsoft", tmp_path / "run" / "cwd" / "in-cwd.txt"]
    assert written == sorted(str(p) for p in expected)


def _py(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    run = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_disable_telemetry_sets_the_variable_before_onnxruntime_and_respects_the_user() -> None:
    code = ("import os\nfrom ser_engine.privacy import disable_telemetry\n"
            "print(disable_telemetry(), os.environ.get('ORT_DISABLE_TELEMETRY'), disable_telemetry())")
    assert _py(code) == "True 1 True"
    assert _py(code, ORT_DISABLE_TELEMETRY="0") == "False 0 False"  # the user's explicit choice is kept
    too_late = ("import onnxruntime, os\nfrom ser_engine.privacy import disable_telemetry\n"
                "print(disable_telemetry(), os.environ.get('ORT_DISABLE_TELEMETRY'))")
    assert _py(too_late) == "False 1"  # says so when it comes after onnxruntime loaded


def test_importing_the_packages_has_no_side_effect_on_the_environment() -> None:
    code = ("import os\nimport ser_engine, ser_engine.cli.main, ser_engine.inference.model, ser_engine.files.analysis\n"
            "import ser_engine.privacy\n"
            "import desktop_app.main, training.cli\nprint(os.environ.get('ORT_DISABLE_TELEMETRY'))")
    assert _py(code) == "None"
