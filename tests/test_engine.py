"""Engine properties on tiny random encoders, and the real-weight protect runs."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from support.floors import saved_psnr_floor
from support.paths import ASTRONAUT

from cloak.config import PRESETS, ProtectConfig, TransformConfig, preset
from cloak.device import choose_device
from cloak.engine import EncoderAttack, protect, run_to_end
from cloak.errors import Cancelled, ConfigError
from cloak.evaluate import TARGETS
from cloak.metrics import measure
from cloak.staging import lift
from cloak.tensors import quantize

FAST = dict(steps=4, work_size=64, device="cpu", encoders=("taef2",))


def _image(h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(h, w))
    return (0.7 * smooth + 0.3 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def _no_eot(objective: str = "push", steps: int = 8) -> ProtectConfig:
    """FAST with more steps and EOT off: what the attack does is then the objective's doing."""
    fast = {k: v for k, v in FAST.items() if k != "steps"}
    return ProtectConfig(
        objective=objective,  # type: ignore[arg-type]
        steps=steps,
        transforms=TransformConfig(enabled=False),
        **fast,
    )


@pytest.mark.parametrize(
    "objective", ["push", "gray", "pattern", "features", "decoded", "distort", "texture"]
)
@pytest.mark.parametrize("perceptual", [True, False])
def test_bound_and_range(tiny_encoder, objective, perceptual):
    cfg = ProtectConfig(
        eps=6 / 255,
        objective=objective,
        perceptual=perceptual,
        latent_weight=0.5,
        param_scale=2 if perceptual else 1,
        **FAST,
    )
    x = _image()
    res = run_to_end(protect(x, [tiny_encoder], cfg))
    assert res.protected.shape == x.shape
    assert float(res.protected.min()) >= 0.0 and float(res.protected.max()) <= 1.0
    assert float((res.protected - x).abs().max()) <= cfg.eps + 1e-6
    assert len(res.losses) == cfg.steps


def test_attack_hurts_the_encoder(tiny_encoder):
    cfg = _no_eot("push").replace(eps=8 / 255)
    x = _image()
    res = run_to_end(protect(x, [tiny_encoder], cfg))
    with torch.no_grad():
        clean = tiny_encoder.encode(x)
        moved = (tiny_encoder.encode(res.protected) - clean).pow(2).mean()
        rnd = x + (torch.rand_like(x) * 2 - 1) * cfg.eps
        random_moved = (tiny_encoder.encode(rnd.clamp(0, 1)) - clean).pow(2).mean()
    # The optimised perturbation moves the latent far more than random noise of the same size.
    assert float(moved) > 3 * float(random_moved)
    assert res.losses[-1] < res.losses[0]


def test_gray_target_gets_closer(tiny_encoder):
    cfg = _no_eot("gray")
    x = _image()
    res = run_to_end(protect(x, [tiny_encoder], cfg))
    with torch.no_grad():
        target = tiny_encoder.encode(torch.full_like(x, 0.5))
        before = (tiny_encoder.encode(x) - target).pow(2).mean()
        after = (tiny_encoder.encode(res.protected) - target).pow(2).mean()
    assert float(after) < float(before)


def test_same_seed_same_bytes(tiny_encoder):
    cfg = ProtectConfig(**FAST)
    x = _image()
    a = run_to_end(protect(x, [tiny_encoder], cfg)).protected
    b = run_to_end(protect(x, [tiny_encoder], cfg)).protected
    c = run_to_end(protect(x, [tiny_encoder], cfg.replace(seed=1))).protected
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def _protect_checked(encoder, x: torch.Tensor, cfg: ProtectConfig) -> torch.Tensor:
    """Protect twice: same bytes, within L-inf, [0, 1] and the PSNR floor; the result."""
    a = run_to_end(protect(x, [encoder], cfg))
    b = run_to_end(protect(x, [encoder], cfg))
    assert torch.equal(a.protected, b.protected)
    assert len(a.losses) == cfg.steps
    d = a.protected - x
    assert float(d.abs().max()) <= cfg.eps + 1e-6
    assert float(a.protected.min()) >= 0.0 and float(a.protected.max()) <= 1.0
    assert cfg.min_psnr is not None
    assert float(d.pow(2).mean().sqrt()) <= 10 ** (-cfg.min_psnr / 20) * 1.01
    return a.protected


