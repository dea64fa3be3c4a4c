"""Never overwrite the user's audio, never report a broken result as success.

Each case was found by trying the programs as a careful user would, and each runs on real
parts: ``ser`` as a real process given real files, real signals and a real full device
(``/dev/full``), the tests' private PulseAudio for the microphone (sources removed and streams
moved by ``pactl``), the real live view offscreen, and a private ``/dev/shm`` (a mount
namespace) to see what PortAudio leaves behind.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import stat
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, VirtualMic, synth_speechlike
from privileged import as_root

from ser_engine.errors import ProfileError
from ser_engine.inference.model import EmotionModel

SR = 16000
LISTENING = "ser: listening on"


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("SER_MODEL_DIR", None)
    e.update(extra)
    return e


def ser(*args: str | Path, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ser_engine.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env(), cwd=ROOT, **kw)


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stderr, p.stderr
    assert "Traceback" not in p.stdout, p.stdout


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


class Lines:
    """A process's stdout and stderr read line by line on threads, for tests that wait for a line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self._cond = threading.Condition()
        self._open = 2
        for stream, dest in ((proc.stdout, self.out), (proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, dest), daemon=True).start()

    def _read(self, stream: Any, dest: list[str]) -> None:
        for line in stream:
            with self._cond:
                dest.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    def wait(self, what: str, ready: Callable[[], bool], timeout: float = 60) -> None:
        """Block until ``ready()`` (checked at every new line); fail naming ``what`` if the process ends first."""
        with self._cond:
            ok = self._cond.wait_for(lambda: ready() or self._open == 0, timeout=timeout)
            if not (ok and ready()):
                pytest.fail(f"no {what}: stdout {self.out[-5:]}, stderr {self.err[-10:]}")

    def wait_err(self, text: str, timeout: float = 60) -> None:
        self.wait(f"{text!r} on stderr", lambda: any(text in line for line in self.err), timeout)

    def wait_out(self, n: int, timeout: float = 60) -> None:
        self.wait(f"{n} lines on stdout", lambda: len(self.out) >= n, timeout)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the process and its output to end; returns the exit status."""
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
        with self._cond:
            self._cond.wait_for(lambda: self._open == 0, timeout=10)
        return code


def listen(*args: str | Path, preexec_fn: Callable[[], None] | None = None) -> Lines:
    proc = subprocess.Popen([sys.executable, "-m", "ser_engine.cli", "listen", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT,
                            preexec_fn=preexec_fn)
    return Lines(proc)


# ----------------------------------------------------------------------------- ser calibrate -o
CREMA_SPEAKER = "1002"  # a CREMA-D test speaker (training/splits/speakers.json)


@pytest.mark.corpus
@pytest.mark.slow
def test_calibrate_never_replaces_one_of_its_inputs_or_a_file_that_is_not_a_profile(
        corpus_dir: Path, tmp_path: Path) -> None:
    clips = sorted((corpus_dir / "crema-d").glob(f"{CREMA_SPEAKER}_*_NEU_*.ogg"))[:11]
    assert len(clips) == 11
    inputs = []
    for c in clips:  # the user's recordings (copies: the corpus is never written to)
        inputs.append(tmp_path / c.name)
        inputs[-1].write_bytes(c.read_bytes())
    first = inputs[0]
    original = first.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.json").symlink_to(first)
    os.link(first, tmp_path / "hard.json")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a voice profile\n")
    before = sorted(p.name for p in tmp_path.iterdir())

    for out in (first, tmp_path / "sub" / ".." / first.name, tmp_path / "link.json", tmp_path / "hard.json"):
        p = ser("calibrate", *inputs, "--output", out)
        no_traceback(p)
        assert p.returncode == 1, (out, p.stderr)
        assert p.stderr.startswith(f"ser: {out}: is one of the input files"), p.stderr
        assert first.read_bytes() == original  # the recording is intact
    assert (tmp_path / "link.json").is_symlink()

    p = ser("calibrate", *inputs, "--output", notes)
    no_traceback(p)
    assert p.returncode == 1
    assert p.stderr.strip() == (f"ser: {notes}: exists and is not a voice profile; not replaced (give --output "
                                "another file name, or remove the file first)")
    assert notes.read_text() == "my notes, not a voice profile\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left either

    # a voice profile is made again in place: replacing a profile is what -o of an existing profile means
    profile = tmp_path / "voice.json"
    for name in ("first take", "second take"):
        p = ser("calibrate", *inputs, "--output", profile, "--name", name)
        no_traceback(p)
        assert p.returncode == 0, p.stderr
        assert json.loads(profile.read_text())["name"] == name
    assert first.read_bytes() == original


# ----------------------------------------------------------------------------- recordings never replaced
def test_a_recording_never_replaces_an_existing_file_unless_asked(tiny_model: EmotionModel, tmp_path: Path) -> None:
    from ser_engine.live.session import LiveSession, RecordingError

    session = LiveSession(tiny_model)  # recording needs no open device: the files are made at once
    wav, table = tmp_path / "take.wav", tmp_path / "take.csv"
    wav.write_bytes(b"RIFF an earlier recording")
    with pytest.raises(RecordingError) as info:
        session.start_recording(wav, table)
    assert type(info.value).__name__ == "RecordingExistsError"
    assert str(info.value) == f"{wav}: already exists; not replaced (choose another name)"
    assert wav.read_bytes() == b"RIFF an earlier recording"
    assert not table.exists()
    assert not session.recording

    # only the CSV exists: refused as well, and the WAV it had just made is removed again
    wav.unlink()
    table.write_text("earlier predictions\n")
    with pytest.raises(RecordingError, match="already exists"):
        session.start_recording(wav, table)
    assert not wav.exists()
    assert table.read_text() == "earlier predictions\n"

    # a symbolic link in the way is not followed into the file it names
    precious = tmp_path / "precious.wav"
    precious.write_bytes(b"precious")
    (tmp_path / "link.wav").symlink_to(precious)
    with pytest.raises(RecordingError, match="already exists"):
        session.start_recording(tmp_path / "link.wav", None)
    assert precious.read_bytes() == b"precious"

    session.start_recording(wav, table, overwrite=True)  # asked for: replaced
    assert session.stop_recording() == (wav, table)
    assert sf.info(str(wav)).frames == 0
    assert table.read_text().startswith("start_s,")


@pytest.mark.mic
@pytest.mark.usefixtures("virtual_mic")
def test_listen_record_refuses_an_existing_recording_unless_overwrite(tiny_model_dir: Path, tmp_path: Path) -> None:
    rec = tmp_path / "take.wav"
    old = synth_speechlike(seconds=1.0, seed=4)
    sf.write(str(rec), old, SR)
    earlier = rec.read_bytes()
    p = ser("listen", "--model", tiny_model_dir, "--record", rec, "--duration", "1")
    no_traceback(p)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip() == (f"ser: {rec}: already exists; not replaced (choose another name, or pass "
                                "--overwrite to replace it)")
    assert LISTENING not in p.stderr  # refused before the device was opened
    assert rec.read_bytes() == earlier
    assert not Path(f"{rec}.csv").exists()

    rec.unlink()
    Path(f"{rec}.csv").write_text("earlier predictions\n")
    p = ser("listen", "--model", tiny_model_dir, "--record", rec, "--duration", "1")
    assert p.returncode == 1
    assert f"ser: {rec}.csv: already exists" in p.stderr
    assert not rec.exists()
    assert Path(f"{rec}.csv").read_text() == "earlier predictions\n"

    p = ser("listen", "--model", tiny_model_dir, "--overwrite", "--duration", "1")
    assert p.returncode == 2
    assert "--overwrite: only with --record" in p.stderr

    sf.write(str(rec), old, SR)
    p = ser("listen", "--model", tiny_model_dir, "--record", rec, "--overwrite", "--duration", "1")
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert rec.read_bytes() != earlier
    assert sf.info(str(rec)).samplerate == SR
    assert Path(f"{rec}.csv").read_text().startswith("start_s,")


# ----------------------------------------------------------------------------- the app's recordings and banners
def _array_view(qtbot: Any, tmp_path: Path, model: EmotionModel, samples: np.ndarray, *, speed: float = 1.0) -> Any:
    from desktop_support import no_devices, temp_settings

    from desktop_app.live_controller import LiveController, array_session_factory
    from desktop_app.live_view import LiveView

    ctl = LiveController(model, factory=array_session_factory(samples, SR, speed=speed))
    view = LiveView(settings=temp_settings(tmp_path), model=model, controller=ctl, device_lister=no_devices)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    return view


def _recorded_seconds(view: Any) -> float:
    return float(view.controller.session.stats().seconds)


class _FrozenClock(datetime):
    """``datetime`` whose ``now()`` is always the same second: two recordings started "at once"."""

    @classmethod
    def now(cls, tz: Any = None) -> _FrozenClock:
        return cls(2025, 1, 1, 12, 0, 0, tzinfo=tz)


@pytest.mark.gui
def test_two_app_recordings_started_in_the_same_second_get_two_files(qtbot, tmp_path: Path, tiny_model: EmotionModel,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import desktop_app.live_view

    view = _array_view(qtbot, tmp_path, tiny_model, synth_speechlike(seconds=60.0, level=0.3))
    folder = tmp_path / "recordings"
    view.settings.recordings_folder = str(folder)
    monkeypatch.setattr(desktop_app.live_view, "datetime", _FrozenClock)  # both start within the same second
    assert view.start(), view.banner.text()
    saved: list[str] = []
    view.message.connect(lambda m: saved.append(m) if m.startswith("Recording saved") else None)
    for _ in range(2):
        view.toggle_recording()
        assert view.controller.recording_path is not None, view.banner.text()
        t0 = _recorded_seconds(view)
        qtbot.waitUntil(lambda t0=t0: _recorded_seconds(view) >= t0 + 1.0, timeout=20000)
        view.toggle_recording()
    first, second = folder / "ser-20250101-120000.wav", folder / "ser-20250101-120000-2.wav"
    assert saved == [f"Recording saved: {first}", f"Recording saved: {second}"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "ser-20250101-120000-2.csv", "ser-20250101-120000-2.wav", "ser-20250101-120000.csv", "ser-20250101-120000.wav"]
    for wav in (first, second):  # two whole recordings: the second did not replace the first
        assert sf.info(str(wav)).duration >= 0.9
    view.stop()


@pytest.mark.gui
def test_a_cannot_record_banner_goes_when_a_later_recording_starts(qtbot, tmp_path: Path,
                                                                  tiny_model: EmotionModel) -> None:
    view = _array_view(qtbot, tmp_path, tiny_model, synth_speechlike(seconds=60.0, level=0.3))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder would have to be")
    view.settings.recordings_folder = str(blocker / "recordings")
    assert view.start(), view.banner.text()
    view.toggle_recording()
    assert view.controller.recording_path is None
    assert view.banner.isVisible()
    assert view.banner.text().startswith(f"Cannot record to {blocker / 'recordings'}")

    view.settings.recordings_folder = str(tmp_path / "recordings")
    view.toggle_recording()
    assert view.controller.recording_path is not None
    assert not view.banner.isVisible()  # the old "Cannot record" no longer stands over a recording that runs
    assert view.banner.text() == ""
    view.toggle_recording()
    view.stop()


# ----------------------------------------------------------------------------- hand-edited voice profiles
def _profile_file(model: EmotionModel, path: Path, shift: list[float]) -> Path:
    """Write a voice profile of ``model`` holding ``shift`` as a hand edit would (plain JSON numbers)."""
    from ser_engine.inference.profile import VoiceProfile

    good = VoiceProfile(name="hand-edited", model_name=model.name, model_sha256=model.fingerprint,
                        labels=model.labels, logit_shift=tuple(0.1 for _ in model.labels), speech_s=12.0,
                        n_windows=20, created="2025-01-01T00:00:00Z", sources=("a.wav",),
                        before={k: 1 / len(model.labels) for k in model.labels},
                        after={k: 1 / len(model.labels) for k in model.labels})
    good.save(path)
    data = json.loads(path.read_text())
    data["logit_shift"] = shift
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("value", [1e300, 1e39, -1e6], ids=["1e300", "inf-in-float32", "-1e6"])
def test_a_profile_with_huge_values_is_refused_by_name_in_every_format(tiny_model_dir: Path, tiny_model: EmotionModel,
                                                                       tmp_path: Path, value: float) -> None:
    from ser_engine.inference.profile import VoiceProfile

    ok = _profile_file(tiny_model, tmp_path / "ok.json", [0.5] * len(tiny_model.labels))
    assert tiny_model.with_profile(VoiceProfile.load(ok)).profile is not None  # a sane profile is taken
    bad = _profile_file(tiny_model, tmp_path / "bad.json", [value] * len(tiny_model.labels))
    with pytest.raises(ProfileError, match=f"^{bad}: .*logit_shift"):
        VoiceProfile.load(bad)
    clip = tmp_path / "speech.wav"
    sf.write(str(clip), synth_speechlike(seconds=4.0, level=0.4), SR)
    for fmt in ("table", "csv", "json"):
        p = ser("analyze", "--model", tiny_model_dir, "--profile", bad, "--format", fmt, clip)
        no_traceback(p)
        assert p.returncode == 1, (fmt, p.stdout, p.stderr)
        assert p.stderr.startswith(f"ser: {bad}: "), p.stderr
        assert "logit_shift" in p.stderr
        assert "nan" not in p.stdout.lower()
        assert p.stdout == ""  # no result is reported at all, let alone as a success
    p = ser("listen", "--model", tiny_model_dir, "--profile", bad, "--duration", "1")
    no_traceback(p)
    assert p.returncode == 1
    assert p.stderr.startswith(f"ser: {bad}: "), p.stderr


# ----------------------------------------------------------------------------- SIGTERM / SIGHUP during analyze
@pytest.fixture(scope="module")
def long_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three files of ten minutes of synthetic speech-like audio: seconds of analysis after a first short file."""
    folder = tmp_path_factory.mktemp("long")
    out = []
    for n in range(3):
        out.append(folder / f"long{n}.wav")
        y = synth_speechlike(seconds=30.0, seed=9 + n)
        with sf.SoundFile(out[-1], "w", SR, 1, subtype="PCM_16") as f:
            for _ in range(20):
                f.write(y)
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_during_analyze_close_the_json_and_exit_128_plus_n(
        tiny_model_dir: Path, tmp_path: Path, long_files: list[Path], sig: int) -> None:
    first = tmp_path / "first.wav"
    sf.write(str(first), synth_speechlike(seconds=2.0, seed=10), SR)
    paths = [first, *long_files]  # (a path given twice would be analysed once)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_engine.cli", "analyze", "--model", str(tiny_model_dir), "--format", "json",
         "--workers", "1", *map(str, paths)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT,
    )
    lines = Lines(proc)
    lines.wait("the first result", lambda: any("first.wav" in line for line in lines.out))
    proc.send_signal(sig)
    code = lines.finish()
    err = "\n".join(lines.err)
    assert code == 128 + sig, err
    data = json.loads("\n".join(lines.out))  # closed properly: valid JSON
    names = [Path(d["path"]).name for d in data]
    assert names[0] == "first.wav"
    assert len(names) < len(paths)  # stopped: the file in flight was cut short, not reported
    assert all(d["ok"] for d in data)
    assert f"ser: stopping (signal {int(sig)})" in err
    assert f"interrupted: {len(names)} of {len(paths)} results written (the output is complete)" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- the smaller cases
