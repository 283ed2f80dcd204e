"""``decoded``: push the encoder/decoder round trip away from the clean photo's round trip."""

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
from cloak.objectives.push import Push


@register
class Decoded(RoundTripObjective):
    """``-(MSE(D(E(x+d)), D(E(x))) / mean(D(E(x))^2) + w * latent push)``, ``w = latent_weight``.

    Both round trips go through the step's transform draw. On an encoder without a decoder it
    is ``push``.
    """

    name = "decoded"
    fallback_type = Push

    def prepare_roundtrip(self, setup: Setup) -> Fixed:
        clean = setup.encode(setup.image, "roundtrip")
        return Fixed(clean, scaled([energy([clean[0]]), energy([clean[1]])]))

    def roundtrip_loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        ref = fixed.refs
        if step.draw is not None:
            with torch.no_grad():
                ref = step.encode(step.clean_view, "roundtrip")
        z = step.encode(adv, "roundtrip")
        main, extra = roundtrip_terms(self.config.latent_weight, z, ref, fixed.scales)
        return -(main + extra)
