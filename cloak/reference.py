"""A PhotoGuard-style encoder attack, as the reference Cloak is measured against.

It follows the published encoder attack: L-inf PGD from a random start toward the latent of a
flat gray image, sign steps whose size decays linearly to 1/100 of the first, no transformations
in the loop. To compare like with like it runs on the same hardware path as Cloak's engine: the
same encoder wrapper, bf16 autocast and channels-last where the engine uses them, the attack at a
reduced resolution (512 px long side) and the perturbation lifted bilinearly onto the full photo.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import torch

from cloak.device import choose_device, use_bf16
from cloak.encoding import encode
from cloak.engine import Progress, run_to_end
from cloak.errors import Cancelled, ConfigError
from cloak.models.base import AutoEncoder
from cloak.staging import stage

REFERENCE_STEPS = 200
REFERENCE_WORK_SIZE = 512


@dataclass
class ReferenceResult:
    """The reference attack's outcome.

    Attributes:
        protected: (1, 3, H, W) in [0, 1], full size, on the CPU.
        attack_seconds: Wall time of the PGD loop (including the target latent).
        lift_seconds: Wall time of lifting onto the full size.
        work_shape: (h, w) at which the attack ran.
    """

    protected: torch.Tensor
    attack_seconds: float
    lift_seconds: float
    work_shape: tuple[int, int]

    @property
    def seconds(self) -> float:
        return self.attack_seconds + self.lift_seconds


class GrayTargetPGD:
    """PhotoGuard-style L-inf PGD on one encoder toward the latent of a 0.5-gray image.

    Norm: L-inf, ``|delta| <= eps``. Images are (1, 3, H, W) in [0, 1]; the returned
    perturbation has the same shape and keeps ``image + delta`` in [0, 1].

    Args:
        encoder: The encoder attacked.
        eps: L-inf budget in [0, 1] units.
        steps: PGD steps.
        first_step: Step size of the first step; it decays linearly to 1/100 of this.
            None uses ``eps / 3`` (PhotoGuard's 0.02 step for a 0.06 budget in [-1, 1] units).
        device: Where to run.
        precision: ``auto`` (bf16 where the engine uses it), ``fp32`` or ``bf16``.
        seed: Seed of the random start.
    """

    def __init__(
        self,
        encoder: AutoEncoder,
        eps: float = 8 / 255,
        steps: int = REFERENCE_STEPS,
        first_step: float | None = None,
        device: torch.device | None = None,
        precision: str = "auto",
        seed: int = 0,
    ) -> None:
        if not 0.0 < eps <= 32 / 255:
            raise ConfigError(f"eps={eps * 255:.2f}/255 must lie in (0, 32]/255")
        if steps < 1:
            raise ConfigError(f"steps={steps} must be at least 1")
        self.encoder = encoder
        self.eps = eps
        self.steps = steps
        self.first_step = eps / 3 if first_step is None else first_step
        self.device = device or choose_device("auto")
        self.bf16 = use_bf16(self.device, precision)
        self.seed = seed

    def __repr__(self) -> str:
        return (
            f"GrayTargetPGD(eps={self.eps * 255:.1f}/255, steps={self.steps}, "
            f"first_step={self.first_step * 255:.2f}/255, encoder={self.encoder.name}, "
            f"bf16={self.bf16})"
        )

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        return encode(self.encoder, x, "latent", self.bf16)[0]

    def step_size(self, step: int) -> float:
        """PhotoGuard's schedule: linear from ``first_step`` down to ``first_step / 100``."""
        a0 = self.first_step
        return a0 - (a0 - a0 / 100) * step / self.steps

    def run(
        self, image: torch.Tensor, cancel: Callable[[], bool] | None = None
    ) -> Generator[Progress, None, torch.Tensor]:
        """Attack ``image`` (work resolution, on ``self.device``); yield progress, return delta."""
        start = time.perf_counter()
        x = image.detach()
        with torch.no_grad():
            target = self._latent(torch.full_like(x, 0.5))
        gen = torch.Generator().manual_seed(self.seed)
        noise = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device)
        adv = (x + noise * self.eps).clamp(0, 1)
        for step in range(self.steps):
            if cancel is not None and cancel():
                raise Cancelled("reference attack cancelled")
            adv.requires_grad_(True)
            loss = (self._latent(adv) - target).norm()
            (grad,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                adv = adv.detach() - grad.sign() * self.step_size(step)
                adv = torch.minimum(torch.maximum(adv, x - self.eps), x + self.eps).clamp(0, 1)
            yield Progress(
                "attack",
                step + 1,
                self.steps,
                float(loss.detach()),
                time.perf_counter() - start,
                self.encoder.name,
            )
        return adv - x


def reference_protect(
    image: torch.Tensor,
    encoder: AutoEncoder,
    eps: float = 8 / 255,
    steps: int = REFERENCE_STEPS,
    work_size: int = REFERENCE_WORK_SIZE,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
) -> ReferenceResult:
    """Protect one full-size photo (1, 3, H, W) in [0, 1] with the reference attack."""
    start = time.perf_counter()
    staged = stage(image, [encoder], device, work_size)
    attack = GrayTargetPGD(
        encoder, eps, steps, device=staged.device, precision=precision, seed=seed
    )
    delta = run_to_end(attack.run(staged.work))
    attack_s = time.perf_counter() - start
    t = time.perf_counter()
    protected = staged.land(delta, eps)
    return ReferenceResult(
        protected=protected,
        attack_seconds=attack_s,
        lift_seconds=time.perf_counter() - t,
        work_shape=staged.work_shape,
    )