@pytest.mark.parametrize("param_scale", [2, 3])
def test_low_resolution_parameterisation(tiny_encoder, param_scale):
    cfg = ProtectConfig(
        eps=8 / 255, objective="decoded", latent_weight=1.0, param_scale=param_scale, **FAST
    )
    x = _image(45, 61)
    d = _protect_checked(tiny_encoder, x, cfg) - x
    # Smooth: neighbouring pixels differ less than in a full-resolution run.
    full = run_to_end(protect(x, [tiny_encoder], cfg.replace(param_scale=1))).protected - x
    assert float(d.diff(dim=-1).abs().mean()) < float(full.diff(dim=-1).abs().mean())


def test_distort_pushes_the_round_trip_away_from_the_photo(tiny_encoder):
    # The distort loss is -(round-trip error / clean round-trip error): it starts near -1 and
    # the attack makes the attacker's reconstruction error grow.
    cfg = _no_eot("distort")
    x = _image()
    res = run_to_end(protect(x, [tiny_encoder], cfg))
    assert -1.5 < res.losses[0] < -0.5
    with torch.no_grad():
        err_clean = (tiny_encoder.decode(tiny_encoder.encode(x)) - x).pow(2).mean()
        rt = tiny_encoder.decode(tiny_encoder.encode(res.protected))
        err_prot = (rt - x).pow(2).mean()
    # A random decoder reconstructs badly anyway (the real-weight test below checks dB).
    assert float(err_prot) > float(err_clean)
    assert res.losses[-1] < res.losses[0]


@pytest.mark.parametrize(
    "changes",
    [
        {"coarse_steps": 2},
        {"step_rule": "adam"},
        {"chroma_weight": 0.0},
        {"chroma_weight": 0.5, "step_rule": "sign"},
    ],
)
def test_step_options_keep_the_bounds(tiny_encoder, changes):
    cfg = ProtectConfig(eps=6 / 255, objective="distort", param_scale=2, **FAST).replace(**changes)
    x = _image(45, 61)
    protected = _protect_checked(tiny_encoder, x, cfg)
    base = ProtectConfig(eps=6 / 255, objective="distort", param_scale=2, **FAST)
    plain = run_to_end(protect(x, [tiny_encoder], base))
    assert not torch.equal(protected, plain.protected)  # the option changed the run


def test_luma_only_changes_no_colour(tiny_encoder):
    cfg = ProtectConfig(
        eps=6 / 255,
        objective="distort",
        chroma_weight=0.0,
        perceptual=False,
        transforms=TransformConfig(enabled=False),
        **FAST,
    )
    x = _image().mul(0.8).add(0.1)  # away from 0 and 1, so no clamping adds colour
    d = run_to_end(protect(x, [tiny_encoder], cfg)).protected - x
    gray = d.mean(dim=1, keepdim=True)
    assert float(d.abs().max()) > 1e-3
    assert float((d - gray).abs().max()) < 1e-6


def test_lift_to_full_size_stays_in_budget(tiny_encoder):
    cfg = ProtectConfig(eps=4 / 255, steps=3, work_size=64, device="cpu", encoders=("taef2",))
    x = _image(150, 200)
    res = run_to_end(protect(x, [tiny_encoder], cfg))
    assert res.work_shape == (48, 64)
    assert res.protected.shape == x.shape
    assert float((res.protected - x).abs().max()) <= cfg.eps + 1e-6
    # After 8-bit quantisation the change is still within the budget in 1/255 units.
    assert float((quantize(res.protected) - quantize(x)).abs().max()) * 255 <= 4 + 1e-4
    d = torch.full((1, 3, 10, 10), 1.0)
    assert float(lift(d, (37, 41), 0.1).abs().max()) <= 0.1 + 1e-6


def test_cancel_stops_at_next_step(tiny_encoder):
    cfg = ProtectConfig(steps=50, work_size=64, device="cpu", encoders=("taef2",))
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    gen = protect(_image(), [tiny_encoder], cfg, cancel)
    steps = 0
    with pytest.raises(Cancelled):
        for rec in gen:
            steps += rec.stage == "attack"
    assert steps == 3  # the 4th call to cancel() stops it, before a 4th step


def test_closing_the_generator_stops_it(tiny_encoder):
    gen = protect(
        _image(),
        [tiny_encoder],
        ProtectConfig(steps=50, **{k: v for k, v in FAST.items() if k != "steps"}),
    )
    next(gen)
    next(gen)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


