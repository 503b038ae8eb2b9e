#!/usr/bin/env bash
# Set up everything cadenza needs on a fresh Debian machine, idempotently:
#   - the project venv (.venv) with the onnxruntime wheel (its libonnxruntime is what `ort` loads)
#   - checks that the toolchains the build needs are present
# Safe to run repeatedly: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but not installed ($2)" >&2; exit 1; }
}
need cargo "install Rust 1.95 with rustup"
need python3 "install Python 3.11+"

# The venv is keyed on the requirements file: change it and the venv is refreshed.
stamp="$VENV/.requirements-runtime.sha256"
want=$(sha256sum requirements-runtime.txt | cut -d' ' -f1)
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  say "installing runtime Python packages (onnxruntime) into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-runtime.txt
  echo "$want" >"$stamp"
fi
lib=$(ls "$VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* 2>/dev/null | head -1 || true)
[[ -n "$lib" ]] || { echo "setup: onnxruntime is installed but libonnxruntime.so was not found in $VENV" >&2; exit 1; }
say "onnxruntime: $lib"
for m in models/MTT_musicnn.onnx models/MSD_musicnn.onnx; do
  [[ -f "$m" ]] || { echo "setup: $m is missing from the checkout (it is committed; run 'make export-models' to rebuild it)" >&2; exit 1; }
done
say "ready"
