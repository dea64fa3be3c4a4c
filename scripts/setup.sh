#!/usr/bin/env bash
# One-command setup for a fresh Debian machine (root, or a user with sudo).
#
#   bash scripts/setup.sh app    install everything into .venv and launch the app
#   bash scripts/setup.sh test   install everything into .venv and run the whole check
#                                (ruff, mypy strict on ser_engine, desktop_app and training, every pytest marker)
#
# Idempotent: apt-get runs only when a package is missing; pip runs only when
# pyproject.toml changed since the last install into .venv.
# Extra arguments after the mode go to `ser-app` (app) or to pytest (test), e.g.
#   bash scripts/setup.sh app --self-test
#   bash scripts/setup.sh test -m 'not packaging'
# Environment: SER_PYTHON (interpreter used to create .venv; default /usr/bin/python3),
#              SER_VENV (default .venv), SER_SKIP_APT=1 (trust that the system packages are there).
set -euo pipefail

MODE="${1:-}"
case "$MODE" in
  app | test) shift ;;
  *)
    echo "usage: bash scripts/setup.sh app|test [args]" >&2
    exit 2
    ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${SER_VENV:-$ROOT/.venv}"
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

declare -a PHASES=()
declare -a PHASE_SECONDS=()
declare -a PHASE_STATUS=()
phase_start=0
phase() { # phase NAME: announce a phase and start its clock
  phase_start=$(date +%s)
  echo
  echo "=== [$(date -u +%H:%M:%S)] $1"
}
phase_end() { # phase_end NAME STATUS
  local now
  now=$(date +%s)
  PHASES+=("$1")
  PHASE_SECONDS+=("$((now - phase_start))")
  PHASE_STATUS+=("$2")
  echo "=== $1: $2 in $((now - phase_start)) s"
}
summary() {
  echo
  echo "=== timings"
  local i
  for i in "${!PHASES[@]}"; do
    printf '  %-22s %-6s %5s s\n' "${PHASES[$i]}" "${PHASE_STATUS[$i]}" "${PHASE_SECONDS[$i]}"
  done
}

# ---------------------------------------------------------------- system packages
APT_PACKAGES=(
  # Python to build .venv
  python3 python3-venv python3-pip ca-certificates
  # audio: PortAudio for sounddevice, libsndfile for soundfile, ALSA->PulseAudio bridge
  libportaudio2 libsndfile1 libasound2-plugins
  # Qt 6 (PySide6 wheels) runtime for the xcb and offscreen platform plugins
  libegl1 libgl1 libglib2.0-0 libfontconfig1 libfreetype6 libdbus-1-3 fonts-dejavu-core
  libx11-6 libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1
  libxcb-util1 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon0 libxkbcommon-x11-0
  # a virtual X server for machines without a display
  xvfb xauth
)
if [[ "$MODE" == test ]]; then
  # PyInstaller needs objdump/objcopy (binutils); dpkg-deb comes with dpkg;
  # desktop-file-validate checks the .deb's menu entry; strace watches for network use and
  # stray writes (tests/test_privacy.py).
  # pactl/paplay drive the tests' virtual microphone. The PulseAudio daemon itself is a private
  # copy (private_pulseaudio below): the `pulseaudio` package would replace the sound server of a
  # PipeWire desktop, with which it conflicts.
  APT_PACKAGES+=(binutils desktop-file-utils strace pulseaudio-utils)
fi

# The packaging tests install and remove the .deb they build (dpkg -i / dpkg -r) unless deselected.
PACKAGING_TESTS=0
if [[ "$MODE" == test && " $* " != *"not packaging"* ]]; then
  PACKAGING_TESTS=1
fi

as_root() {
  if [[ "$(id -u)" == 0 ]]; then
    "$@"
  elif command -v sudo > /dev/null; then
    sudo "$@"
  else
    echo "error: this step needs root (or sudo): $*" >&2
    return 1
  fi
}

