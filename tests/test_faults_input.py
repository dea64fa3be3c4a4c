"""Input safety: hostile inputs to ``ser analyze`` on real files and real processes.

FIFOs, sockets and devices are refused without being opened; symlink loops and
unreadable folders are reported per path while the batch goes on; non-UTF-8
file names are analysed and written as valid UTF-8; ``--workers`` is capped and
C libraries' output never reaches stdout; a model producing NaN is a per-file
error; a truncated file yields what decoded, marked partial; Ctrl-C stops
within a second with valid partial output.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import soundfile as sf
from conftest import synth_speechlike
from onnx import numpy_helper
from tiny_model import build_tiny_model

from ser_engine.dsp.audio import display_path, find_audio_files, iter_audio_blocks
from ser_engine.errors import AudioError
from ser_engine.files.analysis import MAX_WORKERS, analyze_file

ROOT = Path(__file__).resolve().parent.parent
SR = 16000


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("SER_DEBUG", None)
    e.update(extra)
    return e


def ser(*args: Any, timeout: float = 120, extra_env: dict[str, str] | None = None,
        prefix: list[str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the real CLI in a subprocess; stdout/stderr kept as bytes (their encoding is under test)."""
    argv = [*(prefix or []), sys.executable, "-m", "ser_engine.cli",
            *[a if isinstance(a, bytes) else str(a) for a in args]]
    return subprocess.run(argv, capture_output=True, env=env(**(extra_env or {})), cwd=ROOT, timeout=timeout)


def no_traceback(p: subprocess.CompletedProcess[bytes]) -> None:
    err = p.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    assert "internal error" not in err, err


def strict_json(data: bytes) -> Any:
    """Parse stdout as strict JSON: valid UTF-8, no NaN/Infinity constants."""
    def bad_constant(c: str) -> Any:
        raise AssertionError(f"bare {c} in JSON output")

    return json.loads(data.decode("utf-8"), parse_constant=bad_constant)


def write_speech(path: Path | bytes, seconds: float = 3.0, seed: int = 0, **kw: Any) -> None:
    sf.write(path, synth_speechlike(seconds=seconds, seed=seed), SR, **kw)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    p = tmp_path / "good.wav"
    write_speech(p)
    return p


# ----------------------------------------------------------------------------- non-regular files
def test_fifo_socket_and_device_refused_without_opening_batch_goes_on(tiny_model_dir: Path, tmp_path: Path,
                                                                       good: Path) -> None:
    fifo = tmp_path / "x.wav"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    write_speech(folder / "a.wav", seed=1)
    os.mkfifo(folder / "b.flac")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(folder / "c.wav"))
    try:
        # Today's bug: opening x.wav for reading blocks for ever. A timeout here is the failure.
        p = ser("analyze", "--model", tiny_model_dir, "--format", "json", fifo, good, folder, "/dev/null",
                timeout=60)
    finally:
        sock.close()
    no_traceback(p)
    assert p.returncode == 1
    data = strict_json(p.stdout)
    by = {Path(d["path"]).name: d for d in data}
    assert set(by) == {"x.wav", "good.wav", "a.wav", "b.flac", "c.wav", "null"}
    assert by["good.wav"]["ok"]
    assert by["a.wav"]["ok"]
    assert "not a regular file (a FIFO" in by["x.wav"]["error"]
    assert str(fifo) in by["x.wav"]["error"]
    assert "not a regular file (a FIFO" in by["b.flac"]["error"]
    assert "not a regular file (a socket)" in by["c.wav"]["error"]
    assert "not a regular file (a character device)" in by["null"]["error"]
    err = p.stderr.decode()
    assert f"{fifo}: not a regular file" in err
    # nobody ever opened the FIFO for reading: a non-blocking writer finds no reader
    with pytest.raises(OSError, match="No such device or address") as exc:
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert exc.value.errno == errno.ENXIO


def test_engine_refuses_fifo_in_decoder(tmp_path: Path, tiny_model: Any) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="not a regular file"):
        next(iter_audio_blocks(fifo))
    res = analyze_file(fifo, tiny_model)
    assert not res.ok
    assert res.error is not None
    assert "pipe.wav: not a regular file (a FIFO" in res.error


