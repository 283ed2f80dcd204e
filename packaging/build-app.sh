#!/usr/bin/env bash
# Build a one-folder bundle of the desktop app (cloak-gui) with PyInstaller:
#   packaging/build-app.sh [VENV]      (default VENV: .venv, with Cloak installed in it)
# Result: dist/cloak-gui/cloak-gui (Windows: cloak-gui.exe). No weights are bundled: the app
# fetches the default set (about 5 MB, pinned and checked) on first run, or reads
# $CLOAK_MODELS_DIR. The bundle is built for the platform it is built on.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || PY="$VENV/Scripts/python.exe"
"$PY" -m pip install -q "pyinstaller>=6.10"
start=$(date +%s)
# Cloak's packages live in three folders (cloak/, models/, gui/) mapped by pyproject.toml; an
# editable install maps them at run time, which PyInstaller cannot follow. Stage a plain copy.
STAGE=build/pyinstaller/site
rm -rf "$STAGE"
"$PY" -m pip install -q --no-deps --no-build-isolation --target "$STAGE" .
# Encoders outside the default set are imported lazily (diffusers for the full VAEs, onnx for
# VAElight): collect Cloak's own modules and leave the heavy optional ones out of the bundle.
nice -n 10 "$PY" -m PyInstaller --noconfirm --clean --onedir --windowed \
  --name cloak-gui \
  --distpath dist --workpath build/pyinstaller --specpath build/pyinstaller \
  --paths "$STAGE" \
  --collect-submodules cloak \
  --add-data "$PWD/$STAGE/cloak/gui/assets:cloak/gui/assets" \
  --add-data "$PWD/$STAGE/cloak/patterns:cloak/patterns" \
  --exclude-module diffusers --exclude-module onnx --exclude-module onnxruntime \
  --exclude-module torchvision --exclude-module matplotlib --exclude-module pytest \
  --exclude-module hypothesis --exclude-module tkinter \
  packaging/cloak_gui_main.py
echo "built dist/cloak-gui in $(( $(date +%s) - start )) s, $(du -sh dist/cloak-gui | cut -f1)"
