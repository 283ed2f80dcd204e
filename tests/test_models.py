"""Encoders: layouts, value ranges, real-weight round trips, registry and public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support import models_fixtures as mf

from cloak import models
from cloak.metrics import psnr
from cloak.models.registry import REGISTRY

photo_crop = mf.photo_crop

FAST = [n for n in REGISTRY if n != "vaelight"]


def test_import_is_cheap_and_side_effect_free() -> None:
    code = (
        "import os, sys; env = dict(os.environ); import cloak.models as m; "
        "assert 'diffusers' not in sys.modules, 'diffusers imported'; "
        "assert 'PySide6' not in sys.modules; assert 'huggingface_hub' not in sys.modules; "
        "assert dict(os.environ) == env; "
        "bad = [k for k in sys.modules if k.startswith('cloak.') and "
        "not k.startswith('cloak.models')]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_entries() -> None:
    assert set(models.DEFAULT_ENSEMBLE) <= set(REGISTRY)
    expected = {
        "taesd": (4, 8), "taesdxl": (4, 8), "taesd3": (16, 8), "taef1": (16, 8),
        "taef2": (32, 8), "taesana": (32, 32), "sd-vae": (4, 8), "sdxl-vae": (4, 8),
        "flux1-vae": (16, 8), "vaelight": (4, 8),
    }  # fmt: skip
    assert {n: (s.latent_channels, s.downsample) for n, s in REGISTRY.items()} == expected
    for spec in REGISTRY.values():
        want = (0.0, 1.0) if spec.family == "taesd" else (-1.0, 1.0)
        assert spec.input_range == want
        assert spec.repo_id and spec.license and spec.description
    for name in ("taef2", "vaelight"):
        assert all(wf.sha256 and wf.size for wf in REGISTRY[name].files)


def test_unknown_name_lists_known() -> None:
    with pytest.raises(models.WeightsError, match="taef2"):
        models.build_random("nope", seed=0)


@pytest.mark.parametrize("name", FAST)
def test_random_layouts_shapes_and_range(name: str) -> None:
    enc = models.build_random(name.upper(), seed=0)
    spec = enc.spec
    size = 64
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z = enc.encode(x)
        y = enc.decode(z)
        feats = enc.features(x)
    f = spec.downsample
    assert z.shape == (2, spec.latent_channels, size // f, size // f)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert torch.equal(feats[-1], z) and len(feats) >= 3
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.training


def test_build_random_is_deterministic() -> None:
    a, b = models.build_random("taef2", seed=3), models.build_random("taef2", seed=3)
    c = models.build_random("taef2", seed=4)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(a.encode(x), b.encode(x))
        assert not torch.equal(a.encode(x), c.encode(x))


def test_gradients_flow_to_input() -> None:
    enc = models.build_random("taef2", seed=0)
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    enc.encode(x).square().mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_taesd_decoder_soft_clamps_latents() -> None:
    dec = models.build_random("taesd", seed=0)
    z = torch.full((1, 4, 4, 4), 1e4)
    with torch.no_grad():
        assert torch.allclose(dec.decode(z), dec.decode(z * 10))


def test_diffusers_wrapper_converts_range() -> None:
    enc = models.build_random("sd-vae", seed=0)
    vae = enc.vae  # type: ignore[attr-defined]
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = enc.encode(x)
        direct = vae.encode(x * 2 - 1).latent_dist.mean
        wrong = vae.encode(x).latent_dist.mean
        assert torch.allclose(ours, direct)
        assert not torch.allclose(ours, wrong, atol=1e-4)
        y = enc.decode(ours)
        assert torch.allclose(y, ((vae.decode(ours).sample + 1) / 2).clamp(0, 1))


def test_diffusers_flux_config_has_no_quant_convs() -> None:
    enc = models.build_random("flux1-vae", seed=0)
    assert enc.vae.quant_conv is None and enc.vae.post_quant_conv is None  # type: ignore[attr-defined]
    assert enc.scaling_factor == pytest.approx(0.3611)  # type: ignore[attr-defined]
    assert enc.shift_factor == pytest.approx(0.1159)  # type: ignore[attr-defined]


def test_diffusers_loads_single_file_strictly(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    src = models.build_random("sdxl-vae", seed=1)
    dst = models.build_random("sdxl-vae", seed=2)
    path = tmp_path / "vae.safetensors"
    save_file({k: v.contiguous() for k, v in src.vae.state_dict().items()}, str(path))  # type: ignore[attr-defined]
    dst.load_weights(path)  # type: ignore[attr-defined]
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(src.encode(x), dst.encode(x))
    save_file({"nope": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(models.WeightsError, match="bad.safetensors"):
        dst.load_weights(tmp_path / "bad.safetensors")  # type: ignore[attr-defined]


def test_taesd_accepts_diffusers_key_names(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from cloak.models.taesd import load_into

    src = models.build_random("taef1", seed=1)
    dst = models.build_random("taef1", seed=2)
    enc_sd = {f"encoder.layers.{k}": v for k, v in src.encoder.state_dict().items()}  # type: ignore[union-attr]
    dec_sd = {}
    for k, v in src.decoder.state_dict().items():  # type: ignore[union-attr]
        idx, rest = k.split(".", 1)
        dec_sd[f"decoder.layers.{int(idx) - 1}.{rest}"] = v
    save_file(enc_sd, str(tmp_path / "e.safetensors"))
    save_file(dec_sd, str(tmp_path / "d.safetensors"))
    load_into(dst.encoder, tmp_path / "e.safetensors", "encoder")  # type: ignore[arg-type]
    load_into(dst.decoder, tmp_path / "d.safetensors", "decoder")  # type: ignore[arg-type]
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(src.decode(src.encode(x)), dst.decode(dst.encode(x)))


def test_model_status_rows(tmp_path: Path) -> None:
    rows = models.model_status(tmp_path)
    assert [r.name for r in rows] == list(REGISTRY)
    assert not any(r.available for r in rows if r.name == "taesd")


# --- real weights -------------------------------------------------------------------------


@pytest.mark.real
def test_taef2_real_round_trip(models_dir: Path) -> None:
    enc = models.load_encoder("taef2", models_dir=models_dir, offline=True)
    x = photo_crop(size=128)
    with torch.no_grad():
        z = enc.encode(x)
        y = enc.decode(z)
    assert z.shape == (1, 32, 16, 16)
    # Measured 34.6 dB on this crop; a wrong layout or range lands far below 25.
    assert psnr(y, x) > 30
    assert not any(p.requires_grad for p in enc.parameters())


@pytest.mark.real
def test_taef2_loads_strictly(models_dir: Path) -> None:
    from cloak.models.taesd import TAESD, read_state_dict

    enc = models.load_encoder("taef2", models_dir=models_dir, offline=True)
    assert isinstance(enc, TAESD) and enc.decoder is not None
    sd = read_state_dict(models_dir / "taef2" / "taef2_encoder.pth")
    assert set(sd) == set(enc.encoder.state_dict())
    assert all(v.dtype == torch.float32 for v in enc.state_dict().values())


@pytest.mark.real
def test_taef2_input_range_matters(models_dir: Path) -> None:
    enc = models.load_encoder("taef2", models_dir=models_dir, offline=True, with_decoder=False)
    assert not enc.has_decoder
    x = photo_crop(size=64)
    with torch.no_grad():
        right, wrong = enc.encode(x), enc.encode(x * 2 - 1)
    assert float((right - wrong).abs().mean()) > 0.1 * float(right.abs().mean())


@pytest.mark.real
def test_models_dir_from_environment(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOAK_MODELS_DIR", str(models_dir))
    loaded, missing = models.load_ensemble(["taef2", "vaelight", "taesana"], offline=True)
    assert [e.name for e in loaded] == ["taef2", "vaelight"]
    assert "taesana_encoder.pth" in missing["taesana"]
    rows = {(r.name, r.file): r.status for r in models.verify()}
    assert rows[("taef2", "taef2_encoder.pth")] == "ok"
    assert rows[("vaelight", "VAEpreview.onnx")] == "ok"
    assert {r.name for r in models.model_status() if r.available} >= {"taef2", "vaelight"}


@pytest.mark.real
def test_model_status_installed_pinned_verified(models_dir: Path, tmp_path: Path) -> None:
    rows = {r.name: r for r in models.model_status(models_dir, check=True)}
    t = rows["taef2"]
    assert (t.default, t.installed, t.pinned, t.verified) == (True, "yes", "sha256", "yes")
    s = rows["taesd"]
    assert (s.default, s.installed, s.pinned, s.verified) == (False, "no", "git blob", "-")
    assert rows["sd-vae"].pinned == "none"
    assert [n for n, r in rows.items() if r.default] == list(models.DEFAULT_ENSEMBLE)
    # A tampered copy shows as installed but not verified.
    import shutil

    shutil.copytree(models_dir / "taef2", tmp_path / "taef2")
    victim = tmp_path / "taef2" / "taef2_decoder.pth"
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x01
    victim.write_bytes(bytes(data))
    t = {r.name: r for r in models.model_status(tmp_path, check=True)}["taef2"]
    assert (t.installed, t.verified) == ("yes", "no")


@pytest.mark.parametrize("shape", [(1, 3, 96, 96), (1, 3, 104, 72), (2, 3, 88, 120)])
def test_banded_round_trip_equals_whole(
    taef2, astronaut_crop: torch.Tensor, shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without gradients a large image's full-resolution stages run in bands of rows; with
    the real weights and bands of 16 to 40 rows the latent and the round trip are the same
    numbers as one pass over the whole image (the halos cover each stage's reach)."""
    from cloak.models import taesd

    crop = torch.nn.functional.interpolate(astronaut_crop, size=shape[-2:], mode="bilinear")
    x = crop.expand(shape[0], -1, -1, -1) * torch.linspace(0.8, 1.0, shape[0])[:, None, None, None]
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        monkeypatch.setattr(taesd, "BAND_MIN_PIXELS", 10**9)
        z, rt = taef2.encode(x), taef2.decode(taef2.encode(x))
        monkeypatch.setattr(taesd, "BAND_MIN_PIXELS", 0)
        for rows in (16, 40):
            monkeypatch.setattr(taesd, "BAND_ROWS", rows)
            assert torch.equal(taef2.encode(x), z)
            assert torch.equal(taef2.decode(z), rt)
    # With gradients (the attack) nothing is banded: the graph is PyTorch's own.
    xg = x.clone().requires_grad_(True)
    assert taef2.decode(taef2.encode(xg)).grad_fn is not None


def test_in_bands_odd_height_stride_two() -> None:
    """A stride-2 stage over an odd number of rows gives ceil(h / 2) rows, as one pass does."""
    from cloak.models.taesd import in_bands

    torch.manual_seed(0)
    stage = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, 2, 1)
    )
    x = torch.rand(1, 3, 37, 20)
    with torch.no_grad():
        whole = stage(x)
        banded = in_bands(stage, x, -2, 4, 5)
    assert banded.shape == whole.shape
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-6)