# ----------------------------------------------------------------------------- links and folders
def test_symlink_loops_reported_per_path_batch_goes_on(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    (folder / "sub").mkdir(parents=True)
    write_speech(folder / "sub" / "good.wav", seed=2)
    os.symlink("self.wav", folder / "self.wav")                  # a link to itself
    os.symlink("pong.wav", folder / "ping.wav")                  # two links pointing at each other
    os.symlink("ping.wav", folder / "pong.wav")
    os.symlink("..", folder / "sub" / "up")                      # a folder loop (not followed)
    os.symlink("missing.wav", folder / "dangling.wav")
    given = tmp_path / "loop.flac"
    os.symlink(given.name, given)
    p = ser("analyze", "--model", tiny_model_dir, "--format", "json", folder, given, timeout=60)
    no_traceback(p)
    assert p.returncode == 1
    by = {Path(d["path"]).name: d for d in strict_json(p.stdout)}
    assert by["good.wav"]["ok"] is True
    assert by["good.wav"]["label"]
    for name in ("self.wav", "ping.wav", "pong.wav", "loop.flac"):
        assert by[name]["ok"] is False, by[name]
        assert "symlink loop" in by[name]["error"], by[name]
    assert "dangling symlink" in by["dangling.wav"]["error"]
    assert "up" not in by


def _without_root_powers() -> list[str]:
    """Return a command prefix under which chmod 000 is enforced.

    Root (as in CI) bypasses file permissions through CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH; ``setpriv`` (util-linux) drops both from the bounding
    set, so the CLI runs as root yet is refused exactly as a normal user would be.
    """
    if os.geteuid() != 0:
        return []
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop root's permission override"
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]


def test_unreadable_folder_and_file_reported_per_path(tiny_model_dir: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "locked").mkdir(parents=True)
    (lib / "open").mkdir()
    write_speech(lib / "locked" / "hidden.wav")
    write_speech(lib / "open" / "fine.wav", seed=3)
    write_speech(lib / "secret.wav", seed=4)
    (lib / "secret.wav").chmod(0o000)
    (lib / "locked").chmod(0o000)
    try:
        p = ser("analyze", "--model", tiny_model_dir, "--format", "json", lib, lib / "locked" / "hidden.wav",
                prefix=_without_root_powers(), timeout=120)
    finally:
        (lib / "locked").chmod(0o755)
    no_traceback(p)
    assert p.returncode == 1, p.stderr
    assert p.stdout, p.stderr
    by = {Path(d["path"]).name: d for d in strict_json(p.stdout)}
    assert by["fine.wav"]["ok"] is True
    assert by["fine.wav"]["label"]
    assert by["locked"]["ok"] is False
    assert "cannot list folder (Permission denied)" in by["locked"]["error"]
    assert str(lib / "locked") in by["locked"]["error"]
    assert by["secret.wav"]["ok"] is False
    assert "permission denied" in by["secret.wav"]["error"].lower()
    assert by["hidden.wav"]["ok"] is False
    assert "permission denied" in by["hidden.wav"]["error"].lower()


