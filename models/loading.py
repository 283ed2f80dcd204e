"""Loading encoders by registry name: the functions behind ``cloak.models``' public API."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .base import AutoEncoder, EncoderSpec, WeightsError
from .registry import REGISTRY, resolve_name
from .weights import (
    VerifyRow,
    check_file,
    download_file,
    fetch,
    locate,
    pinned_by,
    search_dirs,
)


def _build(spec: EncoderSpec, with_decoder: bool, config: dict[str, Any] | None = None):
    if spec.family == "taesd":
        from .taesd import TAESD

        return TAESD(spec, with_decoder=with_decoder)
    if spec.family == "diffusers":
        from .diffusers_vae import CONFIGS, DiffusersVAE

        config = config or CONFIGS[spec.name]
        # A tiny test config downsamples less than the real model; say so in its spec.
        factor = 2 ** (len(config["block_out_channels"]) - 1)
        if factor != spec.downsample:
            spec = dataclasses.replace(spec, downsample=factor)
        return DiffusersVAE(spec, config, with_decoder=with_decoder)
    raise WeightsError(f"{spec.name}: family {spec.family!r} cannot be built without weights")


def _finish(model: AutoEncoder, device: str | torch.device) -> AutoEncoder:
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_encoder(
    name: str,
    models_dir: str | Path | None = None,
    offline: bool | None = None,
    device: str | torch.device = "cpu",
    with_decoder: bool = True,
) -> AutoEncoder:
    """Load a registered encoder with verified weights, in eval mode with frozen parameters.

    Args:
        name: Registry name, case-insensitive.
        models_dir: Folder searched first (else ``$CLOAK_MODELS_DIR``), before the user cache.
        offline: Never download; None means "offline when ``HF_HUB_OFFLINE=1``".
        device: Where to put the model.
        with_decoder: Also load the decoder (needed for round trips).

    Raises:
        WeightsError: Unknown name, missing or corrupt weights, or a layout mismatch.
    """
    spec = resolve_name(name)
    enc_path = fetch(spec, spec.encoder_file, models_dir, offline)
    dec_path = None
    if with_decoder and spec.decoder_file is not None:
        dec_path = fetch(spec, spec.decoder_file, models_dir, offline)
    model: AutoEncoder
    if spec.family == "onnx":
        from .vaelight import VAELight

        model = VAELight.from_files(spec, enc_path, dec_path)
    elif spec.family == "taesd":
        from .taesd import TAESD

        taesd = TAESD(spec, with_decoder=with_decoder)
        taesd.load_weights(enc_path, dec_path)
        model = taesd
    else:
        from .diffusers_vae import CONFIGS, DiffusersVAE

        vae = DiffusersVAE(spec, CONFIGS[spec.name], with_decoder=with_decoder)
        vae.load_weights(enc_path)
        model = vae
    return _finish(model, device)


def load_ensemble(
    names: Sequence[str],
    models_dir: str | Path | None = None,
    offline: bool | None = None,
    device: str | torch.device = "cpu",
) -> tuple[list[AutoEncoder], dict[str, str]]:
    """Load every encoder that can be loaded; report the others.

    Returns:
        The loaded encoders (in ``names`` order) and ``{name: reason}`` for those that failed.

    Raises:
        WeightsError: None of ``names`` could be loaded; the message lists each reason.
    """
    loaded: list[AutoEncoder] = []
    missing: dict[str, str] = {}
    for name in names:
        try:
            loaded.append(load_encoder(name, models_dir, offline, device))
        except WeightsError as exc:
            missing[name] = str(exc)
    if not loaded:
        reasons = "\n".join(f"- {n}: {r}" for n, r in missing.items()) or "- (no names given)"
        raise WeightsError(f"No encoder of the ensemble could be loaded:\n{reasons}")
    return loaded, missing


def download(name: str, models_dir: str | Path | None = None, progress: bool = True) -> list[Path]:
    """Download (or find, verified) every file of ``name``; return their paths.

    Files already present and valid in the search folders are not downloaded again. New files
    go to ``models_dir`` when given, else to the user cache.

    Raises:
        WeightsError: Unknown name, offline mode (``HF_HUB_OFFLINE=1``) with files missing,
            failed download, or a digest mismatch.
    """
    from .weights import ensure_valid, is_offline

    spec = resolve_name(name)
    paths: list[Path] = []
    for wf in spec.files:
        path = locate(spec, wf, models_dir)
        if path is not None and check_file(path, wf)[0] != "corrupt":
            paths.append(path)
            continue
        if is_offline(None):
            raise WeightsError(
                f"Cannot download {wf.filename} for {spec.name!r}: offline mode "
                "(HF_HUB_OFFLINE is set). Unset it, or copy the file into a models folder."
            )
        dest = Path(models_dir).expanduser() if models_dir is not None else None
        path = download_file(spec, wf, dest_root=dest, progress=progress)
        ensure_valid(path, wf)
        paths.append(path)
    return paths


def verify(models_dir: str | Path | None = None) -> list[VerifyRow]:
    """Check every registered file found locally against its digest (never downloads)."""
    rows: list[VerifyRow] = []
    for spec in REGISTRY.values():
        for wf in spec.files:
            path = locate(spec, wf, models_dir)
            if path is None:
                where = ", ".join(str(d) for d in search_dirs(models_dir))
                rows.append(VerifyRow(spec.name, wf.filename, None, "missing", f"not in {where}"))
                continue
            status, detail = check_file(path, wf)
            rows.append(VerifyRow(spec.name, wf.filename, path, status, detail))
    return rows


@dataclass(frozen=True)
class StatusRow:
    """One line of ``cloak models list``.

    Attributes:
        available: Every file of the encoder is present locally.
        default: The encoder belongs to the default set.
        installed: ``"yes"``, ``"no"`` or ``"partial"`` (some files present).
        pinned: What pins its files' bytes: ``"sha256"``, ``"git blob"`` or ``"none"``.
        verified: ``"yes"`` (every file present and matching its pins), ``"no"`` (a file is
            corrupt or tampered with), ``"unpinned"`` (present but nothing to check against),
            ``"-"`` (not installed) or ``""`` (not checked: ``model_status(check=False)``).
    """

    name: str
    family: str
    latent_space: str
    channels: int
    downsample: int
    input_range: tuple[float, float]
    available: bool
    license: str
    repo_id: str
    default: bool = False
    installed: str = ""
    pinned: str = ""
    verified: str = ""
    source: str = ""


def _verified(spec: EncoderSpec, paths: list[Path | None]) -> str:
    if not any(paths):
        return "-"
    statuses = [check_file(p, wf)[0] for p, wf in zip(paths, spec.files, strict=True) if p]
    if "corrupt" in statuses:
        return "no"
    if "unverified" in statuses:
        return "unpinned"
    return "yes" if all(paths) else "-"


def model_status(models_dir: str | Path | None = None, *, check: bool = False) -> list[StatusRow]:
    """One row per registered encoder; ``available`` means every file is present locally.

    Args:
        models_dir: Folder searched first (else ``$CLOAK_MODELS_DIR``), before the user cache.
        check: Also check every present file against its pinned digests (fills ``verified``;
            hashes each file once per process).
    """
    from .registry import DEFAULT_ENSEMBLE

    rows = []
    for s in REGISTRY.values():
        paths = [locate(s, wf, models_dir) for wf in s.files]
        present = sum(p is not None for p in paths)
        pins = {pinned_by(wf) for wf in s.files}
        rows.append(
            StatusRow(
                name=s.name,
                family=s.family,
                latent_space=s.latent_space,
                channels=s.latent_channels,
                downsample=s.downsample,
                input_range=s.input_range,
                available=present == len(paths),
                license=s.license,
                repo_id=s.repo_id,
                default=s.name in DEFAULT_ENSEMBLE,
                installed="yes" if present == len(paths) else "partial" if present else "no",
                pinned=pins.pop() if len(pins) == 1 else "mixed",
                verified=_verified(s, paths) if check else "",
                source=s.source,
            )
        )
    return rows


def build_random(name: str, seed: int, **overrides: Any) -> AutoEncoder:
    """A randomly initialised encoder + decoder with ``name``'s layout, for fast tests.

    The same seed gives the same weights. For diffusers entries the default is a tiny config
    (``diffusers_vae.tiny_config``) updated with ``overrides``; pass ``full=True`` for the real
    config. VAElight has no layout of its own without its ONNX files and is refused.

    Raises:
        WeightsError: Unknown name, or an ONNX entry.
    """
    spec = resolve_name(name)
    config: dict[str, Any] | None = None
    if spec.family == "diffusers":
        from .diffusers_vae import CONFIGS, tiny_config

        full = bool(overrides.pop("full", False))
        config = (
            {**CONFIGS[spec.name], **overrides} if full else tiny_config(spec.name, **overrides)
        )
    elif overrides:
        raise WeightsError(f"{spec.name}: unknown overrides {sorted(overrides)}")
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = _build(spec, with_decoder=True, config=config)
    finally:
        torch.random.set_rng_state(state)
    return _finish(model, "cpu")
