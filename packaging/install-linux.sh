#!/usr/bin/env bash
# Install the bundle built by packaging/build-app.sh for the current user, with a menu entry:
#   packaging/install-linux.sh [BUNDLE_DIR]    (default: dist/cloak-gui)
# Copies the bundle to ~/.local/opt/cloak-gui, links ~/.local/bin/cloak-gui, and installs
# assets/cloak.desktop and the icon under ~/.local/share.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${1:-dist/cloak-gui}
[ -x "$BUNDLE/cloak-gui" ] || { echo "no bundle at $BUNDLE: run packaging/build-app.sh" >&2; exit 1; }
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
OPT=$HOME/.local/opt/cloak-gui
rm -rf "$OPT"
mkdir -p "$OPT" "$HOME/.local/bin" "$DATA/applications" "$DATA/icons/hicolor/scalable/apps"
cp -a "$BUNDLE/." "$OPT/"
ln -sf "$OPT/cloak-gui" "$HOME/.local/bin/cloak-gui"
install -m 644 assets/cloak-icon.svg "$DATA/icons/hicolor/scalable/apps/cloak-icon.svg"
sed "s|^Exec=cloak-gui|Exec=$OPT/cloak-gui|" assets/cloak.desktop >"$DATA/applications/cloak.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$DATA/applications" || true
echo "installed: $OPT (menu entry: $DATA/applications/cloak.desktop)"
