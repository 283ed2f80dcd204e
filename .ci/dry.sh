#!/usr/bin/env bash
# CI: check the README's install resolves on PyPI alone, install from scratch, run the README's
# tests, lint, type-check, check the import layers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
echo "== the README's install command resolves on PyPI alone (pre-placed wheels and pip config off)"
# What a user at home gets: no local wheels, no extra index, no machine-wide constraint. A dry
# run resolves every requirement (and builds Cloak's metadata) without the 3 GB download.
INSTALL_ARGS=$(awk '/^```bash$/{n++; next} /^```$/{next} n==1 && NF {print; exit}' README.md \
  | sed -n 's/.*pip install \(.*\) && .*cloak .*/\1/p')
[ -n "$INSTALL_ARGS" ] || { echo "README's first command has no pip install" >&2; exit 1; }
DRY_VENV=$(mktemp -d)
python3 -m venv "$DRY_VENV"
DRY_LOG="$DRY_VENV/dry-run.txt"
echo "pip install --isolated --dry-run --ignore-installed $INSTALL_ARGS"
eval "PIP_CONFIG_FILE=/dev/null \"$DRY_VENV/bin/pip\" install --isolated --dry-run \
  --ignore-installed --no-cache-dir $INSTALL_ARGS" >"$DRY_LOG" 2>&1 \
  || { cat "$DRY_LOG" >&2; echo "the README's install fails on PyPI alone" >&2; exit 1; }
grep "^Would install" "$DRY_LOG"
grep -q "^Would install.* torch-2\.13\.0 " "$DRY_LOG" \
  || { echo "PyPI-only resolution did not pick torch 2.13.0" >&2; exit 1; }
if grep -q "+cpu" "$DRY_LOG"; then echo "a local +cpu build leaked in" >&2; exit 1; fi
