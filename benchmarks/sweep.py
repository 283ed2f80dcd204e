"""Compare attack variants on real photos at one visibility: the experiments behind the presets.

Each variant is a preset with some :class:`cloak.config.ProtectConfig` fields changed, given as
``NAME=JSON``. Every variant protects every photo (the shared photos, cropped to 4:3 and resized
to a phone-like size, or with ``--long`` kept as framed, e.g. ``--photos portraits/img13.jpg``),
the result is rounded to 8 bits as a saved file would be, and :func:`cloak.metrics.measure`
scores it against TAEF2 (attacked) and VAElight (held out, never seen by the attack, unless a
variant names ``"encoders"``)::

    python -m benchmarks.sweep \\
        'decoded={}' 'push={"objective": "push"}' 'features={"objective": "features"}' \\
        --photos astronaut.png,coffee.png --size 1152 --json /tmp/sweep.json

A JSON value ``{"preset": "high", ...}`` starts from another preset. ``"transforms"`` changes
only the fields it names of the preset's own transformations (lists become tuples), e.g.
``'random={"transforms": {"size_order": [], "spread_windows": false}}'``. ``--attacker
512,768,1024`` scores every attacker size; the table then gives the direct damage at each, and
each photo's weakest size. Seconds are the wall time of
:func:`cloak.engine.protect` with ``--threads`` threads, after a warm-up; compare them only
within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench import PHOTOS, load_at, make_photo

SCENARIOS = ("direct", "1080/q80", "720/q70")
DEFAULT_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME=JSON`` -> (name, overrides)."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"variant {text!r}: write NAME=JSON, e.g. 'push={{}}'")
    try:
        overrides = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise SystemExit(f"variant {name!r}: its JSON does not parse ({exc})") from exc
    if not isinstance(overrides, dict):
        raise SystemExit(f"variant {name!r}: the JSON must be an object of ProtectConfig fields")
    return name, overrides


def run(
    variants: list[tuple[str, dict[str, Any]]],
    photos: list[str],
    size: int,
    long_side: int,
    models_dir: str,
    threads: int,
    attackers: list[int],
) -> list[dict[str, Any]]:
    import numpy as np
    import torch
    from PIL import Image

    from cloak.config import preset
    from cloak.engine import protect, run_to_end
    from cloak.metrics import OriginalCache, measure
    from cloak.models import load_encoder
    from cloak.tensors import quantize, to_tensor

    torch.set_num_threads(threads)
    # The process-wide allocator setting the cloak command makes at its entry point.
    from cloak.device import keep_freed_memory

    keep_freed_memory()
    taef2 = load_encoder("taef2", models_dir=models_dir, offline=True)
    vaelight = load_encoder("vaelight", models_dir=models_dir, offline=True)
    loaded = {"taef2": taef2, "vaelight": vaelight}
    tmp = Path(tempfile.mkdtemp(prefix="cloak-sweep-"))
    images = {}
    for name in photos:
        if long_side:
            # The photo as it is framed (a portrait stays upright).
            images[name] = load_at(PHOTOS / name, long_side)
            continue
        path = make_photo((size, size * 3 // 4), tmp / f"{Path(name).stem}.jpg", source=name)
        with Image.open(path) as im:
            images[name] = to_tensor(np.asarray(im.convert("RGB"), dtype=np.float32) / 255)
    # Warm-up: kernels, bf16 paths and the attack's activation memory.
    warm = preset("standard").replace(device="cpu", steps=2, encoders=("taef2",))
    run_to_end(protect(images[photos[0]][..., :128, :128], [taef2], warm))

    caches: dict[str, OriginalCache] = {name: {} for name in images}
    rows: list[dict[str, Any]] = []
    for vname, overrides in variants:
        o = dict(overrides)
        cfg = preset(o.pop("preset", "standard")).replace(device="cpu", encoders=("taef2",))
        if "transforms" in o:
            fields = {k: tuple(v) if isinstance(v, list) else v for k, v in o["transforms"].items()}
            o["transforms"] = dataclasses.replace(cfg.transforms, **fields)
        if "encoders" in o:
            o["encoders"] = tuple(o["encoders"])
        cfg = cfg.replace(**o)
        attacked = [loaded[n] for n in cfg.encoders]
        for pname, x in images.items():
            res = run_to_end(protect(x, attacked, cfg))
            saved = quantize(res.protected)
            d = saved - x
            rep = measure(
                x, saved, [taef2, vaelight], attacker_long_side=attackers, cache=caches[pname]
            )
            row: dict[str, Any] = {
                "variant": vname,
                "photo": pname,
                "psnr": rep.psnr,
                "ssim": rep.ssim,
                "linf": rep.linf_255,
                # Colour in the change: RMS of the change minus its per-pixel gray, in /255.
                "chroma_rms": float((d - d.mean(dim=1, keepdim=True)).pow(2).mean().sqrt()) * 255,
                "luma_rms": float(d.mean(dim=1).pow(2).mean().sqrt()) * 255,
                "seconds": res.seconds,
            }
            for s in rep.scores:
                key = "t" if s.encoder == "taef2" else "v"
                if s.size == attackers[0]:
                    row[f"{key}_damage_{s.scenario}"] = s.damage_db
                    row[f"{key}_shift_{s.scenario}"] = s.latent_shift
                if key == "t":
                    row[f"t_damage_{s.scenario}_{s.size}"] = s.damage_db
            row["t_damage_weakest"] = min(row[f"t_damage_direct_{z}"] for z in attackers)
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


def attacker_sizes(r: dict[str, Any]) -> list[int]:
    """The attacker sizes a row was scored at, in the order given."""
    pre = "t_damage_direct_"
    return [int(k[len(pre) :]) for k in r if k.startswith(pre)]


def format_row(r: dict[str, Any]) -> str:
    dmg = " / ".join(f"{r[f't_damage_{s}']:.2f}" for s in SCENARIOS)
    vsh = " / ".join(f"{r[f'v_shift_{s}']:.1f}" for s in SCENARIOS[:2])
    sizes = attacker_sizes(r)
    by_size = ""
    if len(sizes) > 1:
        each = " / ".join(f"{r[f't_damage_direct_{z}']:.2f}" for z in sizes)
        by_size = f" {each} | {r['t_damage_weakest']:.2f} |"
    return (
        f"| {r['variant']} | {r['photo']} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
        f"{r['luma_rms']:.2f} / {r['chroma_rms']:.2f} | {dmg} |{by_size} "
        f"{r['t_shift_direct']:.1f} | {vsh} | {r['seconds']:.1f} |"
    )


def header(attackers: list[int]) -> str:
    by_size = ""
    if len(attackers) > 1:
        sizes = " / ".join(str(z) for z in attackers)
        by_size = f" TAEF2 damage dB direct at {sizes} px | weakest size |"
    cols = 9 + (2 if by_size else 0)
    return (
        "| variant | photo | PSNR | SSIM | change RMS /255 luma / chroma "
        f"| TAEF2 damage dB direct / 1080q80 / 720q70 at {attackers[0]} px |{by_size} "
        "TAEF2 shift | VAElight (held out) shift direct / 1080q80 | s |\n" + "|---" * cols + "|"
    )


def means(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant: the mean of every number over its photos."""
    out = []
    for v in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == v]
        m: dict[str, Any] = {"variant": v, "photo": f"mean of {len(mine)}"}
        for k, val in mine[0].items():
            if isinstance(val, float):
                m[k] = statistics.fmean(r[k] for r in mine)
        out.append(m)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variants", nargs="+", help="NAME=JSON of ProtectConfig overrides")
    p.add_argument("--photos", default=",".join(DEFAULT_PHOTOS))
    p.add_argument("--size", type=int, default=1152, help="long side of the 4:3 test photos")
    p.add_argument(
        "--long",
        type=int,
        default=0,
        help="keep each photo's framing instead, its long side resized to this (portraits)",
    )
    p.add_argument(
        "--attacker", default="768", help="the attacker's long side, or several: 512,768,1024"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models-dir", default=str(PHOTOS.parent / "weights"))
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    variants = [parse_variant(v) for v in a.variants]
    photos = [s for s in a.photos.split(",") if s]
    try:
        attackers = [int(z) for z in a.attacker.split(",") if z]
    except ValueError:
        raise SystemExit(
            f"--attacker {a.attacker!r}: give sizes in pixels, e.g. 512,768,1024"
        ) from None
    if not attackers:
        raise SystemExit("--attacker: give at least one size")
    print(header(attackers), flush=True)
    rows = run(variants, photos, a.size, a.long, a.models_dir, a.threads, attackers)
    print("\nMeans:\n" + header(attackers))
    for m in means(rows):
        print(format_row(m))
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "means": means(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
