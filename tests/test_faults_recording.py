"""Recording that survives faults: a disk that fills, a process that is killed, private files.

Real parts only: a real tmpfs mount that truly fills (``mount -t tmpfs -o size=200k``), the
virtual PulseAudio microphone fed by ``paplay``, real ``ser listen --record`` processes sent
real SIGTERM/SIGKILL, the real LiveView + LiveController offscreen, and the files read back
with both ``soundfile`` and Python's ``wave``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import stat
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, VirtualMic, synth_speechlike
from privileged import small_tmpfs
from waiting import wait_until

from ser_engine.inference.model import EmotionModel
from ser_engine.live.session import SYNC_SECONDS, LiveSession, RecordingError

SR = 16000
HEADER = 44  # the recorder writes canonical 44-byte PCM WAV headers


# ----------------------------------------------------------------------------- helpers
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """Mount a real 200 KiB tmpfs (about 6 s of 16 kHz 16-bit audio), unmounted afterwards."""
    with small_tmpfs(tmp_path / "small-disk", size="200k") as disk:
        yield disk


def fill(folder: Path) -> Path:
    """Fill the file system holding ``folder`` completely; returns the filler file."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    with contextlib.suppress(OSError), filler.open("ab", buffering=0) as f:
        while True:
            f.write(b"\0")
    return filler


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("SER_MODEL_DIR", None)
    return e


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_wav_both(path: Path) -> tuple[np.ndarray, int]:
    """Return the samples as soundfile reads them; assert Python's wave reads the same length and format."""
    y, sr = sf.read(str(path), dtype="float32")
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SR)
        frames = w.getnframes()
        raw = w.readframes(frames)
    assert sr == SR
    assert y.ndim == 1
    assert frames == len(y) == len(raw) // 2, "soundfile and wave disagree on the recording's length"
    return y, frames