def test_ensemble_round_robin(tiny_encoder):
    from cloak.models import build_random

    other = build_random("taesd", seed=1)
    cfg = ProtectConfig(steps=4, work_size=64, device="cpu", encoders=("taef2", "taesd"))
    names = [
        r.encoder for r in protect(_image(), [tiny_encoder, other], cfg) if r.stage == "attack"
    ]
    assert names == ["taef2", "taesd", "taef2", "taesd"]


def test_presets_and_validation():
    assert PRESETS["low"].eps <= 4 / 255 + 1e-9
    # No preset goes past the 16/255 hard cap; from low to max the PSNR floor only drops.
    assert all(cfg.eps <= 16 / 255 + 1e-9 for cfg in PRESETS.values())
    floors = [PRESETS[n].min_psnr or 0.0 for n in ("low", "standard", "high", "max")]
    assert floors == sorted(floors, reverse=True)
    assert preset("Standard") is PRESETS["standard"]
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("ultra")
    with pytest.raises(ConfigError, match="eps"):
        ProtectConfig(eps=0.5)
    with pytest.raises(ConfigError, match="param_scale"):
        ProtectConfig(param_scale=0)
    with pytest.raises(ConfigError, match="latent_weight"):
        ProtectConfig(latent_weight=-1)
    with pytest.raises(ConfigError, match="coarse_steps"):
        ProtectConfig(steps=4, coarse_steps=4)
    with pytest.raises(ConfigError, match="chroma_weight"):
        ProtectConfig(chroma_weight=-0.1)
    with pytest.raises(ConfigError, match="step rule"):
        ProtectConfig(step_rule="newton")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="objective"):
        ProtectConfig(objective="bogus")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="JPEG quality"):
        TransformConfig(jpeg_quality=(90, 10)).validate()
    with pytest.raises(ConfigError):
        ProtectConfig().replace(steps=0)
    with pytest.raises(ConfigError, match="CUDA"):
        if not torch.cuda.is_available():
            choose_device("cuda")
        else:
            raise ConfigError("CUDA present")
    assert choose_device("cpu").type == "cpu"


def test_bad_image_shape_is_refused(tiny_encoder):
    with pytest.raises(ConfigError, match="shape"):
        run_to_end(protect(torch.rand(3, 32, 32), [tiny_encoder], ProtectConfig(**FAST)))


def test_repr_names_hyperparameters(tiny_encoder):
    text = repr(EncoderAttack([tiny_encoder], ProtectConfig(**FAST), torch.device("cpu")))
    assert "eps=8.0/255" in text and "taef2" in text


@pytest.mark.real
def test_real_taef2_protect_damages_round_trip(taef2, astronaut_crop):
    # The standard recipe (decoder in the loop, half-resolution delta, budget map, PSNR floor)
    # on a 96 px crop, against an attacker who sees the crop as it is. EOT is off: its draws
    # (attacker sizes 512, 768 and 1024 px) are made for photos, not 96 px crops. With the
    # attacker's size known the recipe must reach the damage target the presets aim at on
    # photos; across unknown sizes it does not (docs/attack-notes.md, round 3).
    cfg = preset("standard").replace(
        encoders=("taef2",),
        device="cpu",
        work_size=96,
        transforms=TransformConfig(enabled=False),
    )
    res = run_to_end(protect(astronaut_crop, [taef2], cfg))
    saved = quantize(res.protected)
    assert float((saved - astronaut_crop).abs().max()) <= cfg.eps + 1e-6
    report = measure(astronaut_crop, saved, [taef2], platforms={}, attacker_long_side=96)
    damage = report.damage("taef2")
    assert damage is not None and damage >= TARGETS["damage_direct"], report
    assert cfg.min_psnr is not None
    assert report.psnr >= saved_psnr_floor(cfg.min_psnr), report.psnr


@pytest.mark.real
def test_real_ensemble_moves_every_latent_further_than_a_jpeg95_reencode(
    taef2, vaelight, astronaut_crop
):
    """Both encoders of an ensemble are attacked: each latent moves more than a JPEG-95 save
    moves it (latent shift > 1). Six steps on a 96 px crop are far from the spec's 6x target for
    the standard preset on photos, which ``cloak evaluate`` measures on the shared photos."""
    cfg = preset("standard").replace(
        steps=6, encoders=("taef2", "vaelight"), device="cpu", work_size=96
    )
    res = run_to_end(protect(astronaut_crop, [taef2, vaelight], cfg))
    saved = quantize(res.protected)
    assert res.encoders == ["taef2", "vaelight"]
    assert float((saved - astronaut_crop).abs().max()) <= cfg.eps + 1e-6
    report = measure(astronaut_crop, saved, [taef2, vaelight], platforms={}, attacker_long_side=96)
    for s in report.scores:
        assert s.latent_shift > 1.0, s


