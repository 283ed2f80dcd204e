"""``gray``: pull the latent toward the latent of a flat mid-gray image (PhotoGuard's target)."""

from __future__ import annotations

import torch

from cloak.objectives._target import TowardTarget
from cloak.objectives.base import register


@register
class Gray(TowardTarget):
    """The latent toward the latent of a 0.5-gray image of the photo's size."""

    name = "gray"

    def target(self, image: torch.Tensor) -> torch.Tensor:
        return torch.full_like(image, 0.5)
