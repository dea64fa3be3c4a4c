"""Packaging: the wheel, the PyInstaller bundle and the Debian package, end to end.

Everything is built once per module (wheel, fresh venv, bundle, .deb) from the working tree
and exercised the way a user would: repository not on the path, real corpus clips, the real
shipped model, the installed launchers. CI runs this module; developers can deselect it with
``-m 'not packaging'``. Installing the .deb needs root: as root (CI) dpkg runs directly, as a
user through ``sudo -n`` (``scripts/setup.sh test`` asks for the password once, up front). A
``ser`` package the machine already has is never replaced: the test stops and says so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from privileged import as_root

pytestmark = [pytest.mark.packaging, pytest.mark.slow, pytest.mark.corpus]

ROOT = Path(__file__).resolve().parent.parent
LABELS = {"angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"}
# Files that must never reach a user: the training stack and development tools.
FORBIDDEN = ("tensorflow", "tf2onnx", "keras", "sklearn", "scikit_learn", "librosa", "numba", "matplotlib")
# Paths a .deb install could touch; compared before install and after removal.
WATCHED = ("/opt", "/usr/bin", "/usr/share/applications", "/usr/share/icons/hicolor", "/usr/share/doc", "/etc")
# System caches rebuilt by the hicolor-icon-theme / desktop-file-utils dpkg triggers: they are
# the system's, not the package's (and may be created by the first package with an icon).
TRIGGER_CACHES = {"/usr/share/icons/hicolor/icon-theme.cache", "/usr/share/applications/mimeinfo.cache"}


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run a command; on failure, fail the test with its output (not a traceback)."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
                    f"stderr:\n{proc.stderr[-4000:]}")
    return proc.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    """Environment without the developer's venv, PYTHONPATH or model override."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "SER_MODEL_DIR", "PYTHONHOME"}}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(extra)
    return env


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clips(corpus_dir: Path) -> list[Path]:
    """Two real clips in the two corpus formats: FLAC (RAVDESS) and Ogg/Opus (CREMA-D)."""
    found = [corpus_dir / "ravdess" / "Actor_01" / "03-01-05-02-01-01-01.flac",
             corpus_dir / "crema-d" / "1001_DFA_ANG_XX.ogg"]
    for clip in found:
        assert clip.is_file(), f"corpus clip {clip} missing"
    return found


def _check_analyze_output(out: str, clip: Path) -> None:
    """`ser analyze --format json` prints a JSON list with one object per file."""
    try:
        results = json.loads(out)
    except json.JSONDecodeError as exc:
        pytest.fail(f"analyze did not print JSON ({exc}):\n{out[-2000:]}")
    assert len(results) == 1, results
    result = results[0]
    assert Path(result["path"]).name == clip.name
    assert result["ok"] is True, result
    assert result["label"] in LABELS
    assert result["duration_s"] > 1.0
    assert abs(sum(result["probabilities"].values()) - 1.0) < 1e-3
    assert set(result["probabilities"]) <= LABELS


ANALYZE = ["analyze", "--format", "json", "--progress", "never"]


# --------------------------------------------------------------------------- wheel
@pytest.fixture(scope="module")
def wheel(shipped_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    del shipped_model_dir  # requested only so a missing model fails here, before a build without it
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(ROOT)],
         cwd=out)
    (whl,) = out.glob("ser-*.whl")
    return whl


