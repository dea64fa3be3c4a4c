"""Packaging benchmark; writes the "Packaging" section of docs/benchmarks.md.

Measures

* size on disk of the one-folder bundle (``dist/ser``; target <= 250 MB) and of the ``.deb``;
* launch to a ready window (offscreen Qt; wall time from spawning the process until the app
  prints ``ready`` on the first event-loop turn after ``show()``, ``SER_APP_REPORT_READY=quit``;
  target <= 2 s) and launch to an ``analyze`` result on one real clip (wall time of the whole
  process), for
  - the installed Debian package (``/usr/bin/ser-app``; installed by this script with
    ``dpkg -i`` and removed again afterwards, unless it was already installed),
  - the bundle folder (``dist/ser/ser-app``),
  - the source checkout (``python -m desktop_app.main`` / ``python -m ser_engine.cli``).

"cold" is the first launch of each variant after the previous one (page cache as it is: the
machine's caches are not dropped, which needs privileges we do not take); "warm" is the
median of the following runs.

Usage: ``python bench/bench_packaging.py [--runs 5] [--dist dist] [--no-install] [--no-write]``
(build first: ``bash packaging/build_bundle.sh && bash packaging/build_deb.sh``).
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTIONS = ["Engine", "Training", "Desktop app", "Packaging"]
CLIP = ROOT.parent / "shared" / "data" / "ser" / "ravdess" / "Actor_01" / "03-01-05-02-01-01-01.flac"
TARGET_BUNDLE_MB = 250.0
TARGET_READY_S = 2.0


def disk_mb(path: Path) -> float:
    """Allocated size on disk (like ``du``), symlinks not followed, in MB (10^6 bytes)."""
    if path.is_file():
        return path.stat().st_blocks * 512 / 1e6
    total = 0
    for p in path.rglob("*"):
        if not p.is_symlink():
            total += p.lstat().st_blocks * 512
    return total / 1e6


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def time_ready(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 60) -> float:
    """Seconds from spawn to the app's ``ready`` line."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    took = float("nan")
    for line in proc.stdout:
        if line.startswith("ready"):
            took = time.monotonic() - t0
            break
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if took != took:
        raise RuntimeError(f"{' '.join(cmd)} never printed 'ready' (exit {proc.returncode})")
    return took


def time_analyze(cmd: list[str], *, env: dict[str, str], cwd: Path) -> float:
    """Return the wall time of one ``analyze`` run of ``cmd`` (raise when it fails)."""
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.monotonic() - t0
    if proc.returncode != 0 or '"ok": true' not in proc.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return took


