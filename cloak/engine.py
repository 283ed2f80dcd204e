"""The encoder attack: an L-inf bounded perturbation that makes image encoders misread a photo.

Long work is a generator: :func:`protect` yields :class:`Progress` records and returns a
:class:`ProtectResult`; closing the generator (or a ``cancel`` callback returning True) stops it
at the next step. Nothing here writes files or imports Qt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.nn.functional as F

from cloak.budget import eps_map
from cloak.config import ProtectConfig
from cloak.device import autocast, choose_device, keep_freed_memory, use_bf16
from cloak.errors import Cancelled, ConfigError
from cloak.models.base import AutoEncoder
from cloak.tiling import lift_add_
from cloak.transforms import PipelineDraw, RandomPipeline, pad_to_multiple, resize_long_side

T = TypeVar("T")
Y = TypeVar("Y")


@dataclass
class Progress:
    """One progress record.

    Attributes:
        stage: ``"prepare"``, ``"attack"`` or ``"lift"``.
        step: Steps done so far.
        total: Steps in the run.
        loss: The attack loss of the last step (lower is worse for the attacker).
        elapsed: Seconds since the run started.
        encoder: The encoder used in the last step.
    """

    stage: str
    step: int
    total: int
    loss: float = float("nan")
    elapsed: float = 0.0
    encoder: str = ""

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


@dataclass
class ProtectResult:
    """The outcome of :func:`protect`.

    Attributes:
        protected: (1, 3, H, W) in [0, 1], full size.
        work_shape: (h, w) at which the attack ran.
        losses: Loss per step.
        seconds: Wall time of the attack and lift.
        encoders: Names of the encoders attacked.
    """

    protected: torch.Tensor
    work_shape: tuple[int, int]
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    encoders: list[str] = field(default_factory=list)


def pattern_target(height: int, width: int, period: int = 24) -> torch.Tensor:
    """A high-contrast patterned target image (1, 3, H, W) in [0, 1].

    Diagonal stripes crossed with a checkerboard in complementary colours: the decoder renders
    its latent as strong texture instead of a clean gray, which is what an editor then shows.
    """
    yy, xx = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * (xx + yy) / period)
    checker = ((xx // (period // 2) + yy // (period // 2)) % 2).float()
    r = stripes
    g = 1 - checker
    b = 0.5 * (1 - stripes) + 0.5 * checker
    return torch.stack([r, g, b])[None]


def _step_size(config: ProtectConfig, step: int) -> float:
    a0 = config.first_step
    t = step / max(1, config.steps - 1)
    if config.schedule == "linear":
        return a0 * (1.0 - 0.9 * t)
    if config.schedule == "cosine":
        return a0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))
    return a0


class EncoderAttack:
    """L-inf bounded attack on an ensemble of image encoders, with expectation over transforms.

    Norm: L-inf, ``|delta| <= eps`` everywhere (per pixel ``<= eps_map <= eps`` when the
    perceptual budget is on), and, when ``min_psnr`` is set, also an L2 ball
    ``RMS(delta) <= 10^(-min_psnr/20)`` (a PSNR floor). Values: images and ``image + delta`` in
    [0, 1]; ``delta`` in [-eps, eps]. Shapes: the image is (1, 3, h, w) at the work resolution;
    the returned perturbation is (1, 3, h, w) too. With ``param_scale = s > 1`` the optimised
    variable is (1, 3, ceil(h/s), ceil(w/s)), bilinearly upsampled inside the graph (smooth
    perturbations survive resize and JPEG and cost less SSIM).

    Each step picks one encoder (round robin) and one random platform pipeline (shift, resize,
    blur, noise, differentiable JPEG), applies it identically to the clean reference and to the
    perturbed image, computes the objective normalised per encoder so that none dominates
    (``push``: latent away from the clean latent; ``decoded``: the encoder/decoder round trip
    away from the clean round trip, plus ``latent_weight`` times the latent push; ``distort``:
    the round trip away from the (transformed) photo itself, normalised by the clean round
    trip's error, so ``-loss`` is the factor by which the attacker's error grew; ``texture``:
    the round trip toward a high-contrast pattern, minus ``latent_weight`` times the latent
    push; ``gray``/``pattern``: latent toward a target image's latent; ``features``: encoder
    feature maps away), and takes a momentum step on the L1-normalised gradient (unit-RMS
    ``l2`` or ``sign`` direction), rescaled per pixel by the budget so flat regions move less,
    then projects onto the L-inf map, the PSNR floor and the [0, 1] range. Deterministic on the
    CPU for a given seed.

    Args:
        encoders: The encoders to attack.
        config: The job; only the attack fields are used here.
        device: Device to run on (already chosen).
    """

    def __init__(
        self, encoders: Sequence[AutoEncoder], config: ProtectConfig, device: torch.device
    ) -> None:
        if not encoders:
            raise ConfigError("at least one encoder is needed to protect a photo")
        self.encoders = list(encoders)
        self.config = config
        self.device = device
        self.bf16 = use_bf16(device, config.precision)

    def __repr__(self) -> str:
        c = self.config
        names = ",".join(e.name for e in self.encoders)
        return (
            f"EncoderAttack(eps={c.eps * 255:.1f}/255, steps={c.steps}, objective={c.objective}, "
            f"encoders=[{names}], eot={c.transforms.enabled}, perceptual={c.perceptual}, "
            f"bf16={self.bf16})"
        )

    def _decodes(self, enc: AutoEncoder) -> bool:
        return self.config.objective in ("decoded", "distort", "texture") and enc.has_decoder

    def _encode(self, enc: AutoEncoder, x: torch.Tensor, features: bool) -> list[torch.Tensor]:
        """What the loss compares: encoder features, the latent, or latent + round trip."""
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, enc.spec.downsample)
        if self.bf16 and self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.bf16):
            if features:
                out = enc.features(x)
            elif self._decodes(enc):
                z = enc.encode(x)
                out = [enc.decode(z)[..., :h, :w], z]
            else:
                out = [enc.encode(x)]
        return [o.float() for o in out]

    def _terms(
        self, enc: AutoEncoder, z: list[torch.Tensor], ref: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Unnormalised loss terms: [main] or, for decoded objectives, [round trip, latent]."""
        c = self.config
        if self._decodes(enc):
            main = F.mse_loss(z[0], ref[0])
            if c.latent_weight > 0:
                return [main, F.mse_loss(z[1], ref[1])]
            return [main]
        total = sum(F.mse_loss(a, b) for a, b in zip(z, ref, strict=True))
        assert isinstance(total, torch.Tensor)
        return [total]

    def _loss(self, terms: list[torch.Tensor], scales: list[float]) -> torch.Tensor:
        """Normalised loss; lower is better for the protection (worse for the attacker)."""
        c = self.config
        main = terms[0] / scales[0]
        extra = c.latent_weight * terms[1] / scales[1] if len(terms) > 1 else 0.0
        if c.objective == "texture":
            # Pull the round trip toward the pattern, push the latent away from the clean one.
            return main - extra
        if c.objective in ("push", "features", "decoded", "distort"):
            return -(main + extra)
        return main

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Run the whole attack and return the perturbation (N, 3, H, W)."""
        return run_to_end(self.run(images))

    def run(
        self, image: torch.Tensor, cancel: Callable[[], bool] | None = None
    ) -> Generator[Progress, None, torch.Tensor]:
        """Attack ``image`` step by step, yielding progress; return the perturbation.

        Args:
            image: (1, 3, h, w) in [0, 1] at the work resolution, on ``self.device``.
            cancel: Called before every step; True stops the run with :class:`Cancelled`.
        """
        c = self.config
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(c.seed)
        pipe = RandomPipeline(c.transforms, gen)
        x = image.detach()
        h, w = x.shape[-2:]
        budget = (
            eps_map(x, c.eps, c.perceptual_floor)
            if c.perceptual
            else torch.full((1, 1, h, w), c.eps, device=x.device)
        )
        # The perturbation is parameterised at 1/param_scale of the work size and upsampled
        # inside the graph: smooth, so it survives resize + JPEG and looks less grainy.
        s = max(1, c.param_scale)
        ph, pw = max(1, math.ceil(h / s)), max(1, math.ceil(w / s))
        budget_p = budget if s == 1 else F.adaptive_max_pool2d(budget, (ph, pw))
        fine = self._level(x, budget, (ph, pw), c.work_size)
        # Coarse-to-fine: the first ``coarse_steps`` run on the photo at the perturbation's own
        # resolution (a quarter of the pixels at param_scale 2), then the rest at full work size.
        coarse = None
        if c.coarse_steps > 0 and s > 1:
            xc = F.interpolate(x, size=(ph, pw), mode="bilinear", antialias=True)
            base_c = max(16, round(c.work_size * max(ph, pw) / max(h, w)))
            coarse = self._level(xc.clamp(0, 1), budget_p, (ph, pw), base_c)
        yield Progress("prepare", 0, c.steps, elapsed=time.perf_counter() - start)

        noise = torch.rand((1, 3, ph, pw), generator=gen).to(x.device) * 2 - 1
        param = 0.25 * self._color(noise) * budget_p
        momentum = torch.zeros_like(param)
        second = torch.zeros_like(param)
        # The visibility floor as an L2 ball: PSNR >= min_psnr  <=>  RMS(delta) <= 10^(-psnr/20).
        rms_max = None if c.min_psnr is None else 10.0 ** (-c.min_psnr / 20.0)
        for step in range(c.steps):
            if cancel is not None and cancel():
                raise Cancelled("protection cancelled")
            lv = coarse if coarse is not None and step < c.coarse_steps else fine
            k = step % len(self.encoders)
            enc = self.encoders[k]
            draw: PipelineDraw | None = pipe.draw()
            param.requires_grad_(True)
            loss = lv.loss(self, k, param, pipe, draw)
            (grad,) = torch.autograd.grad(loss, param)
            param = param.detach()
            with torch.no_grad():
                g = grad / grad.abs().mean().clamp_min(1e-12)
                momentum = c.momentum * momentum + g
                direction = momentum
                if c.step_rule == "adam":
                    # Adam's per-pixel second moment (bias-corrected) on the normalised gradient.
                    second = 0.99 * second + 0.01 * g.pow(2)
                    v = second / (1.0 - 0.99 ** (step + 1))
                    direction = momentum / (v.sqrt() + 1e-8)
                direction = self._color(direction)
                if c.step_rule == "sign":
                    direction = direction.sign()
                else:
                    direction = direction / direction.pow(2).mean().sqrt().clamp_min(1e-12)
                # Scaled by the local budget: texture moves freely, flat skin less.
                param = param - _step_size(c, step) * (budget_p / c.eps) * direction
                param = torch.maximum(torch.minimum(param, budget_p), -budget_p)
                if rms_max is not None:
                    rms = float(fine.expand(param).pow(2).mean().sqrt())
                    if rms > rms_max:
                        param = param * (rms_max / rms)
                if s == 1:
                    param = fine.expand(param)
            yield Progress(
                "attack", step + 1, c.steps, loss.item(), time.perf_counter() - start, enc.name
            )
        with torch.no_grad():
            return fine.expand(param)

    def _color(self, d: torch.Tensor) -> torch.Tensor:
        """Reweight a perturbation direction's chroma against its luma (``chroma_weight``).

        Luma is the per-pixel mean over R, G and B; chroma is what is left. 1 leaves ``d``
        as it is; 0 keeps gray (colourless) changes only.
        """
        cw = self.config.chroma_weight
        if cw == 1.0:
            return d
        luma = d.mean(dim=1, keepdim=True)
        return luma + cw * (d - luma)

    def _level(
        self, x: torch.Tensor, budget: torch.Tensor, param_size: tuple[int, int], base: int
    ) -> _Level:
        """The image, budget, references and loss scales of one resolution of the attack."""
        c = self.config
        features = c.objective == "features"
        h, w = x.shape[-2:]
        target: torch.Tensor | None = None
        if c.objective == "gray":
            target = torch.full_like(x, 0.5)
        elif c.objective in ("pattern", "texture"):
            target = pattern_target(h, w).to(x.device)

        # Per-encoder normalisation: the clean image's distance to the target, or the clean
        # latent's energy, so every encoder's loss starts near 1.
        scales: list[list[float]] = []
        fixed_refs: list[list[torch.Tensor]] = []
        with torch.no_grad():
            for enc in self.encoders:
                clean = self._encode(enc, x, features)
                if target is not None:
                    ref = self._encode(enc, target, features)
                    if c.objective == "texture" and self._decodes(enc):
                        ref = [target, clean[1]]
                    scale = [float(t) for t in self._terms(enc, clean, ref)]
                    if c.objective == "texture" and len(scale) > 1:
                        scale[1] = float(clean[1].pow(2).mean())
                elif c.objective == "distort" and self._decodes(enc):
                    # The round trip against the photo itself: the loss starts at 1 and is the
                    # factor by which the attacker's reconstruction error has grown.
                    ref = [x, clean[1]]
                    scale = [float(F.mse_loss(clean[0], x)), float(clean[1].pow(2).mean())]
                else:
                    ref = clean
                    if self._decodes(enc):
                        # Energies of the clean round trip and latent: each term starts near 1.
                        scale = [float(clean[0].pow(2).mean()), float(clean[1].pow(2).mean())]
                    else:
                        scale = [sum(float(a.pow(2).mean()) for a in clean)]
                scales.append([max(v, 1e-8) for v in scale])
                fixed_refs.append(ref)
        return _Level(x, budget, param_size, base, target, fixed_refs, scales, features)


@dataclass
class _Level:
    """One resolution of the attack: what a step needs besides the perturbation."""

    x: torch.Tensor
    budget: torch.Tensor
    param_size: tuple[int, int]
    base: int
    target: torch.Tensor | None
    fixed_refs: list[list[torch.Tensor]]
    scales: list[list[float]]
    features: bool

    def expand(self, p: torch.Tensor) -> torch.Tensor:
        """The perturbation at this level's resolution, within its budget and [0, 1]."""
        h, w = self.x.shape[-2:]
        if tuple(p.shape[-2:]) != (h, w):
            p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
            p = torch.maximum(torch.minimum(p, self.budget), -self.budget)
        return (self.x + p).clamp(0, 1) - self.x

    def loss(
        self,
        attack: EncoderAttack,
        k: int,
        param: torch.Tensor,
        pipe: RandomPipeline,
        draw: PipelineDraw | None,
    ) -> torch.Tensor:
        """The normalised loss of encoder ``k`` on ``x + param`` seen through ``draw``."""
        enc = attack.encoders[k]
        features = self.features
        with torch.no_grad():
            if draw is None:
                ref = self.fixed_refs[k]
            elif attack.config.objective == "distort" and attack._decodes(enc):
                # The transformed photo is the reference: no reference round trip to compute
                # unless the latent term needs the clean latent.
                seen = pipe.apply(self.x, draw, self.base)
                ref = [seen, seen]
                if attack.config.latent_weight > 0:
                    ref[1] = attack._encode(enc, seen, features)[1]
            elif attack.config.objective == "texture" and attack._decodes(enc):
                ref = [
                    pipe.apply(self.target, draw, self.base),  # type: ignore[arg-type]
                    attack._encode(enc, pipe.apply(self.x, draw, self.base), features)[1],
                ]
            else:
                src = self.target if self.target is not None else self.x
                ref = attack._encode(enc, pipe.apply(src, draw, self.base), features)
        adv = pipe.apply(self.x + self.expand(param), draw, self.base)
        z = attack._encode(enc, adv, features)
        return attack._loss(attack._terms(enc, z, ref), self.scales[k])