@pytest.mark.usefixtures("qapp")
def test_the_settings_file_is_private_and_a_damaged_one_is_kept_and_said(tmp_path: Path, caplog) -> None:
    from PySide6.QtCore import QSettings

    from desktop_app.settings import AppSettings

    old = os.umask(0o022)
    try:
        fresh = tmp_path / "config" / "ser" / "ser-app.ini"  # neither the file nor its folder exists yet
        s = AppSettings(QSettings(str(fresh), QSettings.Format.IniFormat))
        s.recordings_folder = str(tmp_path / "rec")
        assert mode(fresh) == 0o600
        assert mode(fresh.parent) == 0o700
        assert "recordings_folder" in fresh.read_text()

        loose = tmp_path / "loose.ini"  # written world-readable by an older version
        loose.write_text("[window]\ntab=1\n")
        loose.chmod(0o644)
        s = AppSettings(QSettings(str(loose), QSettings.Format.IniFormat))
        assert s.last_tab == 1
        assert mode(loose) == 0o600
    finally:
        os.umask(old)

    for n, junk in enumerate([b"hello, this is not a settings file\n", bytes(range(256)) * 8]):
        ini = tmp_path / f"junk{n}.ini"
        ini.write_bytes(junk)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ser.app"):
            s = AppSettings(QSettings(str(ini), QSettings.Format.IniFormat))
        said = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in caplog.records]
        copy = ini.with_name(ini.name + ".bad")
        assert said[0].startswith(f"settings file {ini} is damaged (")
        assert f"a copy of it is kept as {copy}" in said[0]
        assert copy.read_bytes() == junk
        assert mode(copy) == 0o600
        s.last_tab = 1  # the next change rewrites the file; the copy stays
        assert copy.read_bytes() == junk


