"""The set-up and landing every protection shares: the engine's and the reference attack's.

A full-size photo is checked, made into a work-size copy on the compute device (the encoders
moved there too), attacked there, and the work-size perturbation is lifted back onto one
full-size copy on the CPU, in row bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cloak.device import choose_device
from cloak.errors import ConfigError
from cloak.models.base import AutoEncoder
from cloak.tiling import lift_add_
from cloak.transforms import resize_long_side


def check_image(image: torch.Tensor) -> None:
    """Refuse anything but a float (1, 3, H, W) image, with a :class:`ConfigError`."""
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ConfigError(f"expected an image of shape (1, 3, H, W), got {tuple(image.shape)}")
    if not torch.is_floating_point(image):
        raise ConfigError(f"expected a float image in [0, 1], got dtype {image.dtype}")


def work_image(image: torch.Tensor, work_size: int) -> torch.Tensor:
    """The photo at the attack's resolution: long side ``min(work_size, long side)``."""
    h, w = image.shape[-2:]
    return resize_long_side(image, min(work_size, max(h, w)))


def lift(delta: torch.Tensor, size: tuple[int, int], eps: float) -> torch.Tensor:
    """Upsample a work-resolution perturbation onto the full-size photo, within ``eps``.

    Bilinear interpolation is a convex combination, so it never leaves the budget; the clamp
    only guards rounding. (The engine lifts in row bands, :func:`cloak.tiling.lift_add_`,
    which equals this.)
    """
    if tuple(delta.shape[-2:]) != tuple(size):
        delta = F.interpolate(delta, size=size, mode="bilinear", align_corners=False)
    return delta.clamp(-eps, eps)


@dataclass
class Staged:
    """A photo ready to attack.

    Attributes:
        full: The full-size photo, float32 on the CPU (not copied when it already was).
        work: The work-size copy in [0, 1] on ``device``.
        device: The compute device; the encoders are there.
    """

    full: torch.Tensor
    work: torch.Tensor
    device: torch.device

    @property
    def work_shape(self) -> tuple[int, int]:
        return int(self.work.shape[-2]), int(self.work.shape[-1])

    def land(self, delta: torch.Tensor, eps: float) -> torch.Tensor:
        """The protected full-size photo: ``full + lift(delta)`` in [0, 1], on the CPU.

        One full-size copy; the lift is added into it in row bands, so a 50 MP photo never
        holds a full-size upsampled perturbation or a sum temporary.
        """
        protected = self.full.to(dtype=torch.float32, copy=True).clamp_(0, 1)
        lift_add_(protected, delta.detach().float().cpu(), eps)
        return protected


def stage(
    image: torch.Tensor, encoders: Sequence[AutoEncoder], device: str, work_size: int
) -> Staged:
    """Check ``image``, choose the device, move ``encoders`` there and make the work image."""
    check_image(image)
    dev = choose_device(device)
    for enc in encoders:
        enc.to(dev)
    # No full-size copy before the attack: only the work-size image is made here.
    full = image.detach().float().cpu()
    return Staged(full, work_image(full, work_size).clamp(0, 1).to(dev), dev)
