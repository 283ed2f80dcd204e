"""The TAESD family of tiny distilled autoencoders (TAESD, TAESDXL, TAESD3, TAEF1, TAEF2, TAESANA).

Layout: an ``nn.Sequential`` of 3x3 convs and residual blocks. A block is
``relu(conv(x) + skip(x))`` with ``conv`` = conv-relu-conv-relu-conv and ``skip`` a bias-free 1x1
conv when channels change. The encoder downsamples with bias-free stride-2 convs; the decoder
soft-clamps latents with ``3 * tanh(z / 3)`` and upsamples with 2x nearest + bias-free conv.

TAEF2 adds a ``pool`` branch to the three lowest-resolution blocks on each side: 1x1 conv to 4x
channels, GroupNorm(4 groups), ReLU, 1x1 conv back (both convs bias-free), added to the block
input before the block's own convs. (The other reading, adding it to the block output, loads
the same state dict but reconstructs real photos about 1.5 dB worse, so it is not the layout.)

TAESANA (Sana's DC-AE space, 32 channels, /32) uses the "f32" variant of the layout: two
stride-2 convs with ReLU in front of the /8 encoder body, and a wider decoder (256 -> 128 -> 64
channels) with five upsamples. This follows the public ``taesana_encoder.pth`` naming of the
upstream project; only the TAEF2 layout is proven here against real weights.

Weights are plain state dicts (``.pth`` loaded with ``weights_only=True``, or ``.safetensors``),
usually fp16; they are cast to float32. Images are in [0, 1]; latents are unscaled.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .base import AutoEncoder, EncoderSpec, WeightsError

_WIDTH = 64


def _conv(n_in: int, n_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class SoftClamp(nn.Module):
    """``3 * tanh(z / 3)``: keeps out-of-range latents from blowing up the decoder."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z / 3) * 3


class PoolBranch(nn.Sequential):
    """TAEF2's per-pixel channel mixer: 1x1 conv (4x), GroupNorm(4), ReLU, 1x1 conv back."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Conv2d(channels, 4 * channels, 1, bias=False),
            nn.GroupNorm(4, 4 * channels),
            nn.ReLU(),
            nn.Conv2d(4 * channels, channels, 1, bias=False),
        )


class Block(nn.Module):
    """Residual block ``relu(conv(h) + skip(h))`` with ``h = x + pool(x)`` when pooled."""

    def __init__(self, n_in: int, n_out: int, pool: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv(n_in, n_out), nn.ReLU(), _conv(n_out, n_out), nn.ReLU(), _conv(n_out, n_out)
        )
        self.skip: nn.Module = (
            nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        )
        self.pool: nn.Module | None = PoolBranch(n_in) if pool else None
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def build_encoder(latent_channels: int, pooled: bool = False, f32: bool = False) -> nn.Sequential:
    """The encoder ``nn.Sequential``; ``pooled`` adds TAEF2's pool branches, ``f32`` is /32."""
    w = _WIDTH
    layers: list[nn.Module]
    if f32:
        layers = [_conv(3, 32, stride=2), nn.ReLU(), _conv(32, w, stride=2), nn.ReLU(), Block(w, w)]
    else:
        layers = [_conv(3, w), Block(w, w)]
    for stage in range(3):
        layers.append(_conv(w, w, stride=2, bias=False))
        lowest = stage == 2
        layers += [Block(w, w, pool=pooled and lowest) for _ in range(3)]
    layers.append(_conv(w, latent_channels))
    return nn.Sequential(*layers)


def build_decoder(latent_channels: int, pooled: bool = False, f32: bool = False) -> nn.Sequential:
    """The decoder ``nn.Sequential`` (starts with the soft clamp, ends with a 3-channel conv)."""
    widths = [256, 128, 64, 64, 64] if f32 else [_WIDTH] * 3
    outs = [128, 64, 64, 64, 64] if f32 else [_WIDTH] * 3
    layers: list[nn.Module] = [SoftClamp(), _conv(latent_channels, widths[0]), nn.ReLU()]
    for i, (w, o) in enumerate(zip(widths, outs, strict=True)):
        lowest = i == 0
        layers += [Block(w, w, pool=pooled and lowest) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(w, o, bias=False)]
    layers += [Block(outs[-1], outs[-1]), _conv(outs[-1], 3)]
    return nn.Sequential(*layers)


BAND_ROWS = 192
"""Full-resolution rows per band when an image is run without gradients (see :func:`in_bands`)."""
BAND_MIN_PIXELS = 512 * 512
"""Images with at most this many pixels run whole: bands would save little there."""