def test_model_option_naming_the_onnx_file_says_a_folder_is_expected(tiny_model_dir: Path, tmp_path: Path) -> None:
    clip = tmp_path / "speech.wav"
    sf.write(str(clip), synth_speechlike(seconds=2.0), SR)
    onnx = tiny_model_dir / "model.onnx"
    p = ser("analyze", "--model", onnx, clip)
    no_traceback(p)
    assert p.returncode == 1
    assert p.stderr.strip() == (f"ser: {onnx}: not a folder; a model is the folder holding model.onnx and model.json "
                                f"(here perhaps {tiny_model_dir})")


def test_a_full_stdout_is_said_and_fails(tiny_model_dir: Path, tmp_path: Path) -> None:
    clip = tmp_path / "speech.wav"
    sf.write(str(clip), synth_speechlike(seconds=2.0), SR)
    for fmt in ("table", "csv", "json"):
        with open("/dev/full", "w") as full:  # a real device on which every write fails: disk full
            p = subprocess.run([sys.executable, "-m", "ser_engine.cli", "analyze", "--model", str(tiny_model_dir),
                                "--format", fmt, str(clip)], stdout=full, stderr=subprocess.PIPE, text=True,
                               env=env(), cwd=ROOT, timeout=120)
        assert p.returncode == 1, (fmt, p.stderr)
        assert p.stderr.strip() == "ser: cannot write the results to stdout: No space left on device", p.stderr
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "ser_engine.cli", "info", "--model", str(tiny_model_dir)],
                           stdout=full, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT, timeout=120)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip() == "ser: cannot write the output to stdout: No space left on device", p.stderr


