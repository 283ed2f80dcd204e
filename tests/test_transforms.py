"""The platform/attacker pipeline used for expectation over transformations."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cloak.config import ProtectConfig, TransformConfig
from cloak.errors import ConfigError
from cloak.transforms import RandomPipeline


def _pipe(**changes: object) -> RandomPipeline:
    cfg = TransformConfig(jpeg_prob=0.0, blur_prob=0.0, noise_std=0.0, **changes)  # type: ignore[arg-type]
    return RandomPipeline(cfg, torch.Generator().manual_seed(3))


def test_window_keeps_a_step_within_its_pixel_count() -> None:
    most = 96 * 96
    pipe = _pipe(resize=(0.5, 1.3), window_px=most)
    x = torch.rand(1, 3, 300, 400)
    for _ in range(20):
        d = pipe.draw()
        view = pipe.apply(x, d, 400)
        h, w = view.shape[-2:]
        assert h * w <= most and h % 8 == 0 and w % 8 == 0
        # The same draw cuts the same window from another image of the same size.
        assert torch.equal(pipe.apply(x * 0.5, d, 400), view * 0.5)
    # A view already smaller than the window is kept whole.
    small = _pipe(resize=(0.2, 0.2), shift_px=0, window_px=most)
    assert small.apply(x, small.draw(), 400).shape[-2:] == (60, 80)


def test_windows_cover_the_photo() -> None:
    pipe = _pipe(resize=(1.0, 1.0), shift_px=0, window_px=64 * 64)
    ramp = torch.linspace(0, 1, 256).view(1, 1, 1, 256).expand(1, 3, 128, 256).contiguous()
    seen = torch.zeros(256)
    for _ in range(40):
        view = pipe.apply(ramp, pipe.draw(), 256)
        cols = (view[0, 0, 0] * 255).round().long().clamp(0, 255)
        seen[cols] = 1
    assert seen.mean() > 0.9


def test_no_window_leaves_the_view_whole_and_the_draws_unchanged() -> None:
    a, b = _pipe(), _pipe(window_px=0)
    x = torch.rand(1, 3, 120, 160)
    for _ in range(5):
        da, db = a.draw(), b.draw()
        assert da == db
        assert a.apply(x, da, 160).shape == a.apply(x, da, 160).shape


def test_window_validation() -> None:
    with pytest.raises(ConfigError, match="window_px"):
        ProtectConfig(transforms=TransformConfig(window_px=100))


def test_sizes_draw_exact_attacker_long_sides() -> None:
    pipe = _pipe(sizes=(96, 128, 200), shift_px=0)
    x = torch.rand(1, 3, 150, 200)
    seen = set()
    for _ in range(30):
        d = pipe.draw()
        assert d is not None and d.long_side in (96, 128, 200)
        view = pipe.apply(x, d, 160)
        assert max(view.shape[-2:]) == d.long_side
        seen.add(d.long_side)
    assert seen == {96, 128, 200}
    # Without sizes the long side follows the scale range.
    d = _pipe(resize=(0.5, 0.5), shift_px=0).draw()
    assert d is not None and d.long_side == 0


def test_windows_start_on_the_encoders_8px_grid() -> None:
    pipe = _pipe(resize=(1.0, 1.0), shift_px=0, window_px=64 * 64)
    # Pixel values that say where they are (the pipeline clamps to [0, 1]).
    rows = (torch.arange(203.0) / 512).view(1, 1, 203, 1).expand(1, 3, 203, 301)
    cols = (torch.arange(301.0) / 512).view(1, 1, 1, 301).expand(1, 3, 203, 301)
    tops, lefts = set(), set()
    for _ in range(25):
        d = pipe.draw()
        top = round(float(pipe.apply(rows, d, 301)[0, 0, 0, 0]) * 512)
        left = round(float(pipe.apply(cols, d, 301)[0, 0, 0, 0]) * 512)
        assert top % 8 == 0 and left % 8 == 0
        tops.add(top)
        lefts.add(left)
    assert len(tops) > 3 and len(lefts) > 3


def test_sizes_validation() -> None:
    with pytest.raises(ConfigError, match="attacker sizes"):
        ProtectConfig(transforms=TransformConfig(sizes=(512, 32)))


def test_sizes_are_drawn_by_area_unless_weighted() -> None:
    def counts(**changes: object) -> dict[int, int]:
        pipe = _pipe(sizes=(100, 200), shift_px=0, **changes)
        drawn = [pipe.draw() for _ in range(600)]
        return {s: sum(d is not None and d.long_side == s for d in drawn) for s in (100, 200)}

    # By area: 200 px is drawn four times as often as 100 px.
    by_area = counts()
    assert 3.0 < by_area[200] / by_area[100] < 5.3
    # Equal weights: about as often.
    equal = counts(size_weights=(1.0, 1.0))
    assert 0.75 < equal[200] / equal[100] < 1.33
    with pytest.raises(ConfigError, match="size_weights"):
        ProtectConfig(transforms=TransformConfig(sizes=(512, 768), size_weights=(1.0,)))
    with pytest.raises(ConfigError, match="size_weights"):
        ProtectConfig(transforms=TransformConfig(sizes=(512, 768), size_weights=(1.0, 0.0)))


def test_step_sizes_give_every_step_one_window_per_size() -> None:
    common = dict(sizes=(512, 768, 1024), shift_px=0, window_px=576 * 360)
    plain = _pipe(**common)
    multi = _pipe(**common, step_sizes=(768, 1024, 512, 768))
    photo = torch.rand(1, 3, 960, 1280)
    for _ in range(20):
        d, m = plain.draw(), multi.draw()
        # The same random numbers as without: the other transformations do not change.
        assert d == m and d is not None
        assert plain.views(d) == [d]
        views = multi.views(m)
        assert [v.long_side for v in views if v is not None] == [768, 1024, 512, 768]
        for v in views:
            assert v is not None
            share, top, left = v.window
            assert share == 576 * 360 // 4 and 0 <= top < 1 and 0 <= left < 1
            assert dataclasses.replace(v, long_side=m.long_side, window=m.window) == m
            seen = RandomPipeline.apply(photo, v, 1024)
            assert seen.shape[-2] * seen.shape[-1] <= share
        # The size listed twice gets two different windows.
        assert views[0] is not None and views[3] is not None
        assert views[0].window != views[3].window or m.window[1] == 0.5


def test_step_sizes_validation() -> None:
    with pytest.raises(ConfigError, match="step_sizes"):
        ProtectConfig(transforms=TransformConfig(step_sizes=(32, 768)))
    # Four views of a 64 x 128 window would each be under 64 x 64 pixels.
    with pytest.raises(ConfigError, match="step_sizes"):
        ProtectConfig(transforms=TransformConfig(window_px=64 * 128, step_sizes=(512,) * 4))


def test_size_order_gives_every_size_its_steps_in_order() -> None:
    order = (1024, 768, 512, 1024, 768)
    pipe = _pipe(sizes=(512, 768, 1024), shift_px=0, window_px=576 * 360, size_order=order)
    drawn = [pipe.draw() for _ in range(12)]
    assert [d.long_side for d in drawn if d is not None] == list(order * 3)[:12]
    # Random draws from the same sizes leave a size out of a few steps now and then; the
    # order never does (a pipeline per seed, as every photo gets).
    missed = 0
    for seed in range(40):
        rnd = RandomPipeline(
            TransformConfig(sizes=(512, 768, 1024), window_px=576 * 360),
            torch.Generator().manual_seed(seed),
        )
        sizes = {d.long_side for d in (rnd.draw() for _ in range(5)) if d is not None}
        missed += len(sizes) < 3
    assert missed > 0
    with pytest.raises(ConfigError, match="size_order"):
        ProtectConfig(transforms=TransformConfig(sizes=(512, 768), size_order=(512, 1024)))


def test_spread_windows_cover_each_size_view_in_turn() -> None:
    common = dict(sizes=(512, 1024), shift_px=0, window_px=576 * 360)
    pipe = _pipe(**common, size_order=(1024, 512), spread_windows=True)
    # A 1024 px photo whose pixels hold their own index: a window's values say where it is.
    n = 768 * 1024
    where = (torch.arange(n, dtype=torch.float64) / n).reshape(1, 1, 768, 1024)
    covered = torch.zeros(n)
    spots: dict[int, list[tuple[float, float]]] = {512: [], 1024: []}
    for _ in range(10):
        d = pipe.draw()
        assert d is not None
        spots[d.long_side].append(d.window[1:])
        if d.long_side == 1024:
            taken = RandomPipeline.apply(where, d, 1024)
            covered[(taken.flatten() * n).round().long()] = 1
    # Each size goes through the five spots, in the same turn, from the same start.
    for seen in spots.values():
        assert set(seen) == set(RandomPipeline.SPREAD)
    assert spots[512] == spots[1024]
    # Five windows of about a quarter of the view each cover all of it.
    assert float(covered.mean()) > 0.97


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("low", {512: 2, 768: 4, 1024: 4}),
        ("standard", {512: 2, 768: 4, 1024: 4}),
        ("high", {512: 3, 768: 6, 1024: 7}),
        ("max", {512: 19, 768: 38, 1024: 39}),
    ],
)
def test_ordered_presets_give_every_photo_each_size_and_spread_windows(
    name: str, counts: dict[int, int]
) -> None:
    """Whatever the seed, the low and standard presets' ten steps encode 512 px twice and 768
    and 1024 px four times each (high's 16: three, six, seven; max's 96: 19, 38, 39), and each
    size's first five windows sit at five different places."""
    from cloak.config import preset

    cfg = preset(name)
    for seed in range(5):
        pipe = RandomPipeline(cfg.transforms, torch.Generator().manual_seed(seed))
        drawn = [pipe.draw() for _ in range(cfg.steps)]
        sizes = [d.long_side for d in drawn if d is not None]
        assert {s: sizes.count(s) for s in set(sizes)} == counts
        for size in (512, 768, 1024):
            spots = [d.window[1:] for d in drawn if d is not None and d.long_side == size][:5]
            assert len(set(spots)) == len(spots)


def test_a_window_at_the_far_corner_keeps_its_size() -> None:
    """Spread windows go to top/left 1.0: the last position on the 8-px grid, full size."""
    common = dict(sizes=(1024,), shift_px=0, window_px=576 * 360, spread_windows=True)
    pipe = _pipe(**common)
    x = torch.rand(1, 3, 768, 1024)
    shapes = set()
    for _ in range(5):
        d = pipe.draw()
        assert d is not None
        shapes.add(tuple(RandomPipeline.apply(x, d, 1024).shape[-2:]))
    assert shapes == {(392, 520)}