@pytest.fixture(scope="module")
def wheel_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Make a brand-new venv (no system site-packages) with the wheel and its [gui] extra from PyPI."""
    where = tmp_path_factory.mktemp("wheel_venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(where / "venv")
    py = where / "venv" / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--progress-bar", "off", f"{wheel}[gui]"], cwd=where,
         env=_clean_env(), timeout=1200)
    return where / "venv"


def test_wheel_holds_model_and_every_package(wheel: Path, shipped_model_dir: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("model.onnx", "model.json"):
        assert f"ser_engine/bundled_model/{f}" in names
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("ser_engine/bundled_model/model.onnx") == (shipped_model_dir / "model.onnx").read_bytes()
    # every source package of the checkout is in the wheel (pyproject lists them explicitly)
    for top in ("ser_engine", "desktop_app", "training"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.relative_to(ROOT).as_posix()
            assert rel in names, f"{rel} is missing from the wheel: add its package to pyproject.toml"
        for module in (ROOT / top).rglob("*.py"):
            rel = module.relative_to(ROOT).as_posix()
            assert rel in names, f"{rel} is missing from the wheel"
    for data_dir in ("desktop_app/resources", "training/splits"):  # package data the code reads at run time
        for f in (ROOT / data_dir).iterdir():
            assert f"{data_dir}/{f.name}" in names, f"{data_dir}/{f.name} is missing from the wheel"
    assert not any(n.startswith("tests/") for n in names)


def test_wheel_requires_no_tensorflow_without_train(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(zf.read(n).decode() for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    gui = [r for r in requires if 'extra == "gui"' in r]
    train = [r for r in requires if 'extra == "train"' in r]
    assert any(r.startswith("onnxruntime") for r in runtime)
    assert any(r.startswith("tensorflow") for r in train)
    for r in runtime + gui:
        assert not r.lower().startswith(FORBIDDEN), f"{r} would install the training stack"


def test_wheel_in_fresh_venv_cli_and_app(wheel_venv: Path, clips: list[Path], tmp_path: Path,
                                          shipped_model_dir: Path) -> None:
    bin_ = wheel_venv / "bin"
    env = _clean_env(QT_QPA_PLATFORM="offscreen")
    # nothing of the training stack was installed
    listed = _run([str(bin_ / "python"), "-m", "pip", "list", "--format=json"], cwd=tmp_path, env=env)
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
    assert not installed & {"tensorflow", "tensorflow-cpu", "tf2onnx", "keras", "scikit-learn", "librosa"}
    # the model comes from the installed package, not from this checkout
    where = _run([str(bin_ / "python"), "-c",
                  "import ser_engine.inference.model as m; print(m.default_model_dir()); print(m.__file__)"],
                 cwd=tmp_path, env=env).split()
    assert Path(where[0]).is_relative_to(wheel_venv)
    assert Path(where[1]).is_relative_to(wheel_venv)
    assert _sha256(Path(where[0]) / "model.onnx") == _sha256(shipped_model_dir / "model.onnx")

    assert "0.1" in _run([str(bin_ / "ser"), "--version"], cwd=tmp_path, env=env)
    for clip in clips:
        _check_analyze_output(_run([str(bin_ / "ser"), *ANALYZE, str(clip)], cwd=tmp_path, env=env), clip)
    assert _run([str(bin_ / "ser-app"), "--version"], cwd=tmp_path, env=env).startswith("ser-app ")
    out = _run([str(bin_ / "ser-app"), "--self-test"], cwd=tmp_path, env=env, timeout=300)
    assert "self-test passed" in out


# --------------------------------------------------------------------------- bundle
@pytest.fixture(scope="module")
def build_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("bundle")
    return {"SER_DIST": str(base / "dist"), "SER_BUILD": str(base / "build"), "PYTHON": sys.executable}


@pytest.fixture(scope="module")
def bundle(shipped_model_dir: Path, build_dirs: dict[str, str]) -> Path:
    del shipped_model_dir  # requested only so a missing model fails here, before a build without it
    _run(["bash", "packaging/build_bundle.sh"], cwd=ROOT, env={**os.environ, **build_dirs}, timeout=1500)
    bundle = Path(build_dirs["SER_DIST"]) / "ser"
    assert (bundle / "ser-app").is_file()
    return bundle


def test_bundle_contents(bundle: Path, shipped_model_dir: Path) -> None:
    files = [p for p in bundle.rglob("*")]
    rel = [p.relative_to(bundle).as_posix().lower() for p in files]
    bad = [r for r in rel if any(word in r for word in FORBIDDEN)]
    assert not bad, f"training-stack files in the bundle: {bad[:10]}"
    internal = bundle / "_internal"
    assert _sha256(internal / "models" / "model.onnx") == _sha256(shipped_model_dir / "model.onnx")
    platforms = {p.name for p in (internal / "PySide6" / "Qt" / "plugins" / "platforms").iterdir()}
    assert {"libqxcb.so", "libqoffscreen.so"} <= platforms
    assert not any("libqwebengine" in r or "qtquick" in r or "libqt6qml" in r for r in rel)
    dangling = [p for p in files if p.is_symlink() and not p.exists()]
    assert not dangling, f"dangling symlinks: {dangling[:5]}"


def test_bundle_answers_cli_and_self_test(bundle: Path, clips: list[Path], tmp_path: Path) -> None:
    exe = str(bundle / "ser-app")
    env = _clean_env()
    assert _run([exe, "--version"], cwd=tmp_path, env=env).startswith("ser-app 0.1")
    _check_analyze_output(_run([exe, *ANALYZE, str(clips[1])], cwd=tmp_path, env=env), clips[1])
    assert "self-test passed" in _run([exe, "--self-test"], cwd=tmp_path, env=env, timeout=300)


# --------------------------------------------------------------------------- .deb
def _snapshot() -> set[str]:
    seen: set[str] = set()
    for top in WATCHED:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                seen.add(os.path.join(dirpath, name))
    return seen - TRIGGER_CACHES


def _as_root(argv: list[str]) -> list[str]:
    return as_root(argv, why="installing the .deb (deselect with -m 'not packaging')")


def _dpkg(*args: str) -> str:
    """Run dpkg with the given arguments, waiting up to 2 min for another dpkg/apt to release its lock.

    Returns its stderr (dpkg's warnings).
    """
    for _ in range(60):
        proc = subprocess.run(_as_root(["dpkg", *args]), capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return proc.stderr
        if "lock" not in proc.stderr:
            break
        time.sleep(2)
    pytest.fail(f"dpkg {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _dpkg_status(package: str) -> str:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


@pytest.fixture(scope="module")
def deb(bundle: Path, build_dirs: dict[str, str]) -> Path:
    del bundle  # requested so the bundle is built first: build_deb.sh packs it
    _run(["bash", "packaging/build_deb.sh"], cwd=ROOT, env={**os.environ, **build_dirs}, timeout=900)
    (pkg,) = Path(build_dirs["SER_DIST"]).glob("ser_*.deb")
    return pkg


@pytest.fixture(scope="module")
def installed_deb(deb: Path) -> Iterator[set[str]]:
    """Install the .deb with dpkg -i; yields the file snapshot taken before installing."""
    status = _dpkg_status("ser")
    if status not in {"unknown", "deinstall ok not-installed", "unknown ok not-installed"}:
        pytest.fail(f"a `ser` package is already on this machine ({status}); the packaging test does not replace "
                    "it: remove it first (`sudo dpkg -r ser`) or deselect these tests with -m 'not packaging'")
    before = _snapshot()
    _dpkg("-i", str(deb))
    try:
        yield before
    finally:
        subprocess.run(_as_root(["dpkg", "-r", "ser"]), capture_output=True, check=False)


def test_deb_metadata_and_layout(deb: Path) -> None:
    info = _run(["dpkg-deb", "-f", str(deb), "Package", "Depends", "Architecture"], cwd=deb.parent)
    assert "Package: ser" in info
    assert "libportaudio2" in info
    assert "libxcb-cursor0" in info
    listing = _run(["dpkg-deb", "-c", str(deb)], cwd=deb.parent)
    for path in ("./opt/ser/ser-app", "./usr/bin/ser-app", "./usr/bin/ser", "./usr/share/applications/ser-app.desktop",
                 "./usr/share/icons/hicolor/256x256/apps/ser-app.png", "./opt/ser/_internal/models/model.onnx"):
        assert f" {path}" in listing or f" {path} ->" in listing, f"{path} not in the .deb"
    assert not any(word in listing.lower() for word in FORBIDDEN)
    assert _data_entries(deb)["./opt/ser/"].isdir()
    assert "./opt/" not in _data_entries(deb)  # /opt is no package's: the .deb ships /opt/ser only


def _data_entries(deb: Path) -> dict[str, tarfile.TarInfo]:
    """Read the entries of a .deb's data archive (what dpkg unpacks), by name."""
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        return {m.name if m.name == "./" or not m.isdir() else m.name.rstrip("/") + "/": m for m in archive}


@pytest.fixture(scope="module")
def small_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build a .deb with build_deb.sh from a stand-in bundle: the packaging script in seconds, not the bundle."""
    base = tmp_path_factory.mktemp("small_deb")
    bundle = base / "dist" / "ser"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "ser-app").write_text("#!/bin/sh\necho ser-app\n")
    (bundle / "ser-app").chmod(0o755)
    (bundle / "_internal" / "data.txt").write_text("the bundle's files\n")
    env = {**os.environ, "SER_DIST": str(base / "dist"), "SER_BUILD": str(base / "build")}
    _run(["bash", "packaging/build_deb.sh"], cwd=ROOT, env=env, timeout=300)
    (pkg,) = (base / "dist").glob("ser_*.deb")
    return pkg


def test_deb_ships_opt_ser_but_not_opt_itself(small_deb: Path, tmp_path: Path) -> None:
    """/opt belongs to no package: shipping it made `dpkg -r ser` warn "directory '/opt' not empty"."""
    entries = _data_entries(small_deb)
    assert "./opt/" not in entries
    assert entries["./opt/ser/"].isdir()
    assert entries["./opt/ser/ser-app"].mode & 0o111
    assert entries["./opt/ser/_internal/data.txt"].isfile()
    assert {"./usr/bin/ser", "./usr/bin/ser-app", "./usr/share/applications/ser-app.desktop"} <= set(entries)
    assert all(m.uname == "root" and m.gname == "root" for m in entries.values())
    # the archive is still a valid .deb: its members in dpkg's order, its control readable
    members = subprocess.run(["ar", "t", str(small_deb)], capture_output=True, text=True, check=True).stdout.split()
    assert members == ["debian-binary", "control.tar.zst", "data.tar.zst"]
    assert "Package: ser" in _run(["dpkg-deb", "-I", str(small_deb)], cwd=tmp_path)
    # unpacked and removed by dpkg in a private root (no root needed, the machine is not touched) where
    # something else lives in /opt, as on a user's machine: no warning, /opt and the other stay
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "opt/other"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    (root / "opt/other/file").write_text("not ours\n")
    dpkg = ["dpkg", f"--root={root}", f"--log={tmp_path / 'dpkg.log'}", "--force-not-root",
            "--force-script-chrootless"]
    env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}  # dpkg wants ldconfig there
    unpack = subprocess.run([*dpkg, "--unpack", str(small_deb)], capture_output=True, text=True, env=env, check=False)
    assert unpack.returncode == 0, unpack.stderr
    assert (root / "opt/ser/ser-app").is_file()
    remove = subprocess.run([*dpkg, "--remove", "ser"], capture_output=True, text=True, env=env, check=False)
    assert remove.returncode == 0, remove.stderr
    assert "not empty so not removed" not in remove.stderr, remove.stderr
    assert not (root / "opt/ser").exists()
    assert (root / "opt/other/file").read_text() == "not ours\n"


def test_deb_install_run_and_remove(installed_deb: set[str], clips: list[Path], tmp_path: Path) -> None:
    before = installed_deb
    assert _dpkg_status("ser") == "install ok installed"
    _run(["desktop-file-validate", "/usr/share/applications/ser-app.desktop"], cwd=tmp_path)
    desktop = Path("/usr/share/applications/ser-app.desktop").read_text()
    entry = dict(line.split("=", 1) for line in desktop.splitlines() if "=" in line)
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "ser-app"
    assert entry["Icon"] == "ser-app"
    assert shutil.which("ser-app", path="/usr/bin") == "/usr/bin/ser-app"

    env = _clean_env()
    assert _run(["/usr/bin/ser-app", "--version"], cwd=tmp_path, env=env).startswith("ser-app 0.1")
    _check_analyze_output(_run(["/usr/bin/ser", *ANALYZE, str(clips[0])], cwd=tmp_path, env=env), clips[0])
    _check_analyze_output(_run(["/usr/bin/ser-app", *ANALYZE, str(clips[1])], cwd=tmp_path, env=env),
                          clips[1])
    assert "self-test passed" in _run(["/usr/bin/ser-app", "--self-test"], cwd=tmp_path, env=env, timeout=300)

    warnings = _dpkg("-r", "ser")
    assert "not empty so not removed" not in warnings, warnings  # the package claims no folder it shares
    assert _dpkg_status("ser") in {"unknown", "deinstall ok not-installed", "unknown ok not-installed"}
    after = _snapshot()
    assert after - before == set(), f"left behind after dpkg -r: {sorted(after - before)[:20]}"
    assert before - after == set(), f"removed although not ours: {sorted(before - after)[:20]}"
    assert not list(Path("/var/lib/dpkg/info").glob("ser.*"))
