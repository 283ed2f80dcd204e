"""``texture``: pull the encoder/decoder round trip toward a high-contrast pattern."""

from __future__ import annotations

import torch

from cloak.objectives.base import (
    Fixed,
    RoundTripObjective,
    Setup,
    Step,
    energy,
    register,
    roundtrip_terms,
    scaled,
)
from cloak.objectives.pattern import Pattern, pattern_target


@register
class Texture(RoundTripObjective):
    """``MSE(D(E(x+d)), P) / MSE(D(E(x)), P) - w * latent push``, ``P`` = the pattern target.

    ``w = latent_weight``. The pattern goes through the step's transform draw like the photo.
    On an encoder without a decoder it is ``pattern``: the latent toward the pattern's latent
    (not ``push``).
    """

    name = "texture"
    fallback_type = Pattern

    def prepare_roundtrip(self, setup: Setup) -> Fixed:
        x = setup.image
        target = pattern_target(*x.shape[-2:]).to(x.device)
        clean = setup.encode(x, "roundtrip")
        rt_error = float(torch.nn.functional.mse_loss(clean[0], target))
        return Fixed([target, clean[1]], scaled([rt_error, energy([clean[1]])]))

    def roundtrip_loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        lw = self.config.latent_weight
        ref = fixed.refs
        if step.draw is not None:
            with torch.no_grad():
                ref = [step.view(fixed.refs[0]), fixed.refs[1]]
                if lw > 0:
                    ref[1] = step.encode(step.clean_view, "roundtrip")[1]
        main, extra = roundtrip_terms(lw, step.encode(adv, "roundtrip"), ref, fixed.scales)
        return main - extra
