"""Ctrl-C latency: how long ``ser analyze`` and ``ser listen`` take to stop after SIGINT.

Writes the "Ctrl-C latency" part of the "Faults" section of docs/benchmarks.md.

* ``ser analyze`` on a 20-minute synthetic file (48 kHz stereo FLAC: a 200 Hz pulse train with
  quiet noise, made in a temporary folder and deleted afterwards), ``--format json``, with
  ``--workers 1`` and ``--workers 2``: SIGINT is sent 3 s after the process starts (the model is
  loaded and a file is in flight); measured from the signal to the process's exit; the exit code
  and whether the JSON on stdout is complete are recorded.
* ``ser listen`` on the default input (the PulseAudio virtual microphone on CI machines): SIGINT
  after 4 s, same measure.

Usage: ``python bench/bench_interrupt.py [--repeats 5] [--no-write]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from bench.bench_faults import _cpu_model, write_section  # noqa: E402

SUBSECTION = "### Ctrl-C latency"


def make_long_file(path: Path, minutes: float = 20.0, rate: int = 48000) -> None:
    """Write a stereo FLAC of ``minutes`` of gated tone plus noise."""
    rng = np.random.default_rng(0)
    block = rate * 10
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=2, format="FLAC", subtype="PCM_16") as f:
        for i in range(int(minutes * 6)):
            t = (np.arange(block) + i * block) / rate
            y = 0.3 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 3 * t) > 0) + 0.01 * rng.standard_normal(block)
            f.write(np.stack([y, y], axis=1).astype(np.float32))


def interrupt(cmd: list[str], after_s: float) -> tuple[float, int, bool]:
    """Run ``cmd``, SIGINT after ``after_s``; return (seconds to exit, exit code, stdout is valid JSON)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    time.sleep(after_s)
    t0 = time.perf_counter()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    dt_s = time.perf_counter() - t0
    text = out.decode("utf-8", "replace").strip()
    try:
        if text.startswith("["):
            json.loads(text)
        else:
            [json.loads(x) for x in text.splitlines()]  # JSON lines
        valid = bool(text)
    except ValueError:
        valid = False
    return dt_s, p.returncode, valid


def main() -> int:
    """Run the interrupt benchmark; return the exit status."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    ser = str(Path(sys.executable).with_name("ser"))
    load0 = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        long = Path(tmp) / "long.flac"
        make_long_file(long)
        for workers in (1, 2):
            cmd = [ser, "analyze", str(long), str(long), "--format", "json", "--workers", str(workers),
                   "--progress", "never"]
            runs = [interrupt(cmd, 3.0) for _ in range(args.repeats)]
            rows.append((f"`ser analyze` (20-min FLAC, `--workers {workers}`, JSON)", runs))
        runs = [interrupt([ser, "listen", "--format", "jsonl"], 4.0) for _ in range(args.repeats)]
        rows.append(("`ser listen` (virtual microphone, JSON lines)", runs))
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SUBSECTION,
        "",
        f"Measured {when} on {_cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, by "
        f"`python bench/bench_interrupt.py` ({args.repeats} runs each; 1-minute load average {load0:.1f} at the "
        "start). SIGINT is sent while work is in flight; time from the signal to the process's exit.",
        "",
        "| mode | median | max | exit codes | output valid |",
        "|---|---|---|---|---|",
    ]
    for name, runs in rows:
        times = [r[0] for r in runs]
        codes = sorted({r[1] for r in runs})
        valid = sum(r[2] for r in runs)
        lines.append(
            f"| {name} | {1000 * statistics.median(times):.0f} ms | {1000 * max(times):.0f} ms | "
            f"{', '.join(map(str, codes))} | {valid}/{len(runs)} |"
        )
    lines += ["", "Target: within a second in every mode, with valid partial output.", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, ROOT / "docs" / "benchmarks.md", subsection=SUBSECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
