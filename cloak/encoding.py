"""The one padded, autocast encode that the attack, the reference attack and the metrics share."""

from __future__ import annotations

import contextlib
import mmap
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


ARENA_CHUNK_BYTES = 64 << 20
"""Size of one chunk of a :class:`SavedArena` (a larger tensor gets a chunk of its own size)."""
_ALIGN = 32
"""Tensors in an arena start at multiples of this many bf16 elements (64 bytes)."""


class SavedArena:
    """Memory outside the heap, mapped once per attack, for every step's compacted activations.

    In fp32 a step's saved activations (about 440 MB for TAEF2 on a 640x400 window, in bf16)
    live from the forward to the end of the backward, between full-resolution float32
    temporaries of other sizes that come and go. Taken one by one from the heap they split
    its free blocks so that later temporaries no longer fit, and since
    :func:`cloak.device.keep_freed_memory` keeps the heap, it grew by ~100 MB per step for the
    first steps (RSS 1.7 -> 2.1 GB over 10 steps on a 12.6 MP photo). Here they go into
    anonymous ``mmap`` chunks that every step reuses from the start, so they never mix with
    the temporaries, their pages stay warm, and unmapping them when the arena is dropped gives
    them back to the OS. An encode that finds tensors stored earlier still alive (the step's
    other views, or a graph a caller kept) goes on after them, so nothing is ever overwritten.
    """

    def __init__(self, chunk_bytes: int = ARENA_CHUNK_BYTES) -> None:
        self.chunk_elements = max(_ALIGN, chunk_bytes // 2)
        self.chunks: list[torch.Tensor] = []
        self._live: weakref.WeakSet[torch.Tensor] = weakref.WeakSet()
        self._chunk = -1
        self._used = 0

    @property
    def nbytes(self) -> int:
        """Bytes mapped so far."""
        return sum(c.numel() * 2 for c in self.chunks)

    def begin(self) -> None:
        """Start an encode: reuse the chunks from the start when nothing stored lives on;
        otherwise go on after what was stored last (a step that encodes several views, or a
        caller that kept a graph), so live data is never overwritten."""
        if len(self._live) == 0:
            self._chunk, self._used = 0, 0

    def store(self, t: torch.Tensor) -> torch.Tensor:
        """A bf16 copy of ``t`` (same shape and strides), in the arena when it can go there."""
        out = self._slot(t, torch.bfloat16)
        if out is None:
            return t.detach().to(torch.bfloat16)
        out.copy_(t.detach())
        return out

    def store_signs(self, t: torch.Tensor) -> torch.Tensor:
        """``t > 0`` as a bool tensor (same shape and strides), written straight into the arena
        (no temporary) when it can go there: a quarter of ``t``'s float32 bytes."""
        out = self._slot(t, torch.bool)
        if out is None:
            return t.detach() > 0
        torch.gt(t.detach(), 0, out=out)
        return out

    def _slot(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """Room in the arena for ``t`` as ``dtype``, with ``t``'s shape and strides, counted as
        live; None where ``t`` cannot go there (no encode begun, not on the CPU, not dense)."""
        dense = t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last)
        if self._chunk < 0 or t.device.type != "cpu" or not dense:
            return None
        nbytes = t.numel() * dtype.itemsize
        n = -(-nbytes // (2 * _ALIGN)) * _ALIGN  # bf16 elements holding nbytes, aligned
        chunk = self._room(n)
        raw = chunk[self._used : self._used + n].view(torch.uint8)[:nbytes]
        out = raw.view(dtype).as_strided(t.shape, t.stride())
        self._used += n
        self._live.add(out)
        return out

    def _room(self, n: int) -> torch.Tensor:
        while self._chunk < len(self.chunks):
            chunk = self.chunks[self._chunk]
            if self._used + n <= chunk.numel():
                return chunk
            self._chunk += 1
            self._used = 0
        # Anonymous pages: zero-filled on first touch, returned to the OS when unmapped.
        size = max(self.chunk_elements, n)
        chunk = torch.frombuffer(mmap.mmap(-1, size * 2), dtype=torch.bfloat16)
        self.chunks.append(chunk)
        return chunk


@contextlib.contextmanager
def compact_saved_activations(
    min_elements: int = COMPACT_MIN_ELEMENTS,
    arena: SavedArena | None = None,
    relu_signs: bool = False,
) -> Iterator[None]:
    """Keep the large float32 tensors autograd saves for backward in bf16 (half the memory).

    In fp32 a TAEF2 encode + decode of a 640x400 window saves about 1 GB for backward, most
    of it full-resolution ReLU outputs (also the next convolution's input). ReLU's backward
    reads only their sign, which bf16 keeps, and a convolution with frozen weights does not
    read its input to give the input's gradient, so on TAEF2 the gradient is unchanged (the
    same bits, measured); layers that do read their input (GroupNorm, SiLU) see it rounded
    to bf16, as under bf16 autocast. A tensor saved twice (a ReLU output that feeds a
    convolution) is stored once. Small tensors and weights are kept as they are.

    With ``relu_signs`` a ReLU's output is kept as its sign alone (one byte, a quarter of
    float32, half of bf16) and given back as 0 / 1: for a model whose ReLU outputs only ReLU's
    backward and frozen convolutions read (:attr:`AutoEncoder.relu_signs_suffice`), the
    gradient is again unchanged. Only what is saved inside this context is kept so: a loss
    computed after it (on the features :func:`encode` returns) keeps its own values.

    Args:
        min_elements: Compact float32 tensors with at least this many elements.
        arena: Where the bf16 copies go (see :class:`SavedArena`); None: fresh tensors.
        relu_signs: Keep ReLU outputs as signs (see above).
    """
    cache: dict[tuple[Any, ...], tuple[weakref.ref[torch.Tensor], torch.Tensor]] = {}
    if arena is not None:
        arena.begin()

    def pack(t: torch.Tensor) -> Any:
        if t.dtype != torch.float32 or t.numel() < min_elements:
            return t
        key = (t.data_ptr(), t._version, tuple(t.shape), t.stride())
        hit = cache.get(key)
        # The weak reference tells a live tensor from a freed one whose memory was reused.
        if hit is None or hit[0]() is not t:
            if relu_signs and type(t.grad_fn).__name__ == "ReluBackward0":
                small = arena.store_signs(t) if arena is not None else t.detach() > 0
            elif arena is not None:
                small = arena.store(t)
            else:
                small = t.detach().to(torch.bfloat16)
            hit = cache[key] = (weakref.ref(t), small)
        return (hit[1],)

    def unpack(packed: Any) -> torch.Tensor:
        if isinstance(packed, tuple):
            return packed[0].float()
        return packed

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield


def encode(
    enc: AutoEncoder,
    x: torch.Tensor,
    mode: EncodeMode = "latent",
    bf16: bool = False,
    arena: SavedArena | None = None,
) -> list[torch.Tensor]:
    """Encode ``x`` (N, 3, H, W) in [0, 1], padded to the encoder's grid, as float32 tensors.

    Args:
        enc: The encoder (on ``x``'s device).
        x: The images; any H and W (replicate-padded up to ``enc.spec.downsample``).
        mode: What to return (see :data:`EncodeMode`).
        bf16: Run under bf16 autocast on ``x``'s device. On the CPU the image is channels-last
            either way: oneDNN's convolutions are faster in that layout, in bf16 and in fp32.
        arena: Where an fp32 encode with gradients keeps its compacted activations (see
            :class:`SavedArena`); None: fresh tensors.
    """
    h, w = x.shape[-2:]
    x = pad_to_multiple(x, enc.spec.downsample)
    if x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    compact = torch.is_grad_enabled() and not bf16
    # The losses read what this returns outside these hooks, so they keep their values.
    signs = compact and enc.relu_signs_suffice
    with (
        autocast(x.device, bf16),
        compact_saved_activations(arena=arena, relu_signs=signs)
        if compact
        else contextlib.nullcontext(),
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