def work_image(image: torch.Tensor, work_size: int) -> torch.Tensor:
    """The photo at the attack's resolution: long side ``min(work_size, long side)``."""
    h, w = image.shape[-2:]
    return resize_long_side(image, min(work_size, max(h, w)))


def lift(delta: torch.Tensor, size: tuple[int, int], eps: float) -> torch.Tensor:
    """Upsample a work-resolution perturbation onto the full-size photo, within ``eps``.

    Bilinear interpolation is a convex combination, so it never leaves the budget; the clamp
    only guards rounding.
    """
    if tuple(delta.shape[-2:]) != tuple(size):
        delta = F.interpolate(delta, size=size, mode="bilinear", align_corners=False)
    return delta.clamp(-eps, eps)


def protect(
    image: torch.Tensor,
    encoders: Sequence[AutoEncoder],
    config: ProtectConfig,
    cancel: Callable[[], bool] | None = None,
) -> Generator[Progress, None, ProtectResult]:
    """Protect one photo: attack at the work resolution, then lift onto the full size.

    Args:
        image: (1, 3, H, W) float in [0, 1], full size, on any device.
        encoders: Loaded encoders (see :func:`cloak.models.load_ensemble`).
        config: The job.
        cancel: Optional callback; True stops at the next step with :class:`Cancelled`.

    Yields:
        :class:`Progress` records.

    Returns:
        A :class:`ProtectResult` with the protected photo on the CPU.
    """
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ConfigError(f"expected an image of shape (1, 3, H, W), got {tuple(image.shape)}")
    if not torch.is_floating_point(image):
        raise ConfigError(f"expected a float image in [0, 1], got dtype {image.dtype}")
    start = time.perf_counter()
    device = choose_device(config.device)
    keep_freed_memory()
    for enc in encoders:
        enc.to(device)
    # No full-size copy before the attack: only the work-size image is made here.
    full = image.detach().float().cpu()
    h, w = full.shape[-2:]
    x = work_image(full, config.work_size).clamp(0, 1).to(device)
    attack = EncoderAttack(encoders, config, device)
    losses: list[float] = []
    run = attack.run(x, cancel)
    while True:
        try:
            rec = next(run)
        except StopIteration as stop:
            delta_w: torch.Tensor = stop.value
            break
        if rec.stage == "attack":
            losses.append(rec.loss)
        yield rec
    yield Progress("lift", config.steps, config.steps, elapsed=time.perf_counter() - start)
    # One full-size copy for the result; the lift is added into it in row bands, so a 50 MP
    # photo never holds a full-size upsampled perturbation or a sum temporary.
    protected = full.to(dtype=torch.float32, copy=True).clamp_(0, 1)
    lift_add_(protected, delta_w.detach().float().cpu(), config.eps)
    return ProtectResult(
        protected=protected,
        work_shape=(int(x.shape[-2]), int(x.shape[-1])),
        losses=losses,
        seconds=time.perf_counter() - start,
        encoders=[e.name for e in encoders],
    )


def run_to_end(gen: Generator[Y, None, T], each: Callable[[Y], object] | None = None) -> T:
    """Drive a progress generator (:func:`protect`, an attack's ``run``, ``protect_file``,
    ``run_batch``) to its end and return its result.

    Args:
        gen: The generator.
        each: Called with every record it yields, in order (progress bars, samplers, a cancel
            switch); None ignores them.
    """
    while True:
        try:
            rec = next(gen)
        except StopIteration as stop:
            return stop.value
        if each is not None:
            each(rec)