@pytest.mark.real
def test_real_protect_file_keeps_metadata_right(taef2, tmp_path):
    """Orientation applied, GPS removed, ICC kept, size kept: through the whole file path."""
    from PIL import ExifTags, Image
    from support.photo_factory import make_exif, srgb_icc

    from cloak.jobs import PhotoJob, protect_file

    with Image.open(ASTRONAUT) as im:
        stored = im.convert("RGB").crop((160, 40, 288, 136))  # 128 x 96 as stored
    src = tmp_path / "phone photo ü.jpg"
    icc = srgb_icc()
    stored.save(src, "JPEG", quality=95, exif=make_exif(orientation=6, gps=True), icc_profile=icc)
    before = src.read_bytes()
    cfg = preset("standard").replace(steps=2, encoders=("taef2",), device="cpu", work_size=64)
    gen = protect_file(PhotoJob(src, tmp_path / "out.jpg"), cfg, [taef2])
    result = run_to_end(gen)
    assert result.status == "protected", result.message
    assert src.read_bytes() == before
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.size == (96, 128)  # orientation 6 = rotated: displayed size
        exif = out.getexif()
        assert exif.get(ExifTags.Base.Orientation, 1) == 1
        assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
        assert out.info.get("icc_profile") == icc
    assert "GPS" in result.message


def test_protect_keeps_the_clean_round_trip_a_measurement_reuses(tiny_encoder):
    """The ``distort`` objective's clean round trip of the work image comes back with the
    result; seeded with it, a measurement at the work size gives the same report and encodes
    only the protected photo. It is not used where it would differ: another precision or
    another attacker size."""
    from support.counting import counting_encodes

    from cloak.metrics import OriginalCache, seed_cache

    x = _image(48, 64)  # long side 64 == work size: the work image is the photo's own pixels
    res = run_to_end(protect(x, [tiny_encoder], _no_eot("distort", steps=3), keep_clean=True))
    (clean,) = res.clean
    assert clean.encoder == tiny_encoder.name
    assert tuple(clean.roundtrip.shape) == (1, 3, 48, 64) and clean.roundtrip.dtype == torch.uint8
    saved = quantize(res.protected)
    bf16 = clean.bf16
    plain = measure(x, saved, [tiny_encoder], {}, 64, pixels=False, shift=False, bf16=bf16)
    with counting_encodes(tiny_encoder) as encodes:
        cache: OriginalCache = {}
        assert seed_cache(cache, x, res.clean, bf16, 64) == [tiny_encoder.name]
        seeded = measure(
            x, saved, [tiny_encoder], {}, 64, cache=cache, pixels=False, shift=False, bf16=bf16
        )
    assert encodes.n == 1  # the protected photo only
    assert seeded.damage(tiny_encoder.name) == pytest.approx(plain.damage(tiny_encoder.name))
    assert seed_cache({}, x, res.clean, not bf16, 64) == []
    assert seed_cache({}, x, res.clean, bf16, 96) == []


def test_the_clean_round_trip_is_kept_only_on_request(tiny_encoder):
    """Without ``keep_clean`` nothing is kept; with it, an objective that never decodes the
    clean photo (``push``) gets it computed for the purpose, the same as ``distort``'s own."""
    x = _image()
    assert run_to_end(protect(x, [tiny_encoder], _no_eot("distort", steps=2))).clean == []
    (pushed,) = run_to_end(protect(x, [tiny_encoder], _no_eot("push", 2), keep_clean=True)).clean
    (own,) = run_to_end(protect(x, [tiny_encoder], _no_eot("distort", 2), keep_clean=True)).clean
    assert torch.equal(pushed.roundtrip, own.roundtrip)
    assert pushed.roundtrip_psnr == own.roundtrip_psnr


