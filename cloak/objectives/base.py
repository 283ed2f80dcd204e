"""The interface every attack objective implements, and the registry of objectives by name.

An objective says what "misreading the photo" means for one encoder: it prepares fixed state
once per encoder and resolution (:meth:`Objective.prepare`: references, normalisation scales)
and then gives, for every step, a normalised loss that is lower when the protection is better
(:meth:`Objective.loss`). Adding an objective is one new module in this package with a class
decorated by :func:`register`; the config's list of names comes from :data:`REGISTRY`.

Nothing here imports the engine or the config at run time, so :mod:`cloak.config` can read the
names without a cycle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

import torch
import torch.nn.functional as F

from cloak.models.base import AutoEncoder

if TYPE_CHECKING:
    from cloak.config import ProtectConfig
    from cloak.encoding import EncodeMode
    from cloak.transforms import PipelineDraw

Encode = Callable[[AutoEncoder, torch.Tensor, "EncodeMode"], list[torch.Tensor]]
"""The engine's padded, autocast encode (:func:`cloak.encoding.encode` at the run's precision)."""
Transform = Callable[[torch.Tensor, "PipelineDraw | None", int], torch.Tensor]
"""Applies one transform draw to an image, resizing relative to a base long side."""


@dataclass
class Setup:
    """What an objective may use to prepare its fixed state for one encoder at one resolution.

    Attributes:
        encoder: The encoder.
        image: The clean photo (1, 3, h, w) in [0, 1] at this resolution of the attack.
        config: The job.
        encode_with: The engine's padded, autocast encode; prefer :meth:`encode`.
        base: Long side the step's transforms resize relative to.
        every_step_draws: True when every step of the run comes with a transform draw (the
            engine's transformations are on), so no step compares with :attr:`Fixed.refs`.
    """

    encoder: AutoEncoder
    image: torch.Tensor
    config: ProtectConfig
    encode_with: Encode
    base: int
    every_step_draws: bool = False

    def encode(self, x: torch.Tensor, mode: EncodeMode = "latent") -> list[torch.Tensor]:
        """This encoder's view of ``x``: ``[z]``, its feature maps, or ``[D(E(x)), z]``."""
        return self.encode_with(self.encoder, x, mode)


@dataclass
class Step(Setup):
    """One step of the attack, for one encoder: :class:`Setup` plus the step's transform draw.

    Attributes:
        draw: The transform draw of this step (None: transformations are off).
        transform: Applies a draw to an image; prefer :meth:`view`.
    """

    draw: PipelineDraw | None = None
    transform: Transform | None = None

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as the encoder sees it this step (the same draw as the perturbed photo)."""
        if self.transform is None:
            return x
        return self.transform(x, self.draw, self.base)

    @cached_property
    def clean_view(self) -> torch.Tensor:
        """The clean photo through this step's draw (computed once, without gradients)."""
        with torch.no_grad():
            return self.view(self.image)


@dataclass
class Fixed:
    """An objective's fixed state for one encoder at one resolution.

    Attributes:
        refs: What the step's encodings are compared with when no transform is drawn.
        scales: Normalisation per loss term, so each starts near 1 and no encoder dominates.
        extra: Anything else an objective keeps (a target image, a mask, the clean latent).
    """

    refs: list[torch.Tensor]
    scales: list[float]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective(ABC):
    """One attack objective. Subclasses set :attr:`name` and implement the two methods.

    Args:
        config: The job (``latent_weight`` and the like are read from it).
    """

    name: ClassVar[str]
    needs_decoder: ClassVar[bool] = False
    """True when the objective compares decoded images. On an encoder without a decoder it
    must still give a loss (each objective documents what it does then)."""

    def __init__(self, config: ProtectConfig) -> None:
        self.config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def decodes(self, encoder: AutoEncoder) -> bool:
        """Whether this objective runs ``encoder``'s decoder."""
        return self.needs_decoder and encoder.has_decoder

    @abstractmethod
    def prepare(self, setup: Setup) -> Fixed:
        """Fixed state for one encoder at one resolution (called once, without gradients)."""

    @abstractmethod
    def loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        """The normalised loss of one step; lower is better for the protection.

        Args:
            step: The encoder, the clean photo, the step's draw and the encode helper.
            fixed: What :meth:`prepare` returned for this encoder and resolution.
            adv: The perturbed photo through the step's draw (gradients flow through it).
        """


class RoundTripObjective(Objective):
    """An objective on the decoded round trip D(E(x + d)).

    On an encoder without a decoder it is :attr:`fallback_type` (each subclass says which);
    subclasses implement :meth:`prepare_roundtrip` and :meth:`roundtrip_loss`, called only for
    encoders that decode.
    """

    needs_decoder = True
    fallback_type: ClassVar[type[Objective]]

    def __init__(self, config: ProtectConfig) -> None:
        super().__init__(config)
        self.fallback = self.fallback_type(config)

    def prepare(self, setup: Setup) -> Fixed:
        if not self.decodes(setup.encoder):
            return self.fallback.prepare(setup)
        return self.prepare_roundtrip(setup)

    def loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        if not self.decodes(step.encoder):
            return self.fallback.loss(step, fixed, adv)
        return self.roundtrip_loss(step, fixed, adv)

    @abstractmethod
    def prepare_roundtrip(self, setup: Setup) -> Fixed:
        """:meth:`Objective.prepare` for an encoder with a decoder."""

    @abstractmethod
    def roundtrip_loss(self, step: Step, fixed: Fixed, adv: torch.Tensor) -> torch.Tensor:
        """:meth:`Objective.loss` for an encoder with a decoder."""


def scaled(values: list[float]) -> list[float]:
    """Loss scales, floored so that a zero energy never divides by zero."""
    return [max(v, 1e-8) for v in values]


def mse_sum(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Sum of the mean squared errors of paired tensors."""
    return cast(torch.Tensor, sum(F.mse_loss(x, y) for x, y in zip(a, b, strict=True)))


def energy(ts: list[torch.Tensor]) -> float:
    """Sum of the mean squares of ``ts`` (a clean encoding's size, for normalising)."""
    return sum(float(t.pow(2).mean()) for t in ts)


ObjectiveType = TypeVar("ObjectiveType", bound=type[Objective])

REGISTRY: dict[str, type[Objective]] = {}
"""Every objective by name, filled by :func:`register` as the modules of this package load."""


def register(cls: ObjectiveType) -> ObjectiveType:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in REGISTRY:
        raise ValueError(f"objective {cls.name!r} is registered twice")
    REGISTRY[cls.name] = cls
    return cls


def roundtrip_terms(
    latent_weight: float, z: list[torch.Tensor], ref: list[torch.Tensor], scales: list[float]
) -> tuple[torch.Tensor, torch.Tensor | float]:
    """The normalised round-trip term and ``latent_weight`` times the normalised latent term.

    ``z`` and ``ref`` are ``[round trip, latent]`` pairs; the latent term is 0.0 (and its
    reference is never read) when ``latent_weight`` is 0.
    """
    main = F.mse_loss(z[0], ref[0]) / scales[0]
    if latent_weight > 0:
        return main, latent_weight * F.mse_loss(z[1], ref[1]) / scales[1]
    return main, 0.0
