"""The objective registry and what each objective does on encoders with and without a decoder."""

from __future__ import annotations

import dataclasses
import pkgutil

import pytest
import torch

from cloak import objectives
from cloak.config import OBJECTIVES, ProtectConfig
from cloak.encoding import encode
from cloak.errors import ConfigError
from cloak.models.base import AutoEncoder
from cloak.objectives import REGISTRY, Setup, Step


class _NoDecoder(AutoEncoder):
    """The tiny encoder without its decoder (as a latent-only encoder is)."""

    def __init__(self, inner: AutoEncoder) -> None:
        super().__init__(dataclasses.replace(inner.spec, name="nodec"))
        self.inner = inner

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.encode(x)


def _encode(enc, x, mode):
    return encode(enc, x, mode)


def _loss(name: str, enc: AutoEncoder, x: torch.Tensor, adv: torch.Tensor, **changes) -> float:
    cfg = ProtectConfig(objective=name, device="cpu", **changes)
    obj = objectives.make(cfg)
    with torch.no_grad():
        fixed = obj.prepare(Setup(enc, x, cfg, _encode, 64))
        return float(obj.loss(Step(enc, x, cfg, _encode, 64), fixed, adv))


def test_every_module_registers_one_objective_and_the_config_lists_them():
    modules = {
        m.name
        for m in pkgutil.iter_modules(objectives.__path__)
        if not m.name.startswith("_") and m.name != "base"
    }
    assert modules == set(REGISTRY) == set(OBJECTIVES)
    with pytest.raises(ConfigError, match="unknown objective 'bogus'"):
        ProtectConfig(objective="bogus")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_clean_photo_scores_the_normalised_start(tiny_encoder, name):
    """Normalised per encoder: the clean photo scores 0 for "away" objectives, 1 for "toward"."""
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    loss = _loss(name, tiny_encoder, x, x)
    expected = {"gray": 1.0, "pattern": 1.0, "texture": 1.0, "distort": -1.0}.get(name, 0.0)
    assert loss == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("name", "same_as"), [("decoded", "push"), ("distort", "push"), ("texture", "pattern")]
)
def test_without_a_decoder(tiny_encoder, name, same_as):
    """What the docstrings say: decoded and distort become push, texture becomes pattern."""
    enc = _NoDecoder(tiny_encoder)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 32, 32, generator=g)
    adv = (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert REGISTRY[name].needs_decoder and not enc.has_decoder
    assert _loss(name, enc, x, adv, latent_weight=0.5) == _loss(same_as, enc, x, adv)
    assert _loss(name, tiny_encoder, x, adv, latent_weight=0.5) != _loss(
        same_as, tiny_encoder, x, adv
    )