def measure(name: str, app: list[str], cli: list[str], *, runs: int, env: dict[str, str]) -> dict[str, object]:
    """Time the app's start to ready and one ``analyze``, ``runs`` times, for one way of installing."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = ["--settings-file", str(Path(tmp) / "s.ini")]
        ready = [time_ready(app + settings, env=env, cwd=Path(tmp)) for _ in range(runs)]
        analyze = [time_analyze([*cli, "analyze", "--format", "json", "--progress", "never", str(CLIP)],
                                env=env, cwd=Path(tmp)) for _ in range(runs)]
    row = {"name": name, "ready": ready, "analyze": analyze}
    print(f"{name}: ready cold {ready[0]:.2f} s warm {statistics.median(ready[1:] or ready):.2f} s; "
          f"analyze cold {analyze[0]:.2f} s warm {statistics.median(analyze[1:] or analyze):.2f} s", flush=True)
    return row


def dpkg_installed(package: str) -> bool:
    """Tell whether dpkg has ``package`` installed."""
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == "install ok installed"


def run(args: argparse.Namespace) -> dict[str, object]:
    """Measure the installed .deb, the bundle folder and the source checkout."""
    dist = args.dist.resolve()
    bundle = dist / "ser"
    debs = sorted(dist.glob("ser_*.deb"))
    if not (bundle / "ser-app").is_file() or not debs:
        raise SystemExit(f"error: no bundle/.deb in {dist}: run packaging/build_bundle.sh and build_deb.sh first")
    if not CLIP.is_file():
        raise SystemExit(f"error: clip {CLIP} not found")
    deb = debs[-1]
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "SER_MODEL_DIR"}}
    env.update(QT_QPA_PLATFORM="offscreen", SER_APP_REPORT_READY="quit")
    res: dict[str, object] = {
        "date": dt.date.today().isoformat(),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "load": os.getloadavg()[0],
        "bundle_mb": disk_mb(bundle),
        "deb_mb": deb.stat().st_size / 1e6,
        "deb": deb.name,
        "rows": [],
    }
    rows: list[dict[str, object]] = []
    installed_here = False
    if not args.no_install and not dpkg_installed("ser"):
        subprocess.run(["dpkg", "-i", str(deb)], check=True, capture_output=True)
        installed_here = True
    try:
        if dpkg_installed("ser"):
            res["installed_mb"] = disk_mb(Path("/opt/ser"))
            rows.append(measure("installed .deb (/usr/bin/ser-app, /usr/bin/ser)", ["/usr/bin/ser-app"],
                                ["/usr/bin/ser"], runs=args.runs, env=env))
    finally:
        if installed_here:
            subprocess.run(["dpkg", "-r", "ser"], check=True, capture_output=True)
    rows.append(measure("bundle folder (dist/ser/ser-app)", [str(bundle / "ser-app")], [str(bundle / "ser-app")],
                        runs=args.runs, env=env))
    src_env = dict(env, PYTHONPATH=str(ROOT))
    rows.append(measure(f"source checkout ({Path(sys.executable).name} -m …)",
                        [sys.executable, "-m", "desktop_app.main"], [sys.executable, "-m", "ser_engine.cli"],
                        runs=args.runs, env=src_env))
    res["rows"] = rows
    return res


def render(res: dict[str, object]) -> str:
    """Render the results as the Markdown section of ``docs/benchmarks.md``."""
    def met(ok: bool) -> str:
        return "met" if ok else "**missed**"

    bundle_mb = float(res["bundle_mb"])  # type: ignore[arg-type]
    lines = [
        "## Packaging",
        "",
        f"Measured {res['date']} on {res['machine']} (1-min load average {float(res['load']):.1f} at the start: the",  # type: ignore[arg-type]
        "cores were shared with other jobs) by `bench/bench_packaging.py`. Launch times are wall time from",
        "spawning the process: to the `ready` line on the first event-loop turn after the main window's `show()`",
        "(offscreen Qt), and to the end of `analyze --format json` on one RAVDESS clip (4.1 s FLAC). cold = first",
        "launch (page cache not dropped), warm = median of the following runs.",
        "",
        "| figure | value | target | |",
        "|---|---|---|---|",
        f"| bundle `dist/ser` on disk | {bundle_mb:.0f} MB | ≤ {TARGET_BUNDLE_MB:.0f} MB | "
        f"{met(bundle_mb <= TARGET_BUNDLE_MB)} |",
        f"| `{res['deb']}` | {float(res['deb_mb']):.0f} MB (zstd) | | |",  # type: ignore[arg-type]
    ]
    if "installed_mb" in res:
        lines.append(f"| installed `/opt/ser` | {float(res['installed_mb']):.0f} MB | | |")  # type: ignore[arg-type]
    lines += ["", "| variant | ready window cold | ready window warm | analyze cold | analyze warm |",
              "|---|---|---|---|---|"]
    for row in res["rows"]:  # type: ignore[attr-defined]
        ready, analyze = row["ready"], row["analyze"]
        warm_ready = statistics.median(ready[1:] or ready)
        warm_analyze = statistics.median(analyze[1:] or analyze)
        lines.append(f"| {row['name']} | {ready[0]:.2f} s | {warm_ready:.2f} s ({met(warm_ready <= TARGET_READY_S)}"
                     f" ≤ {TARGET_READY_S:.0f} s) | {analyze[0]:.2f} s | {warm_analyze:.2f} s |")
    lines += ["", "Re-run: `bash packaging/build_bundle.sh && bash packaging/build_deb.sh && "
              "python bench/bench_packaging.py` (as root, to install the .deb).", ""]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    """Replace the packaging section of ``docs/benchmarks.md`` with ``section``."""
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else (
        "# Benchmarks\n\n" + "".join(f"## {s}\n\n(not measured yet)\n\n" for s in SECTIONS))
    lines = text.split("\n")
    if "## Packaging" not in lines:
        lines += ["", "## Packaging", ""]
    start = lines.index("## Packaging")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    new = lines[:start] + section.rstrip("\n").split("\n") + [""] + lines[end:]
    DOC.write_text("\n".join(new).rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    """Run the packaging benchmark; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="folder with ser/ and ser_*.deb")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-install", action="store_true", help="do not install the .deb (not root)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not edit docs/benchmarks.md")
    args = ap.parse_args()
    section = render(run(args))
    print(section)
    if not args.no_write:
        write_doc(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