@pytest.mark.mic
@pytest.mark.usefixtures("virtual_mic")
def test_listen_on_a_full_stdout_says_so_and_fails(tiny_model_dir: Path) -> None:
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "ser_engine.cli", "listen", "--model", str(tiny_model_dir),
                            "--format", "jsonl", "--duration", "5"], stdout=full, stderr=subprocess.PIPE,
                           text=True, env=env(), cwd=ROOT, timeout=120)
    assert "Traceback" not in p.stderr
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().splitlines() == ["ser: cannot write the output to stdout: No space left on device"]


def test_a_very_short_loud_clip_is_too_short_not_no_speech(tiny_model_dir: Path, tiny_model: EmotionModel,
                                                           tmp_path: Path) -> None:
    from ser_engine.files.analysis import MIN_AUDIO_S, analyze_file

    short = tmp_path / "short.wav"
    sf.write(str(short), synth_speechlike(seconds=0.05, level=0.9), SR)
    res = analyze_file(short, tiny_model)
    assert not res.ok
    assert res.error == f"{short}: too short to analyse (0.05 s of audio; speech needs at least {MIN_AUDIO_S:g} s)"
    quiet = tmp_path / "quiet.wav"  # long enough for the gate: its silence is a finding
    sf.write(str(quiet), np.zeros(round(0.5 * SR), np.float32), SR)
    res = analyze_file(quiet, tiny_model)
    assert res.ok
    assert res.label is None
    for fmt in ("table", "csv", "json"):
        p = ser("analyze", "--model", tiny_model_dir, "--format", fmt, short)
        no_traceback(p)
        assert p.returncode == 1, (fmt, p.stderr)
        assert "too short to analyse" in p.stderr
        assert "no speech" not in p.stdout


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_newlines_and_cjk_characters_in_file_names_keep_the_table_aligned(tiny_model_dir: Path,
                                                                          tmp_path: Path) -> None:
    names = ["plain.wav", "two\nlines.wav", "日本語の録音.wav", "tab\there.wav"]
    for i, name in enumerate(names):
        sf.write(str(tmp_path / name), synth_speechlike(seconds=1.5, seed=i), SR)
    p = ser("analyze", "--model", tiny_model_dir, *(tmp_path / n for n in names))
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    rows = p.stdout.splitlines()
    assert len(rows) == 1 + len(names), p.stdout  # a header and one line per file, whatever the names hold
    assert "two\\nlines.wav" in rows[2]
    assert "tab\\there.wav" in rows[4]
    assert "日本語の録音.wav" in rows[3]
    # the duration column ends at the same terminal column on every line (a CJK character takes two)
    ends = {_columns(r[: r.index(word) + len(word)]) for r, word in zip(rows, ["duration"] + ["1.50s"] * 4,
                                                                         strict=True)}
    assert len(ends) == 1, p.stdout


