"""Perceptual budget: a per-pixel eps map that hides the perturbation in texture."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Rec. 601 luma weights; the eye's sensitivity to texture masking follows luma.
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W) luma."""
    return (x * _LUMA.to(x.device, x.dtype)).sum(dim=1, keepdim=True)


def local_std(y: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Standard deviation of ``y`` over a (2r+1)^2 window, same size as ``y``."""
    k = 2 * radius + 1
    pad = (radius, radius, radius, radius)
    yp = F.pad(y, pad, mode="replicate")
    mean = F.avg_pool2d(yp, k, stride=1)
    mean_sq = F.avg_pool2d(yp * yp, k, stride=1)
    return (mean_sq - mean * mean).clamp_min(0).sqrt()


def eps_map(
    image: torch.Tensor, eps: float, floor: float, tau: float = 0.04, radius: int = 3
) -> torch.Tensor:
    """Per-pixel budget: ``eps * clip(local_std / tau, floor, 1)``, smoothed, shape (N, 1, H, W).

    Flat skin and sky get ``floor * eps``; hair, foliage and fabric get the full ``eps``.

    Args:
        image: (N, 3, H, W) in [0, 1].
        eps: The L-inf budget; the map never exceeds it.
        floor: Fraction of ``eps`` that the flattest regions keep, in (0, 1].
        tau: Local standard deviation (in [0, 1] units) at which the full budget is spent.
        radius: Window radius of the texture measure.
    """
    s = local_std(luma(image), radius)
    m = (s / tau).clamp(floor, 1.0)
    # Smooth the map so budget edges do not draw outlines around objects.
    m = F.avg_pool2d(F.pad(m, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    return (eps * m).clamp(max=eps)
