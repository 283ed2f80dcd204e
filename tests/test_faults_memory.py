"""A long batch keeps its memory flat: 1000 files through the batch layer, 30 through the engine."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import torch
from PIL import Image
from support.fault_cases import leftovers, smooth_rgb

from cloak.config import ProtectConfig
from cloak.engine import Progress, ProtectResult, run_to_end
from cloak.jobs import plan, run_batch

MB = 1 << 20


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _folder(root: Path, n: int) -> Path:
    """``n`` small files: 7 in 10 good, then a text file, an empty file and a done photo."""
    src = root / "in"
    src.mkdir()
    base = Image.fromarray(smooth_rgb(64, 64))
    for i in range(n):
        kind = i % 10
        if kind == 7:
            (src / f"{i:04d}.jpg").write_text("not a photo")
        elif kind == 8:
            (src / f"{i:04d}.png").write_bytes(b"")
        else:
            base.rotate(i % 360).save(src / f"{i:04d}.png")
            if kind == 9:
                (root / "out").mkdir(exist_ok=True)
                base.save(root / "out" / f"{i:04d}.png")
    return src


def _fake_protect(image, encoders, config, cancel=None, keep_clean=False):
    """The engine's contract without its cost: a random change within the budget."""
    yield Progress("attack", 1, 1)
    delta = (torch.rand_like(image) * 2 - 1) * config.eps
    protected = (image + delta).clamp(0, 1)
    h, w = image.shape[-2:]
    return ProtectResult(protected, work_shape=(int(h), int(w)), losses=[0.0])


def test_thousand_files_memory_stays_flat(monkeypatch, tmp_path):
    monkeypatch.setattr("cloak.jobs.protect", _fake_protect)
    src = _folder(tmp_path, 1000)
    config = ProtectConfig(steps=1, work_size=64, encoders=("taef2",), device="cpu")
    jobs, refused = plan([src], tmp_path / "out", config)
    assert len(jobs) == 1000 and not refused
    samples: dict[int, tuple[int, int]] = {}
    tracemalloc.start()
    try:

        def sample(ev):
            if ev.result is not None and ev.index + 1 in (100, 1000):
                samples[ev.index + 1] = (_rss(), tracemalloc.get_traced_memory()[0])

        results = run_to_end(run_batch(jobs, config, []), sample)
    finally:
        tracemalloc.stop()
    counts = {s: sum(r.status == s for r in results) for s in ("protected", "skipped", "failed")}
    assert counts == {"protected": 700, "skipped": 100, "failed": 200}
    rss_growth = samples[1000][0] - samples[100][0]
    py_growth = samples[1000][1] - samples[100][1]
    print(f"RSS growth {rss_growth / MB:.1f} MB, traced Python growth {py_growth / MB:.2f} MB")
    assert rss_growth < 30 * MB
    assert py_growth < 5 * MB
    assert not leftovers(tmp_path)


def test_engine_batch_memory_stays_flat(tiny_encoder, tmp_path):
    """The real attack (tiny encoder): RSS after 30 photos is not far above RSS after 10."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(30):
        Image.fromarray(smooth_rgb(64, 48)).rotate(i).save(src / f"{i:02d}.png")
    config = ProtectConfig(steps=1, work_size=64, encoders=("taef2",), device="cpu")
    jobs, _ = plan([src], tmp_path / "out", config)
    samples: dict[int, int] = {}

    def sample(ev):
        if ev.result is not None and ev.index + 1 in (10, 30):
            samples[ev.index + 1] = _rss()

    results = run_to_end(run_batch(jobs, config, [tiny_encoder]), sample)
    assert all(r.status == "protected" for r in results)
    growth = samples[30] - samples[10]
    print(f"RSS growth from photo 10 to 30: {growth / MB:.1f} MB")
    assert growth < 30 * MB
