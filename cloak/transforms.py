"""Differentiable transformations a posted photo goes through (for expectation over them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import kornia
import torch
import torch.nn.functional as F

from cloak.config import TransformConfig


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def resize_long_side(x: torch.Tensor, long_side: int) -> torch.Tensor:
    """Antialiased bilinear resize of (N, C, H, W) so that max(H, W) == long_side."""
    h, w = x.shape[-2:]
    scale = long_side / max(h, w)
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    if size == (h, w):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad H and W up to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def jpeg(x: torch.Tensor, quality: float) -> torch.Tensor:
    """Differentiable JPEG at ``quality`` (kornia's codec; x in [0, 1])."""
    h, w = x.shape[-2:]
    padded = pad_to_multiple(x, 16)
    q = torch.full((x.shape[0],), float(quality), device=x.device, dtype=x.dtype)
    out = kornia.enhance.jpeg_codec_differentiable(padded, q)
    return out[..., :h, :w]


def _window(x: torch.Tensor, most: int, top: float, left: float) -> torch.Tensor:
    """A window of at most ``most`` pixels with the view's aspect, sides multiples of 8."""
    h, w = x.shape[-2:]
    if most <= 0 or h * w <= most:
        return x
    r = math.sqrt(most / (h * w))
    wh, ww = max(64, int(h * r) // 8 * 8), max(64, int(w * r) // 8 * 8)
    wh, ww = min(wh, h), min(ww, w)
    # On the 8-px grid, so the window's latent cells are the whole view's; 1.0 is the last
    # position on it (a spread window's far corner).
    y0 = min(int(top * ((h - wh) // 8 + 1)), (h - wh) // 8) * 8
    x0 = min(int(left * ((w - ww) // 8 + 1)), (w - ww) // 8) * 8
    return x[..., y0 : y0 + wh, x0 : x0 + ww]


@dataclass(frozen=True)
class PipelineDraw:
    """One random draw of the pipeline, so the same draw can be applied to several images."""

    dy: int
    dx: int
    scale: float
    blur_sigma: float
    noise_std: float
    noise_seed: int
    jpeg_quality: float
    window: tuple[int, float, float] = (0, 0.0, 0.0)
    """(most pixels to keep, top and left as fractions of the free room); 0 keeps all."""
    long_side: int = 0
    """An exact attacker long side in pixels (0: ``scale`` times the base long side)."""


class RandomPipeline:
    """Random platform/attacker pipelines, differentiable, reproducible from a generator.

    Order: shift/crop, resize, blur, noise, JPEG (what a platform then an attacker does).
    ``draw()`` picks the random parameters; ``apply(x, draw)`` runs them, so the clean and the
    protected image can go through exactly the same pipeline.
    """

    SPREAD = ((0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.5, 0.5))
    """Window positions (top, left as fractions of the free room) that ``spread_windows``
    cycles through: four corners, then the centre."""

    def __init__(self, config: TransformConfig, generator: torch.Generator) -> None:
        self.config = config
        self.gen = generator
        self._drawn = 0
        self._windows_at: dict[int, int] = {}
        self._spread_start = -1

    def draw(self) -> PipelineDraw | None:
        c = self.config
        if not c.enabled:
            return None
        g = self.gen
        dy = dx = 0
        if c.shift_px > 0:
            dy, dx = (int(v) for v in torch.randint(0, c.shift_px + 1, (2,), generator=g))
        scale = _uniform(g, *c.resize)
        long_side = 0
        if c.size_order:
            long_side = c.size_order[self._drawn % len(c.size_order)]
        elif c.sizes:
            # By default each size in proportion to its area: a step encodes at most one
            # window, so a large view needs more steps than a small one for its windows to
            # cover it.
            weights = torch.tensor(c.size_weights or [s**2 for s in c.sizes], dtype=torch.float)
            long_side = c.sizes[int(torch.multinomial(weights, 1, generator=g))]
        blur = 0.0
        if c.blur_prob > 0 and float(torch.rand((), generator=g)) < c.blur_prob:
            blur = _uniform(g, 0.3, max(0.3, c.blur_sigma))
        noise = _uniform(g, 0.0, c.noise_std) if c.noise_std > 0 else 0.0
        seed = int(torch.randint(0, 2**31 - 1, (), generator=g))
        quality = 0.0
        if c.jpeg_prob > 0 and float(torch.rand((), generator=g)) < c.jpeg_prob:
            quality = _uniform(g, *c.jpeg_quality)
        window = (0, 0.0, 0.0)
        if c.window_px > 0:
            top, left = (float(v) for v in torch.rand((2,), generator=g))
            if c.spread_windows:
                top, left = self._spread(long_side)
            window = (c.window_px, top, left)
        self._drawn += 1
        return PipelineDraw(dy, dx, scale, blur, noise, seed, quality, window, long_side)

    def _spread(self, long_side: int) -> tuple[float, float]:
        """The next of :attr:`SPREAD` for windows at ``long_side`` (each size keeps its own
        turn; the first position is drawn once per pipeline)."""
        if self._spread_start < 0:
            n = len(self.SPREAD)
            self._spread_start = int(torch.randint(0, n, (), generator=self.gen))
        k = self._windows_at.get(long_side, 0)
        self._windows_at[long_side] = k + 1
        return self.SPREAD[(self._spread_start + k) % len(self.SPREAD)]

    def views(self, d: PipelineDraw | None) -> list[PipelineDraw | None]:
        """What one step encodes for draw ``d``: ``d`` itself, or with ``step_sizes`` one window
        at each of those sizes, each with an equal share of ``window_px``, the windows spread
        over the view (mirrored, then half a view on, from the draw's own position), so no
        random number is drawn for them."""
        sizes = self.config.step_sizes
        if d is None or not sizes:
            return [d]
        most, top, left = d.window
        share = most // len(sizes)
        out: list[PipelineDraw | None] = []
        for i, size in enumerate(sizes):
            t = 1 - top if i % 4 in (1, 3) else top
            lf = 1 - left if i % 4 in (1, 2) else left
            t, lf = (t + i // 4 * 0.5) % 1.0, (lf + i // 4 * 0.5) % 1.0
            out.append(replace(d, long_side=size, window=(share, t, lf)))
        return out

    @staticmethod
    def apply(x: torch.Tensor, d: PipelineDraw | None, base_long_side: int) -> torch.Tensor:
        """Run draw ``d`` on ``x``; the resize target is ``d.scale * base_long_side``."""
        if d is None:
            return x
        if d.dy or d.dx:
            # Crop a few pixels so the content moves against the encoders' 8-px grid.
            x = x[..., d.dy :, d.dx :]
        x = resize_long_side(x, d.long_side or max(16, round(base_long_side * d.scale)))
        x = _window(x, *d.window)
        if d.blur_sigma > 0:
            k = 2 * math.ceil(2 * d.blur_sigma) + 1
            x = kornia.filters.gaussian_blur2d(x, (k, k), (d.blur_sigma, d.blur_sigma))
        if d.noise_std > 0:
            g = torch.Generator().manual_seed(d.noise_seed)
            noise = torch.randn(x.shape, generator=g).to(x.device, x.dtype)
            x = x + d.noise_std * noise
        x = x.clamp(0, 1)
        if d.jpeg_quality > 0:
            x = jpeg(x, d.jpeg_quality)
        return x
