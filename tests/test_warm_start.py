"""The attack's warm start: the shipped pattern, its tiling, and where the attack starts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.paths import PHOTOS

from cloak.config import ProtectConfig, preset
from cloak.engine import EncoderAttack
from cloak.errors import ConfigError
from cloak.warm_start import PERIOD, check_pattern, pattern_for, tiled

FAST = dict(
    steps=2, work_size=1024, param_scale=2, device="cpu", encoders=("taef2",), objective="distort"
)


def test_the_shipped_pattern_is_a_trained_tile_for_taef2_only():
    p = pattern_for(["taef2"])
    assert p is not None and tuple(p.shape) == (1, 3, PERIOD, PERIOD)
    assert float(p.abs().max()) <= 1.0 and bool(torch.isfinite(p).all())
    # Trained, not the small random start it began from: most values sit near the bounds.
    assert float(p.abs().mean()) > 0.5
    assert pattern_for(["vaelight"]) is None
    assert pattern_for(["vaelight", "taef2"]) is p


def test_tiling_repeats_from_the_top_left_and_crops():
    p = torch.arange(3 * 4 * 4, dtype=torch.float).reshape(1, 3, 4, 4)
    t = tiled(p, (1, 3, 10, 7))
    assert tuple(t.shape) == (1, 3, 10, 7)
    assert torch.equal(t[..., :4, :4], p)
    assert torch.equal(t[..., 4:8, :4], p) and torch.equal(t[..., 8:10, 4:7], p[..., :2, :3])


@pytest.mark.parametrize(
    "bad", [torch.zeros(1, 3, 4, 5), torch.zeros(3, 4, 4), torch.full((1, 3, 4, 4), 1.5)]
)
def test_a_malformed_pattern_is_refused(bad):
    with pytest.raises(ConfigError, match="warm-start pattern"):
        check_pattern(bad, "x.npy")


@pytest.mark.parametrize("warm", [False, True])
def test_the_attack_starts_from_the_tiled_pattern_and_draws_the_same_transformations(
    tiny_encoder, warm
):
    attack = EncoderAttack(
        [tiny_encoder], ProtectConfig(warm_start=warm, **FAST), torch.device("cpu")
    )
    budget = torch.rand(1, 1, 40, 50) * 8 / 255
    gen = torch.Generator().manual_seed(0)
    param = attack.start(budget, gen)
    pattern = pattern_for(["taef2"])
    assert pattern is not None
    if warm:
        assert torch.equal(param, tiled(pattern, budget.shape) * budget)
    else:
        assert bool((param.abs() <= 0.25 * budget + 1e-7).all())
    # The random start is drawn either way: what the generator gives next is the same.
    ref = torch.Generator().manual_seed(0)
    torch.rand(1, 3, 40, 50, generator=ref)
    assert torch.equal(torch.rand(5, generator=gen), torch.rand(5, generator=ref))


@pytest.mark.real
def test_an_encoder_without_a_pattern_starts_randomly(vaelight):
    cfg = ProtectConfig(warm_start=True, **{**FAST, "encoders": ("vaelight",)})
    attack = EncoderAttack([vaelight], cfg, torch.device("cpu"))
    budget = torch.full((1, 1, 8, 8), 4 / 255)
    param = attack.start(budget, torch.Generator().manual_seed(0))
    assert bool((param.abs() <= 0.25 * budget + 1e-7).all())


def test_the_standard_preset_starts_warm():
    assert preset("standard").warm_start


@pytest.mark.real
def test_the_trainer_writes_a_pattern_the_attack_loads(models_dir, tmp_path):
    from benchmarks.train_warm_start import main

    out = tmp_path / "p.npy"
    assert (
        main(["--quick", "-o", str(out), "--models-dir", str(models_dir), "--photos", str(PHOTOS)])
        == 0
    )
    arr = np.load(out, allow_pickle=False)
    p = check_pattern(torch.from_numpy(arr), str(out))
    assert tuple(p.shape) == (1, 3, PERIOD, PERIOD) and float(p.abs().max()) > 0
    assert not (tmp_path / "p.npy.part").exists()


def test_a_missing_pattern_file_names_the_file_and_what_to_do(tmp_path, monkeypatch):
    import cloak.warm_start as ws

    monkeypatch.setattr(ws, "PATTERN_DIR", tmp_path)
    ws._load.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"taef2\.npy cannot be read.*reinstall Cloak"):
            pattern_for(["taef2"])
        (tmp_path / "taef2.npy").write_text("not an array")
        with pytest.raises(ConfigError, match="reinstall Cloak"):
            pattern_for(["taef2"])
    finally:
        ws._load.cache_clear()


@pytest.mark.parametrize("geometry", [dict(work_size=768), dict(param_scale=1)])
def test_an_attack_at_another_geometry_starts_randomly(tiny_encoder, geometry):
    cfg = ProtectConfig(warm_start=True, **{**FAST, **geometry})
    attack = EncoderAttack([tiny_encoder], cfg, torch.device("cpu"))
    budget = torch.full((1, 1, 8, 8), 4 / 255)
    param = attack.start(budget, torch.Generator().manual_seed(0))
    assert bool((param.abs() <= 0.25 * budget + 1e-7).all())
    assert pattern_for(["taef2"], cfg.work_size, cfg.param_scale) is None
