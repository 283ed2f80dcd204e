"""The encoder attack: an L-inf bounded perturbation that makes image encoders misread a photo.

Long work is a generator: :func:`protect` yields :class:`Progress` records and returns a
:class:`ProtectResult`; closing the generator (or a ``cancel`` callback returning True) stops it
at the next step. Nothing here writes files or imports Qt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.nn.functional as F

from cloak import objectives
from cloak.config import ProtectConfig
from cloak.device import release_freed_memory, use_bf16
from cloak.encoding import EncodeMode, SavedArena, encode
from cloak.errors import Cancelled, ConfigError
from cloak.metrics import KnownRoundTrip
from cloak.models.base import AutoEncoder
from cloak.objectives import Setup, Step
from cloak.projection import Level, Projection, param_size, work_budget
from cloak.staging import stage
from cloak.steps import make_step_rule, recolor, step_size
from cloak.transforms import PipelineDraw, RandomPipeline
from cloak.warm_start import pattern_for, tiled

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
        clean: The original's round trips at the work size, when the caller asked to keep them
            (see :attr:`EncoderAttack.clean`).
    """

    protected: torch.Tensor
    work_shape: tuple[int, int]
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    encoders: list[str] = field(default_factory=list)
    clean: list[KnownRoundTrip] = field(default_factory=list)


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
    blur, noise, differentiable JPEG), applies it identically to the clean photo and to the
    perturbed one, and asks the objective (:mod:`cloak.objectives`, normalised per encoder so
    that none dominates) for its loss. The step rule (:mod:`cloak.steps`) turns the gradient
    into a direction, rescaled per pixel by the budget so flat regions move less, and
    :class:`~cloak.projection.Projection` projects onto the L-inf map, the PSNR floor and the
    [0, 1] range. With ``coarse_steps`` the first steps look at the photo at the parameter's
    own resolution. Deterministic on the CPU for a given seed.

    Args:
        encoders: The encoders to attack.
        config: The job; only the attack fields are used here.
        device: Device to run on (already chosen).
        keep_clean: Keep the clean photo's round trip at the work size (:attr:`clean`).
    """

    def __init__(
        self,
        encoders: Sequence[AutoEncoder],
        config: ProtectConfig,
        device: torch.device,
        keep_clean: bool = False,
    ) -> None:
        if not encoders:
            raise ConfigError("at least one encoder is needed to protect a photo")
        self.encoders = list(encoders)
        self.config = config
        self.device = device
        self.bf16 = use_bf16(device, config.precision)
        self.objective = objectives.make(config)
        self.keep_clean = keep_clean
        self.clean: list[KnownRoundTrip] = []
        """With ``keep_clean``: the clean photo's round trip at the work size, per encoder with a
        decoder, for a measurement of the protected photo at that size to reuse instead of
        encoding the original again (:func:`cloak.metrics.seed_cache`). Taken from the
        objective's preparation where it computes one (``distort`` without transformations
        does), else computed for the purpose."""
        self.arena: SavedArena | None = None
        """Where the steps keep their compacted activations while :meth:`run` runs (fp32)."""

    def __repr__(self) -> str:
        c = self.config
        names = ",".join(e.name for e in self.encoders)
        return (
            f"EncoderAttack(eps={c.eps * 255:.1f}/255, steps={c.steps}, objective={c.objective}, "
            f"step_rule={c.step_rule}, encoders=[{names}], eot={c.transforms.enabled}, "
            f"perceptual={c.perceptual}, bf16={self.bf16})"
        )

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
        fine, coarse, budget = self._levels(image.detach())
        # The clean round trip at the work size freed large blocks the steps cannot all reuse.
        release_freed_memory()
        yield Progress("prepare", 0, c.steps, elapsed=time.perf_counter() - start)

        param = self.start(budget, gen)
        rule = make_step_rule(c, param)
        project = self._projection(fine, budget)
        # One mapping, outside the heap, reused by every step (dropped with the attack).
        self.arena = None if self.bf16 else SavedArena()
        for step in range(c.steps):
            if cancel is not None and cancel():
                raise Cancelled("protection cancelled")
            level = coarse if coarse is not None and step < c.coarse_steps else fine
            k = step % len(self.encoders)
            draw = pipe.draw()
            param.requires_grad_(True)
            loss = self._step_loss(level, k, param, pipe, draw)
            (grad,) = torch.autograd.grad(loss, param)
            param = param.detach()
            with torch.no_grad():
                direction = rule.direction(grad, step)
                # Scaled by the local budget: texture moves freely, flat skin less.
                param = project(param - step_size(c, step) * (budget / c.eps) * direction)
            yield Progress(
                "attack",
                step + 1,
                c.steps,
                loss.item(),
                time.perf_counter() - start,
                self.encoders[k].name,
            )
        self.arena = None
        with torch.no_grad():
            return fine.expand(param)

    def prepared(self, image: torch.Tensor) -> tuple[Level, torch.Tensor, Projection]:
        """What :meth:`run` prepares before its first step: the work-size level of ``image``,
        the parameter's budget map and its projection (for training a warm start)."""
        fine, _, budget = self._levels(image.detach())
        return fine, budget, self._projection(fine, budget)

    def _projection(self, fine: Level, budget: torch.Tensor) -> Projection:
        """The projection every step (and a warm start's training) applies to the parameter."""
        c = self.config
        return Projection(fine, budget, c.min_psnr, per_pixel=c.param_scale <= 1)

    def loss(
        self, level: Level, param: torch.Tensor, pipe: RandomPipeline, draw: PipelineDraw | None
    ) -> torch.Tensor:
        """The objective's loss for the first encoder on ``level.x + param`` seen through
        ``draw`` (one step's loss, differentiable in ``param``)."""
        return self._step_loss(level, 0, param, pipe, draw)

    def _step_loss(
        self,
        level: Level,
        k: int,
        param: torch.Tensor,
        pipe: RandomPipeline,
        draw: PipelineDraw | None,
    ) -> torch.Tensor:
        """One step's loss for encoder ``k``: summed over the views the step encodes
        (:meth:`cloak.transforms.RandomPipeline.views`; one unless ``step_sizes`` is set)."""
        # The perturbed photo at the work size once, however many views see it.
        adv = level.x + level.expand(param)
        losses = [self._loss(level, k, adv, pipe, view) for view in pipe.views(draw)]
        return torch.stack(losses).sum() if len(losses) > 1 else losses[0]

    def start(self, budget: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The parameter before the first step: a faint random start (a quarter of the budget),
        or with ``warm_start`` the attacked encoder's trained pattern at the full budget map
        (the first step's projection then applies the PSNR floor), where the attack runs at the
        geometry the pattern was trained at (:data:`cloak.warm_start.TRAINED_FOR`). The random
        draw is made either way, so the transformations drawn after it are the same with or
        without."""
        c = self.config
        noise = torch.rand(budget.shape[:1] + (3,) + budget.shape[2:], generator=gen)
        names = [e.name for e in self.encoders]
        pattern = pattern_for(names, c.work_size, c.param_scale) if c.warm_start else None
        if pattern is not None:
            return tiled(pattern.to(budget.device), budget.shape) * budget
        return 0.25 * recolor(noise.to(budget.device) * 2 - 1, c.chroma_weight) * budget

    def _encode(self, enc: AutoEncoder, x: torch.Tensor, mode: EncodeMode) -> list[torch.Tensor]:
        return encode(enc, x, mode, self.bf16, self.arena)

    def _loss(
        self,
        level: Level,
        k: int,
        adv: torch.Tensor,
        pipe: RandomPipeline,
        draw: PipelineDraw | None,
    ) -> torch.Tensor:
        """The objective's loss for encoder ``k`` on the perturbed work-size photo ``adv`` seen
        through ``draw``."""
        c = self.config
        step = Step(
            self.encoders[k],
            level.x,
            c,
            self._encode,
            level.base,
            every_step_draws=c.transforms.enabled,
            draw=draw,
            transform=pipe.apply,
        )
        return self.objective.loss(step, level.fixed[k], pipe.apply(adv, draw, level.base))

    def _levels(self, x: torch.Tensor) -> tuple[Level, Level | None, torch.Tensor]:
        """The work-size level, the coarse level (or None) and the parameter's budget."""
        c = self.config
        self.clean = []
        h, w = x.shape[-2:]
        budget = work_budget(x, c.eps, c.perceptual, c.perceptual_floor)
        # The perturbation is parameterised at 1/param_scale of the work size and upsampled
        # inside the graph: smooth, so it survives resize + JPEG and looks less grainy.
        ph, pw = param_size(h, w, c.param_scale)
        budget_p = budget if c.param_scale <= 1 else F.adaptive_max_pool2d(budget, (ph, pw))
        fine = self._level(x, budget, c.work_size, record=self.keep_clean)
        # Coarse-to-fine: the first ``coarse_steps`` run on the photo at the perturbation's own
        # resolution (a quarter of the pixels at param_scale 2), then the rest at full work size.
        coarse = None
        if c.coarse_steps > 0 and c.param_scale > 1:
            xc = F.interpolate(x, size=(ph, pw), mode="bilinear", antialias=True)
            base_c = max(16, round(c.work_size * max(ph, pw) / max(h, w)))
            coarse = self._level(xc.clamp(0, 1), budget_p, base_c)
        return fine, coarse, budget_p

    def _level(
        self, x: torch.Tensor, budget: torch.Tensor, base: int, record: bool = False
    ) -> Level:
        """One resolution: the objective prepares each encoder's references and scales;
        ``record`` keeps the round trip of ``x`` itself (:attr:`clean`), the objective's own
        where it computed one."""
        level = Level(x, budget, base)
        with torch.no_grad():
            for enc in self.encoders:
                seen: list[list[torch.Tensor]] = []

                def watch(
                    e: AutoEncoder, img: torch.Tensor, mode: EncodeMode, seen: list = seen
                ) -> list[torch.Tensor]:
                    out = self._encode(e, img, mode)
                    if record and mode == "roundtrip" and img is x and not seen:
                        seen.append(out)
                    return out

                draws = self.config.transforms.enabled
                setup = Setup(enc, x, self.config, watch, base, every_step_draws=draws)
                level.fixed.append(self.objective.prepare(setup))
                if record and not seen and enc.has_decoder:
                    seen.append(self._encode(enc, x, "roundtrip"))
                if seen:
                    rt, z = seen[0]
                    self.clean.append(KnownRoundTrip.of(enc.name, x, rt, z, self.bf16))
        return level


def protect(
    image: torch.Tensor,
    encoders: Sequence[AutoEncoder],
    config: ProtectConfig,
    cancel: Callable[[], bool] | None = None,
    keep_clean: bool = False,
) -> Generator[Progress, None, ProtectResult]:
    """Protect one photo: attack at the work resolution, then lift onto the full size.

    Args:
        image: (1, 3, H, W) float in [0, 1], full size, on any device.
        encoders: Loaded encoders (see :func:`cloak.models.load_ensemble`).
        config: The job.
        cancel: Optional callback; True stops at the next step with :class:`Cancelled`.
        keep_clean: Also return the original's round trip at the work size per encoder with a
            decoder (:attr:`ProtectResult.clean`), for a measurement to reuse. Free where the
            objective computes it to prepare; otherwise it costs one encode and decode at the
            work size, which the measurement then saves.

    Yields:
        :class:`Progress` records.

    Returns:
        A :class:`ProtectResult` with the protected photo on the CPU.
    """
    start = time.perf_counter()
    staged = stage(image, encoders, config.device, config.work_size)
    attack = EncoderAttack(encoders, config, staged.device, keep_clean)
    losses: list[float] = []
    run = attack.run(staged.work, cancel)
    while True:
        try:
            rec = next(run)
        except StopIteration as stop:
            delta_w: torch.Tensor = stop.value
            break
        if rec.stage == "attack":
            losses.append(rec.loss)
        yield rec
    # The steps' activations are free now; the full-size landing and save need fresh room.
    release_freed_memory()
    yield Progress("lift", config.steps, config.steps, elapsed=time.perf_counter() - start)
    return ProtectResult(
        protected=staged.land(delta_w, config.eps),
        work_shape=staged.work_shape,
        losses=losses,
        seconds=time.perf_counter() - start,
        encoders=[e.name for e in encoders],
        clean=attack.clean,
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
