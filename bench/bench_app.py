"""Desktop-app benchmark on the virtual microphone; writes the "Desktop app" section of docs/benchmarks.md.

Measures, with the real app window (offscreen) recording from the default
input (PulseAudio null sink ``vmic``, see DEVELOPERS.md):

* CPU use of the app process (all threads: PortAudio callback, engine worker,
  ONNX Runtime, Qt repaint at ~30 fps) over >= 60 s of streamed corpus speech,
  as a percentage of one core; resident memory (peak VmHWM and mean RSS);
  overruns (input overflows and samples lost between ring buffers);
  inference time per step.
* Delay from a sound's onset in the virtual microphone to the waveform
  showing it and to the first prediction whose window includes it. Onsets are
  played by a sounddevice OutputStream into the same sink; the onset time is
  the output callback's DAC time of the onset sample (PortAudio clock
  mapped onto time.monotonic), the "shown" time is when the repaint timer
  drew a waveform containing it / when the prediction reached the GUI thread.
* Launch to a ready window: ``python -m desktop_app.main`` in a fresh process
  until the first event-loop turn after ``show()`` (median of 5).

Usage: ``python bench/bench_app.py [--seconds 65] [--model-dir models] [--no-write]``.
Unless ``PULSE_SERVER`` names a server already, the benchmark starts a PulseAudio daemon of its
own with the ``vmic`` null sink (``tests/private_pulse.py``, as the tests do) and stops it at the
end; the user's sound server is never used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

TARGETS = {
    "cpu_pct": 12.0,
    "rss_mb": 350.0,
    "wave_ms": 100.0,
    "launch_s": 2.0,
}


def _rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of every thread of this process now: ``{tid: (kernel name, seconds)}``."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = (comm, (int(fields[11]) + int(fields[12])) / tick)
    return out


def thread_split(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                 names: dict[int, str], wall: float) -> list[tuple[str, float]]:
    """Per-thread CPU between two :func:`thread_cpu` snapshots, as % of one core, busiest first.

    Python threads are named by ``names`` (native id -> name); the others keep their kernel
    name (native threads: PortAudio's callback thread, the PulseAudio client's, BLAS, Qt).
    Threads that ended between the snapshots are not counted.
    """
    rows = []
    for tid, (comm, sec) in after.items():
        used = sec - before.get(tid, (comm, 0.0))[1]
        rows.append((names.get(tid, f"{comm} ({tid})"), 100.0 * used / wall))
    return sorted(rows, key=lambda r: -r[1])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def speech_track(corpus: Path, seconds: float, rate: int = 16000) -> np.ndarray:
    """Real corpus speech (RAVDESS, several actors) concatenated with 0.3 s gaps, >= ``seconds`` long."""
    from ser_engine.dsp.audio import load_audio

    files = sorted((corpus / "ravdess").glob("Actor_0[1-6]/*.flac"))[::7]
    parts: list[np.ndarray] = []
    total = 0
    gap = np.zeros(int(0.3 * rate), dtype=np.float32)
    for f in files:
        y = load_audio(f, sample_rate=rate).samples
        parts += [y, gap]
        total += y.shape[0] + gap.shape[0]
        if total >= seconds * rate:
            break
    return np.concatenate(parts)


def launch_times(model_dir: Path, runs: int = 5) -> list[float]:
    """Measure ``ser-app``'s launch-to-ready time ``runs`` times (seconds)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SER_APP_REPORT_READY="quit", QT_QPA_PLATFORM="offscreen",
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        for _ in range(runs):
            t0 = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "desktop_app.main", "--model-dir", str(model_dir),
                                     "--settings-file", str(Path(tmp) / "s.ini")], env=env, cwd=tmp,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("ready"):
                    out.append(time.monotonic() - t0)
                    break
            proc.wait(timeout=30)
    return out


