"""``pattern``: pull the latent toward the latent of a high-contrast patterned image."""

from __future__ import annotations

import math

import torch

from cloak.objectives._target import TowardTarget
from cloak.objectives.base import register


def pattern_target(height: int, width: int, period: int = 24) -> torch.Tensor:
    """A high-contrast patterned target image (1, 3, H, W) in [0, 1].

    Diagonal stripes crossed with a checkerboard in complementary colours: the decoder renders
    its latent as strong texture instead of a clean gray, which is what an editor then shows.
    """
    yy, xx = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * (xx + yy) / period)
    checker = ((xx // (period // 2) + yy // (period // 2)) % 2).float()
    r = stripes
    g = 1 - checker
    b = 0.5 * (1 - stripes) + 0.5 * checker
    return torch.stack([r, g, b])[None]


@register
class Pattern(TowardTarget):
    """The latent toward the latent of :func:`pattern_target` at the photo's size."""

    name = "pattern"

    def target(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        return pattern_target(h, w).to(image.device)
