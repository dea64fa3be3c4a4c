#!/usr/bin/env bash
# Build the stand-alone one-folder bundle: dist/ser/ser-app (+ dist/ser/_internal).
#   bash packaging/build_bundle.sh
# Uses $PYTHON, else .venv/bin/python, else python3 (needs the [gui,bundle] extras installed).
# SER_DIST (default dist) and SER_BUILD (default build) choose the output and work folders.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if [[ ! -f models/model.onnx ]]; then
  echo "error: models/model.onnx is missing: the bundle ships the trained model" >&2
  exit 1
fi
DIST="${SER_DIST:-dist}"
WORK="${SER_BUILD:-build}/pyinstaller"
start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/ser.spec
BUNDLE="$DIST/ser"
# No training stack may slip in through a dependency.
if found=$(find "$BUNDLE" \( -iname '*tensorflow*' -o -iname 'tf2onnx*' -o -iname 'keras*' -o -iname 'sklearn*' \
  -o -iname 'librosa*' -o -iname 'numba*' -o -iname 'matplotlib*' \) -print -quit) && [[ -n "$found" ]]; then
  echo "error: training-stack file in the bundle: $found" >&2
  exit 1
fi
"$BUNDLE/ser-app" --version > /dev/null
echo "bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1)) built in $(($(date +%s) - start)) s"
