#!/usr/bin/env bash
# Smoke-test the bundle under Xvfb: it starts, protects a shared photo with the shared weights
# and writes a screenshot that is not blank.
#   packaging/smoke-test.sh BUNDLE_DIR PHOTO MODELS_DIR OUT_DIR
set -euo pipefail
BUNDLE=$1 PHOTO=$2 MODELS=$3 OUT=$4
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
run() {  # the bundle under a fresh virtual X server, with a throwaway home
  local home; home=$(mktemp -d)
  HOME="$home" XDG_CONFIG_HOME="$home/config" CLOAK_MODELS_DIR="$MODELS" HF_HUB_OFFLINE=1 \
    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb "$BUNDLE/cloak-gui" "$@"
  rm -rf "$home"
}
t0=$(date +%s.%N)
run --screenshot "$OUT/bundle-start.png" >"$OUT/bundle-start.log" 2>&1
t1=$(date +%s.%N)
run --screenshot "$OUT/bundle-protect.png" --offline --steps 2 "$PHOTO" >"$OUT/bundle-protect.log" 2>&1
t2=$(date +%s.%N)
"$PY" - "$OUT/bundle-start.png" "$OUT/bundle-protect.png" <<'PYEOF'
import sys

import numpy as np
from PIL import Image

for path in sys.argv[1:]:
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    colours = len(np.unique(arr.reshape(-1, 3)[::7], axis=0))
    # A blank or failed window is one flat colour (std near 0, a handful of colours).
    assert arr.std() > 10 and colours > 50, f"{path} looks blank (std {arr.std():.1f})"
    print(f"{path}: {im.size[0]}x{im.size[1]}, std {arr.std():.1f}, {colours} colours")
PYEOF
grep -q "window" "$OUT/bundle-protect.log" || { cat "$OUT/bundle-protect.log" >&2; exit 1; }
printf 'start-up to first window (screenshot, no photo): %.1f s\n' "$(echo "$t1 - $t0" | bc)"
printf 'start-up + protect %s + screenshot: %.1f s\n' "$(basename "$PHOTO")" "$(echo "$t2 - $t1" | bc)"
