"""``push``: move the encoder's latent away from the clean photo's latent."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from cloak.objectives.base import Fixed, Objective, Setup, Step, energy, mse_sum, register, scaled

if TYPE_CHECKING:
    from cloak.encoding import EncodeMode


@register
class Push(Objective):
    """``-MSE(E(x + d), E(x)) / mean(E(x)^2)``: the latent away from the clean latent.

    Both sides go through the step's transform draw. Works on any encoder (no decoder needed).
    """

    name = "push"
    mode: ClassVar[EncodeMode] = "latent"

    def prepare(self, setup: Setup) -> Fixed:
        clean = setup.encode(setup.image, self.mode)
        return Fixed(clean, scaled([energy(clean)]))

    def loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        ref = fixed.refs
        if step.draw is not None:
            with torch.no_grad():
                ref = step.encode(step.clean_view, self.mode)
        return -(mse_sum(step.encode(adv, self.mode), ref) / fixed.scales[0])
