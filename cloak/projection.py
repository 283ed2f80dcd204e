"""Where the perturbation may go: its resolutions and the projection onto its constraints.

The optimised parameter may be coarser than the work image (``param_scale``); a
:class:`Level` is one resolution the attack looks at the photo in, and
:class:`Projection` keeps the parameter within the per-pixel L-inf budget, the PSNR floor
(an L2 ball) and the [0, 1] range of the photo it perturbs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from cloak.budget import eps_map
from cloak.objectives.base import Fixed


@dataclass
class Level:
    """One resolution of the attack: the photo, its budget, and each encoder's fixed state.

    Attributes:
        x: The clean photo (1, 3, h, w) in [0, 1] at this resolution.
        budget: Per-pixel L-inf budget (1, 1, h, w).
        base: Long side the step's transforms resize relative to.
        fixed: The objective's fixed state per encoder (filled by the engine).
    """

    x: torch.Tensor
    budget: torch.Tensor
    base: int
    fixed: list[Fixed] = field(default_factory=list)

    def expand(self, p: torch.Tensor) -> torch.Tensor:
        """The perturbation at this level's resolution, within its budget and [0, 1]."""
        h, w = self.x.shape[-2:]
        if tuple(p.shape[-2:]) != (h, w):
            p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
            p = torch.maximum(torch.minimum(p, self.budget), -self.budget)
        return (self.x + p).clamp(0, 1) - self.x


def work_budget(x: torch.Tensor, eps: float, perceptual: bool, floor: float) -> torch.Tensor:
    """The per-pixel budget (1, 1, h, w) of the work image: the perceptual map or flat ``eps``."""
    if perceptual:
        return eps_map(x, eps, floor)
    h, w = x.shape[-2:]
    return torch.full((1, 1, h, w), eps, device=x.device)


def param_size(h: int, w: int, param_scale: int) -> tuple[int, int]:
    """The optimised parameter's (h, w) at 1/``param_scale`` of the work size."""
    s = max(1, param_scale)
    return max(1, math.ceil(h / s)), max(1, math.ceil(w / s))


class Projection:
    """Projects the parameter onto the L-inf map, the PSNR floor and the photo's [0, 1] range.

    The PSNR floor is an L2 ball: ``PSNR >= min_psnr  <=>  RMS(delta) <= 10^(-min_psnr/20)``,
    measured on the perturbation as it lands on the work image.

    Args:
        fine: The work-size level (the photo the perturbation is finally added to).
        budget: The parameter's own per-pixel budget (the work budget max-pooled to its size).
        min_psnr: The floor in dB, or None for none.
        per_pixel: True when the parameter has the work size (then it is also clipped so that
            ``x + param`` stays in [0, 1]).
    """

    def __init__(
        self, fine: Level, budget: torch.Tensor, min_psnr: float | None, per_pixel: bool
    ) -> None:
        self.fine = fine
        self.budget = budget
        self.rms_max = None if min_psnr is None else 10.0 ** (-min_psnr / 20.0)
        self.per_pixel = per_pixel

    def __call__(self, param: torch.Tensor) -> torch.Tensor:
        param = torch.maximum(torch.minimum(param, self.budget), -self.budget)
        if self.rms_max is not None:
            rms = float(self.fine.expand(param.detach()).pow(2).mean().sqrt())
            if rms > self.rms_max:
                param = param * (self.rms_max / rms)
        if self.per_pixel:
            param = self.fine.expand(param)
        return param