class OnsetPlayer:
    """Plays bursts into the default output (the vmic sink) and records each onset's DAC time."""

    def __init__(self, signal: np.ndarray, rate: int, onsets: list[int]) -> None:
        self.signal, self.rate, self.onsets = signal, rate, onsets
        self.pos = 0
        self.onset_times: dict[int, float] = {}
        self.done = threading.Event()
        import sounddevice as sd

        self.stop_exc = sd.CallbackStop

    def callback(self, outdata, frames, time_info, status) -> None:  # audio thread: no imports here
        """Copy the next block out and note when its sound reaches the sink (PortAudio's callback)."""
        del status  # PortAudio's callback signature
        now = time.monotonic()
        dac_offset = max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
        start = self.pos
        chunk = self.signal[start : start + frames]
        outdata[: chunk.shape[0], 0] = chunk
        outdata[chunk.shape[0] :, 0] = 0
        for k, on in enumerate(self.onsets):
            if start <= on < start + frames:
                self.onset_times[k] = now + dac_offset + (on - start) / self.rate
        self.pos = start + frames
        if self.pos >= self.signal.shape[0]:
            raise self.stop_exc


def run(args: argparse.Namespace) -> dict[str, object]:
    """Run the app on the virtual microphone and measure it; returns the figures."""
    load_at_start = os.getloadavg()[0]
    import sounddevice as sd
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop_app import qt_messages
    from desktop_app.main import single_threaded_blas
    from desktop_app.main_window import MainWindow, load_model
    from desktop_app.settings import AppSettings
    from desktop_app.theme import apply_theme

    qt_messages.install()  # as the app's start-up does: no offscreen size-hints noise
    app = QApplication.instance() or QApplication(["bench"])
    apply_theme(app)
    model, err = load_model(args.model_dir)
    if model is None:
        raise SystemExit(f"bench_app: {err}")
    single_threaded_blas()  # as the app's start-up does
    tmp = Path(tempfile.mkdtemp(prefix="bench-app-"))
    settings = AppSettings(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings, model=model)
    window.resize(1280, 860)
    window.show()
    live = window.live
    hop = settings.stream_settings.hop_s

    from PySide6.QtCore import QEventLoop, QTimer

    def wait_until(cond, timeout: float, every_ms: int = 50) -> None:
        """Run the real event loop (as app.exec() would) until cond() or timeout."""
        loop = QEventLoop()
        end = time.monotonic() + timeout
        timer = QTimer()
        timer.setInterval(every_ms)
        timer.timeout.connect(lambda: loop.quit() if cond() or time.monotonic() >= end else None)
        timer.start()
        loop.exec()
        timer.stop()

    def pump(seconds: float) -> None:
        wait_until(lambda: False, seconds)

    # ---------------------------------------------------------------- CPU / RSS over streamed speech
    rate = model.feature_config.sample_rate
    track = speech_track(args.corpus, args.seconds, rate)
    wav = tmp / "speech.wav"
    sf.write(str(wav), track, rate, subtype="PCM_16")
    if not live.start():
        raise SystemExit(f"bench_app: cannot start live mode: {live.banner.text()}")
    pump(2.0)
    rss: list[float] = []
    compute: list[float] = []
    live.controller.prediction.connect(lambda p: compute.append(p.compute_ms) if p.speech else None)
    n_pred0 = live.predictions_received
    proc = subprocess.Popen(["paplay", "-d", "vmic", str(wav)])
    w0, c0, g0 = time.monotonic(), time.process_time(), time.thread_time()
    t0 = thread_cpu()

    def poll() -> bool:
        rss.append(_rss_mb())
        return proc.poll() is not None

    wait_until(poll, args.seconds + 120, every_ms=1000)
    wall, cpu, gui = time.monotonic() - w0, time.process_time() - c0, time.thread_time() - g0
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    names[threading.main_thread().native_id or 0] = "GUI"
    threads = thread_split(t0, thread_cpu(), names, wall)
    stats = live.controller.stats()
    n_pred = live.predictions_received - n_pred0
    speech_steps = len(compute)

    # ---------------------------------------------------------------- onset delays
    out_rate = 48000
    burst_s, gap_s, n_bursts = 1.0, 3.3, 8
    from desktop_app.self_test import synth_speech

    burst = synth_speech(seconds=burst_s, sample_rate=out_rate, level=0.5)
    # gaps that are not multiples of the hop, so the onsets fall at different phases of the hop grid
    parts, onsets, pos = [], [], 0
    for k in range(n_bursts):
        gap = np.zeros(int((gap_s + 0.137 * k) * out_rate), np.float32)
        parts += [gap, burst]
        onsets.append(pos + gap.shape[0])
        pos += gap.shape[0] + burst.shape[0]
    signal = np.concatenate(parts)
    player = OnsetPlayer(signal, out_rate, onsets)
    wave_seen: dict[int, float] = {}
    onset_pos: dict[int, int] = {}
    pred_seen: dict[int, float] = {}
    session = live.controller.session
    threshold = 0.02

    def on_wave(pos: int) -> None:
        now = time.monotonic()
        k = len(wave_seen)
        if k >= n_bursts or k not in player.onset_times:
            return
        tail = session.audio.latest(int(0.2 * rate))
        idx = np.flatnonzero(np.abs(tail) > threshold)
        if idx.size:
            wave_seen[k] = now
            onset_pos[k] = pos - tail.shape[0] + int(idx[0])

    def on_pred(p) -> None:
        now = time.monotonic()
        for k, op in onset_pos.items():
            if k not in pred_seen and p.end_s * rate >= op:
                pred_seen[k] = now

    live.waveform_painted.connect(on_wave)
    live.controller.prediction.connect(on_pred)
    pump(1.0)
    with sd.OutputStream(samplerate=out_rate, channels=1, dtype="float32", callback=player.callback,
                         finished_callback=player.done.set):
        wait_until(player.done.is_set, len(signal) / out_rate + 30)
        pump(hop + 1.0)
    live.stop()
    wave_ms = [1000 * (wave_seen[k] - player.onset_times[k]) for k in wave_seen if k in player.onset_times]
    pred_ms = [1000 * (pred_seen[k] - player.onset_times[k]) for k in pred_seen if k in player.onset_times]
    window.close()
    app.processEvents()

    launches = launch_times(args.model_dir)
    return {
        "load_at_start": load_at_start,
        "model": model.name,
        "seconds": wall,
        "cpu_pct": 100.0 * cpu / wall,
        "gui_pct": 100.0 * gui / wall,
        "threads": threads,
        "rss_peak_mb": _rss_mb("VmHWM"),
        "rss_mean_mb": statistics.mean(rss) if rss else float("nan"),
        "rss_max_mb": max(rss) if rss else float("nan"),
        "overflows": stats.overflows if stats else -1,
        "lost": stats.lost_samples if stats else -1,
        "predictions": n_pred,
        "speech_steps": speech_steps,
        "compute_ms_median": statistics.median(compute) if compute else float("nan"),
        "compute_ms_p95": float(np.percentile(compute, 95)) if compute else float("nan"),
        "engine_delay_ms": stats.delay_ms if stats else None,
        "wave_ms": wave_ms,
        "pred_ms": pred_ms,
        "hop_ms": 1000 * hop,
        "launch_s": launches,
        "device_rate": int(stats.device_rate) if stats else None,
    }


