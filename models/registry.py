"""Every encoder Cloak knows: layout family, latent space, input range, weight files, license.

Where the files come from: the TAESD family (taesd, taesdxl, taesd3, taef1, taef2, taesana) from
the GitHub repository ``madebyollin/taesd`` at the fixed commit :data:`TAESD_COMMIT`, where each
``.pth`` file is pinned by its git blob id (and its size and sha256 where those are known); the
full VAEs from their Hugging Face repositories.

Digests: every file of the default set (:data:`DEFAULT_ENSEMBLE`) is pinned. TAEF2 and VAElight
are pinned by sha256 and size; the other TAESD-family files by git blob id, checked on download
before anything loads them, with the sha256 seen then recorded in a ``<file>.sha256`` sidecar.
Only the opt-in full VAEs have no pinned digest: their first download records its sha256 in the
sidecar (trust on first use). Every later load and ``cloak models verify`` checks each file.
"""

from __future__ import annotations

from .base import EncoderSpec, WeightFile

_TAESD_LICENSE = "MIT"

#: The commit of github.com/madebyollin/taesd the TAESD-family files are fetched at
#: (2025-12-27, "Add support for FLUX.2 VAE").
TAESD_COMMIT = "5cccb12dc72074a4be35680c3b108548a7c69978"
TAESD_REPO = "madebyollin/taesd"


def _taesd(
    name: str,
    latent_space: str,
    channels: int,
    desc: str,
    encoder: WeightFile,
    decoder: WeightFile,
    downsample: int = 8,
) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family="taesd",
        latent_space=latent_space,
        latent_channels=channels,
        downsample=downsample,
        input_range=(0.0, 1.0),
        repo_id=TAESD_REPO,
        local_dir=name,
        encoder_file=encoder,
        decoder_file=decoder,
        license=_TAESD_LICENSE,
        description=desc,
        source="github",
        revision=TAESD_COMMIT,
    )


def _blob(filename: str, git_blob: str, size: int | None = None) -> WeightFile:
    return WeightFile(filename, None, size, git_blob=git_blob)


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
    _taesd(
        "taesd",
        "SD 1.x/2.x",
        4,
        "Tiny distilled SD 1.x/2.x VAE",
        _blob("taesd_encoder.pth", "65f85afc58480128926e52086fbf0fdc61c2c9b5"),
        _blob("taesd_decoder.pth", "5915a429fc08eba4adf62bf74f96705b8b0d5c1f"),
    ),
    _taesd(
        "taesdxl",
        "SDXL",
        4,
        "Tiny distilled SDXL VAE",
        _blob("taesdxl_encoder.pth", "56dfb7ed13ac774bc28dcd981f072f26eb7c5e99"),
        _blob("taesdxl_decoder.pth", "477bc7e9604f418029508e72ac8719bb9d048291"),
    ),
    _taesd(
        "taesd3",
        "SD3",
        16,
        "Tiny distilled SD3 VAE",
        _blob("taesd3_encoder.pth", "9678667c0e3e4b648a36daaa8094b1732ae4fb67"),
        _blob("taesd3_decoder.pth", "7943be72a9151d0b330c5d8a4fbb885d889b60a1"),
    ),
    _taesd(
        "taef1",
        "FLUX.1",
        16,
        "Tiny distilled FLUX.1 VAE",
        _blob("taef1_encoder.pth", "d8ee13fa3a1ff9a92643669d718e4b0827daafa5"),
        _blob("taef1_decoder.pth", "b772c9c4e6d3b79d06b277be59296389591783d3"),
    ),
    _taesd(
        "taef2",
        "FLUX.2",
        32,
        "Tiny distilled FLUX.2 VAE (with pool branches)",
        WeightFile(
            "taef2_encoder.pth",
            "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
            2704692,
            git_blob="8d738aba02f7ba9d156712489322dc5c43d5db1c",
        ),
        WeightFile(
            "taef2_decoder.pth",
            "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
            2704756,
            git_blob="f4da1ec48cb805b5ee8deb22cfad03f48fe52f64",
        ),
    ),
    _taesd(
        "taesana",
        "Sana DC-AE",
        32,
        "Tiny distilled Sana DC-AE (/32)",
        _blob("taesana_encoder.pth", "7e6354ea9e818c2fe56d3e80070a9e5e8a37be2f", 2537004),
        _blob("taesana_decoder.pth", "aa645f9d0a0a1c6b5ed1fc5b446e764af4843a9f"),
        downsample=32,
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

#: Encoders attacked by default: only what has been measured (docs/EVALUATION.md,
#: docs/PERFORMANCE.md). This is the single home of the default set; the others are opt-in
#: (``--encoders``, ``cloak models download NAME``).
DEFAULT_ENSEMBLE: tuple[str, ...] = ("taef2",)


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
