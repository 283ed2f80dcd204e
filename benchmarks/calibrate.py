"""The picture behind the verdict's words: AI views of real portraits at several damage levels.

Protects each portrait at a ladder of strengths, measures the TAEF2 edit damage at the
attacker's most common size (``cloak.metrics.ATTACKER_LONG_SIDE``) and lays out, per portrait,
the AI view of the original and of each protected version, cropped around the largest face
(where people look) and labelled with its damage. The thresholds in ``cloak/verdict.py`` are
read off this grid::

    python -m benchmarks.calibrate --out docs/img/verdict_calibration.png

``--preset`` and ``--rungs`` (a JSON list of :class:`cloak.config.ProtectConfig` fields, one
object per rung) climb another ladder: how far one preset goes as its budget grows, e.g. max
with a larger share of the 16/255 cap on flat areas::

    python -m benchmarks.calibrate --preset max --plots max_budget --photo-column \
        --rungs '[{}, {"perceptual_floor": 0.5}, {"perceptual_floor": 1.0}]' \
        --out docs/img/max_budget_views.png

Needs the real weights (``--models-dir``, default ../shared/weights) and the portraits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench import PHOTOS, load_at

PORTRAITS = PHOTOS / "portraits"
DEFAULT_PHOTOS = ("img13.jpg", "img58.jpg", "img30.jpg", "selfie-many-people.jpg")
LADDER: tuple[dict[str, Any], ...] = tuple(
    # From a faint change to the 16/255 hard cap, on the standard preset.
    {"eps": eps / 255, "min_psnr": floor, "steps": steps, "step_rule": rule}
    for eps, floor, steps, rule in (
        (4.0, 40.0, 10, "l2"),
        (8.0, 36.0, 10, "l2"),
        (12.0, 33.0, 16, "l2"),
        (16.0, 30.0, 24, "l2"),
        (16.0, None, 30, "sign"),
    )
)
"""The rungs: :class:`cloak.config.ProtectConfig` fields changed from the preset."""
TILE = 256


def _crop(x: Any, box: tuple[int, int, int, int]) -> Any:
    import torch.nn.functional as F

    left, top, w, h = box
    part = x[..., top : top + h, left : left + w]
    return F.interpolate(part, size=(TILE, TILE), mode="bilinear", antialias=True)


def _face_box(x: Any) -> tuple[int, int, int, int]:
    """A square around the largest face, grown to show hair and background; else the centre."""
    from cloak.faces import find_faces

    h, w = x.shape[-2:]
    faces = find_faces(x)
    if faces:
        fx, fy, fw, fh = faces[0]
        side = min(h, w, round(max(fw, fh) * 1.8))
        cx, cy = fx + fw // 2, fy + fh // 2
    else:
        side = min(h, w) // 2
        cx, cy = w // 2, h // 2
    left = min(max(0, cx - side // 2), w - side)
    top = min(max(0, cy - side // 2), h - side)
    return left, top, side, side


def run(
    photos: list[str],
    long_side: int,
    models_dir: str,
    work: dict[str, Any],
    done: Any = None,
    base_preset: str = "standard",
    rungs: tuple[dict[str, Any], ...] = LADDER,
    photo_column: bool = False,
) -> Any:
    import torch
    from PIL import ImageFont

    from cloak.config import TransformConfig, preset
    from cloak.engine import protect, run_to_end
    from cloak.metrics import ATTACKER_LONG_SIDE, platform, psnr, roundtrip, ssim
    from cloak.models import load_encoder
    from cloak.tensors import quantize
    from cloak.transforms import resize_long_side

    torch.set_num_threads(2)
    taef2 = load_encoder("taef2", models_dir=models_dir, offline=True)
    work = dict(work)
    if "transforms" in work:
        work["transforms"] = TransformConfig(**work["transforms"])
    base = preset(base_preset).replace(device="cpu", encoders=("taef2",), **work)
    font = ImageFont.load_default()
    rows: list[list[tuple[Any, str]]] = []
    table: list[dict[str, Any]] = []
    for name in photos:
        x = load_at(PORTRAITS / name, long_side, upscale=False)
        o = resize_long_side(x, ATTACKER_LONG_SIDE)
        box = _face_box(o)
        rt_o = roundtrip(taef2, o)
        clean_psnr = psnr(rt_o, o)
        o768 = resize_long_side(x, 768)
        clean768 = psnr(roundtrip(taef2, o768), o768)
        o_q = resize_long_side(platform(x, 1080, 80), ATTACKER_LONG_SIDE)
        clean_q = psnr(roundtrip(taef2, o_q), o_q)
        row = [(_crop(o, box), f"{name}: photo"), (_crop(rt_o, box), "AI view of original")]
        for rung, fields in enumerate(rungs):
            cfg = base.replace(**fields)
            start = time.perf_counter()
            saved = quantize(run_to_end(protect(x, [taef2], cfg)).protected)
            seconds = time.perf_counter() - start
            p = resize_long_side(saved, ATTACKER_LONG_SIDE)
            p768 = resize_long_side(saved, 768)
            p_q = resize_long_side(platform(saved, 1080, 80), ATTACKER_LONG_SIDE)
            rt_p = roundtrip(taef2, p)
            dmg = clean_psnr - psnr(rt_p, o)
            face_dmg = psnr(_crop(rt_o, box), _crop(o, box)) - psnr(_crop(rt_p, box), _crop(o, box))
            table.append(
                {
                    "photo": name,
                    "rung": rung,
                    "eps": cfg.eps * 255,
                    "psnr": psnr(saved, x),
                    "ssim": ssim(saved, x),
                    "seconds": seconds,
                    "damage": dmg,
                    "damage768": clean768 - psnr(roundtrip(taef2, p768), o768),
                    "damage_1080q80": clean_q - psnr(roundtrip(taef2, p_q), o_q),
                    "ai_ssim": ssim(rt_p, o),
                    "face": face_dmg,
                }
            )
            print(json.dumps(table[-1]), flush=True)
            row.append((_crop(rt_p, box), f"{dmg:+.1f} dB (face {face_dmg:+.1f})"))
        if photo_column:
            # What the last rung costs: the protected photo itself, around the face.
            s = max(x.shape[-2:]) / max(o.shape[-2:])
            big = tuple(round(v * s) for v in box)
            row.append((_crop(saved, big), f"photo: PSNR {table[-1]['psnr']:.1f} dB"))
        rows.append(row)
        if done is not None:
            done(_grid(rows, font), table)
    return _grid(rows, font), table


def _grid(rows: list[list[tuple[Any, str]]], font: Any) -> Any:
    import numpy as np
    from PIL import Image, ImageDraw

    from cloak.tensors import to_array

    cols = max(len(r) for r in rows)
    grid = Image.new("RGB", (cols * TILE, len(rows) * (TILE + 18)), "white")
    draw = ImageDraw.Draw(grid)
    for r, row in enumerate(rows):
        for c, (img, label) in enumerate(row):
            arr = (to_array(img) * 255 + 0.5).astype(np.uint8)
            grid.paste(Image.fromarray(arr), (c * TILE, r * (TILE + 18) + 18))
            draw.text((c * TILE + 4, r * (TILE + 18) + 3), label, fill="black", font=font)
    return grid


def plot(table: list[dict[str, Any]], out: Path, name: str = "portraits") -> list[Path]:
    """Damage against PSNR and against seconds, one line per photo plus the median, as
    ``damage_vs_psnr_<name>.png`` and ``damage_vs_seconds_<name>.png`` beside ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cloak.verdict import BROKEN_DB, DEGRADED_DB

    paths = []
    for xkey, xlabel, filename in (
        ("psnr", "PSNR of the protected photo (dB)", f"damage_vs_psnr_{name}.png"),
        ("seconds", "seconds per photo (this machine, shared)", f"damage_vs_seconds_{name}.png"),
    ):
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for photo in dict.fromkeys(r["photo"] for r in table):
            rows = [r for r in table if r["photo"] == photo]
            ax.plot(
                [r[xkey] for r in rows], [r["damage"] for r in rows], "o-", alpha=0.5, label=photo
            )
        levels = sorted({r["rung"] for r in table})
        med = [
            (
                statistics.median(r[xkey] for r in table if r["rung"] == e),
                statistics.median(r["damage"] for r in table if r["rung"] == e),
            )
            for e in levels
        ]
        ax.plot(*zip(*med, strict=True), "k-s", lw=2, label="median")
        for level in (DEGRADED_DB, BROKEN_DB):
            ax.axhline(level, color="gray", ls=":", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("TAEF2 edit damage at 1024 px (dB)")
        if xkey == "psnr":
            ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out.parent / filename
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", default=",".join(DEFAULT_PHOTOS))
    p.add_argument("--long-side", type=int, default=1280, help="photos are resized to this")
    p.add_argument("--models-dir", default=str(PHOTOS.parent / "weights"))
    p.add_argument("--work", default="{}", help="JSON of ProtectConfig fields for every level")
    p.add_argument("--preset", default="standard", help="the preset every rung starts from")
    p.add_argument("--rungs", help="JSON list of ProtectConfig fields per rung (default: LADDER)")
    p.add_argument(
        "--photo-column", action="store_true", help="add the last rung's photo around the face"
    )
    p.add_argument("--plots", default="portraits", help="damage_vs_psnr_<this>.png and so on")
    p.add_argument("--out", type=Path, default=Path("docs/img/verdict_calibration.png"))
    a = p.parse_args(argv)
    rungs = LADDER
    if a.rungs:
        rungs = tuple(json.loads(a.rungs))
        if not rungs or not all(isinstance(r, dict) for r in rungs):
            raise SystemExit("--rungs: give a JSON list of objects, e.g. '[{}, {\"steps\": 20}]'")
    photos = [s for s in a.photos.split(",") if s]
    a.out.parent.mkdir(parents=True, exist_ok=True)

    def save(grid: Any, table: list[dict[str, Any]]) -> None:
        # After every photo, so an interrupted run still leaves its pictures.
        grid.save(a.out)
        a.out.with_suffix(".json").write_text(json.dumps(table, indent=1))
        for path in plot(table, a.out, a.plots):
            print(f"wrote {path}", flush=True)
        print(f"wrote {a.out}", flush=True)

    run(
        photos, a.long_side, a.models_dir, json.loads(a.work), save, a.preset, rungs, a.photo_column
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
