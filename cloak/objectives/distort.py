"""``distort``: push the encoder/decoder round trip away from the photo itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

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
class Distort(Objective):
    """``-(MSE(D(E(x+d)), x) / MSE(D(E(x)), x) + w * latent push)``, ``w = latent_weight``.

    What edit damage measures: the attacker's reconstruction error, normalised by the clean
    round trip's, so ``-loss`` is the factor by which it grew. The reference is the
    transformed photo itself, so no reference round trip is computed per step (unless the
    latent term needs the clean latent). On an encoder without a decoder it is ``push``.
    """

    name = "distort"
    needs_decoder = True

    def __init__(self, config: ProtectConfig) -> None:
        super().__init__(config)
        self.fallback = Push(config)

    def prepare(self, setup: Setup) -> Fixed:
        if not self.decodes(setup.encoder):
            return self.fallback.prepare(setup)
        x = setup.image
        clean = setup.encode(x, "roundtrip")
        return Fixed([x, clean[1]], scaled([float(F.mse_loss(clean[0], x)), energy([clean[1]])]))

    def loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        if not self.decodes(step.encoder):
            return self.fallback.loss(step, fixed, adv)
        lw = self.config.latent_weight
        ref = fixed.refs
        if step.draw is not None:
            seen = step.clean_view
            ref = [seen, seen]
            if lw > 0:
                with torch.no_grad():
                    ref[1] = step.encode(seen, "roundtrip")[1]
        main, extra = roundtrip_terms(lw, step.encode(adv, "roundtrip"), ref, fixed.scales)
        return -(main + extra)
