"""The one padded, autocast encode that the attack, the reference attack and the metrics share."""

from __future__ import annotations

from typing import Literal

import torch

from cloak.device import autocast
from cloak.models.base import AutoEncoder
from cloak.transforms import pad_to_multiple

EncodeMode = Literal["latent", "features", "roundtrip"]
"""What an encode returns: ``latent`` ``[z]``, ``features`` the encoder's feature maps,
``roundtrip`` ``[D(E(x)), z]`` (the decoder's output cropped back to ``x``'s size)."""


def encode(
    enc: AutoEncoder, x: torch.Tensor, mode: EncodeMode = "latent", bf16: bool = False
) -> list[torch.Tensor]:
    """Encode ``x`` (N, 3, H, W) in [0, 1], padded to the encoder's grid, as float32 tensors.

    Args:
        enc: The encoder (on ``x``'s device).
        x: The images; any H and W (replicate-padded up to ``enc.spec.downsample``).
        mode: What to return (see :data:`EncodeMode`).
        bf16: Run under bf16 autocast on ``x``'s device (channels-last on the CPU, where that
            is what makes bf16 fast).
    """
    h, w = x.shape[-2:]
    x = pad_to_multiple(x, enc.spec.downsample)
    if bf16 and x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(x.device, bf16):
        if mode == "features":
            out = enc.features(x)
        elif mode == "roundtrip":
            z = enc.encode(x)
            out = [enc.decode(z)[..., :h, :w], z]
        else:
            out = [enc.encode(x)]
    return [o.float() for o in out]


def encoder_device(enc: AutoEncoder) -> torch.device:
    """The device of the encoder's weights (the CPU when it has none)."""
    return next(iter(enc.parameters()), torch.empty(0)).device
