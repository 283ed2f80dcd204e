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

ATTACKER_SIZES: tuple[int, ...] = (512, 768, 1024)
"""Attackers' working long sides: SD 1.x at 512 px, SDXL / FLUX / edit models near 1024 px."""
ATTACKER_LONG_SIDE = 1024
"""The most common attacker size today (SDXL, FLUX and edit models): the AI view shows it."""
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
def encode(enc: AutoEncoder, x: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """E(x) in float32 on the CPU (x padded to the encoder's grid, on the encoder's device);
    ``bf16``: computed under bf16 autocast (see :func:`measure`)."""
    return padded_encode(enc, x.to(encoder_device(enc)), "latent", bf16)[0].cpu()


@torch.no_grad()
def roundtrip(enc: AutoEncoder, x: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """D(E(x)) cropped back to x's size, in [0, 1] (what an editor keeps of the photo)."""
    rt = padded_encode(enc, x.to(encoder_device(enc)), "roundtrip", bf16)[0]
    return rt.clamp(0, 1).cpu()


@torch.no_grad()
def _latent_and_roundtrip(
    enc: AutoEncoder, x: torch.Tensor, with_roundtrip: bool, bf16: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """E(x) as :func:`encode` gives it and, when asked, D(E(x)) as :func:`roundtrip` gives it,
    from one encode instead of two (the encode costs as much as the decode)."""
    x = x.to(encoder_device(enc))
    if not with_roundtrip:
        return padded_encode(enc, x, "latent", bf16)[0].cpu(), None
    rt, z = padded_encode(enc, x, "roundtrip", bf16)
    return z.cpu(), rt.clamp(0, 1).cpu()


@dataclass
class EncoderScore:
    """How one encoder sees the protected photo in one scenario."""

    encoder: str
    scenario: str
    damage_db: float | None
    roundtrip_ssim: float | None
    latent_shift: float
    size: int = ATTACKER_LONG_SIDE


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

    def damage(
        self, encoder: str, scenario: str = "direct", size: int | None = None
    ) -> float | None:
        """The damage of one encoder in one scenario (at ``size``, or the first size measured)."""
        for s in self.scores:
            if s.encoder == encoder and s.scenario == scenario and size in (None, s.size):
                return s.damage_db
        return None

    @property
    def sizes(self) -> list[int]:
        """The attacker sizes measured, in order."""
        return sorted({s.size for s in self.scores})


@dataclass
class _OriginalSide:
    """What an encoder makes of the original in one scenario (reusable across methods)."""

    image: torch.Tensor
    latent: torch.Tensor
    jpeg95_shift: float
    roundtrip_psnr: float | None
    roundtrip: torch.Tensor | None = None


OriginalCache = dict[tuple[str, str, int], _OriginalSide]
"""Per original photo: its encodings by (encoder, scenario, attacker side); see :func:`measure`."""


@dataclass
class KnownRoundTrip:
    """The original photo's round trip through one encoder, computed before the measurement:
    the attack computes it for the photo at its work size before its first step.

    Attributes:
        encoder: The encoder's name.
        latent: E(x), float32 on the CPU.
        roundtrip: D(E(x)) in 8-bit levels, (1, 3, h, w) uint8 at the work size: for the AI
            view only (a quarter of float32); the damage uses ``roundtrip_psnr``.
        roundtrip_psnr: PSNR of D(E(x)) (clamped to [0, 1], float) against x.
        bf16: Whether it was computed under bf16 autocast.
    """

    encoder: str
    latent: torch.Tensor
    roundtrip: torch.Tensor
    roundtrip_psnr: float
    bf16: bool

    @classmethod
    def of(
        cls, encoder: str, x: torch.Tensor, rt: torch.Tensor, z: torch.Tensor, bf16: bool
    ) -> KnownRoundTrip:
        """From the image ``x`` and the encoder's ``[D(E(x)), z]``, as :func:`measure` scores it."""
        rt = rt.detach().float().clamp(0, 1)
        levels = (rt * 255.0 + 0.5).to(torch.uint8).cpu()
        return cls(encoder, z.detach().float().cpu(), levels, psnr(rt, x.detach()), bf16)


def seed_cache(
    cache: OriginalCache,
    original: torch.Tensor,
    known: Sequence[KnownRoundTrip],
    bf16: bool,
    attacker_long_side: int = ATTACKER_LONG_SIDE,
) -> list[str]:
    """Put round trips of the original computed elsewhere into ``cache``, for the photo posted
    as is at ``attacker_long_side``, so that :func:`measure` encodes only the protected photo.

    One is taken only where it is what :func:`measure` would compute itself: the same
    precision, and an image of the attacker's size (the attack's work image is the photo
    resized by the same :func:`~cloak.transforms.resize_long_side`, so the same size means the
    same pixels). The latent shift is left unmeasured (NaN) for the encoders seeded.

    Returns:
        The names of the encoders seeded.
    """
    o = resize_long_side(original, attacker_long_side)
    seeded = []
    for k in known:
        if k.bf16 != bf16 or tuple(k.roundtrip.shape[-2:]) != tuple(o.shape[-2:]):
            continue
        rt = k.roundtrip.float() / 255.0
        cache[(k.encoder, "direct", attacker_long_side)] = _OriginalSide(
            o, k.latent, math.nan, k.roundtrip_psnr, rt
        )
        seeded.append(k.encoder)
    return seeded


def _original_side(
    enc: AutoEncoder,
    original: torch.Tensor,
    attacker_long_side: int,
    keep_roundtrip: bool = False,
    shift: bool = True,
    bf16: bool = False,
) -> _OriginalSide:
    o = resize_long_side(original, attacker_long_side)
    z_o, rt = _latent_and_roundtrip(enc, o, enc.has_decoder, bf16)
    # The JPEG-95 normaliser of the latent shift costs one more encode; without a decoder the
    # shift is the only measure, so it is always computed then.
    jpeg95 = math.nan
    if shift or not enc.has_decoder:
        jpeg95 = float((encode(enc, jpeg_roundtrip(o, 95), bf16) - z_o).abs().mean())
    rt_psnr = psnr(rt, o) if rt is not None else None
    # The round trip itself is kept only for a caller that asked for it (a cache of many
    # sizes and scenarios would otherwise hold a picture for each).
    kept = rt if keep_roundtrip else None
    return _OriginalSide(o, z_o, jpeg95, rt_psnr, kept)


def score_encoder(
    enc: AutoEncoder,
    original: torch.Tensor,
    protected: torch.Tensor,
    scenario: str,
    attacker_long_side: int = ATTACKER_LONG_SIDE,
    known: _OriginalSide | None = None,
    roundtrips: dict[tuple[str, str, int, str], torch.Tensor] | None = None,
    bf16: bool = False,
) -> EncoderScore:
    """Edit damage and latent shift of one encoder for images already through ``scenario``.

    ``original`` is the clean photo as posted in that scenario (so a re-encode that damages the
    clean photo does not count as protection). ``known``: the original's side, if already
    computed (then ``original`` is not looked at). ``roundtrips``: if given, receives the
    round trips computed, keyed ``(encoder, scenario, size, "original" | "protected")``, so a
    caller that shows them (the app's AI view) need not compute them again. ``bf16``: as in
    :func:`measure` (``known`` must have been computed the same way).
    """
    side = known or _original_side(enc, original, attacker_long_side, bf16=bf16)
    o = side.image
    p = resize_long_side(protected, attacker_long_side)
    with_rt = enc.has_decoder and side.roundtrip_psnr is not None
    z_p, rt_p = _latent_and_roundtrip(enc, p, with_rt, bf16)
    shift = math.nan
    if not math.isnan(side.jpeg95_shift):
        shift = float((z_p - side.latent).abs().mean()) / max(side.jpeg95_shift, 1e-12)
    damage = rt_ssim = None
    if rt_p is not None and side.roundtrip_psnr is not None:
        damage = side.roundtrip_psnr - psnr(rt_p, o)
        rt_ssim = ssim(rt_p, o)
        if roundtrips is not None and side.roundtrip is not None:
            roundtrips[(enc.name, scenario, attacker_long_side, "original")] = side.roundtrip
            roundtrips[(enc.name, scenario, attacker_long_side, "protected")] = rt_p
    return EncoderScore(enc.name, scenario, damage, rt_ssim, shift, attacker_long_side)


def measure(
    original: torch.Tensor,
    protected: torch.Tensor,
    encoders: Sequence[AutoEncoder],
    platforms: dict[str, tuple[int, int]] | None = None,
    attacker_long_side: int | Sequence[int] = ATTACKER_LONG_SIDE,
    cache: OriginalCache | None = None,
    roundtrips: dict[tuple[str, str, int, str], torch.Tensor] | None = None,
    direct: bool = True,
    pixels: bool = True,
    shift: bool = True,
    bf16: bool = False,
) -> Report:
    """Every measure of the spec for one pair of full-size (1, 3, H, W) images in [0, 1].

    Args:
        original: The original photo.
        protected: The protected photo (as saved, i.e. quantised).
        encoders: Encoders to score; those with a decoder also give edit damage.
        platforms: Re-encode scenarios; default :data:`PLATFORMS`.
        attacker_long_side: The attacker's working size, or several (each is scored).
        cache: A dict kept for one original photo across several protected versions of it:
            the original's encodings and round trips are computed once and reused.
        roundtrips: If given, receives every round trip computed (see :func:`score_encoder`).
        direct: Score the photo posted as is; False scores only the ``platforms`` (a caller
            that already has the direct scores adds the re-posts later).
        pixels: Compare the full-size pixels (PSNR, SSIM, L-inf); False leaves them NaN, for a
            caller that has them already (full-size SSIM of a 12 MP photo takes seconds).
        shift: Measure the latent shift of encoders with a decoder too; False leaves it NaN
            for them (one encode fewer per original and scenario), for a caller that shows
            only the damage. Encoders without a decoder always get it: it is their only measure.
        bf16: Run the encoders under bf16 autocast, as the attack does where the CPU has fast
            bf16 (about twice as fast there). The damage moves by at most ~0.1 dB against
            float32 (measured on two portraits at 512/768/1024 px); ``cache`` entries must come
            from the same setting.
    """
    platforms = PLATFORMS if platforms is None else platforms
    scenarios: dict[str, tuple[int, int] | None] = {"direct": None} if direct else {}
    scenarios.update(platforms)
    sizes = [attacker_long_side] if isinstance(attacker_long_side, int) else attacker_long_side
    scores: list[EncoderScore] = []
    for name, re_encode in scenarios.items():
        seen_p = protected if re_encode is None else platform(protected, *re_encode)
        seen_o: torch.Tensor | None = None
        for side in sizes:
            for enc in encoders:
                key = (enc.name, name, side)
                known = None if cache is None else cache.get(key)
                if known is None:
                    if seen_o is None:
                        seen_o = original if re_encode is None else platform(original, *re_encode)
                    known = _original_side(enc, seen_o, side, roundtrips is not None, shift, bf16)
                    if cache is not None:
                        cache[key] = known
                scores.append(
                    score_encoder(enc, original, seen_p, name, side, known, roundtrips, bf16)
                )
    return Report(
        psnr=psnr(protected, original) if pixels else math.nan,
        ssim=ssim(protected, original) if pixels else math.nan,
        linf_255=linf_255(protected, original) if pixels else math.nan,
        width=int(original.shape[-1]),
        height=int(original.shape[-2]),
        scores=scores,
    )
