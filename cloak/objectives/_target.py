"""Shared by the objectives that pull the latent toward a target image's latent."""

from __future__ import annotations

from abc import abstractmethod

import torch

from cloak.objectives.base import Fixed, Objective, Setup, Step, mse_sum, scaled


class TowardTarget(Objective):
    """``MSE(E(x + d), E(target)) / MSE(E(x), E(target))``: the latent toward a target's.

    The target goes through the step's transform draw like the photo. No decoder needed.
    """

    @abstractmethod
    def target(self, image: torch.Tensor) -> torch.Tensor:
        """The target image for ``image`` (same shape, same device, in [0, 1])."""

    def prepare(self, setup: Setup) -> Fixed:
        target = self.target(setup.image)
        clean = setup.encode(setup.image)
        ref = setup.encode(target)
        return Fixed(ref, scaled([float(mse_sum(clean, ref))]), {"target": target})

    def loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        ref = fixed.refs
        if step.draw is not None:
            with torch.no_grad():
                ref = step.encode(step.view(fixed.extra["target"]))
        return mse_sum(step.encode(adv), ref) / fixed.scales[0]
