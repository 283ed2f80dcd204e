"""Full-size latent-diffusion VAEs (SD 1.x/2.x, SDXL, FLUX.1) through ``diffusers.AutoencoderKL``.

Every model is built from an explicit config below, never from a downloaded ``config.json``, so
the layout is reviewed code. The VAE takes images in [-1, 1]; :class:`DiffusersVAE` converts
from [0, 1]. ``encode`` returns the latent distribution's mean, unscaled (the pipelines' scaling
factor and shift are kept on the wrapper for callers that need pipeline-space latents).

diffusers is slow to import, so it is imported only inside the functions here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .base import AutoEncoder, EncoderSpec, WeightsError

_DOWN = ("DownEncoderBlock2D",) * 4
_UP = ("UpDecoderBlock2D",) * 4

#: Explicit AutoencoderKL configs, keyed by registry name.
CONFIGS: dict[str, dict[str, Any]] = {
    "sd-vae": {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": _DOWN,
        "up_block_types": _UP,
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "latent_channels": 4,
        "norm_num_groups": 32,
        "sample_size": 512,
        "scaling_factor": 0.18215,
    },
    "sdxl-vae": {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": _DOWN,
        "up_block_types": _UP,
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "latent_channels": 4,
        "norm_num_groups": 32,
        "sample_size": 1024,
        "scaling_factor": 0.13025,
        "force_upcast": False,
    },
    "flux1-vae": {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": _DOWN,
        "up_block_types": _UP,
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "latent_channels": 16,
        "norm_num_groups": 32,
        "sample_size": 1024,
        "scaling_factor": 0.3611,
        "shift_factor": 0.1159,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    },
}


def tiny_config(name: str, **overrides: Any) -> dict[str, Any]:
    """A tiny config with ``name``'s latent channels and quant-conv flags, for fast tests."""
    base = CONFIGS[name]
    cfg: dict[str, Any] = dict(base)
    cfg.update(
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=32,
    )
    cfg.update(overrides)
    return cfg


def build_vae(config: dict[str, Any]) -> Any:
    """An ``AutoencoderKL`` with random weights from an explicit config dict."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(**config)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        sd = load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - any reader failure means an unusable file
        raise WeightsError(
            f"{path}: cannot read weights ({exc}). Delete the file and download it again."
        ) from exc
    return {k: v.float() for k, v in sd.items()}


class DiffusersVAE(AutoEncoder):
    """An ``AutoencoderKL`` on [0, 1] images; latents are the unscaled distribution mean.

    Attributes:
        vae: The wrapped ``diffusers.AutoencoderKL``.
        scaling_factor: The pipelines' latent scale (``(z - shift) * scale``).
        shift_factor: The pipelines' latent shift (0 when the model has none).
    """

    def __init__(self, spec: EncoderSpec, config: dict[str, Any], with_decoder: bool = True):
        super().__init__(spec)
        self.config = dict(config)
        self.vae: Any = build_vae(self.config)
        self._with_decoder = with_decoder
        self.scaling_factor = float(config.get("scaling_factor", 1.0))
        self.shift_factor = float(config.get("shift_factor") or 0.0)

    @property
    def has_decoder(self) -> bool:
        return self._with_decoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(x * 2 - 1).latent_dist.mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if not self._with_decoder:
            raise NotImplementedError(f"{self.name} was loaded without its decoder")
        y = self.vae.decode(z).sample
        return ((y + 1) / 2).clamp(0, 1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of each down block of the encoder, then the latent mean."""
        enc = self.vae.encoder
        h = enc.conv_in(x * 2 - 1)
        feats: list[torch.Tensor] = []
        for block in enc.down_blocks:
            h = block(h)
            feats.append(h)
        feats.append(self.encode(x))
        return feats

    def load_weights(self, path: Path) -> None:
        """Load a diffusers folder (``diffusion_pytorch_model.safetensors``) or one file."""
        path = Path(path)
        if path.is_dir():
            path = path / "diffusion_pytorch_model.safetensors"
        sd = _read_weights(path)
        try:
            self.vae.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"{path}: weights do not match the {self.name} AutoencoderKL layout: {exc}"
            ) from exc
