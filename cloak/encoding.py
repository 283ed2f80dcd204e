"""The one padded, autocast encode that the attack, the reference attack and the metrics share."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any, Literal

import torch

from cloak.device import autocast
from cloak.models.base import AutoEncoder
from cloak.transforms import pad_to_multiple

EncodeMode = Literal["latent", "features", "roundtrip"]
"""What an encode returns: ``latent`` ``[z]``, ``features`` the encoder's feature maps,
``roundtrip`` ``[D(E(x)), z]`` (the decoder's output cropped back to ``x``'s size)."""

COMPACT_MIN_ELEMENTS = 1 << 20
"""Saved activations with at least this many float32 elements are kept in bf16 for backward."""


@contextlib.contextmanager
def compact_saved_activations(min_elements: int = COMPACT_MIN_ELEMENTS) -> Iterator[None]:
    """Keep the large float32 tensors autograd saves for backward in bf16 (half the memory).

    In fp32 a TAEF2 encode + decode of a 640x400 window saves about 1 GB for backward, most
    of it full-resolution ReLU outputs (also the next convolution's input). ReLU's backward
    reads only their sign, which bf16 keeps, and a convolution with frozen weights does not
    read its input to give the input's gradient, so on TAEF2 the gradient is unchanged (the
    same bits, measured); layers that do read their input (GroupNorm, SiLU) see it rounded
    to bf16, as under bf16 autocast. A tensor saved twice (a ReLU output that feeds a
    convolution) is stored once. Small tensors and weights are kept as they are.
    """
    cache: dict[tuple[Any, ...], tuple[weakref.ref[torch.Tensor], torch.Tensor]] = {}

    def pack(t: torch.Tensor) -> Any:
        if t.dtype != torch.float32 or t.numel() < min_elements:
            return t
        key = (t.data_ptr(), t._version, tuple(t.shape), t.stride())
        hit = cache.get(key)
        # The weak reference tells a live tensor from a freed one whose memory was reused.
        if hit is None or hit[0]() is not t:
            hit = cache[key] = (weakref.ref(t), t.detach().to(torch.bfloat16))
        return (hit[1],)

    def unpack(packed: Any) -> torch.Tensor:
        if isinstance(packed, tuple):
            return packed[0].float()
        return packed

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield


def encode(
    enc: AutoEncoder, x: torch.Tensor, mode: EncodeMode = "latent", bf16: bool = False
) -> list[torch.Tensor]:
    """Encode ``x`` (N, 3, H, W) in [0, 1], padded to the encoder's grid, as float32 tensors.

    Args:
        enc: The encoder (on ``x``'s device).
        x: The images; any H and W (replicate-padded up to ``enc.spec.downsample``).
        mode: What to return (see :data:`EncodeMode`).
        bf16: Run under bf16 autocast on ``x``'s device. On the CPU the image is channels-last
            either way: oneDNN's convolutions are faster in that layout, in bf16 and in fp32.
    """
    h, w = x.shape[-2:]
    x = pad_to_multiple(x, enc.spec.downsample)
    if x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    compact = torch.is_grad_enabled() and not bf16
    with (
        autocast(x.device, bf16),
        compact_saved_activations() if compact else contextlib.nullcontext(),
    ):
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