def read_csv_rows(path: Path, labels: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a predictions CSV; every line must be complete (no row cut in the middle)."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), "the CSV ends in the middle of a row"
    rows = list(csv.reader(text.splitlines()))
    head = ["start_s", "end_s", "speech", "label", "confidence", "uncertain", "level_dbfs",
            *[f"p_{lab}" for lab in labels]]
    assert rows[0] == head
    assert all(len(r) == len(head) for r in rows[1:]), "a CSV row has the wrong number of fields"
    out = [dict(zip(head, r, strict=True)) for r in rows[1:]]
    ends = [float(r["end_s"]) for r in out]
    assert ends == sorted(ends)
    return out


def listen(model_dir: Path, record: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ser_engine.cli", "listen", "--model", str(model_dir), "--record", str(record), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT,
    )


def wait_listening(proc: subprocess.Popen[str]) -> tuple[float, str]:
    """Block until ``ser listen`` (table format) says it is listening; the recording starts right after."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    t = time.monotonic()
    assert line.startswith("ser: listening on"), line + (proc.stderr.read() if proc.poll() is not None else "")
    return t, line


# ----------------------------------------------------------------------------- no device needed
def test_recording_files_are_private_and_missing_folders_0700(tiny_model: EmotionModel, tmp_path: Path) -> None:
    session = LiveSession(tiny_model)  # recording needs no open device: the files are made at once
    old = os.umask(0o022)
    try:
        wav, csv_path = tmp_path / "new" / "deeper" / "rec.wav", tmp_path / "new" / "deeper" / "rec.csv"
        session.start_recording(wav, csv_path)
        assert session.recording
        assert mode(wav) == mode(csv_path) == 0o600
        assert mode(tmp_path / "new") == mode(tmp_path / "new" / "deeper") == 0o700
        assert session.stop_recording() == (wav, csv_path)
        _, frames = read_wav_both(wav)  # an empty recording is still a valid WAV
        assert frames == 0
        assert wav.stat().st_size == HEADER
        assert read_csv_rows(csv_path, tiny_model.labels) == []

        # an existing world-readable file that a recording is asked to overwrite becomes private too
        wav.write_bytes(b"old")
        wav.chmod(0o644)
        session.start_recording(wav, None, overwrite=True)
        assert mode(wav) == 0o600
        session.stop_recording()
        tmp_path.chmod(0o755)
        session.start_recording(tmp_path / "top.wav")
        session.stop_recording()
        assert mode(tmp_path) == 0o755  # a folder that already existed is left as it is

        # a stricter umask still applies to the files (owner read-only here); the folder exists
        # already (a folder made under this umask would be 0500, where only root can write)
        strict = tmp_path / "strict"
        strict.mkdir(mode=0o700)
        os.umask(0o277)
        session.start_recording(strict / "r.wav", strict / "r.csv")
        session.stop_recording()
        assert mode(strict / "r.wav") == mode(strict / "r.csv") == 0o400
    finally:
        os.umask(old)


def test_recording_cannot_start_on_a_full_disk_and_leaves_nothing(tiny_model: EmotionModel,
                                                                   small_disk: Path) -> None:
    fill(small_disk)
    session = LiveSession(tiny_model)
    wav = small_disk / "rec.wav"
    with pytest.raises(RecordingError) as info:
        session.start_recording(wav, small_disk / "rec.csv")
    assert str(wav) in str(info.value)
    assert "disk full" in str(info.value)
    assert not session.recording
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no 0-byte leftovers


def test_a_recording_that_cannot_start_touches_nothing_it_did_not_make(tiny_model: EmotionModel,
                                                                       tmp_path: Path) -> None:
    session = LiveSession(tiny_model)
    wav, taken = tmp_path / "rec.wav", tmp_path / "rec.csv"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(RecordingError) as info:
        session.start_recording(wav, taken)
    assert str(taken) in str(info.value)
    assert "cannot create the predictions file" in str(info.value)
    assert not wav.exists()  # the WAV it had just made is removed again
    assert (taken / "keep.txt").read_text() == "mine"
    assert not session.recording


# ----------------------------------------------------------------------------- the virtual microphone
@pytest.mark.mic
@pytest.mark.slow
def test_cli_disk_full_stops_with_a_message_keeps_the_audio_and_exits_1(
        tiny_model_dir: Path, tiny_model: EmotionModel, virtual_mic: VirtualMic, small_disk: Path) -> None:
    rec = small_disk / "session.wav"
    proc = listen(tiny_model_dir, rec, "--format", "jsonl")
    player = virtual_mic.play(synth_speechlike(seconds=12.0, level=0.4, seed=3))
    try:
        out, err = proc.communicate(timeout=90)  # ends by itself when the 200 KiB disk is full
    finally:
        player.kill()
        player.wait(timeout=10)
    assert "Traceback" not in err, err
    assert "Traceback" not in out, err
    assert proc.returncode == 1, err
    assert f"ser: {rec}: recording stopped: disk full (No space left on device)" in err, err
    assert f"kept in {rec}" in err, err
    assert f"{rec}.csv" in err, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) >= 10  # it listened and predicted up to the fault

    # what was written is kept: a valid WAV that both readers agree on, cut to whole samples, header exact
    y, frames = read_wav_both(rec)
    assert rec.stat().st_size == HEADER + 2 * frames
    assert frames / SR > 5.0  # 200 KiB minus the CSV: about 6 s
    assert np.abs(y).max() > 0.1  # the played speech is in it
    rows = read_csv_rows(Path(f"{rec}.csv"), tiny_model.labels)
    assert rows
    assert float(rows[-1]["end_s"]) <= frames / SR + 0.01
    assert float(rows[-1]["end_s"]) >= frames / SR - SYNC_SECONDS - 1.5  # at most the last unflushed second lost
    assert mode(rec) == mode(Path(f"{rec}.csv")) == 0o600


def _labels(model_dir: Path) -> tuple[str, ...]:
    return EmotionModel.load(model_dir).labels


def _killed_recording(tiny_model_dir: Path, virtual_mic: VirtualMic, rec: Path, sig: int
                      ) -> tuple[subprocess.Popen[str], float, str, str]:
    proc = listen(tiny_model_dir, rec)
    player = None
    try:
        t_listen, _ = wait_listening(proc)
        player = virtual_mic.play(synth_speechlike(seconds=4.0, level=0.4, seed=5))
        labels = _labels(tiny_model_dir)

        def synced(seconds: float) -> bool:
            """Tell whether the WAV header on disk covers ``seconds`` and the CSV holds rows."""
            if not rec.is_file() or rec.stat().st_size < HEADER:  # the recording is being opened
                return False
            with wave.open(str(rec), "rb") as w:
                if w.getnframes() / SR < seconds:
                    return False
            return bool(read_csv_rows(Path(f"{rec}.csv"), labels))

        # while it records, another process (this one) already reads complete files, short of one sync
        # interval: wait for the first syncs to reach the disk
        wait_until(lambda: synced(2.0), what="2 s of the recording synced to disk")
        _, frames = read_wav_both(rec)
        t_read = time.monotonic() - t_listen
        # no more on disk than the time it has been recording (how far behind it is depends on device
        # start-up and load, so the exact sync bound is checked against the samples on disk, SIGKILL test)
        assert 0 < frames / SR <= t_read + 0.3, (frames / SR, t_read)
        # the signal comes once 3.5 s are on disk (with the played speech in them)
        wait_until(lambda: synced(3.5), what="3.5 s of the recording synced to disk")
        t_kill = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if player is not None:
            player.kill()
            player.wait(timeout=10)
    return proc, t_kill - t_listen, out, err


@pytest.mark.mic
@pytest.mark.slow
def test_sigterm_while_recording_ends_cleanly_with_complete_files(
        tiny_model_dir: Path, tiny_model: EmotionModel, virtual_mic: VirtualMic, tmp_path: Path) -> None:
    rec = tmp_path / "term.wav"
    proc, elapsed, out, err = _killed_recording(tiny_model_dir, virtual_mic, rec, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM == 143, err
    assert "Traceback" not in err, err
    assert f"the recording is saved: {rec}" in err, err
    y, frames = read_wav_both(rec)
    assert rec.stat().st_size == HEADER + 2 * frames  # closed properly: the header covers every sample
    assert 1.0 <= frames / SR <= elapsed + 0.3, (frames / SR, elapsed)
    assert np.abs(y).max() > 0.1
    rows = read_csv_rows(Path(f"{rec}.csv"), tiny_model.labels)
    assert len(rows) >= 5
    assert float(rows[-1]["end_s"]) <= frames / SR + 0.01
    assert float(rows[-1]["end_s"]) >= frames / SR - 1.0
    assert abs(len(rows) - len(out.splitlines())) <= 1  # every prediction printed is in the CSV


@pytest.mark.mic
@pytest.mark.slow
def test_sigkill_while_recording_leaves_readable_files_within_the_sync_interval(
        tiny_model_dir: Path, tiny_model: EmotionModel, virtual_mic: VirtualMic, tmp_path: Path) -> None:
    rec = tmp_path / "killed.wav"
    proc, elapsed, out, _err = _killed_recording(tiny_model_dir, virtual_mic, rec, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    y, frames = read_wav_both(rec)  # the header was rewritten while recording: both readers open it
    captured = (rec.stat().st_size - HEADER) // 2  # every sample reached the file (no user-space buffer)
    assert frames <= captured
    assert captured - frames <= (SYNC_SECONDS + 0.2) * SR, (frames, captured)
    assert frames / SR <= elapsed + 0.3, (frames / SR, elapsed)  # (the start lag behind the clock varies with load)
    assert frames / SR > 1.0
    assert np.abs(y).max() > 0.1
    rows = read_csv_rows(Path(f"{rec}.csv"), tiny_model.labels)  # flushed: complete rows, not 0 bytes
    printed = len(out.splitlines())
    assert rows
    assert printed - len(rows) <= (SYNC_SECONDS + 0.2) / tiny_model.feature_config.hop_s + 1
    assert float(rows[-1]["end_s"]) >= captured / SR - SYNC_SECONDS - 1.5


@pytest.mark.gui
@pytest.mark.mic
@pytest.mark.slow
def test_app_disk_full_shows_a_banner_keeps_listening_and_never_says_saved(
        qtbot, tiny_model: EmotionModel, virtual_mic: VirtualMic, small_disk: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_support import temp_settings
    from PySide6.QtCore import Qt

    from desktop_app.live_view import RECORDING_BANNER, LiveView, list_devices

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # voice profiles: never the user's
    settings = temp_settings(tmp_path)
    view = LiveView(settings=settings, model=tiny_model, device_lister=lambda: list_devices(rescan=True))
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    messages: list[str] = []
    view.message.connect(messages.append)
    assert view.start(), view.banner.text()
    qtbot.waitUntil(lambda: view.predictions_received >= 2, timeout=20000)

    # a recording on a healthy disk still says "Recording saved"
    settings.recordings_folder = str(tmp_path / "ok-recordings")
    qtbot.mouseClick(view.record_button, Qt.MouseButton.LeftButton)
    assert view.controller is not None
    assert view.controller.recording_path is not None
    good = view.controller.recording_path
    recorded = view.predictions_received
    qtbot.waitUntil(lambda: view.predictions_received >= recorded + 2, timeout=20000)  # a second recorded
    view.toggle_recording()
    assert f"Recording saved: {good}" in messages
    assert mode(good.parent) == 0o700
    assert mode(good) == 0o600
    read_wav_both(good)

    # now onto the 200 KiB disk, with speech playing: it fills in about 6 s
    folder = small_disk / "recordings"
    settings.recordings_folder = str(folder)
    messages.clear()
    view.toggle_recording()
    wav = view.controller.recording_path
    assert wav is not None
    assert wav.parent == folder
    assert view.record_button.text() == "Stop recording"
    player = virtual_mic.play(synth_speechlike(seconds=12.0, level=0.4, seed=7))
    try:
        qtbot.waitUntil(lambda: view.banner.isVisible() and RECORDING_BANNER in view.banner.text(), timeout=30000)
        text = view.banner.text()
        assert str(wav) in text, text
        assert "disk full" in text, text
        assert f"kept in {wav}" in text, text
        # the live view goes on listening and predicting; the recording is over
        assert view.running
        assert view.controller.recording_path is None
        assert view.record_button.text() == "Record"
        assert view.record_button.isEnabled()
        n = view.predictions_received
        qtbot.waitUntil(lambda: view.predictions_received >= n + 5, timeout=15000)
        assert view.emotion.state != "error"
    finally:
        player.kill()
        player.wait(timeout=10)
    assert not any(m.startswith("Recording saved") for m in messages), messages
    assert any(m.startswith("Recording stopped:") and "disk full" in m for m in messages), messages
    view.grab().save(str(tmp_path / "disk-full-banner.png"))

    y, frames = read_wav_both(wav)  # what was written is kept, whole samples, exact header
    assert wav.stat().st_size == HEADER + 2 * frames
    assert frames / SR > 4.0
    assert np.abs(y).max() > 0.1  # the played speech is in it
    csv_path = wav.with_suffix(".csv")
    read_csv_rows(csv_path, tiny_model.labels)
    assert mode(folder) == 0o700
    assert mode(wav) == mode(csv_path) == 0o600

    # Record again while the disk is still full: refused with the reason, nothing left behind
    before = sorted(folder.iterdir())
    view.toggle_recording()
    assert view.controller.recording_path is None
    assert "Cannot record to" in view.banner.text()
    assert "disk full" in view.banner.text()
    assert sorted(folder.iterdir()) == before
    assert view.running
    view.stop()
    qtbot.waitUntil(lambda: not view.running, timeout=10000)
