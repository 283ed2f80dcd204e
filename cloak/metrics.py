"""The measures of protection: imperceptibility, edit damage, latent shift, platform survival.

Definitions follow the project's protection spec:
- edit damage (dB) = PSNR(D(E(original)), original) - PSNR(D(E(protected)), original), both
  at the attacker's working size;
- latent shift = |E(protected) - E(original)| / |E(jpeg95(original)) - E(original)|.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cloak.encoding import encode as padded_encode
from cloak.encoding import encoder_device
from cloak.models.base import AutoEncoder

# (The app also imports these two from here.)
from cloak.tensors import to_array, to_tensor
from cloak.transforms import resize_long_side

ATTACKER_LONG_SIDE = 768
PLATFORMS: dict[str, tuple[int, int]] = {"1080/q80": (1080, 80), "720/q70": (720, 70)}
"""Simulated platform re-encodes: long side (downscale only) and JPEG quality."""


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [0, 1] (inf when identical)."""
    mse = float(F.mse_loss(a.float(), b.float()))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM (11x11 Gaussian window) of two (1, 3, H, W) images in [0, 1]."""
    return float(kornia.metrics.ssim(a.float(), b.float(), 11).mean())


def linf_255(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference in 1/255 units."""
    return float((a.float() - b.float()).abs().max()) * 255.0


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """A real (Pillow) JPEG encode/decode, 4:2:0 like the platforms."""
    arr = (to_array(x) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return to_tensor(out)


def platform(x: torch.Tensor, long_side: int, quality: int) -> torch.Tensor:
    """What a platform serves: downscale (never up) to ``long_side``, then JPEG ``quality``."""
    if max(x.shape[-2:]) > long_side:
        x = resize_long_side(x, long_side)
    return jpeg_roundtrip(x, quality)


@torch.no_grad()
def encode(enc: AutoEncoder, x: torch.Tensor) -> torch.Tensor:
    """E(x) in float32 on the CPU (x padded to the encoder's grid, on the encoder's device)."""
    return padded_encode(enc, x.to(encoder_device(enc)))[0].cpu()


@torch.no_grad()
def roundtrip(enc: AutoEncoder, x: torch.Tensor) -> torch.Tensor:
    """D(E(x)) cropped back to x's size, in [0, 1] (what an editor keeps of the photo)."""
    rt = padded_encode(enc, x.to(encoder_device(enc)), "roundtrip")[0]
    return rt.clamp(0, 1).cpu()


@dataclass
class EncoderScore:
    """How one encoder sees the protected photo in one scenario."""

    encoder: str
    scenario: str
    damage_db: float | None
    roundtrip_ssim: float | None
    latent_shift: float


@dataclass
class Report:
    """All measures for one original/protected pair."""

    psnr: float
    ssim: float
    linf_255: float
    width: int
    height: int
    scores: list[EncoderScore]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def damage(self, encoder: str, scenario: str = "direct") -> float | None:
        for s in self.scores:
            if s.encoder == encoder and s.scenario == scenario:
                return s.damage_db
        return None


@dataclass
class _OriginalSide:
    """What an encoder makes of the original in one scenario (reusable across methods)."""

    image: torch.Tensor
    latent: torch.Tensor
    jpeg95_shift: float
    roundtrip_psnr: float | None


OriginalCache = dict[tuple[str, str, int], _OriginalSide]
"""Per original photo: its encodings by (encoder, scenario, attacker side); see :func:`measure`."""


def _original_side(
    enc: AutoEncoder, original: torch.Tensor, attacker_long_side: int
) -> _OriginalSide:
    o = resize_long_side(original, attacker_long_side)
    z_o = encode(enc, o)
    z_j = encode(enc, jpeg_roundtrip(o, 95))
    rt = psnr(roundtrip(enc, o), o) if enc.has_decoder else None
    return _OriginalSide(o, z_o, float((z_j - z_o).abs().mean()), rt)


def score_encoder(
    enc: AutoEncoder,
    original: torch.Tensor,
    protected: torch.Tensor,
    scenario: str,
    attacker_long_side: int = ATTACKER_LONG_SIDE,
    known: _OriginalSide | None = None,
) -> EncoderScore:
    """Edit damage and latent shift of one encoder for images already through ``scenario``.

    ``original`` is the clean photo as posted in that scenario (so a re-encode that damages the
    clean photo does not count as protection). ``known``: the original's side, if already
    computed (then ``original`` is not looked at).
    """
    side = known if known is not None else _original_side(enc, original, attacker_long_side)
    o = side.image
    p = resize_long_side(protected, attacker_long_side)
    z_p = encode(enc, p)
    shift = float((z_p - side.latent).abs().mean()) / max(side.jpeg95_shift, 1e-12)
    damage = rt_ssim = None
    if enc.has_decoder and side.roundtrip_psnr is not None:
        rt_p = roundtrip(enc, p)
        damage = side.roundtrip_psnr - psnr(rt_p, o)
        rt_ssim = ssim(rt_p, o)
    return EncoderScore(enc.name, scenario, damage, rt_ssim, shift)


def measure(
    original: torch.Tensor,
    protected: torch.Tensor,
    encoders: Sequence[AutoEncoder],
    platforms: dict[str, tuple[int, int]] | None = None,
    attacker_long_side: int = ATTACKER_LONG_SIDE,
    cache: OriginalCache | None = None,
) -> Report:
    """Every measure of the spec for one pair of full-size (1, 3, H, W) images in [0, 1].

    Args:
        original: The original photo.
        protected: The protected photo (as saved, i.e. quantised).
        encoders: Encoders to score; those with a decoder also give edit damage.
        platforms: Re-encode scenarios; default :data:`PLATFORMS`.
        attacker_long_side: The attacker's working size.
        cache: A dict kept for one original photo across several protected versions of it:
            the original's encodings and round trips are computed once and reused.
    """
    platforms = PLATFORMS if platforms is None else platforms
    scenarios: dict[str, tuple[int, int] | None] = {"direct": None, **platforms}
    scores: list[EncoderScore] = []
    for enc in encoders:
        for name, re_encode in scenarios.items():
            key = (enc.name, name, attacker_long_side)
            known = None if cache is None else cache.get(key)
            if known is None:
                seen_o = original if re_encode is None else platform(original, *re_encode)
                known = _original_side(enc, seen_o, attacker_long_side)
                if cache is not None:
                    cache[key] = known
            seen_p = protected if re_encode is None else platform(protected, *re_encode)
            scores.append(
                score_encoder(enc, original, seen_p, name, attacker_long_side, known=known)
            )
    return Report(
        psnr=psnr(protected, original),
        ssim=ssim(protected, original),
        linf_255=linf_255(protected, original),
        width=int(original.shape[-1]),
        height=int(original.shape[-2]),
        scores=scores,
    )
