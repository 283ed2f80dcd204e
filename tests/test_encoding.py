"""The shared encode: bf16-compacted saved activations keep TAEF2's gradient."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from cloak.encoding import compact_saved_activations, encode


def _grad(enc, x0: torch.Tensor, compact: bool, min_elements: int = 1) -> torch.Tensor:
    x = x0.clone().requires_grad_(True)
    # encode() compacts by itself when gradients are on; an outer identity hook pair
    # replaces it (the innermost hooks apply) so the plain run really stores fp32.
    if compact:
        ctx = compact_saved_activations(min_elements)
    else:
        ctx = torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)
    with contextlib.ExitStack() as stack:
        stack.enter_context(ctx)
        y = enc.decode(enc.encode(x))
    (grad,) = torch.autograd.grad(-(y - x0).square().mean(), x)
    return grad


@pytest.mark.real
def test_compaction_keeps_taef2_gradient_exactly(taef2):
    # 128x192: the full-resolution activations (64 x 128 x 192) reach the threshold used.
    x0 = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(0))
    plain = _grad(taef2, x0, compact=False)
    packed = _grad(taef2, x0, compact=True, min_elements=64 * 128 * 192)
    # ReLU reads only signs and frozen convolutions do not read their input: same bits.
    assert torch.equal(plain, packed)


@pytest.mark.real
def test_compacting_every_tensor_changes_the_gradient_by_rounding_only(taef2):
    x0 = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    plain = _grad(taef2, x0, compact=False)
    packed = _grad(taef2, x0, compact=True, min_elements=1)
    assert not torch.equal(plain, packed)  # GroupNorm and tanh inputs were rounded
    assert F.cosine_similarity(plain.flatten(), packed.flatten(), dim=0) > 0.999


@pytest.mark.real
def test_encode_gradient_with_and_without_compaction(taef2):
    x0 = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(2))
    x = x0.clone().requires_grad_(True)
    y, _ = encode(taef2, x, "roundtrip")
    (g,) = torch.autograd.grad(-(y - x0).square().mean(), x)
    assert g.shape == x.shape and torch.isfinite(g).all() and g.abs().max() > 0
