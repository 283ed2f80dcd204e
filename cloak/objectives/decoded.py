"""``decoded``: push the encoder/decoder round trip away from the clean photo's round trip."""

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
from cloak.objectives.push import Push

if TYPE_CHECKING:
    from cloak.config import ProtectConfig


@register
class Decoded(Objective):
    """``-(MSE(D(E(x+d)), D(E(x))) / mean(D(E(x))^2) + w * latent push)``, ``w = latent_weight``.

    Both round trips go through the step's transform draw. On an encoder without a decoder it
    is ``push``.
    """

    name = "decoded"
    needs_decoder = True

    def __init__(self, config: ProtectConfig) -> None:
        super().__init__(config)
        self.fallback = Push(config)

    def prepare(self, setup: Setup) -> Fixed:
        if not self.decodes(setup.encoder):
            return self.fallback.prepare(setup)
        clean = setup.encode(setup.image, "roundtrip")
        return Fixed(clean, scaled([energy([clean[0]]), energy([clean[1]])]))

    def loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        if not self.decodes(step.encoder):
            return self.fallback.loss(step, fixed, adv)
        ref = fixed.refs
        if step.draw is not None:
            with torch.no_grad():
                ref = step.encode(step.clean_view, "roundtrip")
        z = step.encode(adv, "roundtrip")
        main, extra = roundtrip_terms(self.config.latent_weight, z, ref, fixed.scales)
        return -(main + extra)