# ----------------------------------------------------------------------------- file names
def test_non_utf8_names_analysed_and_written_as_valid_utf8(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9.wav"  # Latin-1 bytes: not valid UTF-8
    write_speech(raw, seed=5)
    write_speech(folder / "naïve.wav", seed=6)  # valid UTF-8, not ASCII
    os.mkfifo(os.fsencode(folder) + b"/pipe\xff.wav")  # a failure message naming a non-UTF-8 file
    shown = display_path(os.fsdecode(raw))
    assert shown.endswith("caf\\xe9.wav")
    given = os.fsencode(tmp_path) + b"/direct\xe9.wav"
    write_speech(given, seed=7)

    outputs: dict[str, bytes] = {}
    for fmt in ("json", "csv", "table"):
        # an ASCII-only stdout must not abort the batch either
        p = ser("analyze", "--model", tiny_model_dir, "--format", fmt, folder, given,
                extra_env={"PYTHONIOENCODING": "ascii"}, timeout=60)
        no_traceback(p)
        assert p.returncode == 1  # the FIFO
        outputs[fmt] = p.stdout
        p.stdout.decode("utf-8")  # strict: raises on invalid UTF-8
    data = strict_json(outputs["json"])
    by = {d["path"]: d for d in data}
    assert by[shown]["ok"] is True
    assert by[shown]["label"]
    assert by[str(folder / "naïve.wav")]["ok"] is True
    assert by[display_path(os.fsdecode(given))]["ok"] is True
    pipe = [d for d in data if d["path"].endswith("pipe\\xff.wav")]
    assert len(pipe) == 1
    assert "not a regular file" in pipe[0]["error"]
    assert "pipe\\xff.wav" in pipe[0]["error"]
    rows = list(csv.DictReader(io.StringIO(outputs["csv"].decode("utf-8"))))
    # CSV and JSON agree on every path, and on every error message
    assert sorted(r["path"] for r in rows) == sorted(by)
    assert {r["path"]: r["error"] for r in rows} == {k: v["error"] or "" for k, v in by.items()}
    table = outputs["table"].decode("ascii")
    assert "caf\\xe9.wav" in table  # ASCII stdout: escapes, no crash
    assert "na\\xefve.wav" in table


# ----------------------------------------------------------------------------- workers
def test_workers_capped_with_a_message_and_stdout_stays_clean(tiny_model_dir: Path, tmp_path: Path) -> None:
    four_per_core = min(32, 4 * (os.cpu_count() or 1))  # 4 threads per core, at most 32 (OpenBLAS allows 64)
    assert four_per_core == MAX_WORKERS
    for i in range(3):
        write_speech(tmp_path / f"f{i}.wav", seed=i)
    p = ser("analyze", "--model", tiny_model_dir, "--format", "csv", "--workers", "200", tmp_path, timeout=120)
    no_traceback(p)
    assert p.returncode == 0
    assert f"--workers 200 is more than this machine can use; using {MAX_WORKERS}" in p.stderr.decode()
    rows = list(csv.reader(io.StringIO(p.stdout.decode("utf-8"))))
    assert rows[0][0] == "path"
    assert len(rows) == 4
    assert all(len(r) == len(rows[0]) and r[1] == "1" for r in rows[1:])


def test_c_library_output_on_fd1_never_reaches_results(tiny_model_dir: Path, good: Path) -> None:
    """What OpenBLAS prints with printf goes to fd 1: during analysis fd 1 is stderr, results go elsewhere."""
    code = (
        "import os, sys\n"
        "import ser_engine.files.analysis as an\n"
        "orig = an.analyze_file\n"
        "def noisy(*a, **k):\n"
        "    os.write(1, b'BLAS : Program is Terminated. Because you tried to allocate too many memory regions.\\n')\n"
        "    return orig(*a, **k)\n"
        "an.analyze_file = noisy\n"
        "from ser_engine.cli.main import main\n"
        f"rc = main(['analyze', '--model', {str(tiny_model_dir)!r}, '--format', 'csv', '--workers', '2',"
        f" {str(good)!r}, {str(good)!r} + ''])\n"
        "print('after', flush=True)\n"
        "sys.exit(rc)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env(), cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode("utf-8")
    assert "BLAS" not in out
    assert "BLAS : Program is Terminated" in p.stderr.decode()
    rows = list(csv.reader(io.StringIO(out.replace("after\n", ""))))
    assert rows[0][0] == "path"
    assert rows[1][0] == str(good)
    assert out.endswith("after\n")  # fd 1 is stdout again afterwards


# ----------------------------------------------------------------------------- non-finite model output
def _broken_model(out: Path, value: float) -> Path:
    """Build the tiny model with its bias set to NaN or inf: every speech window's logits are non-finite."""
    build_tiny_model(out)
    m = onnx.load(str(out / "model.onnx"))
    for i, init in enumerate(m.graph.initializer):
        if init.name == "B":
            arr = numpy_helper.to_array(init).copy()
            arr[:] = value
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr.astype(np.float32), "B"))
    onnx.save(m, str(out / "model.onnx"))
    return out


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_model_output_is_a_per_file_error(tmp_path: Path, good: Path, value: float) -> None:
    model = _broken_model(tmp_path / "broken", value)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR * 2, dtype=np.float32), SR)
    for fmt in ("json", "csv"):
        p = ser("analyze", "--model", model, "--format", fmt, "--segments", good, silent, timeout=60)
        no_traceback(p)
        assert p.returncode == 1
        if fmt == "json":
            by = {Path(d["path"]).name: d for d in strict_json(p.stdout)}
            bad = by["good.wav"]
            assert bad["ok"] is False
            assert bad["label"] is None
            assert bad["probabilities"] == {}
            assert "the model produced non-finite output" in bad["error"]
            assert str(good) in bad["error"]
            assert by["silent.wav"]["ok"] is True
            assert by["silent.wav"]["label"] is None  # no speech, no model call
        else:
            rows = list(csv.DictReader(io.StringIO(p.stdout.decode("utf-8"))))
            # the failed file keeps its file row, with the reason in the error column and no label
            assert any(r["kind"] == "file" and r["ok"] == "0" and "non-finite output" in r["error"]
                       and r["label"] == "" for r in rows)
            for r in rows:  # every number written is finite; no row carries a label for good.wav
                for k in ("start_s", "end_s", *[k for k in r if k.startswith("p_")]):
                    assert r[k] == "" or np.isfinite(float(r[k])), r
                assert not (r["path"].endswith("good.wav") and r["speech"] == "1")
    assert "good.wav: the model produced non-finite output" in p.stderr.decode()


