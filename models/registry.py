"""Every encoder Cloak knows: layout family, latent space, input range, weight files, license.

Digests: the TAEF2 and VAElight files are pinned by sha256. For the others no digest is pinned
here (``sha256=None``); their first download records the digest it saw in a
``<file>.sha256`` sidecar next to the file (trust on first use), and every later load and
``cloak models verify`` checks the file against that sidecar.
"""

from __future__ import annotations

from .base import EncoderSpec, WeightFile

_TAESD_LICENSE = "MIT"


def _taesd(
    name: str, latent_space: str, channels: int, repo_id: str, desc: str, downsample: int = 8
) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family="taesd",
        latent_space=latent_space,
        latent_channels=channels,
        downsample=downsample,
        input_range=(0.0, 1.0),
        repo_id=repo_id,
        local_dir=name,
        encoder_file=WeightFile(f"{name}_encoder.safetensors", None),
        decoder_file=WeightFile(f"{name}_decoder.safetensors", None),
        license=_TAESD_LICENSE,
        description=desc,
    )


def _diffusers(
    name: str, latent_space: str, channels: int, repo_id: str, filename: str, lic: str, desc: str
) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family="diffusers",
        latent_space=latent_space,
        latent_channels=channels,
        downsample=8,
        input_range=(-1.0, 1.0),
        repo_id=repo_id,
        local_dir=name,
        encoder_file=WeightFile(filename, None),
        decoder_file=None,  # one file holds both halves
        license=lic,
        description=desc,
    )


_SPECS: tuple[EncoderSpec, ...] = (
    _taesd("taesd", "SD 1.x/2.x", 4, "madebyollin/taesd", "Tiny distilled SD 1.x/2.x VAE"),
    _taesd("taesdxl", "SDXL", 4, "madebyollin/taesdxl", "Tiny distilled SDXL VAE"),
    _taesd("taesd3", "SD3", 16, "madebyollin/taesd3", "Tiny distilled SD3 VAE"),
    _taesd("taef1", "FLUX.1", 16, "madebyollin/taef1", "Tiny distilled FLUX.1 VAE"),
    EncoderSpec(
        name="taef2",
        family="taesd",
        latent_space="FLUX.2",
        latent_channels=32,
        downsample=8,
        input_range=(0.0, 1.0),
        repo_id="madebyollin/taesd",
        local_dir="taef2",
        encoder_file=WeightFile(
            "taef2_encoder.pth",
            "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
            2704692,
        ),
        decoder_file=WeightFile(
            "taef2_decoder.pth",
            "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
            2704756,
        ),
        license=_TAESD_LICENSE,
        description="Tiny distilled FLUX.2 VAE (with pool branches)",
    ),
    EncoderSpec(
        name="taesana",
        family="taesd",
        latent_space="Sana DC-AE",
        latent_channels=32,
        downsample=32,
        input_range=(0.0, 1.0),
        repo_id="madebyollin/taesd",
        local_dir="taesana",
        encoder_file=WeightFile("taesana_encoder.pth", None),
        decoder_file=WeightFile("taesana_decoder.pth", None),
        license=_TAESD_LICENSE,
        description="Tiny distilled Sana DC-AE (/32)",
    ),
    _diffusers(
        "sd-vae",
        "SD 1.x/2.x",
        4,
        "stabilityai/sd-vae-ft-mse",
        "diffusion_pytorch_model.safetensors",
        "MIT",
        "Stable Diffusion 1.x/2.x VAE (ft-MSE)",
    ),
    _diffusers(
        "sdxl-vae",
        "SDXL",
        4,
        "madebyollin/sdxl-vae-fp16-fix",
        "diffusion_pytorch_model.safetensors",
        "MIT",
        "SDXL VAE (fp16-fix)",
    ),
    _diffusers(
        "flux1-vae",
        "FLUX.1",
        16,
        "black-forest-labs/FLUX.1-schnell",
        "vae/diffusion_pytorch_model.safetensors",
        "Apache-2.0",
        "FLUX.1 VAE (16 channels)",
    ),
    EncoderSpec(
        name="vaelight",
        family="onnx",
        latent_space="SD 1.x/2.x",
        latent_channels=4,
        downsample=8,
        input_range=(-1.0, 1.0),
        repo_id="Graphnull/VAElight",
        local_dir="vaelight",
        encoder_file=WeightFile(
            "VAEencoder.onnx",
            "ee58bb0ab61769c48862963a21b5d84d966738db47d34d7d3463d7e4fe1aef5b",
            805301,
        ),
        decoder_file=WeightFile(
            "VAEpreview.onnx",
            "117ba84645544561b37a79685a56c90f1fbae803da6004080406f46f8d1c01c2",
            1076735,
        ),
        license="Apache-2.0",
        description="Small distilled SD 1.x VAE encoder (ONNX) with preview decoder",
    ),
)

REGISTRY: dict[str, EncoderSpec] = {s.name: s for s in _SPECS}

#: Encoders attacked by default: four latent spaces, all cheap on CPU.
DEFAULT_ENSEMBLE: tuple[str, ...] = ("taesd", "taesdxl", "taef1", "taef2")


def resolve_name(name: str) -> EncoderSpec:
    """The spec registered under ``name`` (case-insensitive).

    Raises:
        WeightsError: No such encoder; the message lists the known names.
    """
    from .base import WeightsError

    spec = REGISTRY.get(name.strip().lower())
    if spec is None:
        raise WeightsError(f"Unknown encoder {name!r}. Known: {', '.join(REGISTRY)}")
    return spec
