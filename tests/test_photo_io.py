"""Photo I/O: faithful round trips, metadata policy, and every way a file can be wrong."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from support.photo_factory import (
    CAMERA_MAKE,
    DATE_TAKEN,
    REAL_PHOTOS,
    SHARED_PHOTOS,
    bomb_png,
    make_exif,
    raw_png,
    rgb16_png,
    rgb_image,
    srgb_icc,
    unique_rgb,
    write,
)

from cloak import photo_io
from cloak.errors import ConfigError, PhotoError
from cloak.photo_io import (
    SUPPORTED_SUFFIXES,
    Photo,
    SaveOptions,
    atomic,
    is_supported,
    iter_photos,
    load_photo,
    output_suffix,
    save_photo,
)

EXIF_IFD, GPS_IFD, ORIENTATION, MAKE, DATE_ORIGINAL = 0x8769, 0x8825, 0x0112, 0x010F, 0x9003


def roundtrip(photo: Photo, dest: Path, options: SaveOptions = SaveOptions()) -> Photo:
    return load_photo(save_photo(photo, photo.rgb, dest, options))


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".cloak-tmp")]


# ------------------------------------------------------------------------------------------
# Real photos, read in place


@pytest.mark.parametrize("name", REAL_PHOTOS)
def test_real_photos_load_and_roundtrip(name: str, tmp_path: Path) -> None:
    photo = load_photo(SHARED_PHOTOS / name)
    with Image.open(SHARED_PHOTOS / name) as ref:
        expected = np.asarray(ref.convert("RGB"))
    assert photo.rgb.dtype == np.float32
    assert photo.rgb.shape == expected.shape
    assert photo.rgb.min() >= 0.0 and photo.rgb.max() <= 1.0
    assert np.array_equal(np.round(photo.rgb * 255).astype(np.uint8), expected)
    out = roundtrip(photo, tmp_path / ("out" + output_suffix(photo, SaveOptions())))
    assert out.size == photo.size
    assert out.format == photo.format
    assert out.icc_profile == photo.icc_profile
    tolerance = 0.0 if photo.format == "PNG" else 0.15
    assert np.abs(out.rgb - photo.rgb).max() <= tolerance


# ------------------------------------------------------------------------------------------
# Orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_and_output_is_upright(
    orientation: int, tmp_path: Path
) -> None:
    pixels = unique_rgb(7, 4)
    alpha = (np.arange(28, dtype=np.uint8).reshape(4, 7) * 9).astype(np.uint8)
    img = Image.fromarray(pixels)
    img.putalpha(Image.fromarray(alpha))
    src = write(tmp_path / "o.png", img, exif=make_exif(orientation))
    photo = load_photo(src)
    with Image.open(src) as ref:
        upright = np.asarray(ImageOps.exif_transpose(ref))
    assert photo.size == (upright.shape[1], upright.shape[0])
    assert np.array_equal(np.round(photo.rgb * 255).astype(np.uint8), upright[..., :3])
    assert photo.alpha is not None
    assert np.array_equal(photo.alpha, upright[..., 3])

    dest = save_photo(photo, photo.rgb, tmp_path / "out.png")
    with Image.open(dest) as out:
        assert out.getexif().get(ORIENTATION, 1) == 1
        assert np.array_equal(np.asarray(out), upright)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_jpeg_orientation_places_pixels(orientation: int, tmp_path: Path) -> None:
    # A red top-left quadrant on a 40x20 grey image; after rotation it must land where a
    # viewer shows it.
    arr = np.full((20, 40, 3), 128, np.uint8)
    arr[:10, :20] = (255, 0, 0)
    src = write(tmp_path / "o.jpg", Image.fromarray(arr), exif=make_exif(orientation))
    photo = load_photo(src)
    with Image.open(src) as ref:
        upright = np.asarray(ImageOps.exif_transpose(ref)).astype(np.float32) / 255
    assert photo.size == (upright.shape[1], upright.shape[0])
    assert np.abs(photo.rgb - upright).max() < 1e-6
    out = roundtrip(photo, tmp_path / "out.jpg")
    assert out.size == photo.size
    assert np.abs(out.rgb - photo.rgb).mean() < 0.02


# ------------------------------------------------------------------------------------------
# Metadata


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_gps_removed_camera_exif_kept(suffix: str, tmp_path: Path) -> None:
    src = write(tmp_path / f"gps{suffix}", rgb_image(), exif=make_exif(gps=True))
    photo = load_photo(src)
    dest = save_photo(photo, photo.rgb, tmp_path / f"out{suffix}")
    with Image.open(dest) as out:
        exif = out.getexif()
        assert exif.get(MAKE) == CAMERA_MAKE
        assert exif.get_ifd(EXIF_IFD).get(DATE_ORIGINAL) == DATE_TAKEN
        assert GPS_IFD not in exif
        assert not exif.get_ifd(GPS_IFD)
    assert "GPS location removed from EXIF" in photo_io.save_notes(photo)


def test_gps_kept_when_asked(tmp_path: Path) -> None:
    photo = load_photo(write(tmp_path / "gps.jpg", rgb_image(), exif=make_exif()))
    dest = save_photo(photo, photo.rgb, tmp_path / "out.jpg", SaveOptions(strip_gps=False))
    with Image.open(dest) as out:
        assert out.getexif().get_ifd(GPS_IFD)[1] == "N"


def test_strip_metadata_removes_exif_keeps_icc(tmp_path: Path) -> None:
    icc = srgb_icc()
    src = write(tmp_path / "m.jpg", rgb_image(), exif=make_exif(), icc_profile=icc)
    photo = load_photo(src)
    assert photo.exif is not None and photo.icc_profile == icc
    dest = save_photo(photo, photo.rgb, tmp_path / "out.jpg", SaveOptions(strip_metadata=True))
    with Image.open(dest) as out:
        assert "exif" not in out.info
        assert not dict(out.getexif())
        assert out.info.get("icc_profile") == icc


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".heic"])
def test_icc_profile_kept(suffix: str, tmp_path: Path) -> None:
    if suffix == ".heic":
        # The test extra installs pillow-heif: missing, this fails rather than skips.
        import pillow_heif

        pillow_heif.register_heif_opener()
    icc = srgb_icc()
    photo = load_photo(write(tmp_path / f"c{suffix}", rgb_image(), icc_profile=icc))
    assert photo.icc_profile == icc
    assert roundtrip(photo, tmp_path / f"out{suffix}").icc_profile == icc


def _huge_icc() -> bytes:
    icc = srgb_icc()
    return icc + bytes(2_000_000 - len(icc))  # 2 MB: JPEG needs ~31 APP2 segments for it


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_huge_icc_profile_kept(suffix: str, tmp_path: Path) -> None:
    icc = _huge_icc()
    photo = load_photo(write(tmp_path / f"c{suffix}", rgb_image(), icc_profile=icc))
    assert photo.icc_profile == icc
    assert roundtrip(photo, tmp_path / f"out{suffix}").icc_profile == icc


def test_huge_icc_profile_in_png_is_refused_clearly(tmp_path: Path) -> None:
    # Pillow refuses PNG metadata chunks over 1 MB (zip-bomb guard); say so, don't crash.
    src = write(tmp_path / "c.png", rgb_image(), icc_profile=_huge_icc())
    with pytest.raises(PhotoError, match="over Pillow's 1 MB safety limit; re-export it"):
        load_photo(src)


def test_icc_too_big_for_jpeg_is_dropped_not_fatal(tmp_path: Path) -> None:
    photo = load_photo(write(tmp_path / "c.png", rgb_image()))
    photo.icc_profile = bytes(65519 * 255 + 1)
    options = SaveOptions(format="JPEG")
    assert "colour profile too large for JPEG: dropped" in photo_io.save_notes(photo, options)
    assert roundtrip(photo, tmp_path / "out.jpg", options).icc_profile is None


def test_broken_exif_loads_with_note_and_is_dropped(tmp_path: Path) -> None:
    src = write(tmp_path / "b.jpg", rgb_image(), exif=b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xf0junk")
    photo = load_photo(src)
    assert photo.exif is None
    assert any("EXIF" in note for note in photo.notes)
    assert roundtrip(photo, tmp_path / "out.jpg").size == photo.size


# ------------------------------------------------------------------------------------------
# Modes, alpha, bit depth


def test_alpha_kept_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    alpha = rng.integers(0, 256, (12, 16), dtype=np.uint8)
    img = rgb_image()
    img.putalpha(Image.fromarray(alpha))
    photo = load_photo(write(tmp_path / "a.png", img))
    assert photo.alpha is not None and photo.alpha.dtype == np.uint8
    perturbed = np.clip(photo.rgb + 0.01, 0, 1)
    for suffix in (".png", ".webp"):
        options = SaveOptions(format=suffix)
        dest = save_photo(photo, perturbed, tmp_path / f"out{suffix}", options)
        with Image.open(dest) as out:
            assert out.mode == "RGBA"
            assert np.array_equal(np.asarray(out)[..., 3], alpha)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF"])
def test_gray_alpha_kept_in_every_format_that_holds_alpha(fmt: str, tmp_path: Path) -> None:
    if fmt == "HEIF":
        import pillow_heif  # noqa: F401 - installed by the test extra; missing fails
    alpha = np.random.default_rng(4).integers(0, 256, (12, 16), dtype=np.uint8)
    img = Image.merge("LA", [rgb_image().convert("L"), Image.fromarray(alpha)])
    photo = load_photo(write(tmp_path / "la.png", img))
    options = SaveOptions(format=fmt, webp_lossless=True)
    out = roundtrip(photo, tmp_path / f"out{output_suffix(photo, options)}", options)
    assert out.alpha is not None
    if fmt == "HEIF":  # lossy codec, alpha included
        assert np.abs(out.alpha.astype(int) - alpha).max() <= 8
    else:
        assert np.array_equal(out.alpha, alpha)


def test_long_output_name_and_special_files(tmp_path: Path) -> None:
    photo = load_photo(write(tmp_path / "p.png", rgb_image()))
    dest = save_photo(photo, photo.rgb, tmp_path / ("x" * 240 + ".png"))
    assert dest.exists() and no_temp_files(tmp_path)
    with pytest.raises(PhotoError, match="not a regular file"):
        load_photo(Path("/dev/null"))
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(PhotoError, match="not a regular file"):
        load_photo(fifo)
    with pytest.raises(ConfigError):
        load_photo(dest, max_pixels=0)


def test_sixteen_bit_grayscale_roundtrip_exact(tmp_path: Path) -> None:
    values = np.random.default_rng(2).integers(0, 65536, (9, 13), dtype=np.uint16)
    photo = load_photo(write(tmp_path / "g.png", Image.fromarray(values)))
    assert (photo.mode, photo.bit_depth, photo.is_grayscale) == ("I;16", 16, True)
    dest = save_photo(photo, photo.rgb, tmp_path / "out.png")
    with Image.open(dest) as out:
        assert out.mode == "I;16"
        assert np.array_equal(np.asarray(out), values)


def test_palette_with_transparency_becomes_rgba_png(tmp_path: Path) -> None:
    img = rgb_image().quantize(8)
    src = write(tmp_path / "p.png", img, transparency=0)
    photo = load_photo(src)
    index = np.asarray(img)
    assert photo.mode == "P" and photo.alpha is not None
    assert np.array_equal(photo.alpha == 0, index == 0)
    assert any("palette" in note for note in photo.notes)
    dest = save_photo(photo, photo.rgb, tmp_path / "out.png")
    with Image.open(dest) as out:
        assert out.mode == "RGBA"
        assert np.array_equal(np.asarray(out)[..., 3], photo.alpha)


def test_cmyk_jpeg_becomes_rgb_and_drops_cmyk_profile(tmp_path: Path) -> None:
    src = write(tmp_path / "k.jpg", rgb_image().convert("CMYK"), icc_profile=b"fake cmyk icc")
    photo = load_photo(src)
    assert photo.mode == "CMYK" and photo.icc_profile is None
    assert any("CMYK" in note for note in photo.notes)
    dest = save_photo(photo, photo.rgb, tmp_path / "out.jpg")
    with Image.open(dest) as out:
        assert out.mode == "RGB" and out.format == "JPEG"


def _mode_image(mode: str) -> tuple[str, Image.Image, dict[str, object]]:
    base = rgb_image()
    if mode == "I":
        return ".tif", Image.fromarray(np.arange(192, dtype=np.int32).reshape(12, 16) * 300), {}
    if mode == "F":
        return ".tif", Image.fromarray(np.linspace(0, 1, 192, dtype=np.float32).reshape(12, 16)), {}
    if mode == "I;16":
        return ".tif", Image.fromarray(np.arange(192, dtype=np.uint16).reshape(12, 16) * 300), {}
    if mode == "YCbCr":
        return ".jpg", base.convert("YCbCr"), {}
    if mode == "CMYK":
        return ".tif", base.convert("CMYK"), {}
    if mode == "P":
        return ".gif", base.convert("P"), {}
    suffix = {"1": ".bmp", "L": ".jpg", "LA": ".png", "RGB": ".webp", "RGBA": ".tif"}[mode]
    return suffix, base.convert(mode), {}


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "I;16", "I", "F", "P", "RGB", "RGBA", "CMYK", "YCbCr"]
)
def test_every_mode_loads_and_saves(mode: str, tmp_path: Path) -> None:
    suffix, img, kwargs = _mode_image(mode)
    photo = load_photo(write(tmp_path / f"m{suffix}", img, **kwargs))
    assert photo.size == (16, 12)
    assert photo.rgb.shape == (12, 16, 3) and photo.rgb.dtype == np.float32
    assert photo.rgb.min() >= 0 and photo.rgb.max() <= 1
    assert photo.is_grayscale == (mode in {"1", "L", "LA", "I;16", "I", "F"})
    assert (photo.alpha is not None) == (mode in {"LA", "RGBA"})
    if photo.is_grayscale:
        assert np.array_equal(photo.rgb[..., 0], photo.rgb[..., 2])
    out = roundtrip(photo, tmp_path / f"out{output_suffix(photo)}")
    assert out.size == photo.size
    assert out.is_grayscale == photo.is_grayscale
    if photo.alpha is not None:
        assert out.alpha is not None and np.array_equal(out.alpha, photo.alpha)


def test_sixteen_bit_rgb_png_is_reduced_with_note(tmp_path: Path) -> None:
    photo = load_photo(rgb16_png(tmp_path / "c16.png"))
    assert photo.size == (8, 6) and not photo.is_grayscale
    assert any("16-bit colour" in note for note in photo.notes)
    assert roundtrip(photo, tmp_path / "out.png").size == (8, 6)


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animated_takes_first_frame_with_note(suffix: str, tmp_path: Path) -> None:
    frames = [Image.new("RGB", (10, 8), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    kwargs: dict[str, object] = {"lossless": True} if suffix == ".webp" else {}
    src = write(
        tmp_path / f"anim{suffix}", frames[0], save_all=True, append_images=frames[1:], **kwargs
    )
    photo = load_photo(src)
    assert photo.frames == 3
    assert any("only the first frame" in note for note in photo.notes)
    assert np.abs(photo.rgb - np.array([250, 0, 0]) / 255).max() < 0.02
    assert output_suffix(photo) == (".png" if suffix == ".gif" else ".webp")


def test_heic_roundtrip(tmp_path: Path) -> None:
    import pillow_heif  # installed by the test extra; missing fails

    pillow_heif.register_heif_opener()
    photo = load_photo(write(tmp_path / "h.heic", rgb_image(64, 48), exif=make_exif(6)))
    assert photo.format == "HEIF" and photo.size == (48, 64)
    out = roundtrip(photo, tmp_path / "out.heic")
    assert out.format == "HEIF" and out.size == photo.size
    assert np.abs(out.rgb - photo.rgb).mean() < 0.05


def test_heic_without_extra_says_how_to_install(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "h.heic"
    src.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    with pytest.raises(PhotoError, match=r"pip install 'cloak\[heic\]'"):
        load_photo(src)
    assert output_suffix("HEIF") == ".jpg"


def test_names_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    folder = tmp_path / "Ferien Fotos ü"
    src = write(folder / "mein Foto ü 照片 ☀.jpg", rgb_image())
    photo = load_photo(src)
    dest = save_photo(photo, photo.rgb, folder / "mein Foto ü 照片 ☀ (cloaked).jpg")
    assert load_photo(dest).size == photo.size
    assert list(iter_photos(folder)) == sorted([src, dest])


# ------------------------------------------------------------------------------------------
# Hostile inputs


def _text_jpg(p: Path) -> Path:
    p.write_text("These are my holiday notes, not a photo.\n" * 5)
    return p


HOSTILE = {
    "zero-byte": (lambda p: (p.write_bytes(b""), p)[1], "x.jpg", "is empty"),
    "text as .jpg": (_text_jpg, "x.jpg", r"is not an image \(looks like text\)"),
    "html as .png": (
        lambda p: (p.write_text("<!DOCTYPE html><html><body>404</body></html>"), p)[1],
        "x.png",
        r"is not an image \(looks like HTML\)",
    ),
    "webp header + garbage": (
        lambda p: (p.write_bytes(b"RIFF\x40\x00\x00\x00WEBPVP8 " + bytes(range(256)) * 2), p)[1],
        "x.webp",
        "re-export|re-download",
    ),
    "random bytes": (
        lambda p: (p.write_bytes(np.random.default_rng(0).bytes(3000)), p)[1],
        "x.png",
        "is not an image",
    ),
    "unsupported suffix": (lambda p: (p.write_bytes(b"x"), p)[1], "x.psd", "unsupported type"),
    "no suffix": (lambda p: (p.write_bytes(b"x"), p)[1], "photo", "unsupported type"),
    "PNG with impossible size": (
        lambda p: (p.write_bytes(raw_png(0, 5, 8, 0, b"")), p)[1],
        "x.png",
        "re-export|re-download",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_raise_photo_error(case: str, tmp_path: Path) -> None:
    make, name, message = HOSTILE[case]
    path = make(tmp_path / name)
    with pytest.raises(PhotoError, match=message) as info:
        load_photo(path)
    assert info.value.path == path


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".gif"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_files_are_detected(suffix: str, keep: float, tmp_path: Path) -> None:
    src = write(tmp_path / f"full{suffix}", rgb_image(64, 48, seed=3))
    data = src.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(PhotoError, match=r"truncated or damaged.*re-download or re-export it"):
        load_photo(cut)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match="does not exist"):
        load_photo(tmp_path / "nope.jpg")
    folder = tmp_path / "dir.jpg"
    folder.mkdir()
    with pytest.raises(PhotoError, match="is a folder"):
        load_photo(folder)


@pytest.fixture(scope="session")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bomb_png(tmp_path_factory.mktemp("bomb") / "bomb.png")


def test_decompression_bomb_refused_from_header(bomb: Path) -> None:
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(PhotoError, match=r"40000 x 40000 = 1600\.0 megapixels.*raise --max-pixels"):
        load_photo(bomb)


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    src = write(tmp_path / "s.png", rgb_image(16, 12))
    assert load_photo(src, max_pixels=192).size == (16, 12)
    with pytest.raises(PhotoError, match="above the limit"):
        load_photo(src, max_pixels=191)


def test_pillow_bomb_warning_range_uses_our_limit(tmp_path: Path) -> None:
    # 12000 x 12000 = 144 MP: above Pillow's warning limit, below its error limit.
    src = bomb_png(tmp_path / "mid.png", 12_000, 12_000)
    with pytest.raises(PhotoError, match="144.0 megapixels"):
        load_photo(src)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard is restored


# ------------------------------------------------------------------------------------------
# Writing safely


@pytest.fixture
def photo(tmp_path: Path) -> Photo:
    return load_photo(write(tmp_path / "src" / "p.jpg", rgb_image()))


def test_never_writes_the_source(photo: Photo) -> None:
    before = photo.path.read_bytes()
    for options in (SaveOptions(), SaveOptions(overwrite=True)):
        with pytest.raises(PhotoError, match="original photo"):
            save_photo(photo, photo.rgb, photo.path, options)
    # Also through another spelling of the same path.
    other = photo.path.parent / ".." / photo.path.parent.name / photo.path.name
    with pytest.raises(PhotoError, match="original photo"):
        save_photo(photo, photo.rgb, other, SaveOptions(overwrite=True))
    assert photo.path.read_bytes() == before
    assert no_temp_files(photo.path.parent)


def test_existing_output_kept_unless_overwrite(photo: Photo, tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"
    dest.write_bytes(b"precious")
    with pytest.raises(PhotoError, match="already exists.*--overwrite"):
        save_photo(photo, photo.rgb, dest)
    assert dest.read_bytes() == b"precious"
    save_photo(photo, photo.rgb, dest, SaveOptions(overwrite=True))
    assert load_photo(dest).size == photo.size
    assert no_temp_files(tmp_path)


@pytest.mark.parametrize("where", ["fsync", "write"])
def test_disk_full_leaves_nothing(where: str, photo: Photo, tmp_path: Path, monkeypatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", full)
    else:
        monkeypatch.setattr(Image.Image, "save", full)
    dest = tmp_path / "out.jpg"
    with pytest.raises(PhotoError, match="disk full while writing out.jpg: free space and rerun"):
        save_photo(photo, photo.rgb, dest)
    assert not dest.exists()
    assert no_temp_files(tmp_path)


def test_encoder_failure_leaves_nothing(photo: Photo, tmp_path: Path, monkeypatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("encoder exploded")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(PhotoError, match="couldn't be written"):
        save_photo(photo, photo.rgb, tmp_path / "out.jpg")
    assert list(tmp_path.iterdir()) == [photo.path.parent]


def _unwritable_folder(tmp_path: Path) -> Path | None:
    """A folder this process really can't write to, or None (root ignores chmod)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    (folder / "probe").unlink()
    # As root, sysfs still refuses new files: a real read-only folder.
    if Path("/sys/kernel").is_dir():
        try:
            open("/sys/kernel/.cloak-probe", "wb").close()  # noqa: SIM115
        except OSError:
            return Path("/sys/kernel")
    return None


