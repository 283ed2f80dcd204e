"""The real window on a real (virtual) X server: ``cloak-gui --screenshot`` end to end."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _photo(path: Path) -> Path:
    yy, xx = np.mgrid[0:72, 0:96].astype(np.float32)
    rgb = np.stack([xx / 96, yy / 72, 0.5 + 0.4 * np.sin(xx / 6)], axis=-1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.xvfb
def test_screenshot_under_xvfb(tmp_path: Path):
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        pytest.fail("xvfb-run is missing: install the xvfb package (CI does)")
    out = tmp_path / "shot.png"
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env["OMP_NUM_THREADS"] = "1"
    env.pop("QT_QPA_PLATFORM", None)
    cmd = [
        xvfb,
        "-a",
        "-s",
        "-screen 0 1600x1000x24",
        "env",
        "QT_QPA_PLATFORM=xcb",
        sys.executable,
        "-m",
        "cloak.gui.app",
        "--screenshot",
        str(out),
        str(_photo(tmp_path / "small.png")),
        "--random-encoders",
        "--steps",
        "2",
    ]
    # Waits for the app to exit (its own event), with one generous limit for a slow shared CPU.
    patience = float(os.environ.get("CLOAK_TEST_PATIENCE_S", "1200"))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=patience)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r"window (\d+)x(\d+) dpr ([\d.]+)", proc.stdout)
    assert m, proc.stdout
    w, h, dpr = int(m[1]), int(m[2]), float(m[3])
    assert out.is_file()
    with Image.open(out) as im:
        assert im.size == (round(w * dpr), round(h * dpr))
        arr = np.asarray(im.convert("RGB"))
    assert arr.std() > 20, "screenshot looks blank"
    colours = np.unique(arr.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 50
    # The photo was queued, protected and shown: the queue row says done.
    assert not (tmp_path / "small_protected.png").exists()  # output went to a temp folder
