"""Speed, memory and damage of each preset through the real file path, against a reference.

Run from the repository root::

    python -m benchmarks.bench                       # presets x {1, 12} MP + reference + ETA
    python -m benchmarks.bench --sizes 1,12,50 --json /tmp/bench.json
    python -m benchmarks.bench --quick                # tiny sizes and steps (the test uses it)

Every case runs in a fresh subprocess with ``torch.set_num_threads(threads)`` so its peak RSS
(``VmHWM``) is its own: load -> attack -> lift -> save, each phase timed, then the damage of the
saved file is measured with TAEF2 (direct, 1080/q80, 720/q70) after the peak was read. The same
photo is protected by the PhotoGuard-style reference (``cloak.reference``) and two ratios are
printed: our seconds / reference seconds, and our damage / reference damage after 1080/q80.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cloak.metrics import ATTACKER_LONG_SIDE

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "photos"
SOURCE = "astronaut.png"
SIZES: dict[str, tuple[int, int]] = {
    "1": (1152, 864),
    "12": (4000, 3000),
    "50": (8160, 6120),
}
"""Megapixel label -> (width, height), 4:3 like a phone camera."""
QUICK_SIZES: dict[str, tuple[int, int]] = {"0.05": (256, 192)}
SCENARIOS = ("direct", "1080/q80", "720/q70")


# --------------------------------------------------------------------------- test photos


def make_photo(size: tuple[int, int], dest: Path, seed: int = 0, source: str = SOURCE) -> Path:
    """A phone-like JPEG of ``size`` made from a shared photo: 4:3 crop, resize, mild grain."""
    import numpy as np
    from PIL import Image

    w, h = size
    with Image.open(PHOTOS / source) as im:
        src = im.convert("RGB")
    sw, sh = src.size
    # Crop to the target aspect ratio around the centre, then resize (upscale for big sizes).
    if sw / sh > w / h:
        cw, ch = round(sh * w / h), sh
    else:
        cw, ch = sw, round(sw * h / w)
    left, top = (sw - cw) // 2, (sh - ch) // 2
    img = src.crop((left, top, left + cw, top + ch)).resize((w, h), Image.Resampling.LANCZOS)
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, dtype=np.int16)
    arr = arr + rng.integers(-2, 3, size=arr.shape, dtype=np.int16)
    dest.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(dest, "JPEG", quality=92)
    return dest


# --------------------------------------------------------------------------- worker side


def _peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _damage(encoder: Any, original: Any, saved: Any, side: int) -> dict[str, float]:
    from cloak.metrics import PLATFORMS, platform, score_encoder

    out: dict[str, float] = {}
    s = score_encoder(encoder, original, saved, "direct", side)
    out["direct"] = float(s.damage_db or 0.0)
    for name, (long_side, q) in PLATFORMS.items():
        o, p = platform(original, long_side, q), platform(saved, long_side, q)
        s = score_encoder(encoder, o, p, name, side)
        out[name] = float(s.damage_db or 0.0)
    return out


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed case in this process: ``spec`` names the photo, method and settings."""
    import torch

    torch.set_num_threads(int(spec["threads"]))
    # The process-wide allocator setting the cloak command makes at its entry point.
    from cloak.device import keep_freed_memory

    keep_freed_memory()
    from cloak.config import preset
    from cloak.engine import protect, run_to_end
    from cloak.metrics import psnr
    from cloak.models import load_encoder
    from cloak.photo_io import SaveOptions, load_photo, save_photo
    from cloak.reference import reference_protect
    from cloak.tensors import quantize, to_array, to_tensor

    t_start = time.perf_counter()
    encoder = load_encoder("taef2", models_dir=spec["models_dir"], offline=True)
    method = spec["method"]
    if method == "reference":
        cfg = None
    else:
        cfg = preset(method).replace(encoders=("taef2",), device="cpu", **spec["overrides"])

    # Warm-up on a small image: kernels, bf16 paths and the attack's activation memory.
    warm = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    if cfg is None:
        reference_protect(warm, encoder, steps=2, work_size=96, device="cpu")
    else:
        run_to_end(protect(warm, [encoder], cfg.replace(steps=2, work_size=96)))
    setup_s = time.perf_counter() - t_start

    src = Path(spec["photo"])
    dest = Path(spec["out_dir"]) / f"{method}_{src.stem}.jpg"
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    photo = load_photo(src)
    original = to_tensor(photo.rgb)
    t1 = time.perf_counter()
    if cfg is None:
        ref = reference_protect(
            original, encoder, steps=int(spec["ref_steps"]), work_size=int(spec["ref_work"])
        )
        protected = ref.protected
        attack_s, lift_s = ref.attack_seconds, ref.lift_seconds
    else:
        lift_at = [t1]

        def note_lift(rec: Any) -> None:
            if rec.stage == "lift":
                lift_at[0] = time.perf_counter()

        protected = run_to_end(protect(original, [encoder], cfg), note_lift).protected
        t2 = time.perf_counter()
        attack_s, lift_s = lift_at[0] - t1, t2 - lift_at[0]
    t3 = time.perf_counter()
    saved = quantize(protected)
    del protected
    save_photo(photo, to_array(saved), dest, SaveOptions(overwrite=True))
    t4 = time.perf_counter()
    peak = _peak_rss_mb()
    result: dict[str, Any] = {
        "method": method,
        "photo": src.name,
        "width": photo.size[0],
        "height": photo.size[1],
        "megapixels": photo.size[0] * photo.size[1] / 1e6,
        "setup_s": setup_s,
        "load_s": t1 - t0,
        "attack_s": attack_s,
        "lift_s": lift_s,
        "save_s": t4 - t3,
        "photo_s": t4 - t0,
        "peak_rss_mb": peak,
        "steps": int(spec["ref_steps"]) if cfg is None else cfg.steps,
    }
    # Measured after the peak was read, from the file as written.
    written = to_tensor(load_photo(dest).rgb)
    result["psnr"] = psnr(written, original)
    result["damage_db"] = _damage(encoder, original, written, int(spec["attacker_side"]))
    return result


