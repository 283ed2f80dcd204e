"""`cloak evaluate` end to end on tiny photos with tiny random encoders (no weights needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.floors import linf_psnr_floor, saved_psnr_floor

from cloak.config import ProtectConfig, TransformConfig
from cloak.evaluate import BASELINE, evaluate, markdown, target_check
from cloak.models import build_random


def _photo(path: Path, size: tuple[int, int], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 5.0)], axis=-1)
    arr = (base * 200 + rng.integers(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


FAST = dict(steps=2, work_size=64, device="cpu", transforms=TransformConfig(enabled=False))
CONFIGS = {
    "low": ProtectConfig(eps=4 / 255, **FAST),
    "standard": ProtectConfig(eps=8 / 255, **FAST),
}
BASELINE_EPS_255 = 8  # reference_protect's default budget


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    photos = [_photo(tmp / "a.png", (40, 32), 0), _photo(tmp / "b.jpg", (32, 40), 1)]
    broken = tmp / "broken.jpg"
    broken.write_text("not a photo")
    configs = CONFIGS
    attack = [build_random("taef2", seed=0)]
    holdout = [build_random("taesd", seed=1)]
    out = tmp / "report"
    # One thread: the tiny convolutions gain nothing from more, and CI machines are shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ev = evaluate(
        [*photos, broken],
        configs,
        attack,
        holdout,
        out,
        baseline_steps=2,
        baseline_work_size=64,
        attacker_long_side=32,
        log=lambda msg: None,
        attacker_sizes=(24, 32),
    )
    torch.set_num_threads(threads)
    return out, ev


def test_report_files_exist(report_dir):
    out, ev = report_dir
    pictures = ("damage_vs_psnr.png", "damage_vs_seconds.png", "shift_vs_psnr.png")
    for name in ("report.md", "report.json", "before_after.png", *pictures):
        assert (out / name).is_file(), name
        assert name in ev.files or name.startswith("report")
    assert (out / "ai_view_taef2.png").is_file()
    assert (out / "ai_view_taesd.png").is_file()
    for name in ev.files:
        with Image.open(out / name) as im:
            assert im.size[0] > 100 and im.size[1] > 100


def test_table_columns_and_rows(report_dir):
    out, ev = report_dir
    md = (out / "report.md").read_text()
    assert ev.methods == ["low", "standard", BASELINE]
    for col in (
        "PSNR",
        "SSIM",
        "L-inf",
        "taef2 dB direct",
        "dB 1080q80",
        "dB 720q70",
        "AI-view SSIM",
        "latent shift",
        "seconds",
        "taesd (held out) dB direct",
    ):
        assert col in md, col
    for section in ("## low", "## standard", f"## {BASELINE}", "## Summary (median"):
        assert section in md
    assert "## Summary (worst" in md and "dB direct at 24/32 px" in md
    assert md.count("| **median** |") == md.count("| **worst** |") == 3
    # 2 good photos x 3 methods; the broken one is reported, not fatal.
    assert len(ev.rows) == 6
    assert any("broken.jpg" in k for k in ev.failed)
    assert "broken.jpg" in md
    data = json.loads((out / "report.json").read_text())
    assert {s["method"] for s in data["summary"]} == {"low", "standard", BASELINE}
    assert data["sizes"] == [24, 32]
    # The worst photo is never better than the median one.
    for med, low in zip(data["summary"], data["worst"], strict=True):
        assert low["psnr"] <= med["psnr"] and low["seconds"] >= med["seconds"]
        assert low["taef2/direct@32"] <= med["taef2/direct@32"]
    assert data["holdout"] == ["taesd"]


def test_measures_are_sane(report_dir):
    _, ev = report_dir
    for r in ev.rows:
        cfg = CONFIGS.get(r.method)
        eps = BASELINE_EPS_255 if cfg is None else cfg.eps * 255
        assert r.report.linf_255 <= eps + 0.51  # quantised to 8 bits
        if cfg is not None and cfg.min_psnr is not None:
            # The photos are smaller than the work size: the floor applies to them as they are.
            assert r.report.psnr >= saved_psnr_floor(cfg.min_psnr), (r.method, r.report.psnr)
        else:  # the reference attack has no PSNR floor, only its L-inf budget
            assert r.report.psnr >= linf_psnr_floor(eps), (r.method, r.report.psnr)
        assert r.seconds > 0
        assert {s.scenario for s in r.report.scores} == {"direct", "1080/q80", "720/q70"}
        assert {s.size for s in r.report.scores} == {24, 32}
    labels = [c[0] for c in target_check(ev)]
    assert "PSNR dB" in labels and any("held out" in label for label in labels)
    assert "| measure | median | target | met |" in markdown(ev)


def test_measure_cache_gives_the_same_report():
    """The per-photo cache of the original's encodings changes nothing but the time."""
    from cloak.metrics import OriginalCache, measure

    enc = build_random("taef2", seed=0)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 40, 48, generator=g)
    cache: OriginalCache = {}
    for k in range(2):
        y = (x + (torch.rand(x.shape, generator=g) - 0.5) * 0.05 * (k + 1)).clamp(0, 1)
        plain = measure(x, y, [enc], attacker_long_side=32)
        cached = measure(x, y, [enc], attacker_long_side=32, cache=cache)
        assert cached == plain
    assert len(cache) == 3  # direct and the two platform scenarios, for one encoder


def test_measure_without_shift_skips_the_jpeg95_encode_only():
    """shift=False gives the same damage with one encode fewer per original; the latent shift of
    an encoder with a decoder is left NaN, not made up."""
    import math

    from support.counting import counting_encodes

    from cloak.metrics import measure

    enc = build_random("taef2", seed=0)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 3, 40, 48, generator=g)
    y = (x + (torch.rand(x.shape, generator=g) - 0.5) * 0.05).clamp(0, 1)
    full = measure(x, y, [enc], {}, 32)
    with counting_encodes(enc) as encodes:
        measure(x, y, [enc], {}, 32)
        with_shift = encodes.reset()
        lean = measure(x, y, [enc], {}, 32, shift=False)
    assert encodes.n == with_shift - 1
    assert lean.scores[0].damage_db == full.scores[0].damage_db
    assert math.isnan(lean.scores[0].latent_shift) and full.scores[0].latent_shift > 0
