"""Image encoders of latent-diffusion models and their weights.

Every encoder is wrapped as an :class:`~cloak.models.base.AutoEncoder` whose ``encode`` takes
images in [0, 1] whatever the underlying model wants, so a range mix-up cannot happen above
this package. This package never imports Qt or the rest of Cloak.
"""

from .base import AutoEncoder, EncoderSpec, WeightFile, WeightsError
from .loading import (
    StatusRow,
    build_random,
    download,
    load_encoder,
    load_ensemble,
    model_status,
    verify,
)
from .registry import DEFAULT_ENSEMBLE, REGISTRY
from .weights import VerifyRow

__all__ = [
    "DEFAULT_ENSEMBLE",
    "REGISTRY",
    "AutoEncoder",
    "EncoderSpec",
    "StatusRow",
    "VerifyRow",
    "WeightFile",
    "WeightsError",
    "build_random",
    "download",
    "load_encoder",
    "load_ensemble",
    "model_status",
    "verify",
]
