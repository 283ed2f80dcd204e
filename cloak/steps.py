"""Step rules: how one normalised gradient becomes the direction of one attack step.

Each rule keeps the momentum of the L1-normalised gradient (MI-FGSM style), reweights colour
against brightness (``chroma_weight``) and returns a direction for the parameterised
perturbation: ``sign`` fills the L-inf box, ``l2`` follows the gradient's magnitudes at unit
RMS, ``adam`` first divides by a running per-pixel gradient RMS. The step size schedule lives
here too. Built from the config by :func:`make_step_rule`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from cloak.config import ProtectConfig


def step_size(config: ProtectConfig, step: int) -> float:
    """The step size of ``step`` (0-based) under ``config.schedule``, from ``first_step``."""
    a0 = config.first_step
    t = step / max(1, config.steps - 1)
    if config.schedule == "linear":
        return a0 * (1.0 - 0.9 * t)
    if config.schedule == "cosine":
        return a0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))
    return a0


def recolor(d: torch.Tensor, chroma_weight: float) -> torch.Tensor:
    """Reweight a direction's chroma against its luma.

    Luma is the per-pixel mean over R, G and B; chroma is what is left. 1 leaves ``d`` as it
    is; 0 keeps gray (colourless) changes only.
    """
    if chroma_weight == 1.0:
        return d
    luma = d.mean(dim=1, keepdim=True)
    return luma + chroma_weight * (d - luma)


class StepRule:
    """Momentum on the L1-normalised gradient, then a unit-RMS (``l2``) direction.

    Args:
        momentum: Momentum factor in [0, 1).
        chroma_weight: See :func:`recolor`.
        shape: Shape of the optimised parameter (1, 3, h, w).
        device: Its device.
    """

    name: ClassVar[str] = "l2"

    def __init__(
        self, momentum: float, chroma_weight: float, shape: torch.Size, device: torch.device
    ) -> None:
        self.momentum = momentum
        self.chroma_weight = chroma_weight
        self.velocity = torch.zeros(shape, device=device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(momentum={self.momentum}, chroma={self.chroma_weight})"

    def direction(self, grad: torch.Tensor, step: int) -> torch.Tensor:
        """The direction to step against for gradient ``grad`` at ``step`` (0-based)."""
        g = grad / grad.abs().mean().clamp_min(1e-12)
        self.velocity = self.momentum * self.velocity + g
        d = recolor(self.precondition(g, step), self.chroma_weight)
        return self.finish(d)

    def precondition(self, g: torch.Tensor, step: int) -> torch.Tensor:
        """The direction before colour reweighting; plain momentum here."""
        return self.velocity

    def finish(self, d: torch.Tensor) -> torch.Tensor:
        """The final direction: unit RMS here."""
        return d / d.pow(2).mean().sqrt().clamp_min(1e-12)


class L2Step(StepRule):
    """Unit-RMS momentum steps: the change goes where the encoders are most sensitive."""

    name = "l2"


class SignStep(StepRule):
    """Sign steps: every pixel moves by the full step (strong, grainy)."""

    name = "sign"

    def finish(self, d: torch.Tensor) -> torch.Tensor:
        return d.sign()


class AdamStep(StepRule):
    """Momentum divided by Adam's bias-corrected per-pixel second moment, then unit RMS."""

    name = "adam"

    def __init__(
        self, momentum: float, chroma_weight: float, shape: torch.Size, device: torch.device
    ) -> None:
        super().__init__(momentum, chroma_weight, shape, device)
        self.second = torch.zeros(shape, device=device)

    def precondition(self, g: torch.Tensor, step: int) -> torch.Tensor:
        self.second = 0.99 * self.second + 0.01 * g.pow(2)
        v = self.second / (1.0 - 0.99 ** (step + 1))
        return self.velocity / (v.sqrt() + 1e-8)


STEP_RULES: dict[str, type[StepRule]] = {r.name: r for r in (SignStep, L2Step, AdamStep)}
"""Every step rule by name (the config's ``step_rule``)."""


def make_step_rule(config: ProtectConfig, param: torch.Tensor) -> StepRule:
    """The step rule ``config.step_rule`` names, for a parameter like ``param``."""
    cls = STEP_RULES[config.step_rule]
    return cls(config.momentum, config.chroma_weight, param.shape, param.device)