def test_read_only_folder(photo: Photo, tmp_path: Path) -> None:
    folder = _unwritable_folder(tmp_path)
    if folder is None:
        pytest.skip("no folder this user can't write to (root without sysfs)")
    with pytest.raises(PhotoError, match="isn't writable; choose another output folder with -o"):
        save_photo(photo, photo.rgb, folder / "cloak-test-output.jpg")
    assert not (folder / "cloak-test-output.jpg").exists()


def test_output_under_a_file_or_missing_folder(photo: Photo, tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match="is not a folder"):
        save_photo(photo, photo.rgb, photo.path / "out.jpg")
    with pytest.raises(PhotoError, match="doesn't exist"):
        save_photo(photo, photo.rgb, tmp_path / "missing" / "out.jpg")


def test_bad_pixels_and_wrong_suffix_rejected(photo: Photo, tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match="expected"):
        save_photo(photo, photo.rgb[1:], tmp_path / "out.jpg")
    bad = photo.rgb.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(PhotoError, match="NaN"):
        save_photo(photo, bad, tmp_path / "out.jpg")
    with pytest.raises(PhotoError, match=r"name it \*\.jpg"):
        save_photo(photo, photo.rgb, tmp_path / "out.png")
    assert not list(tmp_path.glob("out*"))


