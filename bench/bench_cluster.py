"""``ser analyze --cluster local:2`` against a local ``--workers 2`` run on the same 2,000 real clips.

Writes the "Cluster" section of docs/benchmarks.md and ``bench/results/cluster.json``.

* The files: 2,000 clips of ``../shared/data/ser`` listed on the command line (nothing is
  copied): every RAVDESS and SAVEE clip (FLAC, 1,920) and the first 80 CREMA-D clips (Opus).
* Each run is the whole ``ser analyze --format json --progress never`` process, from start to
  exit: the local run (``--workers 2``: two threads) and the cluster run (``--cluster local:2``:
  a Dask scheduler in the process and two worker processes, each loading the model once),
  alternated, ``--repeats`` times each; the medians are reported. The two outputs are compared
  byte for byte.
* The per-file overhead of the cluster path, with each path's fixed cost (the same command on
  one file) taken out: ``((cluster 2000 - cluster 1) - (local 2000 - local 1)) / 1999``, in wall
  time and in CPU time (the process and its workers, from ``RUSAGE_CHILDREN``). Measured on the
  clips, and on 2,000 text files named .wav (made in a temporary folder), each of which fails at
  its header: with nothing to analyse, what is left is the cost of the path itself.

The machine is shared: the 1-minute load average at the start and the end is written with
the figures.

Usage: ``python bench/bench_cluster.py [--repeats 3] [--no-write]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_faults import _cpu_model  # noqa: E402

SECTION = "## Cluster"
CORPUS = Path(os.environ.get("SER_CORPUS_DIR", ROOT.parent / "shared" / "data" / "ser"))
N_FILES = 2000


def clips(corpus: Path, n: int = N_FILES) -> list[Path]:
    """Return ``n`` real clips: RAVDESS, SAVEE, then CREMA-D, each sorted."""
    found = sorted((corpus / "ravdess").rglob("*.flac")) + sorted((corpus / "savee").rglob("*.flac"))
    found += sorted((corpus / "crema-d").rglob("*.ogg"))[: max(0, n - len(found))]
    if len(found) < n:
        raise SystemExit(f"only {len(found)} clips under {corpus}, {n} needed")
    return found[:n]


def run(args: list[str], out: Path) -> tuple[float, float, int]:
    """Run ``ser analyze`` with ``args``, stdout to ``out``; return (wall s, CPU s of it and its children, exit)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with out.open("wb") as fh:
        p = subprocess.run([str(Path(sys.executable).parent / "ser"), "analyze", "--format", "json", "--progress",
                            "never", *args], stdout=fh, stderr=subprocess.PIPE, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode not in (0, 1):
        raise SystemExit(f"ser analyze {' '.join(args[:3])}... exited {p.returncode}: {p.stderr.decode()[-2000:]}")
    return wall, cpu, p.returncode


def measure(files: list[Path], repeats: int, tmp: Path) -> dict[str, Any]:
    """Run both paths on one clip, on all of them and on as many files that fail at once; return the figures."""
    names = [str(f) for f in files]
    notes = tmp / "notes"  # text files named .wav: each fails at its header, so only the path's own cost is left
    notes.mkdir()
    for i in range(len(files)):
        (notes / f"note_{i:04d}.wav").write_text("not audio\n")
    modes = {"local": ["--workers", "2"], "cluster": ["--cluster", "local:2"]}
    inputs = {"1": names[:1], "all": names, "fail_1": [str(notes / "note_0000.wav")], "fail": [str(notes)]}
    walls: dict[str, list[float]] = {f"{m}_{k}": [] for m in modes for k in inputs}
    cpus: dict[str, list[float]] = {k: [] for k in walls}
    identical = True
    for _ in range(repeats):
        outputs = {}
        for mode, opts in modes.items():
            for k, paths in inputs.items():
                out = tmp / f"{mode}_{k}.json"
                wall, cpu, _ = run([*opts, *paths], out)
                walls[f"{mode}_{k}"].append(wall)
                cpus[f"{mode}_{k}"].append(cpu)
                outputs[f"{mode}_{k}"] = out.read_bytes()
        identical &= all(outputs[f"local_{k}"] == outputs[f"cluster_{k}"] for k in inputs)
    med = {k: statistics.median(v) for k, v in walls.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpus.items()}
    n = len(files)
    results = json.loads((tmp / "cluster_all.json").read_text())

    def overhead(m: dict[str, float], k: str, one: str) -> float:
        """Extra ms per file of the cluster path on input ``k``, the fixed costs (the runs on ``one``) taken out."""
        return 1000 * ((m[f"cluster_{k}"] - m[f"cluster_{one}"]) - (m[f"local_{k}"] - m[f"local_{one}"])) / (n - 1)

    return {
        "files": n,
        "audio_s": sum(r["duration_s"] for r in results),
        "ok": sum(r["ok"] for r in results),
        "wall_s": walls,
        "cpu_s": cpus,
        "median_wall_s": med,
        "median_cpu_s": cpu_med,
        "overhead_wall_ms_per_file": overhead(med, "all", "1"),
        "overhead_cpu_ms_per_file": overhead(cpu_med, "all", "1"),
        "path_overhead_wall_ms_per_file": overhead(med, "fail", "fail_1"),
        "path_overhead_cpu_ms_per_file": overhead(cpu_med, "fail", "fail_1"),
        "identical": identical,
    }


def model_name() -> str:
    """Return the name of the model ``ser analyze`` uses by default (the shipped one)."""
    info = subprocess.run([str(Path(sys.executable).parent / "ser"), "info", "--format", "json"], capture_output=True,
                          text=True, check=True, cwd=ROOT)
    return str(json.loads(info.stdout).get("name", "unknown"))


def dask_version() -> str:
    """Return the version of Dask's distributed package."""
    from importlib.metadata import version

    return version("distributed")


def section(r: dict[str, Any], *, when: str, machine: str, load: tuple[float, float]) -> str:
    """Return the "Cluster" section of docs/benchmarks.md."""
    med, cpu, walls = r["median_wall_s"], r["median_cpu_s"], r["wall_s"]
    n, audio = int(r["files"]), float(r["audio_s"])

    def row(what: str, key: str) -> str:
        runs = ", ".join(f"{w:.2f}" for w in walls[key])
        rate = f"{n / med[key]:.0f} files/s, " if key.endswith("all") else ""
        return f"| {what} | {med[key]:.2f} s ({runs}) | {rate}CPU {cpu[key]:.2f} s |"

    return "\n".join([
        SECTION,
        "",
        f"Measured {when} by `python bench/bench_cluster.py` on {machine}, distributed {r['dask']}, model "
        f"`{r['model']}` (1-minute load average "
        f"{load[0]:.1f} at the start, {load[1]:.1f} at the end; the machine is shared, so above about 1 the "
        "figures are noisy). "
        f"{n:,} real clips ({audio / 3600:.2f} h: RAVDESS and SAVEE FLAC, the first CREMA-D Opus clips) listed on "
        "the command line, shipped model, `ser analyze --format json`, whole process from start to exit, "
        f"median of {len(walls['local_all'])} alternated runs (each run in brackets).",
        "",
        "| run | wall time (runs) | throughput, CPU (process + workers) |",
        "|---|---|---|",
        row(f"local `--workers 2`, {n:,} files", "local_all"),
        row(f"`--cluster local:2`, {n:,} files", "cluster_all"),
        row("local `--workers 2`, 1 file (fixed cost)", "local_1"),
        row("`--cluster local:2`, 1 file (fixed cost: scheduler, 2 worker processes, model sent and loaded)",
            "cluster_1"),
        row(f"local `--workers 2`, {n:,} text files named .wav (each fails at once)", "local_fail"),
        row(f"`--cluster local:2`, {n:,} text files named .wav (each fails at once)", "cluster_fail"),
        "",
        "Per-file overhead of the cluster path, the fixed costs (the same runs on one file) taken out: "
        f"**{r['path_overhead_wall_ms_per_file']:.2f} ms** of wall time and "
        f"{r['path_overhead_cpu_ms_per_file']:.2f} ms of CPU time per file on files that fail at once (nothing "
        "to analyse: what is left is the path itself, a task submitted, run, its result sent back and gathered, in "
        f"order); on the real clips {r['overhead_wall_ms_per_file']:.2f} ms of wall time and "
        f"{r['overhead_cpu_ms_per_file']:.2f} ms of CPU time per file (there the difference also holds what the "
        "scheduler and the worker processes do in the background while the batch runs, two processes against two "
        "threads of one, and the other jobs of a shared machine). Output of the two "
        f"paths byte-identical in every run: {'yes' if r['identical'] else 'NO'}. On one machine the cluster path "
        "only adds cost; it pays when workers on other machines add cores (docs/cluster.md).",
        "",
        f"Raw figures: `bench/results/cluster.json`. Re-run: `python bench/bench_cluster.py` (about "
        f"{sum(map(sum, walls.values())) / 60:.0f} minutes here).",
        "",
    ])


def write_section(text: str, path: Path) -> None:
    """Put ``text`` in place of the "## Cluster" section of ``path`` (appended when missing)."""
    doc = path.read_text(encoding="utf-8")
    start = doc.find("\n" + SECTION + "\n")
    if start < 0:
        doc = doc.rstrip() + "\n\n" + text
    else:
        end = doc.find("\n## ", start + 1)
        doc = doc[: start + 1] + text.rstrip() + "\n" + ("" if end < 0 else doc[end:])
    path.write_text(doc.rstrip() + "\n", encoding="utf-8")


def main() -> int:
    """Run the benchmark; return the exit status."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing the docs")
    p.add_argument("--from-results", action="store_true",
                   help="write the section from bench/results/cluster.json again, without measuring")
    args = p.parse_args()
    if args.from_results:
        r = json.loads((ROOT / "bench" / "results" / "cluster.json").read_text())
        write_section(section(r, when=r["date"], machine=r["machine"], load=tuple(r["load_average"])),
                      ROOT / "docs" / "benchmarks.md")
        return 0
    files = clips(CORPUS)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ser-bench-cluster-") as tmp:
        r = measure(files, args.repeats, Path(tmp))
    load1 = os.getloadavg()[0]
    now = dt.datetime.now(dt.UTC)
    when = now.strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{_cpu_model()}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"
    r.update({"date": when, "machine": machine, "load_average": [load0, load1], "model": model_name(),
              "dask": dask_version()})
    text = section(r, when=when, machine=machine, load=(load0, load1))
    print(text)
    if not args.no_write:
        (ROOT / "bench" / "results" / "cluster.json").write_text(json.dumps(r, indent=2) + "\n")
        write_section(text, ROOT / "docs" / "benchmarks.md")
    return 0 if r["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
