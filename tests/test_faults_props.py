"""Property tests on the whole protect path and on where a batch writes its results."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cloak.config import ProtectConfig, TransformConfig
from cloak.engine import run_to_end
from cloak.jobs import PROTECTED_TAG, PhotoJob, plan, protect_file
from cloak.photo_io import SUPPORTED_SUFFIXES, TEMP_SUFFIX

_SETTINGS = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_SETTINGS
@given(
    width=st.integers(8, 72),
    height=st.integers(8, 72),
    eps_levels=st.integers(1, 16),
    seed=st.integers(0, 2**16),
    steps=st.integers(1, 2),
    perceptual=st.booleans(),
    eot=st.booleans(),
    alpha=st.booleans(),
)
def test_saved_photo_stays_within_the_budget(
    tmp_path_factory, tiny_encoder, width, height, eps_levels, seed, steps, perceptual, eot, alpha
):
    """After 8-bit quantisation and saving: |protected - original| <= eps, same size, alpha kept."""
    folder = tmp_path_factory.mktemp("bound")
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 4 if alpha else 3), dtype=np.uint8)
    src = folder / "in.png"
    Image.fromarray(pixels).save(src)
    before = src.read_bytes()
    config = ProtectConfig(
        eps=eps_levels / 255,
        steps=steps,
        work_size=64,
        seed=seed,
        encoders=("taef2",),
        device="cpu",
        perceptual=perceptual,
        transforms=TransformConfig(enabled=eot),
    )
    dest = folder / "out.png"
    result = run_to_end(protect_file(PhotoJob(src, dest), config, [tiny_encoder]))
    assert result.status == "protected"
    with Image.open(dest) as im:
        assert im.size == (width, height)
        out = np.asarray(im)
    assert out.shape == pixels.shape
    change = np.abs(out[..., :3].astype(int) - pixels[..., :3].astype(int))
    assert change.max() <= eps_levels
    if alpha:
        assert np.array_equal(out[..., 3], pixels[..., 3])
    assert result.linf_255 is not None and result.linf_255 <= eps_levels + 1e-3
    assert src.read_bytes() == before
    assert not list(folder.glob(f"*{TEMP_SUFFIX}")) and not list(folder.glob(".*"))


_NAME_CHARS = string.ascii_letters + string.digits + " -_.()'é写真ñü"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(
        st.tuples(
            st.sampled_from(["a", "IMG 0001", "été 写真", "x.y", "a_protected"])
            | st.text(_NAME_CHARS, min_size=1, max_size=20).filter(lambda s: s.strip(". ") == s),
            st.sampled_from(sorted(SUPPORTED_SUFFIXES)),
        ),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    where=st.sampled_from(["beside", "same", "other", "inside"]),
)
def test_plan_outputs_never_hit_an_original(tmp_path_factory, names, where):
    """Any names, any output placement: every output is new, distinct and correctly named."""
    root = tmp_path_factory.mktemp("names")
    src = root / "photos"
    src.mkdir()
    for stem, suffix in names:
        (src / f"{stem}{suffix}").write_bytes(b"")
    out = {"beside": None, "same": src, "other": root / "out", "inside": src / "done"}[where]
    config = ProtectConfig(encoders=("taef2",))
    jobs, refused = plan([src], out, config)
    assert not refused
    # Files named "*_protected" are earlier results, not originals.
    wanted = {p.resolve() for p in src.iterdir() if not p.stem.endswith(PROTECTED_TAG)}
    originals = wanted
    assert {j.source.resolve() for j in jobs} == wanted
    dests = [j.dest.resolve() for j in jobs]
    assert not set(dests) & originals
    assert len(set(dests)) == len(dests), "two photos share an output name"
    for job in jobs:
        assert job.dest.stem.startswith(job.source.stem)
        if where == "same":
            # "a_protected", or "a-gif_protected" when a.bmp took "a_protected" first.
            assert job.dest.stem.endswith(PROTECTED_TAG)
        assert Path(job.dest).suffix in {".jpg", ".png", ".webp", ".heic"}