# ----------------------------------------------------------------------------- truncated files
def _truncated(tmp_path: Path, ext: str, fraction: float = 0.6) -> Path:
    kw: dict[str, Any] = {"format": "OGG", "subtype": "VORBIS"} if ext == "ogg" else {}
    p = tmp_path / f"cut.{ext}"
    sf.write(p, synth_speechlike(seconds=20.0, seed=8), SR, **kw)
    with open(p, "r+b") as fh:
        fh.truncate(int(p.stat().st_size * fraction))
    return p


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_truncated_file_yields_what_decoded_marked_partial(tiny_model_dir: Path, tmp_path: Path, ext: str,
                                                            good: Path) -> None:
    cut = _truncated(tmp_path, ext)
    whole = tmp_path / f"whole.{ext}"
    sf.write(whole, synth_speechlike(seconds=20.0, seed=8), SR,
             **({"format": "OGG", "subtype": "VORBIS"} if ext == "ogg" else {}))
    p = ser("analyze", "--model", tiny_model_dir, "--format", "json", cut, whole, good, timeout=60)
    no_traceback(p)
    assert p.returncode == 0, p.stderr  # a partial result is a success
    by = {Path(d["path"]).name: d for d in strict_json(p.stdout)}
    d = by[cut.name]
    assert d["ok"] is True
    assert d["label"]
    assert d["speech_s"] > 0
    assert 1.0 < d["duration_s"] < 19.0
    assert d["warning"].startswith("decoding stopped at "), d["warning"]
    stopped = float(d["warning"].split("decoding stopped at ")[1].split(" s:")[0])
    assert abs(stopped - d["duration_s"]) < 0.2
    if ext in ("wav", "flac"):
        assert d["duration_s"] > 0.4 * 20  # 60 % of the bytes: most of it decoded
    # intact files are never marked partial
    assert by[whole.name]["warning"] is None
    assert by[whole.name]["duration_s"] == pytest.approx(20.0, abs=0.05)
    assert by["good.wav"]["warning"] is None
    assert f"warning: {cut}: decoding stopped at" in p.stderr.decode()

    c = ser("analyze", "--model", tiny_model_dir, "--format", "csv", cut, good, timeout=60)
    rows = list(csv.DictReader(io.StringIO(c.stdout.decode("utf-8"))))
    header = next(csv.reader(io.StringIO(c.stdout.decode("utf-8"))))
    assert header[-1] == "warning"
    assert header[:3] == ["path", "ok", "error"]
    assert rows[0]["warning"] == d["warning"]
    assert rows[0]["ok"] == "1"
    assert rows[1]["warning"] == ""
    t = ser("analyze", "--model", tiny_model_dir, cut, timeout=60)
    assert f"partial: {d['warning']}" in t.stdout.decode()