# --------------------------------------------------------------------------- parent side


def _spawn(spec: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--worker", json.dumps(spec)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(spec["threads"])},
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark case {spec['method']} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    return result


def run_batch_eta(
    n: int, steps: int | None, models_dir: str, threads: int, folder: Path, quick: bool
) -> dict[str, Any]:
    """Protect ``n`` phone-size photos in one batch; ETA error after photos 1 to 50."""
    import torch

    torch.set_num_threads(threads)
    # The process-wide allocator setting the cloak command makes at its entry point.
    from cloak.device import keep_freed_memory

    keep_freed_memory()
    from cloak.config import preset
    from cloak.engine import run_to_end
    from cloak.eta import EtaEstimator, pixels_of
    from cloak.jobs import PhotoJob, run_batch
    from cloak.models import load_encoder

    sources = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
    # Mixed phone sizes and orientations, as a camera roll has.
    shapes = [(2304, 1728), (1728, 2304), (2048, 1536), (2560, 1920), (1920, 1080)]
    if quick:
        shapes = [(320, 240), (240, 320), (400, 300)]
    src_dir, out_dir = folder / "batch_in", folder / "batch_out"
    paths = [
        make_photo(shapes[i % len(shapes)], src_dir / f"p{i:03d}.jpg", i, sources[i % 4])
        for i in range(n)
    ]
    cfg = preset("standard").replace(encoders=("taef2",), device="cpu")
    if steps is not None:
        cfg = cfg.replace(steps=steps)
    if quick:
        cfg = cfg.replace(work_size=96)
    encoder = load_encoder("taef2", models_dir=models_dir, offline=True)
    jobs = [PhotoJob(p, out_dir / p.name) for p in paths]
    pixels = pixels_of(paths)
    eta = EtaEstimator()
    predictions: dict[int, float] = {}
    done_at: list[float] = []
    seconds: list[float] = []
    start = time.perf_counter()

    def observe(ev: Any) -> None:
        if ev.result is None:
            return
        now = time.perf_counter() - start
        eta.observe(pixels[ev.index], ev.result.seconds)
        seconds.append(ev.result.seconds)
        done_at.append(now)
        k = ev.index + 1
        left = eta.remaining(pixels[k:])
        if left is not None:
            predictions[k] = now + left

    run_to_end(run_batch(jobs, cfg, [encoder]), observe)
    total = time.perf_counter() - start
    checks = [k for k in (1, 2, 3, 5, 10, 20, 50) if k < n]
    errors = []
    for k in checks:
        actual_left = total - done_at[k - 1]
        predicted_left = predictions[k] - done_at[k - 1]
        errors.append(
            {
                "after_photo": k,
                "predicted_finish_s": predictions[k],
                "actual_finish_s": total,
                "remaining_error": (predicted_left - actual_left) / max(actual_left, 1e-9),
                "finish_error": (predictions[k] - total) / total,
            }
        )
    return {
        "photos": n,
        "steps": cfg.steps,
        "total_s": total,
        "mean_photo_s": total / n,
        "megapixels": [round(p / 1e6, 2) for p in pixels],
        "photo_seconds": [round(x, 2) for x in seconds],
        "eta": errors,
    }


def _ratios(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for size in dict.fromkeys(c["size"] for c in cases):
        ref = next((c for c in cases if c["size"] == size and c["method"] == "reference"), None)
        if ref is None:
            continue
        for c in cases:
            if c["size"] != size or c["method"] == "reference":
                continue
            ref_dmg = ref["damage_db"]["1080/q80"]
            rows.append(
                {
                    "size": size,
                    "preset": c["method"],
                    "time_ratio": c["photo_s"] / ref["photo_s"],
                    "damage_ratio_1080q80": (
                        c["damage_db"]["1080/q80"] / ref_dmg if ref_dmg > 0 else float("inf")
                    ),
                }
            )
    return rows


def format_table(cases: list[dict[str, Any]]) -> str:
    """Markdown table of the cases."""
    head = (
        "| size | method | steps | load s | attack s | lift s | save s | photo s | process s "
        "| peak RSS MB | PSNR | damage direct | 1080/q80 | 720/q70 |"
    )
    lines = [head, "|" + "---|" * 14]
    for c in cases:
        d = c["damage_db"]
        lines.append(
            f"| {c['size']} MP | {c['method']} | {c['steps']} | {c['load_s']:.2f} "
            f"| {c['attack_s']:.1f} | {c['lift_s']:.2f} | {c['save_s']:.2f} | {c['photo_s']:.1f} "
            f"| {c['process_s']:.1f} | {c['peak_rss_mb']:.0f} | {c['psnr']:.2f} "
            f"| {d['direct']:.2f} | {d['1080/q80']:.2f} | {d['720/q70']:.2f} |"
        )
    return "\n".join(lines)


def format_ratios(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| size | preset | our s / reference s | our damage / reference damage (1080/q80) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} MP | {r['preset']} | {r['time_ratio']:.2f} "
            f"| {r['damage_ratio_1080q80']:.2f} |"
        )
    return "\n".join(lines)


def format_eta(batch: dict[str, Any]) -> str:
    lines = [
        f"batch: {batch['photos']} photos, {batch['steps']} steps, "
        f"{batch['total_s']:.1f} s ({batch['mean_photo_s']:.1f} s/photo)",
        "| after photo | predicted finish s | actual finish s | error of remaining time "
        "| error of finish time |",
        "|---|---|---|---|---|",
    ]
    for e in batch["eta"]:
        lines.append(
            f"| {e['after_photo']} | {e['predicted_finish_s']:.1f} | {e['actual_finish_s']:.1f} "
            f"| {e['remaining_error']:+.1%} | {e['finish_error']:+.1%} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    p.add_argument("--presets", default="low,standard,high")
    p.add_argument("--sizes", default="1,12", help="megapixel cases: 1, 12 and/or 50")
    p.add_argument("--ref-steps", type=int, default=200, help="reference PGD steps (at 512 px)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference attack")
    p.add_argument(
        "--ref-sizes",
        default=None,
        help="sizes at which the reference also runs (default: every size)",
    )
    p.add_argument("--batch", type=int, default=0, help="also run an N-photo batch for the ETA")
    p.add_argument(
        "--batch-steps",
        type=int,
        default=None,
        help="attack steps in the batch (default: the preset's)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--steps", type=int, default=None, help="override the presets' steps (memory-only runs)"
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes and steps (smoke test)")
    p.add_argument("--json", type=Path, default=None, help="write all results here")
    p.add_argument(
        "--models-dir",
        default=os.environ.get("CLOAK_MODELS_DIR", str(REPO.parent / "shared" / "weights")),
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker is not None:
        print(json.dumps(run_case(json.loads(args.worker))))
        return 0
    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    table = QUICK_SIZES if args.quick else SIZES
    sizes = list(table) if args.quick else [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in table]
    if unknown:
        print(f"error: unknown size(s) {unknown}: use {', '.join(table)}", file=sys.stderr)
        return 2
    ref_sizes = None if args.ref_sizes is None else {s.strip() for s in args.ref_sizes.split(",")}
    overrides: dict[str, Any] = {"steps": 2, "work_size": 96} if args.quick else {}
    if args.steps is not None and not args.quick:
        overrides["steps"] = args.steps
    ref_steps = 2 if args.quick else args.ref_steps
    ref_work = 96 if args.quick else 512
    cases: list[dict[str, Any]] = []
    batch: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="cloak-bench-") as tmp:
        folder = Path(tmp)
        for size in sizes:
            photo = make_photo(table[size], folder / f"photo_{size}mp.jpg")
            with_ref = not args.no_reference and (ref_sizes is None or size in ref_sizes)
            methods = presets + (["reference"] if with_ref else [])
            for method in methods:
                spec = {
                    "photo": str(photo),
                    "method": method,
                    "threads": args.threads,
                    "overrides": overrides,
                    "ref_steps": ref_steps,
                    "ref_work": ref_work,
                    "attacker_side": 128 if args.quick else ATTACKER_LONG_SIDE,
                    "models_dir": args.models_dir,
                    "out_dir": str(folder / "out"),
                }
                res = _spawn(spec)
                res["size"] = size
                cases.append(res)
                print(
                    f"{size:>5} MP {method:<10} photo {res['photo_s']:7.1f} s "
                    f"(attack {res['attack_s']:.1f}) peak {res['peak_rss_mb']:6.0f} MB "
                    f"damage {res['damage_db']['direct']:.2f}/{res['damage_db']['1080/q80']:.2f}"
                    f"/{res['damage_db']['720/q70']:.2f} dB",
                    flush=True,
                )
        if args.batch:
            batch = run_batch_eta(
                args.batch,
                2 if args.quick and args.batch_steps is None else args.batch_steps,
                args.models_dir,
                args.threads,
                folder,
                args.quick,
            )
    ratios = _ratios(cases)
    print()
    print(format_table(cases))
    if ratios:
        print()
        print(format_ratios(ratios))
    if batch is not None:
        print()
        print(format_eta(batch))
    if args.json is not None:
        payload = {"threads": args.threads, "cases": cases, "ratios": ratios, "batch": batch}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
