"""``texture``: pull the encoder/decoder round trip toward a high-contrast pattern."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from cloak.objectives.base import (
    Fixed,
    Objective,
    Setup,
    Step,
    energy,
    register,
    roundtrip_terms,
    scaled,
)
from cloak.objectives.pattern import Pattern, pattern_target

if TYPE_CHECKING:
    from cloak.config import ProtectConfig


@register
class Texture(Objective):
    """``MSE(D(E(x+d)), P) / MSE(D(E(x)), P) - w * latent push``, ``P`` = the pattern target.

    ``w = latent_weight``. The pattern goes through the step's transform draw like the photo.
    On an encoder without a decoder it is ``pattern``: the latent toward the pattern's latent
    (not ``push``).
    """

    name = "texture"
    needs_decoder = True

    def __init__(self, config: ProtectConfig) -> None:
        super().__init__(config)
        self.fallback = Pattern(config)

    def prepare(self, setup: Setup) -> Fixed:
        if not self.decodes(setup.encoder):
            return self.fallback.prepare(setup)
        x = setup.image
        target = pattern_target(*x.shape[-2:]).to(x.device)
        clean = setup.encode(x, "roundtrip")
        rt_error = float(torch.nn.functional.mse_loss(clean[0], target))
        return Fixed([target, clean[1]], scaled([rt_error, energy([clean[1]])]))

    def loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        if not self.decodes(step.encoder):
            return self.fallback.loss(step, fixed, adv)
        lw = self.config.latent_weight
        ref = fixed.refs
        if step.draw is not None:
            with torch.no_grad():
                ref = [step.view(fixed.refs[0]), fixed.refs[1]]
                if lw > 0:
                    ref[1] = step.encode(step.clean_view, "roundtrip")[1]
        main, extra = roundtrip_terms(lw, step.encode(adv, "roundtrip"), ref, fixed.scales)
        return main - extra
