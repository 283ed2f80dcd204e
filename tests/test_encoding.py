"""The shared encode: bf16-compacted saved activations keep TAEF2's gradient."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from cloak.encoding import SavedArena, compact_saved_activations, encode


def _forward(
    enc, x0: torch.Tensor, compact: bool, min_elements: int = 1, arena: SavedArena | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, input) of one round trip whose backward is still to run."""
    x = x0.clone().requires_grad_(True)
    # encode() compacts by itself when gradients are on; an outer identity hook pair
    # replaces it (the innermost hooks apply) so the plain run really stores fp32.
    if compact:
        ctx = compact_saved_activations(min_elements, arena)
    else:
        ctx = torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)
    with contextlib.ExitStack() as stack:
        stack.enter_context(ctx)
        y = enc.decode(enc.encode(x))
    return -(y - x0).square().mean(), x


def _grad(
    enc, x0: torch.Tensor, compact: bool, min_elements: int = 1, arena: SavedArena | None = None
) -> torch.Tensor:
    loss, x = _forward(enc, x0, compact, min_elements, arena)
    (grad,) = torch.autograd.grad(loss, x)
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


FULL_RES = 64 * 128 * 192
"""Elements of one full-resolution TAEF2 map of a 128x192 image: only those are compacted."""


def _photo(seed: int) -> torch.Tensor:
    return torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(seed))


@pytest.mark.real
def test_arena_is_reused_by_every_step_and_keeps_the_gradient(taef2):
    arena = SavedArena(chunk_bytes=4 << 20)
    for step in range(3):
        x0 = _photo(10 + step)
        plain = _grad(taef2, x0, compact=True, min_elements=FULL_RES)
        held = _grad(taef2, x0, compact=True, min_elements=FULL_RES, arena=arena)
        # A bf16 copy in the arena is the same bf16 copy: the same gradient, bit for bit.
        assert torch.equal(plain, held)
        if step == 0:
            mapped = [c.data_ptr() for c in arena.chunks]
            assert arena.nbytes > 0  # the saved maps went there
    # The later steps found the first step's chunks free and filled them again: no new memory.
    assert [c.data_ptr() for c in arena.chunks] == mapped


@pytest.mark.real
def test_arena_never_overwrites_a_graph_still_alive(taef2):
    arena = SavedArena(chunk_bytes=4 << 20)
    first, second = _photo(20), _photo(21)
    loss1, x1 = _forward(taef2, first, True, FULL_RES, arena)
    # The first graph is not backpropagated yet: the second must not write into its memory.
    loss2, x2 = _forward(taef2, second, True, FULL_RES, arena)
    (g2,) = torch.autograd.grad(loss2, x2)
    (g1,) = torch.autograd.grad(loss1, x1)
    assert torch.equal(g1, _grad(taef2, first, compact=True, min_elements=FULL_RES))
    assert torch.equal(g2, _grad(taef2, second, compact=True, min_elements=FULL_RES))


@pytest.mark.real
def test_arena_holds_a_step_of_several_encodes_and_reuses_it(taef2):
    """A step that encodes several views keeps them all alive until its backward: the second
    goes into the arena after the first (nothing overwritten), and the next step reuses the
    same chunks from the start."""
    arena = SavedArena(chunk_bytes=4 << 20)
    views = (_photo(30), _photo(31))
    for step in range(2):
        (loss1, x1), (loss2, x2) = (_forward(taef2, v, True, FULL_RES, arena) for v in views)
        g1, g2 = torch.autograd.grad(loss1 + loss2, (x1, x2))
        for g, v in zip((g1, g2), views, strict=True):
            assert torch.equal(g, _grad(taef2, v, compact=True, min_elements=FULL_RES))
        if step == 0:
            mapped = [c.data_ptr() for c in arena.chunks]
            # Both views' saved maps went into the arena (more than one view's worth).
            one = SavedArena(chunk_bytes=4 << 20)
            _grad(taef2, views[0], compact=True, min_elements=FULL_RES, arena=one)
            assert arena.nbytes > one.nbytes
    assert [c.data_ptr() for c in arena.chunks] == mapped


def test_arena_takes_strided_and_odd_sized_tensors():
    arena = SavedArena(chunk_bytes=1 << 10)
    arena.begin()
    for shape, channels_last in [((1, 8, 5, 7), True), ((3, 1000), False), ((1, 2, 3, 3), False)]:
        t = torch.randn(*shape)
        if channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        out = arena.store(t)
        assert out.dtype == torch.bfloat16 and out.stride() == t.stride()
        assert torch.equal(out, t.to(torch.bfloat16))
    # A view that is not dense (every other column) is copied as before, not put in the arena.
    sparse = torch.randn(4, 8)[:, ::2]
    assert torch.equal(arena.store(sparse), sparse.to(torch.bfloat16))


@pytest.mark.real
def test_relu_signs_keep_taef2_gradient_exactly_in_a_quarter_of_the_bytes(taef2):
    """ReLU outputs kept as their signs (one byte) in the arena: the gradient is PyTorch's own,
    bit for bit, on every step that reuses the arena, and the arena holds about 0.6 of what bf16
    copies need (the upsamples' outputs that the decoder's convolutions save stay in bf16)."""
    assert taef2.relu_signs_suffice
    x0 = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(5))
    plain = _grad(taef2, x0, compact=False)
    sizes = {}
    for signs in (False, True):
        arena = SavedArena()
        for _ in range(2):
            x = x0.clone().requires_grad_(True)
            with compact_saved_activations(64 * 128 * 192 // 4, arena, relu_signs=signs):
                y = taef2.decode(taef2.encode(x))
            (grad,) = torch.autograd.grad(-(y - x0).square().mean(), x)
            assert torch.equal(grad, plain)
        sizes[signs] = arena._used
    assert sizes[True] < 0.7 * sizes[False]


@pytest.mark.real
def test_relu_signs_only_for_frozen_weights(taef2, monkeypatch):
    """A convolution whose weights take gradients reads its input (a ReLU output) for them:
    a TAESD model with any trainable weight does not declare relu_signs_suffice."""
    assert taef2.relu_signs_suffice
    p = next(iter(taef2.parameters()))
    monkeypatch.setattr(p, "requires_grad", True)
    assert not taef2.relu_signs_suffice