def _fmt_ms(vals: list[float]) -> str:
    if not vals:
        return "not measured"
    return f"median {statistics.median(vals):.0f} ms, max {max(vals):.0f} ms (n={len(vals)})"


def _fmt_threads(rows: object, floor: float = 0.5) -> str:
    """``name x.x %`` for the threads of :func:`thread_split` that used at least ``floor`` % of a core."""
    assert isinstance(rows, list)
    shown = [f"{name} {pct:.1f} %" for name, pct in rows if pct >= floor]
    rest = len(rows) - len(shown)
    return ", ".join(shown) + (f" ({rest} other threads under {floor:g} % each)" if rest else "")


def section(r: dict[str, object]) -> str:
    """Format the figures as the "Desktop app" section of docs/benchmarks.md (Markdown)."""

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    wave = r["wave_ms"]
    pred = r["pred_ms"]
    hop_ms = float(r["hop_ms"])  # type: ignore[arg-type]
    launches = r["launch_s"]
    assert isinstance(wave, list)
    assert isinstance(pred, list)
    assert isinstance(launches, list)
    lines = [
        "## Desktop app",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {_cpu_model()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"model `{r['model']}`, by `python bench/bench_app.py` (real window offscreen, live mode on the "
        f"PulseAudio virtual microphone, device opened at {r['device_rate']} Hz). 1-minute load average "
        f"{float(r.get('load_at_start', float('nan'))):.1f} at the start (above about 1, other jobs shared the "  # type: ignore[arg-type]
        "cores and the CPU and delay figures are upper bounds).",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
        f"| app CPU, {float(r['seconds']):.0f} s of streamed corpus speech (% of one core) | "  # type: ignore[arg-type]
        f"{float(r['cpu_pct']):.1f} % | ≤ {TARGETS['cpu_pct']:g} % | "  # type: ignore[arg-type]
        f"{met(float(r['cpu_pct']) <= TARGETS['cpu_pct'])} |",  # type: ignore[arg-type]
        f"| resident memory (peak / mean while streaming) | {float(r['rss_peak_mb']):.0f} MB / "  # type: ignore[arg-type]
        f"{float(r['rss_mean_mb']):.0f} MB | ≤ 350 MB | {met(float(r['rss_peak_mb']) <= TARGETS['rss_mb'])} |",  # type: ignore[arg-type]
        f"| sound onset → waveform shows it | {_fmt_ms(wave)} | ≤ 100 ms | "
        f"{met(bool(wave) and max(wave) <= TARGETS['wave_ms'])} |",
        f"| sound onset → first prediction including it | {_fmt_ms(pred)} | ≤ hop + 150 = {hop_ms + 150:.0f} ms | "
        f"{met(bool(pred) and max(pred) <= hop_ms + 150)} |",
        f"| launch → ready window (fresh process, median of {len(launches)}) | "
        f"{statistics.median(launches):.2f} s (max {max(launches):.2f} s) | ≤ 2 s | "
        f"{met(statistics.median(launches) <= TARGETS['launch_s'])} |",
        f"| overruns (input overflows / samples lost) | {r['overflows']} / {r['lost']} | none | "
        f"{met(r['overflows'] == 0 and r['lost'] == 0)} |",
        f"| inference per speech step (median / p95) | {float(r['compute_ms_median']):.1f} ms / "  # type: ignore[arg-type]
        f"{float(r['compute_ms_p95']):.1f} ms | — | |",  # type: ignore[arg-type]
        "",
        f"CPU split: the GUI thread (30 fps waveform and meter repaint, widgets) {float(r['gui_pct']):.1f} %, "  # type: ignore[arg-type]
        f"the other threads (PortAudio callback, engine worker with resampling, features and ONNX Runtime) "
        f"{float(r['cpu_pct']) - float(r['gui_pct']):.1f} % of one core; per thread: {_fmt_threads(r['threads'])}. "  # type: ignore[arg-type]
        f"{r['predictions']} predictions ({r['speech_steps']} on speech) during the speech run. "
        "The onset delays include PulseAudio's and PortAudio's buffering, the worker's 10 ms polling, the "
        "~33 ms repaint period (waveform) and the wait for the next hop boundary (prediction).",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, path: Path) -> None:
    """Replace the "Desktop app" section of ``path`` with ``text`` (the other sections kept)."""
    heads = ["## Engine", "## Training", "## Desktop app", "## Packaging"]
    if not path.exists():
        path.write_text("# Benchmarks\n\n" + "\n".join(f"{h}\n\n(not measured yet)\n" for h in heads))
    doc = path.read_text()
    start = doc.find("## Desktop app")
    if start < 0:
        doc = doc.rstrip() + "\n\n" + text
    else:
        nxt = doc.find("\n## ", start + 3)
        doc = doc[:start] + text.rstrip() + "\n" + ("" if nxt < 0 else "\n" + doc[nxt + 1 :])
    path.write_text(doc)


def main() -> int:
    """Measure the app and write the section; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=65.0, help="seconds of streamed speech (>= 60)")
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "ser")
    p.add_argument("--no-write", action="store_true", help="print only; do not edit docs/benchmarks.md")
    args = p.parse_args()
    pulse = None
    if not os.environ.get("PULSE_SERVER"):
        sys.path.insert(0, str(ROOT / "tests"))
        from private_pulse import start_private_pulse

        pulse, problem = start_private_pulse()
        if problem:
            pulse.close()
            raise SystemExit(f"bench_app: {problem}")
    try:
        r = run(args)
    finally:
        if pulse is not None:
            pulse.close()
    text = section(r)
    print(text)
    if not args.no_write:
        write_section(text, ROOT / "docs" / "benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
