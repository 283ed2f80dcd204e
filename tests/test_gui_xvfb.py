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


def _under_xvfb(tmp_path: Path) -> tuple[list[str], dict[str, str], float]:
    """The command prefix that runs a program on a fresh virtual X server with Qt's xcb
    platform, an environment whose home and settings are in ``tmp_path``, and the patience."""
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        pytest.fail("xvfb-run is missing: install the xvfb package (CI does)")
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("QT_QPA_PLATFORM", None)
    prefix = [xvfb, "-a", "-s", "-screen 0 1600x1000x24", "env", "QT_QPA_PLATFORM=xcb"]
    # Waits for the program to exit (its own event), with one generous limit for a slow CPU.
    return prefix, env, float(os.environ.get("CLOAK_TEST_PATIENCE_S", "1200"))


@pytest.mark.xvfb
def test_screenshot_under_xvfb(tmp_path: Path):
    prefix, env, patience = _under_xvfb(tmp_path)
    out = tmp_path / "shot.png"
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        *prefix,
        sys.executable,
        "-m",
        "cloak.gui.app",
        "--screenshot",
        str(out),
        str(_photo(tmp_path / "small.png")),
        "--random-encoders",
        "--steps",
        "2",
        "--output-dir",
        str(tmp_path / "out"),
        "--view",
        "side",
    ]
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
    # The photo was queued and protected: the written file exists and decodes at full size.
    assert "status=done" in proc.stdout, proc.stdout
    written = tmp_path / "out" / "small.png"  # an output folder keeps the name
    with Image.open(written) as im:
        protected = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert protected.shape == (72, 96, 3)
    assert not (tmp_path / "small_protected.png").exists()  # it went where it was told
    # And shown: the right-hand canvas of the side-by-side view holds that picture.
    c = re.search(r"canvas side_right: (\d+),(\d+),(\d+),(\d+)", proc.stdout)
    assert c, proc.stdout
    x, y, cw, ch = (round(int(v) * dpr) for v in c.groups())
    canvas = arr[y : y + ch, x : x + cw].astype(np.float32)
    # The picture is drawn fitted and centred: find the rows and columns that are not the
    # canvas background, and compare them with the protected file scaled to that box.
    bg = canvas[2, 2]
    painted = np.abs(canvas - bg).sum(axis=2) > 30
    rows = np.where(painted.mean(axis=1) > 0.5)[0]  # the label box is narrower than this
    cols = np.where(painted.mean(axis=0) > 0.3)[0]
    assert rows.size > 20 and cols.size > 20, "the canvas shows no picture"
    # Scale the drawn box back down to the file's size (averaging away the screen's
    # interpolation) and compare, leaving out the label in the top rows.
    box = canvas[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.uint8)
    drawn = np.asarray(Image.fromarray(box).resize((96, 72), Image.BOX), dtype=np.float32)
    err = np.abs(drawn[24:] - protected[24:]).mean()
    other = np.abs(drawn[24:] - protected[24:, ::-1]).mean()  # a different picture
    assert err < 8 < other, f"the canvas does not show the protected photo ({err:.1f}, {other:.1f})"


@pytest.mark.xvfb
@pytest.mark.real
def test_app_tour_under_xvfb(models_dir: Path, tmp_path: Path):
    """benchmarks/app_tour.py drives the real window through every situation it documents
    (real weights, three real portraits) and writes a screenshot of each."""
    prefix, env, patience = _under_xvfb(tmp_path)
    out = tmp_path / "tour"
    cmd = [*prefix, sys.executable, "-m", "benchmarks.app_tour", "--out", str(out)]
    cmd += ["--format", "jpg", "--models-dir", str(models_dir)]
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(cmd, env=env, cwd=repo, capture_output=True, text=True, timeout=patience)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    said = proc.stdout
    shots = sorted(p.name for p in out.glob("*.jpg"))
    assert len(shots) == 11 and shots[0] == "01-opened.jpg", shots
    for shot in shots:
        with Image.open(out / shot) as im:
            assert np.asarray(im.convert("RGB")).std() > 10, f"{shot} looks blank"
    assert "is not protected yet" in said  # the photo given at start shows before Protect
    m = re.search(r"shown ([\d.]+) s after it was saved", said)
    assert m and float(m[1]) <= 1.0, said
    assert "AI view and edit damage: measur" in said  # "measuring…" or "measured when the run ends"
    assert "asked: Replace the protected copy?" in said
    assert "Kept the protected copy as it is." in said
    assert "Failed photos wait for Protect > Retry failed." in said
    assert "Cancelled. 0 protected" in said and "progress bar after the cancel: 0 of" in said
    assert "No encoder is on this computer yet" in said
