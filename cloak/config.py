"""One frozen object describes a protection job; presets are named instances of it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from cloak import objectives
from cloak.errors import ConfigError
from cloak.formats import OUTPUT_FORMATS, normalise_format
from cloak.models.registry import DEFAULT_ENSEMBLE
from cloak.steps import STEP_RULES

StepRule = Literal["sign", "l2", "adam"]
Schedule = Literal["constant", "linear", "cosine"]
Precision = Literal["auto", "fp32", "bf16"]

OBJECTIVES: tuple[str, ...] = objectives.names()
"""Every attack objective's name (one module each in :mod:`cloak.objectives`)."""
DEFAULT_ENCODERS: tuple[str, ...] = DEFAULT_ENSEMBLE
"""The encoders a job attacks unless told otherwise (defined in :mod:`cloak.models.registry`)."""


@dataclass(frozen=True)
class SaveOptions:
    """How to write a protected photo.

    Attributes:
        format: "JPEG", "PNG", "WEBP" or "HEIF"; None keeps the source format (GIF, TIFF and
            BMP become PNG; HEIF becomes JPEG when pillow-heif is missing).
        jpeg_quality: JPEG quality 1-100; 95 keeps the protection from being washed out.
        webp_quality: Quality 1-100 for lossy WebP.
        webp_lossless: True/False forces the WebP mode; None = lossless when the source was
            lossless, lossy otherwise.
        heif_quality: HEIF quality 1-100 (pillow-heif's own default of 50 would wash out the
            protection).
        strip_gps: Remove the GPS block from EXIF (privacy default).
        strip_metadata: Remove all EXIF. The ICC profile is kept: it is colour, not metadata.
        overwrite: Replace an existing output file. The source file is never replaced.
    """

    format: str | None = None
    jpeg_quality: int = 95
    webp_quality: int = 95
    webp_lossless: bool | None = None
    heif_quality: int = 95
    strip_gps: bool = True
    strip_metadata: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.format is not None:
            name = normalise_format(self.format)
            if name not in OUTPUT_FORMATS:
                raise ConfigError(
                    f"output format {self.format!r} is not supported; "
                    f"choose one of {', '.join(sorted(OUTPUT_FORMATS))}"
                )
            object.__setattr__(self, "format", name)
        for name in ("jpeg_quality", "webp_quality", "heif_quality"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 100:
                raise ConfigError(f"{name} must be an integer from 1 to 100, got {value!r}")


@dataclass(frozen=True)
class TransformConfig:
    """Expectation over transformations: what the photo may go through before an encoder sees it.

    Every step draws one random combination (with the job's seed), so robustness costs little.

    Attributes:
        enabled: Apply transformations at all.
        resize: Range of the attacker's long side relative to the work size (min, max).
        shift_px: Largest shift / crop offset in pixels (below the encoders' 8-px latent grid).
        jpeg_prob: Probability of a differentiable JPEG per step.
        jpeg_quality: JPEG quality range (min, max).
        blur_prob: Probability of a mild Gaussian blur.
        blur_sigma: Largest blur sigma in pixels.
        noise_std: Largest std of additive Gaussian noise (in [0, 1] units).
        window_px: Encode at most this many pixels of each step's view: a random window of
            the image at the attacker's size (0 encodes the whole view). Attackers work at 512
            to 1344 px; a window keeps a step's cost flat however large the drawn size is, and
            over the steps the windows cover the photo. Windows start on the encoders' 8-px
            grid, so a window sees the same latent cells as the whole view.
        sizes: Exact attacker long sides in pixels; when given, every step draws one of them
            (each in proportion to its area, so that the windows cover every size's view
            about equally) instead of a scale from ``resize``. A perturbation tuned to an
            exact size does far more there than one spread over a range.
        size_weights: How often each of ``sizes`` is drawn, relative to the others (empty:
            in proportion to its area). Over many steps the windows cover every size's view
            anyway, and weighing a size up moves damage toward it from the others.
        step_sizes: When given, every step encodes one window at each of these long sides
            (``window_px`` shared equally among them) instead of one drawn size, so every step
            moves the damage at all of them; with one size per step, a step at one size takes
            damage away from the others, and which sizes a photo's few steps happened to draw
            decides where it is protected. A size listed twice gets two windows. No preset
            uses it yet: what the mixes measured is in docs/attack-notes.md (round 9).
        size_order: When given, the attacker sizes of consecutive steps, in this order (and
            again from the start after the last), instead of a random draw from ``sizes``.
            Ten random draws leave a size without a step on about one photo in five, and that
            photo unprotected at that size; an order gives every size its share on every photo.
            Each entry must be one of ``sizes``.
        spread_windows: Each size's windows go, in turn, to the view's four corners and its
            centre (starting from a random one of the five) instead of random positions, so a
            size's few windows cover its view rather than overlap.
    """

    enabled: bool = True
    resize: tuple[float, float] = (0.7, 1.0)
    shift_px: int = 7
    jpeg_prob: float = 0.6
    jpeg_quality: tuple[int, int] = (60, 95)
    blur_prob: float = 0.2
    blur_sigma: float = 0.8
    noise_std: float = 0.01
    window_px: int = 0
    sizes: tuple[int, ...] = ()
    size_weights: tuple[float, ...] = ()
    step_sizes: tuple[int, ...] = ()
    size_order: tuple[int, ...] = ()
    spread_windows: bool = False

    def validate(self) -> None:
        lo, hi = self.resize
        if not (0.2 <= lo <= hi <= 2.0):
            raise ConfigError(
                f"transform resize range {self.resize} must satisfy 0.2 <= min <= max <= 2"
            )
        qlo, qhi = self.jpeg_quality
        if not (1 <= qlo <= qhi <= 100):
            raise ConfigError(f"JPEG quality range {self.jpeg_quality} must lie in 1..100")
        for name in ("jpeg_prob", "blur_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name}={p} must be a probability in [0, 1]")
        if self.window_px != 0 and self.window_px < 64 * 64:
            raise ConfigError(f"window_px={self.window_px} must be 0 (off) or at least 64*64")
        if any(not 64 <= s <= 4096 for s in self.sizes):
            raise ConfigError(f"attacker sizes {self.sizes} must each lie in 64..4096 pixels")
        if any(not 64 <= s <= 4096 for s in self.step_sizes):
            raise ConfigError(f"step_sizes {self.step_sizes} must each lie in 64..4096 pixels")
        if self.step_sizes and self.window_px and self.window_px // len(self.step_sizes) < 64 * 64:
            raise ConfigError(
                f"window_px={self.window_px} shared by {len(self.step_sizes)} step_sizes leaves "
                "each view under 64*64 pixels"
            )
        if self.size_weights and (
            len(self.size_weights) != len(self.sizes) or min(self.size_weights) <= 0
        ):
            raise ConfigError(
                f"size_weights {self.size_weights} must give one positive weight per attacker "
                f"size {self.sizes}"
            )
        if any(s not in self.sizes for s in self.size_order):
            raise ConfigError(
                f"size_order {self.size_order} must list only attacker sizes {self.sizes}"
            )
        if self.shift_px < 0 or self.blur_sigma < 0 or self.noise_std < 0:
            raise ConfigError("shift_px, blur_sigma and noise_std must not be negative")


@dataclass(frozen=True)
class ProtectConfig:
    """Everything that decides what a protection run does.

    Attributes:
        eps: L-inf budget in [0, 1] units (8/255 means pixel values move by at most 8 levels).
        steps: Optimisation steps.
        step_size: First step size in [0, 1] units; None picks ``2.5 * eps / steps * 4``.
        schedule: How the step size decays over the run.
        momentum: Momentum of the normalised gradient (MI-FGSM style); 0 disables it.
        step_rule: ``sign`` steps fill the L-inf box (strong, grainy); ``l2`` steps follow the
            gradient's magnitudes and put the change where the encoders are most sensitive;
            ``adam`` divides the momentum by a running per-pixel gradient RMS (Adam) first.
        min_psnr: Visibility floor in dB: the perturbation's RMS is projected so that the
            protected photo keeps at least this PSNR. None disables the floor.
        objective: Name of an objective in :mod:`cloak.objectives`: ``push`` (away from the
            clean latent), ``gray`` or ``pattern`` (toward the latent of a flat gray or a
            high-contrast patterned image), ``features`` (push intermediate encoder features
            away), ``decoded`` (push the encoder/decoder round trip away from the clean round
            trip), ``distort`` (push the round trip away from the photo itself, which is what
            edit damage measures; no reference round trip is needed per step), ``texture``
            (pull the round trip toward a high-contrast pattern). On encoders without a
            decoder, ``decoded`` and ``distort`` fall back to ``push`` and ``texture`` to
            ``pattern``.
        latent_weight: For ``decoded``/``distort``/``texture``: weight of an extra latent push term
            (0 disables it; measured to hurt ``decoded`` and not to help ``distort``, see
            docs/attack-notes.md).
        param_scale: The perturbation is optimised at 1/param_scale of the work resolution and
            bilinearly upsampled inside the graph (2: smoother, better SSIM, survives resize
            and JPEG better; 1: per-pixel).
        coarse_steps: Coarse-to-fine: this many of the ``steps`` run on the photo at the
            perturbation's own resolution (1/param_scale of the work size, so a quarter of
            the pixels at param_scale 2) before the rest run at the work size. 0 disables it;
            it needs ``param_scale`` >= 2 (with 1 every step runs at the work size).
        chroma_weight: How much of each step goes into colour (chroma) against brightness
            (luma): 1 treats R, G and B alike, below 1 makes colour changes smaller (less
            colourful grain), 0 changes brightness only.
        warm_start: Start from the attacked encoder's trained universal pattern
            (:mod:`cloak.warm_start`) instead of a faint random one; encoders without a
            pattern, and work sizes or param scales other than the 1024 px and 2 it was trained
            at, start randomly either way.
        encoders: Registry names of the encoders to attack together.
        work_size: Long side, in pixels, at which the attack runs; the perturbation is then
            lifted onto the full-size photo.
        seed: Seed of every random choice (start, transformations).
        device: ``auto`` (cuda, then mps, then cpu) or a torch device string.
        precision: ``auto`` uses bf16 autocast where the device supports it well.
        perceptual: Spend the budget where texture hides it (per-pixel eps map).
        perceptual_floor: Fraction of ``eps`` that flat regions still get.
        transforms: Expectation over transformations.
        output: How the protected photo is written.
        max_pixels: Photos above this many pixels are refused (decompression bombs).
    """

    eps: float = 8 / 255
    steps: int = 40
    step_size: float | None = None
    schedule: Schedule = "linear"
    momentum: float = 0.9
    step_rule: StepRule = "l2"
    min_psnr: float | None = 37.0
    objective: str = "push"
    latent_weight: float = 0.0
    param_scale: int = 1
    coarse_steps: int = 0
    chroma_weight: float = 1.0
    warm_start: bool = False
    encoders: tuple[str, ...] = DEFAULT_ENCODERS
    work_size: int = 768
    seed: int = 0
    device: str = "auto"
    precision: Precision = "auto"
    perceptual: bool = True
    perceptual_floor: float = 0.35
    transforms: TransformConfig = field(default_factory=TransformConfig)
    output: SaveOptions = field(default_factory=SaveOptions)
    max_pixels: int = 100_000_000

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` with a message a user can act on."""
        if not 0.0 < self.eps <= 32 / 255:
            raise ConfigError(f"eps={self.eps * 255:.2f}/255 must lie in (0, 32]/255")
        if not 1 <= self.steps <= 5000:
            raise ConfigError(f"steps={self.steps} must lie in 1..5000")
        if self.step_size is not None and not 0.0 < self.step_size <= 1.0:
            raise ConfigError(f"step_size={self.step_size} must lie in (0, 1]")
        if self.schedule not in ("constant", "linear", "cosine"):
            raise ConfigError(f"unknown schedule {self.schedule!r}: use constant, linear or cosine")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum={self.momentum} must lie in [0, 1)")
        if self.step_rule not in STEP_RULES:
            raise ConfigError(
                f"unknown step rule {self.step_rule!r}: use one of {', '.join(STEP_RULES)}"
            )
        if self.min_psnr is not None and not 20.0 <= self.min_psnr <= 60.0:
            raise ConfigError(f"min_psnr={self.min_psnr} dB must lie in 20..60")
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"unknown objective {self.objective!r}: use one of {', '.join(OBJECTIVES)}"
            )
        if not 0.0 <= self.latent_weight <= 100.0:
            raise ConfigError(f"latent_weight={self.latent_weight} must lie in 0..100")
        if not 1 <= self.param_scale <= 8:
            raise ConfigError(f"param_scale={self.param_scale} must lie in 1..8")
        if not 0 <= self.coarse_steps < self.steps:
            raise ConfigError(
                f"coarse_steps={self.coarse_steps} must lie in 0..steps-1 ({self.steps - 1})"
            )
        if not 0.0 <= self.chroma_weight <= 2.0:
            raise ConfigError(f"chroma_weight={self.chroma_weight} must lie in 0..2")
        if not self.encoders:
            raise ConfigError("at least one encoder is needed (see `cloak models list`)")
        if not 64 <= self.work_size <= 4096:
            raise ConfigError(f"work_size={self.work_size} must lie in 64..4096 pixels")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"unknown precision {self.precision!r}: use auto, fp32 or bf16")
        if not 0.0 < self.perceptual_floor <= 1.0:
            raise ConfigError(f"perceptual_floor={self.perceptual_floor} must lie in (0, 1]")
        if self.max_pixels < 1:
            raise ConfigError("max_pixels must be positive")
        self.transforms.validate()

    @property
    def first_step(self) -> float:
        """The step size at step 0."""
        if self.step_size is not None:
            return self.step_size
        return min(self.eps, 10.0 * self.eps / self.steps)

    def replace(self, **changes: Any) -> ProtectConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line for logs and reports."""
        return (
            f"eps={self.eps * 255:.1f}/255 steps={self.steps} objective={self.objective} "
            f"encoders={','.join(self.encoders)} work={self.work_size}px "
            f"perceptual={self.perceptual} eot={self.transforms.enabled} seed={self.seed}"
            + (" warm_start=True" if self.warm_start else "")
        )


ATTACKER_EOT = TransformConfig(sizes=(512, 768, 1024), shift_px=0, window_px=576 * 360)
"""What every preset simulates: an attacker who resizes the posted photo to a long side of 512
(SD 1.x), 768 or 1024 px (SDXL / FLUX / edit models), with blur, noise and JPEG 60-95, each step
encoding a 576 x 360 px-sized window of that view (on the encoders' 8-px grid) so that a step
costs the same whatever size is drawn. Exact sizes, not a range: see the comment on
:data:`PRESETS`. The window's size sets a step's cost: 576 x 360 (0.81 of the 640 x 400 before
round 6 of docs/attack-notes.md) brings the standard preset back to the time of the 640 px
standard it replaced, for 0.1-0.4 dB on the weakest portraits."""

SIZE_ORDER = (1024, 768, 512, 1024, 768, 1024, 512, 768, 1024, 768)
"""The attacker sizes of consecutive steps of every preset. Drawn at random in proportion to
their area, ten steps leave 512 px without a step on about one photo in five and with one on
about a third (1.0-2.3 dB there on three of the ten portraits with the standard preset); in
this order every photo gets two steps at 512 px and four at 768 and 1024 px out of ten, high's
16 steps (the order again from its start) three, six and seven, and max's 96 steps 19, 38 and
39."""

ORDERED_EOT = dataclasses.replace(ATTACKER_EOT, size_order=SIZE_ORDER, spread_windows=True)
""":data:`ATTACKER_EOT` with the steps' sizes in :data:`SIZE_ORDER` and each size's windows
spread over its view (docs/attack-notes.md round 10)."""

_PRESET_BASE = ProtectConfig(
    objective="distort", param_scale=2, work_size=1024, steps=10, transforms=ATTACKER_EOT
)
"""What every preset shares (see the comment on :data:`PRESETS`)."""

PRESETS: dict[str, ProtectConfig] = {
    # Every preset pushes the attacker's encoder/decoder round trip away from the photo itself
    # (objective "distort"), works on the photo at 1024 px with the delta at half that
    # resolution, and draws the attacker's size from the exact long sides 512, 768 and 1024 px
    # (ATTACKER_EOT). Measured on the portraits in docs/attack-notes.md (round 4): against a
    # size drawn from 512-1344 px this roughly doubles the damage at those three sizes and does
    # about as much as before at sizes in between (on img13; less on img58).
    # Every preset gives its steps to the three sizes in a fixed order, 2 : 4 : 4 out of ten,
    # each size's windows spread over its view (ORDERED_EOT; attack-notes round 10): random
    # draws left a size without a step on some photos.
    # Least visible: 4/255 and a 40 dB PSNR floor.
    "low": _PRESET_BASE.replace(eps=4 / 255, min_psnr=40.0, transforms=ORDERED_EOT),
    # The default: up to 16/255 where texture hides it, 4/255 on flat skin and sky (perceptual
    # floor 0.25), PSNR at least 36 dB: +0.3-0.5 dB over 8/255 everywhere at the same SSIM.
    # It starts from TAEF2's trained universal pattern (cloak.warm_start): on six portraits
    # the pattern never saw, +0.9 / +0.2 / +0.5 dB median at 512 / 768 / 1024 px for the same
    # 10 steps (attack-notes round 8).
    "standard": _PRESET_BASE.replace(
        eps=16 / 255,
        min_psnr=36.0,
        momentum=0.75,
        perceptual_floor=0.25,
        warm_start=True,
        transforms=ORDERED_EOT,
    ),
    # Stronger: the same budget map with a 33 dB floor and more steps.
    "high": _PRESET_BASE.replace(
        eps=16 / 255, min_psnr=33.0, steps=16, perceptual_floor=0.25, transforms=ORDERED_EOT
    ),
    # For the one photo that matters: sign steps fill the 16/255 map (PSNR about 32 dB on
    # portraits, faint grain). 40 steps left the median damage at 768 px under the 10 dB max
    # aims at; more steps raised it mostly at 1024 px, drawing 768 px as often as 1024 px
    # raised it at 768 px (attack-notes round 7): 96 steps, about 10x the standard's time.
    # The fixed order (round 10: the same 1 : 2 : 2 share of steps as those random draws, but
    # exact and interleaved, windows spread) then gave +1.3 / +1.7 dB median at 768 / 1024 px,
    # -0.4 dB at 512 px; what it does on the ten portraits is in docs/EVALUATION.md.
    # Flat areas keep a quarter of the cap: half bought 0.3-1.5 dB for up to 2 dB of PSNR, and
    # even the whole cap on every pixel (the pattern plain on the photo) left four portraits
    # at 8-18.5 dB, under the verdict's 19 dB of "visibly broken" (attack-notes round 11).
    "max": _PRESET_BASE.replace(
        eps=16 / 255,
        min_psnr=None,
        steps=96,
        step_rule="sign",
        perceptual_floor=0.25,
        transforms=ORDERED_EOT,
    ),
}
"""Named jobs from the least visible (``low``) to the strongest (``max``); see
docs/attack-notes.md for the measurements behind them."""


def preset(name: str) -> ProtectConfig:
    """The preset called ``name`` (case-insensitive)."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
