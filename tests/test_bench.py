"""The benchmark runs end to end in quick mode; only its structure is checked, never speed."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.bench import main, path_of


@pytest.mark.real
def test_bench_quick_structure(models_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(
        [
            "--quick",
            "--presets",
            "standard",
            "--precisions",
            "auto,fp32",
            "--batch",
            "3",
            "--cli-batch",
            "2",
            "--cli-batch-memory",
            "default,low",
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
    machine = data["machine"]
    assert machine["threads"] == 1 and len(machine["loadavg"]) == 3
    assert machine["paths"] == {"auto": path_of("auto"), "fp32": "fp32"}
    assert data["unit"]["unit_s"] > 0
    methods = [(c["path"], c["method"]) for c in data["cases"]]
    auto = path_of("auto")
    assert methods == [
        (auto, "standard"),
        (auto, "reference"),
        ("fp32", "standard"),
        ("fp32", "reference"),
    ]
    for c in data["cases"]:
        for key in ("load_s", "attack_s", "lift_s", "save_s", "photo_s", "process_s"):
            assert c[key] >= 0, key
        assert c["photo_s"] > 0 and c["process_s"] > 0 and c["peak_rss_mb"] > 0
        assert set(c["damage_db"]) == {"direct", "1080/q80", "720/q70"}
        assert all(math.isfinite(v) for v in c["damage_db"].values())
        assert c["psnr"] > 20
        if c["method"] != "reference":
            # The cloak process, measured from outside: its wall time covers start-up too.
            assert c["cli_wall_s"] > 0 and c["cli_peak_rss_mb"] > 100
            assert "--precision " + c["precision"] in c["cli_command"]
    assert [(r["path"], r["preset"]) for r in data["ratios"]] == [
        (auto, "standard"),
        ("fp32", "standard"),
    ]
    assert all(r["time_ratio"] > 0 for r in data["ratios"])
    assert [(b["path"], b["memory"]) for b in data["cli_batches"]] == [
        (auto, "default"),
        (auto, "low"),
        ("fp32", "default"),
        ("fp32", "low"),
    ]
    for b in data["cli_batches"]:
        assert b["photos"] == 2 and b["cli_wall_s"] > 0 and b["cli_peak_rss_mb"] > 100
        assert ("--low-memory" in b["cli_command"]) == (b["memory"] == "low")
        assert ("--no-low-memory" in b["cli_command"]) == (b["memory"] == "default")
    batch = data["batch"]
    assert batch["photos"] == 3 and [e["after_photo"] for e in batch["eta"]] == [1, 2]
    printed = capsys.readouterr().out
    assert "our s / reference s" in printed and "| after photo |" in printed
    assert "photo units" in printed and "cloak peak MB" in printed


@pytest.mark.real
def test_app_memory_session_reports_each_photo(models_dir):
    """benchmarks/app_memory.py drives the real window (offscreen) through a photo: the row of
    the photo with its figures, and the session's peak, are printed."""
    import os
    import re
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.app_memory", "--models-dir", str(models_dir)]
        + ["--photos", "selfie-many-people.jpg", "--count", "2", "--steps", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [ln for ln in out.stdout.splitlines() if re.match(r"\| [12] \| 00[12]-selfie", ln)]
    assert len(rows) == 2
    peak = re.search(r"peak \(VmHWM\) (\d+) MB", out.stdout)
    assert peak is not None and 300 < int(peak.group(1)) < 4000


@pytest.mark.real
def test_sweep_keeps_every_scenario_at_every_attacker_size(models_dir, tmp_path, capsys):
    """benchmarks/sweep.py on a small real photo: each variant's row holds the damage of every
    re-post scenario at every attacker size, and its weakest size is the lowest direct one."""
    from benchmarks.sweep import SCENARIOS, attacker_sizes
    from benchmarks.sweep import main as sweep

    out = tmp_path / "sweep.json"
    argv = ["one={}", 'small={"transforms": {"window_px": 4096}}', "--photos", "astronaut.png"]
    argv += ["--size", "160", "--attacker", "128,96", "--models-dir", str(models_dir)]
    assert sweep([*argv, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows] == ["one", "small"]
    for row in rows:
        assert attacker_sizes(row) == [128, 96]
        for scenario in SCENARIOS:
            for size in (128, 96):
                assert math.isfinite(row[f"t_damage_{scenario}_{size}"])
            assert row[f"t_damage_{scenario}"] == row[f"t_damage_{scenario}_128"]
        assert row["t_damage_weakest"] == min(row["t_damage_direct_128"], row["t_damage_direct_96"])
    assert "| small | astronaut.png |" in capsys.readouterr().out
