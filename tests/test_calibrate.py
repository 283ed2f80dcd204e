"""The calibration ladder runs end to end on a tiny portrait: structure only, never speed."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from benchmarks.calibrate import LADDER, TILE, main


def test_default_ladder_is_the_calibrated_one():
    # The grid behind cloak/verdict.py's thresholds: a faint change up to the 16/255 hard cap.
    assert [round(r["eps"] * 255) for r in LADDER] == [4, 8, 12, 16, 16]
    assert [r["step_rule"] for r in LADDER][-1] == "sign" and LADDER[-1]["min_psnr"] is None


@pytest.mark.real
def test_a_ladder_of_one_preset_with_the_photo_column(models_dir, tmp_path, capsys):
    out = tmp_path / "ladder.png"
    rungs = [{"steps": 1}, {"steps": 1, "perceptual_floor": 1.0}]
    rc = main(
        [
            "--photos",
            "img13.jpg",
            "--long-side",
            "96",
            "--preset",
            "max",
            "--rungs",
            json.dumps(rungs),
            "--photo-column",
            "--plots",
            "ladder",
            "--models-dir",
            str(models_dir),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    table = json.loads(out.with_suffix(".json").read_text())
    assert [r["rung"] for r in table] == [0, 1]
    # max's budget: 16/255, no PSNR floor; flat areas at the whole cap cost more PSNR.
    assert all(r["eps"] == pytest.approx(16) for r in table)
    assert table[1]["psnr"] < table[0]["psnr"]
    with Image.open(out) as grid:
        # The photo, the original's AI view, one AI view per rung and the last rung's photo.
        assert grid.size == ((2 + len(rungs) + 1) * TILE, TILE + 18)
    assert (tmp_path / "damage_vs_psnr_ladder.png").is_file()
    assert (tmp_path / "damage_vs_seconds_ladder.png").is_file()
    assert f"wrote {out}" in capsys.readouterr().out


def test_rungs_must_be_a_list_of_objects():
    with pytest.raises(SystemExit, match="JSON list of objects"):
        main(["--rungs", "[1, 2]"])