# ----------------------------------------------------------------------------- Ctrl-C at any point of start-up
# The marks `ser listen -v --record` passes on stderr while it starts, in order; a SIGINT right
# after each must stop it (exit 130, "interrupted", the recording, if one was started, saved).
STARTUP_MARKS = [
    ": listen",  # main() runs (logging started)
    "loaded from",  # the model is loaded
    "opening the input device",  # the device is being opened (PortAudio, PulseAudio)
    "input device open",  # the worker runs
    LISTENING,
    "recording to",
]


def _interrupted_at(tiny_model_dir: Path, rec: Path, *, mark: str | None, out_lines: int = 0,
                    inherited_ignore: bool = False) -> tuple[int, str]:
    def ignore_sigint() -> None:  # what a shell does to a background job of a script
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    lines = listen("-v", "--model", tiny_model_dir, "--record", rec,
                   preexec_fn=ignore_sigint if inherited_ignore else None)
    try:
        if mark is not None:
            lines.wait_err(mark)
        if out_lines:
            lines.wait_out(out_lines)
        lines.proc.send_signal(signal.SIGINT)
        try:
            code = lines.finish(timeout=30)  # a guard only: the exit follows the signal at once
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit 30 s after Ctrl-C at {mark!r}: stderr {lines.err[-15:]}, stdout {lines.out[-5:]}")
    finally:
        if lines.proc.poll() is None:
            lines.proc.kill()
    return code, "\n".join(lines.err)