def test_output_permissions_follow_umask(photo: Photo, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        dest = save_photo(photo, photo.rgb, tmp_path / "out.jpg")
    finally:
        os.umask(old)
    assert dest.stat().st_mode & 0o777 == 0o644


def test_jpeg_quality_default_95_and_444(photo: Photo, tmp_path: Path) -> None:
    dest = save_photo(photo, photo.rgb, tmp_path / "out.jpg")
    with Image.open(dest) as out:
        from PIL import JpegImagePlugin

        assert JpegImagePlugin.get_sampling(out) == 0  # 4:4:4
    small = save_photo(photo, photo.rgb, tmp_path / "q50.jpg", SaveOptions(jpeg_quality=50))
    assert small.stat().st_size < dest.stat().st_size


def test_webp_lossless_follows_source(tmp_path: Path) -> None:
    png = load_photo(write(tmp_path / "s.png", rgb_image()))
    out = roundtrip(png, tmp_path / "out.webp", SaveOptions(format="WEBP"))
    assert np.array_equal(out.rgb, png.rgb) and out.lossless
    jpg = load_photo(write(tmp_path / "s.jpg", rgb_image()))
    assert not roundtrip(jpg, tmp_path / "out2.webp", SaveOptions(format="webp")).lossless


def test_output_suffix_and_options() -> None:
    assert output_suffix("JPEG") == ".jpg"
    assert output_suffix("PNG") == ".png"
    assert output_suffix("GIF") == ".png"
    assert output_suffix("TIFF") == ".png"
    assert output_suffix("BMP") == ".png"
    assert output_suffix("WEBP") == ".webp"
    assert output_suffix("PNG", SaveOptions(format="jpg")) == ".jpg"
    with pytest.raises(ConfigError):
        SaveOptions(format="PSD")
    with pytest.raises(ConfigError):
        SaveOptions(jpeg_quality=101)


def test_jpeg_output_of_transparent_photo_is_flattened_with_note(tmp_path: Path) -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    photo = load_photo(write(tmp_path / "t.png", img))
    options = SaveOptions(format="JPEG")
    assert any("transparency" in n for n in photo_io.save_notes(photo, options))
    out = roundtrip(photo, tmp_path / "out.jpg", options)
    assert out.rgb.min() > 0.95  # white, not black


# ------------------------------------------------------------------------------------------
# Finding photos


def test_is_supported() -> None:
    assert {".jpg", ".heic", ".gif"} <= SUPPORTED_SUFFIXES
    assert is_supported("A.JPG") and is_supported(Path("x.HeIc"))
    assert not is_supported("notes.txt") and not is_supported("jpg")


def test_iter_photos_sorted_hidden_skipped_symlink_loop(tmp_path: Path) -> None:
    for rel in [
        "b.jpg",
        "a.PNG",
        "notes.txt",
        ".hidden.jpg",
        "sub/c.webp",
        ".git/d.jpg",
        "sub/deeper/e.heic",
        ".x.jpg.1234.cloak-tmp",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "sub" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "sub" / "self").symlink_to(tmp_path / "sub", target_is_directory=True)
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    assert list(iter_photos(tmp_path, recursive=False)) == [tmp_path / "a.PNG", tmp_path / "b.jpg"]
    assert list(iter_photos(tmp_path, recursive=True)) == [
        tmp_path / "a.PNG",
        tmp_path / "b.jpg",
        tmp_path / "sub" / "c.webp",
        tmp_path / "sub" / "deeper" / "e.heic",
    ]
    assert list(iter_photos(tmp_path / "b.jpg", recursive=True)) == [tmp_path / "b.jpg"]
    with pytest.raises(PhotoError, match="does not exist"):
        list(iter_photos(tmp_path / "missing", recursive=True))
