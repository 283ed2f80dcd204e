"""``distort``: push the encoder/decoder round trip away from the photo itself."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
class Distort(RoundTripObjective):
    """``-(MSE(D(E(x+d)), x) / MSE(D(E(x)), x) + w * latent push)``, ``w = latent_weight``.

    What edit damage measures: the attacker's reconstruction error, normalised by the clean
    round trip's, so ``-loss`` is the factor by which it grew. The reference is the
    transformed photo itself, so no reference round trip is computed per step (unless the
    latent term needs the clean latent). On an encoder without a decoder it is ``push``.

    With transformations on and no latent term, no step reads the clean round trip, and a
    step's direction is its normalised gradient, which no constant scale changes: the clean
    round trip at the work size (one encode and decode of the whole work image, about an
    eighth of the standard preset's time) is then skipped, and ``-loss`` is the attacker's
    reconstruction error itself.
    """

    name = "distort"
    fallback_type = Push

    def prepare_roundtrip(self, setup: Setup) -> Fixed:
        x = setup.image
        if setup.every_step_draws and self.config.latent_weight == 0:
            return Fixed([], [1.0, 1.0])
        clean = setup.encode(x, "roundtrip")
        return Fixed([x, clean[1]], scaled([float(F.mse_loss(clean[0], x)), energy([clean[1]])]))

    def roundtrip_loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
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