@pytest.mark.mic
@pytest.mark.slow
@pytest.mark.usefixtures("virtual_mic")
def test_ctrl_c_at_any_point_of_listen_start_up_stops_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    points: list[dict[str, Any]] = [{"mark": m} for m in STARTUP_MARKS]
    points += [{"mark": "recording to", "out_lines": n} for n in (1, 3)]
    # SIGINT inherited as ignored (started in the background by a script): Ctrl-C must still stop it
    points += [{"mark": "recording to", "out_lines": 2, "inherited_ignore": True}]
    for i, point in enumerate(points):
        rec = tmp_path / f"take{i}.wav"
        code, err = _interrupted_at(tiny_model_dir, rec, **point)
        assert code == 130, (point, err)
        assert "Traceback" not in err, (point, err)
        last = err.strip().splitlines()[-1]
        if rec.exists():  # the recording had started: it is closed properly and said to be saved
            assert last == f"ser: interrupted; the recording is saved: {rec}", (point, err)
            info = sf.info(str(rec))
            assert info.samplerate == SR
            assert rec.stat().st_size == 44 + 2 * info.frames
        else:
            assert last == "ser: interrupted", (point, err)
            assert STARTUP_MARKS.index(point["mark"]) < STARTUP_MARKS.index("recording to"), point