def test_truncation_without_partial_ok_still_raises(tmp_path: Path) -> None:
    cut = _truncated(tmp_path, "flac")
    with pytest.raises(AudioError, match="decoding failed after"):
        for _ in iter_audio_blocks(cut):
            pass
    info: dict[str, Any] = {}
    n = sum(b.shape[0] for b in iter_audio_blocks(cut, info=info, partial_ok=True))
    assert n > 8 * SR
    assert info["warning"].startswith(f"decoding stopped at {n / SR:.1f} s")


def test_find_audio_files_never_raises_on_loops(tmp_path: Path) -> None:
    os.symlink("a.wav", tmp_path / "b.wav")
    os.symlink("b.wav", tmp_path / "a.wav")
    files, problems = find_audio_files([tmp_path, tmp_path / "a.wav"])
    assert files == []
    assert [p.name for p, _ in problems] == ["a.wav", "b.wav"]
    assert all("symlink loop" in m for _, m in problems)


# ----------------------------------------------------------------------------- Ctrl-C
@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 minutes of synthetic speech-like audio, 48 kHz stereo (decoded and resampled as a real one)."""
    p = tmp_path_factory.mktemp("long") / "long.wav"
    y = synth_speechlike(seconds=30.0, seed=9, sample_rate=48000)
    st = np.stack([y, 0.8 * y], axis=1)
    with sf.SoundFile(p, "w", 48000, 2, subtype="PCM_16") as f:
        for _ in range(40):
            f.write(st)
    return p


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
    assert proc.stdout is not None
    buf = b""
    fd = proc.stdout.fileno()
    end = time.monotonic() + timeout
    import select

    while marker not in buf:
        assert time.monotonic() < end, f"no {marker!r} on stdout in {timeout} s: {buf!r}"
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            chunk = os.read(fd, 65536)
            assert chunk, f"stdout closed before {marker!r}: {buf!r}"
            buf += chunk
    return buf


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_batch_with_valid_partial_output(shipped_model_dir: Path, tmp_path: Path,
                                                                long_file: Path, workers: int) -> None:
    first = tmp_path / "first.wav"
    last = tmp_path / "last.wav"
    write_speech(first, seconds=2.0, seed=10)
    write_speech(last, seconds=2.0, seed=11)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_engine.cli", "analyze", "--model", str(shipped_model_dir), "--format", "json",
         "--workers", str(workers), str(first), str(long_file), str(last)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT,
    )
    try:
        head = _read_until(proc, b"first.wav", timeout=60)
        time.sleep(0.2)  # the 20-minute file is being analysed now (it takes seconds; any moment gives the same result)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)  # a guard: how fast it stops is measured by bench/bench_interrupt.py
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    data = strict_json(head + rest)  # closed properly
    assert [Path(d["path"]).name for d in data] == ["first.wav"]  # the long file was cut short, not reported
    assert data[0]["ok"] is True
    text = err.decode()
    assert "interrupted: 1 of 3 results written" in text
    assert "Traceback" not in text


def test_second_ctrl_c_after_first_also_exits(shipped_model_dir: Path, long_file: Path) -> None:
    """Two quick Ctrl-C (an impatient user) still give exit 130 and valid JSON."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_engine.cli", "analyze", "--model", str(shipped_model_dir), "--format", "json",
         "--workers", "1", str(long_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT,
    )
    try:
        head = _read_until(proc, b"[", timeout=60)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert strict_json(head + rest) == []
    assert "Traceback" not in err.decode()


def test_real_corpus_clips_are_never_marked_partial(corpus_dir: Path, shipped_model: Any) -> None:
    """No false alarm: intact clips of every corpus (WAV of several writers) carry no warning."""
    checked = 0
    for corpus in sorted(p for p in corpus_dir.iterdir() if p.is_dir()):
        clips = sorted(c for c in corpus.rglob("*") if c.suffix.lower() in (".wav", ".flac", ".ogg"))[:3]
        for clip in clips:
            res = analyze_file(clip, shipped_model)
            assert res.ok, (clip, res.error, res.warning)
            assert res.warning is None, (clip, res.error, res.warning)
            assert res.to_dict()["warning"] is None
            checked += 1
    assert checked >= 20