SUDO_KEEPALIVE=""
stop_sudo_keepalive() {
  if [[ -n "$SUDO_KEEPALIVE" ]]; then
    kill "$SUDO_KEEPALIVE" 2> /dev/null || true
    SUDO_KEEPALIVE=""
  fi
}
trap stop_sudo_keepalive EXIT
# sudo_once REASON: as a user with sudo, ask for the password once (sudo -v) and keep the
# credentials fresh while this script runs, so that the later privileged steps (apt-get, and
# the packaging tests' dpkg, which use `sudo -n`) never ask again.
sudo_once() {
  if [[ "$(id -u)" == 0 || -n "$SUDO_KEEPALIVE" ]]; then
    return 0
  fi
  if ! command -v sudo > /dev/null; then
    echo "error: this needs root or sudo, and sudo is not installed: $1" >&2
    return 1
  fi
  if ! sudo -n true 2> /dev/null; then
    echo "sudo is needed for: $1"
    sudo -v || {
      echo "error: sudo was refused" >&2
      return 1
    }
  fi
  (while sleep 60; do sudo -n -v 2> /dev/null || exit 0; done) &
  SUDO_KEEPALIVE=$!
}

missing_packages() {
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed"; then
      echo "$p"
    fi
  done
}

apt_install() {
  local missing
  mapfile -t missing < <(missing_packages "$@")
  if ((${#missing[@]} == 0)); then
    echo "system packages already installed"
    return 0
  fi
  echo "installing: ${missing[*]}"
  sudo_once "apt-get install ${missing[*]}"
  as_root apt-get update -q
  # --no-remove: never take away a package the machine has (apt stops instead).
  as_root apt-get install -y -q --no-install-recommends --no-remove "${missing[@]}"
}

# private_pulseaudio DIR: the tests' PulseAudio daemon without installing the `pulseaudio`
# package: its .deb (the version of the installed libpulse0) is unpacked into DIR and started
# from there by tests/private_pulse.py, with its own socket; only its libraries are installed.
private_pulseaudio() {
  local dir="$1" version libdir moddir
  version="$(dpkg-query -W -f='${Version}' libpulse0)"
  if [[ -x "$dir/root/usr/bin/pulseaudio" && "$(cat "$dir/version" 2> /dev/null)" == "$version" ]]; then
    echo "private PulseAudio $version already unpacked in $dir"
  else
    unpack_pulseaudio "$dir" "$version" || return 1
  fi
  libdir="$(dirname "$(find "$dir/root" -name 'libpulsecore-*.so' | head -n1)")"
  moddir="$(dirname "$(find "$dir/root" -name 'module-null-sink.so' | head -n1)")"
  {
    echo '#!/bin/sh'
    echo "# The tests' private PulseAudio daemon, unpacked from pulseaudio_$version by scripts/setup.sh."
    # libpulsecore, and the modules' own helper libraries (libprotocol-native...), which the
    # modules find through a RUNPATH of the system folder they were built for
    echo "export LD_LIBRARY_PATH=\"$libdir:$moddir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
    echo "exec \"$dir/root/usr/bin/pulseaudio\" --dl-search-path=\"$moddir\" \"\$@\""
  } > "$dir/pulseaudio"
  chmod +x "$dir/pulseaudio"
}

# unpack_pulseaudio DIR VERSION: download pulseaudio_VERSION.deb (no root needed) into DIR/root.
unpack_pulseaudio() {
  local dir="$1" version="$2" tmp deb
  local -a deps apt_opts
  # its shared libraries (never a sound server)
  mapfile -t deps < <(apt-cache depends --no-recommends --no-suggests "pulseaudio=$version" 2> /dev/null |
    awk '$1 == "Depends:" && $2 ~ /^lib/ {print $2}' | sort -u)
  apt_install "${deps[@]}"
  tmp="$(mktemp -d)"
  apt_opts=()
  if [[ "$(id -u)" == 0 ]]; then
    apt_opts=(-o APT::Sandbox::User=root) # root downloads into a folder _apt cannot enter
  fi
  if ! (cd "$tmp" && apt-get download -q "${apt_opts[@]}" "pulseaudio=$version"); then
    echo "error: could not download pulseaudio $version (the version of libpulse0)" >&2
    rm -rf "$tmp"
    return 1
  fi
  deb="$(ls "$tmp"/pulseaudio_*.deb)"
  rm -rf "$dir"
  mkdir -p "$dir"
  dpkg-deb -x "$deb" "$dir/root"
  rm -rf "$tmp"
  echo "$version" > "$dir/version"
  echo "private PulseAudio $version unpacked into $dir"
}

phase "system packages (apt-get)"
if ((PACKAGING_TESTS)); then
  sudo_once "the packaging tests: dpkg -i / dpkg -r of the .deb they build (skip them with -m 'not packaging')"
fi
if [[ "${SER_SKIP_APT:-0}" == 1 ]]; then
  echo "SER_SKIP_APT=1: not checking system packages"
else
  apt_install "${APT_PACKAGES[@]}"
fi
PY="${SER_PYTHON:-/usr/bin/python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: $PY is older than Python 3.11 (set SER_PYTHON to a newer interpreter)" >&2
  exit 1
fi
if [[ "$MODE" == test && "${SER_SKIP_APT:-0}" != 1 ]]; then
  # PyInstaller bundles the shared libpython of the interpreter in .venv.
  if [[ "$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED"))')" != 1 ]]; then
    apt_install "libpython$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  fi
fi
phase_end "system packages" ok

# ---------------------------------------------------------------- .venv
if [[ "$MODE" == test ]]; then
  EXTRAS="gui,train,dev,bundle,cluster"
else
  EXTRAS="gui"
fi
phase "python environment ($VENV, extras [$EXTRAS])"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.ser-installed-$EXTRAS"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && "$VENV/bin/python" -c 'import ser_engine' 2> /dev/null; then
  echo "already installed (pyproject.toml unchanged)"
else
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install --progress-bar off -e ".[$EXTRAS]"
  echo "$WANT" > "$STAMP"
fi
phase_end "python environment" ok
export PATH="$VENV/bin:$PATH"

if [[ "$MODE" == test ]]; then
  phase "PulseAudio daemon for the tests (private)"
  if command -v pulseaudio > /dev/null; then
    echo "using the installed $(command -v pulseaudio), as a private instance"
  elif [[ "${SER_SKIP_APT:-0}" == 1 ]]; then
    echo "SER_SKIP_APT=1: no pulseaudio installed and none unpacked; the microphone tests will say so"
  else
    private_pulseaudio "$VENV/opt/pulseaudio"
  fi
  phase_end "PulseAudio daemon" ok
fi

# ---------------------------------------------------------------- app
if [[ "$MODE" == app ]]; then
  summary
  if [[ ! -f models/model.onnx ]]; then
    echo "error: the bundled model models/model.onnx is missing from this checkout" >&2
    exit 1
  fi
  stop_sudo_keepalive
  if [[ -n "${DISPLAY:-}" || -n "${WAYLAND_DISPLAY:-}" ]]; then
    echo "starting ser-app"
    exec ser-app "$@"
  fi
  # --self-test, --version and --help end by themselves: no window to stop, nothing to say about one
  ends_by_itself=0
  for arg in "$@"; do
    case "$arg" in
      --self-test | --version | -h | --help) ends_by_itself=1 ;;
    esac
  done
  echo "No display found (DISPLAY and WAYLAND_DISPLAY are unset): starting ser-app on a"
  if ((ends_by_itself)); then
    echo "virtual X server (xvfb-run); it ends by itself."
  else
    echo "virtual X server (xvfb-run), so it runs but no window is visible. On a desktop,"
    echo "run this command from a terminal of the graphical session to get the window."
    echo "Stop it with Ctrl+C."
  fi
  exec xvfb-run -a -s "-screen 0 1280x800x24" ser-app "$@"
fi

# ---------------------------------------------------------------- test
FAILED=0

phase "ruff check"
if ruff check .; then phase_end "ruff" ok; else phase_end "ruff" FAIL; FAILED=1; fi

phase "mypy (strict on ser_engine, desktop_app, training)"
if mypy ser_engine desktop_app training; then phase_end "mypy" ok; else phase_end "mypy" FAIL; FAILED=1; fi

phase "pytest (whole suite, every marker, Qt offscreen)"
set +e
QT_QPA_PLATFORM=offscreen python -m pytest --durations=15 "$@"
rc=$?
set -e
if ((rc == 0)); then
  phase_end "pytest" ok
else
  # 5 = no tests collected: a failure for us as well.
  phase_end "pytest" "FAIL($rc)"
  FAILED=1
fi

summary
if ((FAILED)); then
  echo "RESULT: FAILED"
  exit 1
fi
echo "RESULT: all checks passed"