# ----------------------------------------------------------------------------- digital silence
def test_digital_silence_after_sound_is_noticed_and_so_is_the_sound_coming_back(tiny_model: EmotionModel) -> None:
    from ser_engine.live.inputs import DIGITAL_SILENCE_S, ArrayInput
    from ser_engine.live.session import LiveSession

    rate = 48000
    speech = synth_speechlike(seconds=1.5, sample_rate=rate, level=0.3)
    zeros = np.zeros(round((DIGITAL_SILENCE_S + 1.0) * rate), np.float32)
    noise = np.random.default_rng(3).normal(0, 1e-3, round(1.0 * rate)).astype(np.float32)  # a quiet room: not zeros
    samples = np.concatenate([zeros, speech, noise, zeros, speech])
    notices: list[str | None] = []
    session = LiveSession(tiny_model, input_factory=lambda: ArrayInput(samples, rate, speed=8.0),
                          on_input_silence=notices.append)
    session.start()
    try:
        assert session.finished.wait(60)
    finally:
        session.stop()
    assert session.error is None
    # the zeros before any sound are not news; those after it are, once; then the sound is back
    assert len(notices) == 2, notices
    message = notices[0]
    assert message is not None
    since = (zeros.size + speech.size + noise.size) / rate
    assert message.startswith(f"no sound from input device 'array' since {since:.1f} s: it delivers exact "
                              "digital silence"), message
    assert notices[1] is None
    assert not session.input_silent


@pytest.fixture
def second_null_source(virtual_mic: VirtualMic) -> Iterator[str]:
    """Load a second null sink: its monitor is where PulseAudio moves a stream whose source is removed."""
    def pactl(*args: str) -> str:
        return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10, check=True).stdout

    module = pactl("load-module", "module-null-sink", "sink_name=ser_test_null").strip()
    try:
        yield "ser_test_null.monitor"
    finally:
        subprocess.run(["pactl", "unload-module", module], capture_output=True, timeout=10)
        virtual_mic.ensure_running()  # vmic back as the default sink and source for the other tests


