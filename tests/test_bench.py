"""The benchmark runs end to end in quick mode; only its structure is checked, never speed."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.bench import main


@pytest.mark.real
def test_bench_quick_structure(models_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(
        [
            "--quick",
            "--presets",
            "standard",
            "--batch",
            "3",
            "--threads",
            "1",
            "--models-dir",
            str(models_dir),
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    methods = [c["method"] for c in data["cases"]]
    assert methods == ["standard", "reference"]
    for c in data["cases"]:
        for key in ("load_s", "attack_s", "lift_s", "save_s", "photo_s", "process_s"):
            assert c[key] >= 0, key
        assert c["photo_s"] > 0 and c["process_s"] > 0 and c["peak_rss_mb"] > 0
        assert set(c["damage_db"]) == {"direct", "1080/q80", "720/q70"}
        assert all(math.isfinite(v) for v in c["damage_db"].values())
        assert c["psnr"] > 20
    (ratio,) = data["ratios"]
    assert ratio["preset"] == "standard" and ratio["time_ratio"] > 0
    batch = data["batch"]
    assert batch["photos"] == 3 and [e["after_photo"] for e in batch["eta"]] == [1, 2]
    printed = capsys.readouterr().out
    assert "our s / reference s" in printed and "| after photo |" in printed