def in_bands(
    stage: nn.Module, x: torch.Tensor, factor: int, halo: int, out_rows: int
) -> torch.Tensor:
    """``stage(x)`` for a stage of local layers (3x3 convs, nearest 2x upsamples, stride-2
    convs), computed a band of output rows at a time.

    ``factor``: output rows per input row (2), or input rows per output row (-2, a stride-2
    stage). Each band reads ``halo`` more input rows on each side, which must cover the stage's
    reach, and keeps only its own rows, so the result equals ``stage(x)``: rows near a cut see
    real neighbours, rows at the image's edges its zero padding, as in one pass. Only one
    band's 64-channel maps exist at a time (a 1024 x 683 round trip's full-resolution maps are
    180 MB each, several alive at once).
    """
    h = int(x.shape[-2])
    down = factor < 0
    s = -factor if down else factor
    h_out = -(-h // s) if down else h * s
    out: torch.Tensor | None = None
    for a in range(0, h_out, out_rows):
        b = min(a + out_rows, h_out)
        if down:
            lo, hi = max(0, a * s - halo), min(h, b * s + halo)
            off = lo // s
        else:
            lo, hi = max(0, a // s - halo), min(h, -(-b // s) + halo)
            off = lo * s
        y = stage(x[..., lo:hi, :])
        if out is None:
            shape = (y.shape[0], y.shape[1], h_out, y.shape[-1])
            last = y.is_contiguous(memory_format=torch.channels_last)
            fmt = torch.channels_last if last else torch.contiguous_format
            out = torch.empty(shape, dtype=y.dtype, device=y.device, memory_format=fmt)
        out[..., a:b, :] = y[..., a - off : b - off, :]
    assert out is not None
    return out


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a plain state dict from ``.safetensors`` or ``.pth`` (never unpickling code)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path), device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means an unusable file
        raise WeightsError(
            f"{path}: cannot read weights ({exc}). Delete the file and download it again."
        ) from exc
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path}: not a plain state dict of tensors.")
    return {str(k): v.float() if v.is_floating_point() else v for k, v in sd.items()}


def _normalise_keys(sd: dict[str, torch.Tensor], part: str) -> dict[str, torch.Tensor]:
    """Accept diffusers ``AutoencoderTiny`` names (``decoder.layers.N``) as well as bare ``N``.

    diffusers keeps the decoder's clamp outside its ``layers``, so its indices are one lower.
    """
    prefix = f"{part}.layers."
    if not any(k.startswith(prefix) for k in sd):
        return sd
    shift = 1 if part == "decoder" else 0
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.startswith(prefix):
            idx, _, rest = k[len(prefix) :].partition(".")
            out[f"{int(idx) + shift}.{rest}"] = v
    return out


def load_into(module: nn.Module, path: Path, part: str) -> None:
    """Load ``path`` into ``module`` strictly; a layout mismatch is a :class:`WeightsError`."""
    sd = _normalise_keys(read_state_dict(path), part)
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"{path}: weights do not match the expected {part} layout: {exc}"
        ) from exc


class TAESD(AutoEncoder):
    """A TAESD-family encoder with optional decoder, on images in [0, 1] (its native range)."""

    def __init__(self, spec: EncoderSpec, with_decoder: bool = True) -> None:
        super().__init__(spec)
        pooled = spec.name == "taef2"
        f32 = spec.downsample == 32
        self.encoder = build_encoder(spec.latent_channels, pooled=pooled, f32=f32)
        self.decoder: nn.Sequential | None = (
            build_decoder(spec.latent_channels, pooled=pooled, f32=f32) if with_decoder else None
        )

    @property
    def has_decoder(self) -> bool:
        return self.decoder is not None

    @property
    def relu_signs_suffice(self) -> bool:
        # ReLU outputs feed 3x3 and 1x1 convolutions (frozen: the weights are loaded with
        # requires_grad off), nearest upsamples, residual additions and the next ReLU; the
        # GroupNorm of TAEF2's pool branch reads a convolution's output, not a ReLU's.
        return not any(p.requires_grad for p in self.parameters())

    def _banded(self, pixels: int) -> bool:
        """Whether to run the full-resolution stages in bands: without gradients (the
        measurement, not the attack) on a large image, in the /8 layout."""
        return (
            not torch.is_grad_enabled() and pixels > BAND_MIN_PIXELS and self.spec.downsample == 8
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if not self._banded(x.shape[-2] * x.shape[-1]):
            return self.encoder(x)
        # conv, block (reach 1 + 3 rows), then the stride-2 conv (1 row): 6 rows, even so
        # that every band starts on the stride.
        h = in_bands(self.encoder[:3], x, -2, 6, BAND_ROWS // 2)
        return self.encoder[3:](h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            raise NotImplementedError(f"{self.name} was loaded without its decoder")
        if not self._banded(z.shape[-2] * z.shape[-1] * 64):
            return self.decoder(z).clamp(0, 1)
        # The last upsample, conv, block and conv reach 5 full-resolution rows: 3 half-rows.
        h = self.decoder[:-4](z)
        return in_bands(self.decoder[-4:], h, 2, 4, BAND_ROWS).clamp(0, 1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the last block at each resolution, then the latent."""
        feats: list[torch.Tensor] = []
        layers = list(self.encoder)
        h = x
        for i, layer in enumerate(layers):
            h = layer(h)
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            # The block right before a stride-2 conv (or the final conv) ends a resolution.
            if isinstance(layer, Block) and not isinstance(nxt, Block):
                feats.append(h)
        feats.append(h)
        return feats

    def load_weights(self, encoder_path: Path, decoder_path: Path | None) -> None:
        load_into(self.encoder, encoder_path, "encoder")
        if self.decoder is not None:
            if decoder_path is None:
                raise WeightsError(f"{self.name}: a decoder was requested but has no weights")
            load_into(self.decoder, decoder_path, "decoder")