def test_a_batch_keeps_the_clean_round_trip_only_for_the_photos_asked(tiny_encoder, tmp_path):
    """``run_batch`` asks a callable ``keep_clean`` as each photo starts (the app: is the
    person looking at it?); the other photos neither keep nor compute a round trip for it."""
    from PIL import Image
    from support.counting import counting_encodes

    from cloak.jobs import PhotoJob, run_batch

    jobs = []
    for i in range(3):
        src = tmp_path / f"p{i}.png"
        Image.fromarray((_image().squeeze(0).permute(1, 2, 0) * 255).byte().numpy()).save(src)
        jobs.append(PhotoJob(src, tmp_path / "out" / src.name))
    cfg = ProtectConfig(objective="distort", precision="fp32", **FAST)
    asked: list[int] = []

    def keep(i: int) -> bool:
        asked.append(i)
        return i == 1

    with counting_encodes(tiny_encoder) as encodes:
        results = run_to_end(run_batch(jobs, cfg, [tiny_encoder], keep_clean=keep))
    assert asked == [0, 1, 2]
    assert [len(r.clean) for r in results] == [0, 1, 0]
    assert encodes.n == 3 * cfg.steps + 1  # one round trip, for the photo asked


def test_distort_under_transformations_skips_the_clean_round_trip(tiny_encoder):
    """With every step drawing a view, ``distort`` reads no clean round trip and its loss scale
    cannot change a normalised step: the work-size round trip is not computed (one encode per
    step) and the perturbation is the one the scaled loss gives."""
    from support.counting import counting_encodes

    cfg = ProtectConfig(objective="distort", precision="fp32", **FAST)
    x = _image()
    with counting_encodes(tiny_encoder) as encodes:
        plain = run_to_end(protect(x, [tiny_encoder], cfg))
    assert encodes.n == cfg.steps
    with counting_encodes(tiny_encoder) as encodes:
        kept = run_to_end(protect(x, [tiny_encoder], cfg, keep_clean=True))
    assert encodes.n == cfg.steps + 1 and len(kept.clean) == 1
    torch.testing.assert_close(plain.protected, kept.protected, atol=1e-5, rtol=0)
    # Unscaled, the loss is minus the attacker's reconstruction error itself.
    assert all(loss < 0 for loss in plain.losses)


def test_step_sizes_encode_every_size_in_every_step(tiny_encoder):
    """With ``step_sizes`` each step's loss is summed over one view per listed size: one
    encode per view, and the perturbation differs from one size drawn per step."""
    from support.counting import counting_encodes

    eot = TransformConfig(sizes=(64, 96), jpeg_prob=0.0, blur_prob=0.0, noise_std=0.0)
    one = ProtectConfig(objective="distort", precision="fp32", transforms=eot, **FAST)
    both = one.replace(transforms=dataclasses.replace(eot, step_sizes=(64, 96)))
    x = _image()
    with counting_encodes(tiny_encoder) as encodes:
        single = run_to_end(protect(x, [tiny_encoder], one))
    assert encodes.n == one.steps
    with counting_encodes(tiny_encoder) as encodes:
        joint = run_to_end(protect(x, [tiny_encoder], both))
    assert encodes.n == 2 * both.steps
    assert not torch.allclose(single.protected, joint.protected)


@pytest.mark.real
def test_real_bf16_measurement_is_close_to_fp32(taef2, astronaut_crop):
    """The app and ``cloak check`` measure under bf16 where the attack runs bf16: the damage
    must stay within a fraction of a dB of the float32 figure."""
    cfg = preset("standard").replace(
        encoders=("taef2",), device="cpu", work_size=96, transforms=TransformConfig(enabled=False)
    )
    saved = quantize(run_to_end(protect(astronaut_crop, [taef2], cfg)).protected)
    fp32 = measure(astronaut_crop, saved, [taef2], {}, 96, pixels=False, shift=False)
    bf16 = measure(astronaut_crop, saved, [taef2], {}, 96, pixels=False, shift=False, bf16=True)
    a, b = fp32.damage("taef2"), bf16.damage("taef2")
    assert a is not None and b is not None and a > 3.0
    assert abs(a - b) <= 0.25, (a, b)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fp32_steps_share_one_arena_dropped_at_the_end(tiny_encoder, precision):
    cfg = ProtectConfig(objective="distort", precision=precision, **FAST)
    attack = EncoderAttack([tiny_encoder], cfg, torch.device("cpu"))
    run = attack.run(_image())
    arenas = []
    while True:
        try:
            rec = next(run)
        except StopIteration:
            break
        if rec.stage == "attack":
            arenas.append(attack.arena)
    if precision == "fp32":
        # The same arena for every step (its chunks reused), not one per step.
        assert arenas[0] is not None and all(a is arenas[0] for a in arenas)
    else:
        assert arenas == [None] * cfg.steps  # bf16 saves no compacted copies
    assert attack.arena is None  # its mapping goes with the attack