def _source_outputs() -> list[str]:
    out = subprocess.run(["pactl", "list", "short", "source-outputs"], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    return [line.split("\t")[0] for line in out.splitlines() if line.strip()]


@pytest.mark.mic
@pytest.mark.slow
@pytest.mark.usefixtures("second_null_source")
def test_listen_says_when_the_source_is_removed_and_when_sound_is_back(
        tiny_model_dir: Path, virtual_mic: VirtualMic) -> None:
    lines = listen("--model", tiny_model_dir)
    player = None
    try:
        lines.wait_err(LISTENING)
        player = virtual_mic.play(synth_speechlike(seconds=30.0, level=0.4))
        lines.wait("a speech line", lambda: any(" speech " in line for line in lines.out))
        assert not any("warning" in line for line in lines.err), lines.err
        player.kill()  # (else PulseAudio would move the player to the other sink too, and ser would hear it)
        player.wait(timeout=10)
        player = None
        virtual_mic.unload_sink()  # the microphone goes away; PulseAudio moves the stream to the null source
        lines.wait_err("delivers exact digital silence")
        warning = next(line for line in lines.err if "digital silence" in line)
        assert warning.startswith("ser: warning: no sound from input device 'default' since "), warning
        n = len(lines.out)
        lines.wait_out(n + 2)  # it goes on listening (and says so, once)
        assert sum("digital silence" in line for line in lines.err) == 1

        virtual_mic.ensure_running()  # the microphone is back; the stream is moved to it, sound flows again
        for so in _source_outputs():
            subprocess.run(["pactl", "move-source-output", so, virtual_mic.source], check=True, timeout=10,
                           capture_output=True)
        player = virtual_mic.play(synth_speechlike(seconds=30.0, level=0.4))
        lines.wait_err("the input delivers sound again")
        lines.proc.send_signal(signal.SIGINT)
        assert lines.finish(timeout=30) == 130
    finally:
        if lines.proc.poll() is None:
            lines.proc.kill()
        if player is not None:
            player.kill()
            player.wait(timeout=10)
    assert "Traceback" not in "\n".join(lines.err)


@pytest.mark.gui
def test_the_app_shows_a_banner_while_the_input_is_digitally_silent(qtbot, tmp_path: Path,
                                                                   tiny_model: EmotionModel) -> None:
    from desktop_app.live_view import SILENCE_BANNER
    from ser_engine.live.inputs import DIGITAL_SILENCE_S

    speech = synth_speechlike(seconds=2.0, level=0.3)
    gap = np.zeros(round((DIGITAL_SILENCE_S + 2.0) * SR), np.float32)
    view = _array_view(qtbot, tmp_path, tiny_model, np.concatenate([speech, gap, speech, gap[: SR]]), speed=2.0)
    shown: list[str] = []
    view.controller.input_silence.connect(shown.append)
    assert view.start(), view.banner.text()
    qtbot.waitUntil(lambda: len(shown) >= 1, timeout=30000)
    assert view.banner.isVisible()
    assert view.banner.text().startswith(f"{SILENCE_BANNER} no sound from input device 'array' since ")
    view.grab().save(str(tmp_path / "digital-silence-banner.png"))
    qtbot.waitUntil(lambda: len(shown) >= 2, timeout=30000)
    assert shown[1] == ""
    assert not view.banner.isVisible()  # sound is back: the notice goes
    view.stop()


# ----------------------------------------------------------------------------- /dev/shm
@pytest.mark.mic
@pytest.mark.usefixtures("virtual_mic")
@pytest.mark.parametrize("command", [["devices"], ["listen", "--duration", "1"]], ids=["devices", "listen"])
def test_portaudio_leaves_no_jack_database_in_dev_shm(tiny_model_dir: Path, command: list[str]) -> None:
    """Run `ser` with a /dev/shm of its own (a private mount namespace) and list what is left in it."""
    args = list(command) + (["--model", str(tiny_model_dir)] if command[0] == "listen" else [])
    inner = ["env", *(f"{k}={v}" for k, v in env().items()), sys.executable, "-m", "ser_engine.cli", *args]
    if os.geteuid() != 0:  # run ser as this user inside the namespace (root only sets it up)
        inner = ["setpriv", f"--reuid={os.getuid()}", f"--regid={os.getgid()}", "--init-groups", *inner]
    script = (f"mount -t tmpfs -o mode=1777 ser-test-shm /dev/shm || exit 99; cd {shlex.quote(str(ROOT))}; "
              f"{shlex.join(inner)} >/dev/null; code=$?; echo \"left: $(ls -A /dev/shm | tr '\\n' ' ')\"; exit $code")
    argv = as_root(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                   why="a private /dev/shm (mount namespace)")
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert p.returncode != 99, p.stderr
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    left = p.stdout.strip().splitlines()[-1]
    assert left.startswith("left:"), p.stdout
    assert left.split()[1:] == [], p.stdout  # no jack_db-<uid> (nor anything else)
