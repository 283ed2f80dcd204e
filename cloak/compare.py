"""Pictures that let people see the protection: before/after and the attacker's view."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from cloak.metrics import ATTACKER_LONG_SIDE, psnr, roundtrip
from cloak.models.base import AutoEncoder
from cloak.tensors import to_array
from cloak.tiling import iter_bands
from cloak.transforms import resize_long_side

TILE = 384


def change_map(original: torch.Tensor, protected: torch.Tensor, gain: float) -> torch.Tensor:
    """The amplified per-pixel change ``clamp(gain * |d|, 0, 1)``, max over channels, as a
    (N, 1, H, W) map; computed in row bands, so a 12 MP pair needs no full-size 3-channel
    difference temporaries (150 MB each), only the one-channel result (50 MB)."""
    if original.shape != protected.shape:
        raise ValueError(
            f"images differ in shape: {tuple(original.shape)}, {tuple(protected.shape)}"
        )
    n, _, h, w = original.shape
    out = torch.empty(n, 1, h, w, dtype=torch.float32, device=original.device)
    for start, stop in iter_bands(h):
        d = protected[..., start:stop, :].float() - original[..., start:stop, :].float()
        band = out[..., start:stop, :]
        torch.amax(d.abs_(), dim=1, keepdim=True, out=band)
        band.mul_(gain).clamp_(0, 1)
    return out


def colourise(change: torch.Tensor) -> torch.Tensor:
    """A (N, 1, H, W) change in [0, 1] as a (N, 3, H, W) heat image: black, red, yellow, white."""
    r = (change * 3).clamp(0, 1)
    g = (change * 3 - 1).clamp(0, 1)
    b = (change * 3 - 2).clamp(0, 1)
    return torch.cat([r, g, b], dim=1)


def heatmap(original: torch.Tensor, protected: torch.Tensor, gain: float = 10.0) -> torch.Tensor:
    """The amplified per-pixel change |d| (max over channels) as a (1, 3, H, W) heat image."""
    return colourise(change_map(original, protected, gain))


def _tile(x: torch.Tensor, label: str, size: int) -> Image.Image:
    arr = (to_array(resize_long_side(x, size)) * 255 + 0.5).astype(np.uint8)
    im = Image.fromarray(arr)
    canvas = Image.new("RGB", (size, im.height + 22), "white")
    canvas.paste(im, ((size - im.width) // 2, 22))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    # Word by word with an "n"-wide gap: the default font's own space is about a pixel wide at
    # this size, which ran words together ("+0.9 dBdamage").
    left, gap = 4.0, draw.textlength("n", font=font)
    for word in label.split(" "):
        draw.text((left, 4), word, fill="black", font=font)
        left += draw.textlength(word, font=font) + gap
    return canvas


def comparison_image(
    original: torch.Tensor,
    protected: torch.Tensor,
    encoders: Sequence[AutoEncoder],
    attacker_long_side: int = ATTACKER_LONG_SIDE,
    tile: int = TILE,
    roundtrips: dict[tuple[str, str, int, str], torch.Tensor] | None = None,
) -> Image.Image:
    """A grid: original, protected, amplified difference; then, per encoder with a decoder,
    what the editor reconstructs from the original and from the protected photo.

    ``roundtrips``: round trips already computed by :func:`cloak.metrics.measure` (its
    ``roundtrips`` argument); those found there are not computed again.
    """
    known = roundtrips or {}
    rows: list[list[Image.Image]] = [
        [
            _tile(original, "original", tile),
            _tile(protected, f"protected (PSNR {psnr(protected, original):.1f} dB)", tile),
            _tile(heatmap(original, protected), "change x10", tile),
        ]
    ]
    o = resize_long_side(original, attacker_long_side)
    p = resize_long_side(protected, attacker_long_side)
    for enc in encoders:
        if not enc.has_decoder:
            continue
        key = (enc.name, "direct", attacker_long_side)
        rt_o = known.get((*key, "original"))
        rt_p = known.get((*key, "protected"))
        rt_o = roundtrip(enc, o) if rt_o is None else rt_o
        rt_p = roundtrip(enc, p) if rt_p is None else rt_p
        dmg = psnr(rt_o, o) - psnr(rt_p, o)
        rows.append(
            [
                _tile(rt_o, f"{enc.name}: AI view of original", tile),
                _tile(rt_p, f"{enc.name}: AI view of protected ({dmg:+.1f} dB damage)", tile),
                _tile(heatmap(rt_o, rt_p, 3.0), f"{enc.name}: AI view change x3", tile),
            ]
        )
    h = max(im.height for row in rows for im in row)
    grid = Image.new("RGB", (3 * tile, h * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            grid.paste(im, (c * tile, r * h))
    return grid
