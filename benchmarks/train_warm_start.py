"""Train the attack's warm-start pattern (:mod:`cloak.warm_start`) for one encoder.

Run from the repository root (the real weights in ``../shared/weights``)::

    python -m benchmarks.train_warm_start                  # writes cloak/patterns/taef2.npy
    python -m benchmarks.train_warm_start --quick -o /tmp/p.npy   # a smoke run (the test's)

The pattern ``tanh(u)`` (1, 3, 32, 32) is tiled over each training photo's parameter grid and
scaled by its budget map, projected onto the preset's PSNR floor, and ``u`` is trained with
Adam on the preset's own loss under its own transformations: the same objective, budget and
attacker sizes as a protection, so the pattern is a start for exactly those steps. Training
photos: the four sample photos (a cat, a cup, a rocket, an astronaut), each at 1024 and 1600
px long side and mirrored; the portraits are kept out, so figures measured on them are on
photos the pattern never saw. Two stages: the attacker sizes drawn by area, then the three
attacker sizes drawn equally, from where the first stage ended. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench import load_at
from cloak.config import preset
from cloak.engine import EncoderAttack
from cloak.models import load_encoder
from cloak.staging import stage
from cloak.transforms import RandomPipeline
from cloak.warm_start import PATTERN_FILES, PERIOD, check_pattern, read_pattern, tiled

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", default="taef2")
    ap.add_argument("--preset", default="standard")
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "photos")
    ap.add_argument("--models-dir", type=Path, default=ROOT.parent / "shared" / "weights")
    ap.add_argument("--stages", default="400,300", help="steps of the two stages")
    ap.add_argument(
        "--weights",
        default="",
        help="the second stage's attacker-size weights, e.g. 1,2,1 (default: equal)",
    )
    ap.add_argument("--init", type=Path, default=None, help="start from this pattern file")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="tiny photos and 2 + 1 steps")
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    out = a.out or ROOT / "cloak" / "patterns" / PATTERN_FILES[a.encoder]
    enc = load_encoder(a.encoder, models_dir=a.models_dir, offline=True)
    cfg = preset(a.preset).replace(device="cpu", encoders=(a.encoder,))
    # Random size draws and windows: a preset's fixed size order and spread windows serve one
    # photo's few steps, not training's thousands.
    cfg = cfg.replace(
        transforms=dataclasses.replace(cfg.transforms, size_order=(), spread_windows=False)
    )
    longs: tuple[int, ...] = (1024, 1600)
    stages = [int(v) for v in a.stages.split(",")]
    if a.quick:
        cfg = cfg.replace(
            work_size=96,
            transforms=dataclasses.replace(cfg.transforms, sizes=(64, 96), window_px=96 * 64),
        )
        longs, stages = (128,), [2, 1]
    attack = EncoderAttack([enc], cfg, torch.device("cpu"))
    levels = []
    for name in SAMPLES:
        for mirror in (False, True):
            for long_side in longs:
                work = stage(
                    load_at(a.photos / name, long_side, mirror), [enc], "cpu", cfg.work_size
                )
                with torch.no_grad():
                    levels.append(attack.prepared(work.work))
    torch.manual_seed(a.seed)
    u = 0.1 * torch.randn(1, 3, PERIOD, PERIOD)
    if a.init is not None:
        # tanh(u) = the pattern; keep u finite where the pattern sits on +-1.
        u = torch.atanh(read_pattern(a.init).clamp(-0.999, 0.999))
    second = (
        tuple(float(v) for v in a.weights.split(","))
        if a.weights
        else (1.0,) * len(cfg.transforms.sizes)
    )
    start = time.perf_counter()
    for k, steps in enumerate(stages):
        # Stage 1: the sizes drawn by area; stage 2: the attacker's sizes equally, or
        # weighted as --weights says.
        weights = () if k == 0 else second
        attack.config = cfg.replace(
            transforms=dataclasses.replace(cfg.transforms, size_weights=weights)
        )
        torch.manual_seed(a.seed)
        pick = random.Random(a.seed)
        pipe = RandomPipeline(attack.config.transforms, torch.Generator().manual_seed(a.seed + 1))
        u = u.detach().requires_grad_(True)
        opt = torch.optim.Adam([u], lr=a.lr)
        recent: list[float] = []
        for it in range(steps):
            fine, budget, project = pick.choice(levels)
            param = project(tiled(torch.tanh(u), budget.shape) * budget)
            loss = attack.loss(fine, param, pipe, pipe.draw())
            opt.zero_grad()
            loss.backward()
            opt.step()
            recent.append(float(loss.detach()))
            if (it + 1) % 25 == 0 or it + 1 == steps:
                print(
                    f"stage {k + 1} step {it + 1}/{steps}: loss {np.mean(recent[-25:]):.5f}, "
                    f"{time.perf_counter() - start:.0f} s",
                    flush=True,
                )
    pattern = check_pattern(torch.tanh(u.detach()).float(), str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as f:
        np.save(f, pattern.numpy())
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
