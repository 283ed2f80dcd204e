"""The one interface the engine sees: an encoder (and optional decoder) on [0, 1] images."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class WeightsError(Exception):
    """A weight file is missing, corrupt or of the wrong layout. The message says what to do."""


@dataclass(frozen=True)
class WeightFile:
    """One file of a model repository.

    Attributes:
        filename: Path of the file inside the model repository (also its name in a local
            models folder, under the encoder's ``local_dir``).
        sha256: Expected hex digest; checked before loading.
        size: Expected size in bytes, or None when unknown.
        git_blob: Git blob id of the file in its source repository, or None. It pins the exact
            bytes where no sha256 was published: a download is checked against it before
            anything loads it, and its sha256 is recorded then.
    """

    filename: str
    sha256: str | None
    size: int | None = None
    git_blob: str | None = None


@dataclass(frozen=True)
class EncoderSpec:
    """What the registry knows about one encoder.

    Attributes:
        name: Registry name, e.g. ``"taef2"``.
        family: ``"taesd"``, ``"diffusers"`` or ``"onnx"``.
        latent_space: Which diffusion model family's latents it produces (e.g. ``"FLUX.2"``).
        latent_channels: Channels of the latent.
        downsample: Spatial factor between image and latent.
        input_range: Value range the underlying model expects, ``(0, 1)`` or ``(-1, 1)``.
        repo_id: Public repository the weights download from (``owner/name``).
        local_dir: Sub-folder of a models folder that holds the files.
        encoder_file: The encoder weights.
        decoder_file: The decoder weights, or None when there is no public decoder.
        license: License of the weights.
        description: One line for ``cloak models list``.
        source: ``"github"`` (files fetched from ``raw.githubusercontent.com`` at
            ``revision``, with pooch) or ``"huggingface"`` (with huggingface_hub).
        revision: The commit the files are fetched at, or None for the repository's default.
    """

    name: str
    family: str
    latent_space: str
    latent_channels: int
    downsample: int
    input_range: tuple[float, float]
    repo_id: str
    local_dir: str
    encoder_file: WeightFile
    decoder_file: WeightFile | None
    license: str
    description: str
    source: str = "huggingface"
    revision: str | None = None

    @property
    def files(self) -> tuple[WeightFile, ...]:
        return (self.encoder_file,) + ((self.decoder_file,) if self.decoder_file else ())


class AutoEncoder(nn.Module):
    """An image encoder with an optional decoder, both on images in [0, 1].

    Subclasses convert to the model's own range. ``encode`` maps (N, 3, H, W) in [0, 1] to the
    latent (N, C, H/f, W/f); ``decode`` maps a latent back to (N, 3, H, W) in [0, 1].
    H and W should be multiples of ``spec.downsample``; callers pad when they are not.
    """

    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def has_decoder(self) -> bool:
        return False

    @property
    def relu_signs_suffice(self) -> bool:
        """True when, in :meth:`encode` and :meth:`decode`, every ReLU output is read only by
        ReLU's own backward (its sign) and by frozen convolutions, upsamples and additions
        (which do not read it for the input's gradient): backward may then keep only the signs
        (see :func:`cloak.encoding.compact_saved_activations`). False unless a layout says so."""
        return False

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} has no decoder")

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Intermediate feature maps of the encoder (for feature losses); default: the latent."""
        return [self.encode(x)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"{type(self).__name__}(name={s.name!r}, latent={s.latent_channels}ch/{s.downsample}, "
            f"decoder={self.has_decoder})"
        )
